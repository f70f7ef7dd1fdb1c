//! The node's signing keys (ES384): the current one signs access tokens;
//! the ones it replaced still verify until the tokens they signed have
//! expired. Services verify against the published JWKS, looking keys up
//! by `kid` (the key's RFC 7638 thumbprint).

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use p384::elliptic_curve::Generate;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey};

/// Keys kept for verification after they stopped signing: one rotation's
/// worth, so a token signed just before a rotation stays valid for its
/// lifetime.
pub const RETIRED_KEYS: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key is not a PKCS#8 P-384 private key: {0}")]
    NotP384(String),
    #[error("the signing key cannot be used: {0}")]
    Unusable(String),
}

/// One ES384 key pair.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub(crate) encoding: EncodingKey,
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let secret = p384::SecretKey::generate();
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Self::from_der(der.as_bytes())
    }

    /// A key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as kept in a
    /// deployment's secret store.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let secret =
            p384::SecretKey::from_pkcs8_pem(pem).map_err(|e| KeyError::NotP384(e.to_string()))?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Self::from_der(der.as_bytes())
    }

    /// The key as PKCS#8 PEM, to be stored as a secret.
    pub fn generate_pkcs8_pem() -> Result<String, KeyError> {
        let secret = p384::SecretKey::generate();
        secret
            .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::Unusable(e.to_string()))
    }

    fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let encoding = EncodingKey::from_ec_der(der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES384)
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self { kid, encoding, jwk })
    }
}

/// The node's keys, newest first.
#[derive(Debug, Clone)]
pub struct NodeKeys {
    keys: Vec<SigningKey>,
}

impl NodeKeys {
    /// One fresh key (development, and tests).
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self {
            keys: vec![SigningKey::generate()?],
        })
    }

    /// Keys from configuration, the signing one first.
    pub fn from_keys(current: SigningKey, retired: Vec<SigningKey>) -> Self {
        let mut keys = vec![current];
        keys.extend(retired.into_iter().take(RETIRED_KEYS));
        Self { keys }
    }

    /// Start signing with `next`; the current key is kept for verification,
    /// and the oldest beyond [`RETIRED_KEYS`] is dropped.
    pub fn rotate(&mut self, next: SigningKey) {
        self.keys.insert(0, next);
        self.keys.truncate(1 + RETIRED_KEYS);
    }

    /// The key that signs.
    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The public keys, for `/.well-known/jwks.json` and for the services.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}
