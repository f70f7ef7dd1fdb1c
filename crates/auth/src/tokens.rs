//! Access tokens, and the client assertions they are issued against.
//!
//! A client asks for a token with the client-credentials grant and a JWT
//! it signed with one of its registered keys (RS384 or ES384): issuer and
//! subject are its client id, the audience is the token endpoint, it
//! expires within five minutes, and its `jti` is never used twice. The
//! access token the node answers is signed by the node's current key
//! (ES384) and names the client, its organization, its jurisdiction and
//! the scopes granted; services verify it against the node's JWKS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::NodeKeys;

/// How far in the future a client assertion may expire (SMART: five
/// minutes).
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);
/// Clock difference tolerated between client and node.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Why a token or an assertion is refused. Every variant is an
/// authentication failure (UNAUTHENTICATED, HTTP 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("tokens signed with {0} are not accepted; use ES384 or RS384")]
    Algorithm(String),
    #[error("no registered key has the token's kid '{0}'")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is for another audience; expected '{0}'")]
    Audience(String),
    #[error("the token was issued by someone else; expected '{0}'")]
    Issuer(String),
    #[error("a client assertion may expire at most five minutes ahead")]
    TooLong,
    #[error("the assertion's jti was used before; sign a new assertion for every request")]
    Replayed,
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The client id.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    /// `Organization/<id>` the client acts for.
    pub organization: String,
    /// ISO 3166 code of the node's jurisdiction.
    pub jurisdiction: String,
    /// Granted SMART scopes, space-separated.
    pub scope: String,
    /// A node operator's token (minted with the node's key by the
    /// `corridor token` command, never by the token endpoint): it may also
    /// register clients.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// The client certificate the token is bound to (RFC 8705), for a
    /// client registered to require mutual TLS: the token is only good on
    /// a connection made with that certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The proof-of-possession confirmation of a certificate-bound token
/// (RFC 8705 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The base64url SHA-256 thumbprint of the client certificate (DER).
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// Sign an access token for `claims` with the node's current key.
pub fn issue(keys: &NodeKeys, claims: &AccessClaims) -> Result<String, AuthError> {
    let key = keys.current();
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .map_err(|e| AuthError::Malformed(e.to_string()))
}

/// Sign a client assertion (or any claims) with `key`, ES384, naming the
/// key's kid: what a partner system's SMART client does, for tools and
/// tests.
pub fn sign_assertion(
    key: &crate::keys::SigningKey,
    claims: &impl Serialize,
) -> Result<String, AuthError> {
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .map_err(|e| AuthError::Malformed(e.to_string()))
}

/// Verifies access tokens against a node's published keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub jwks: JwkSet,
    pub issuer: String,
    pub audience: String,
}

impl Verifier {
    /// A verifier of the tokens a node issues: `jwks` is its published key
    /// set as JSON, and `issuer` is both the issuer and the audience of its
    /// tokens.
    pub fn for_node(jwks: &str, issuer: &str) -> Result<Self, AuthError> {
        let jwks: JwkSet = serde_json::from_str(jwks)
            .map_err(|e| AuthError::Malformed(format!("the node's JWKS: {e}")))?;
        Ok(Self {
            jwks,
            issuer: issuer.to_owned(),
            audience: issuer.to_owned(),
        })
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::ES384 {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.unwrap_or_default();
        let jwk = self
            .jwks
            .find(&kid)
            .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::ES384);
        validation.leeway = LEEWAY.as_secs();
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| refusal(e.kind(), &self.audience, &self.issuer))
    }
}

fn refusal(kind: &ErrorKind, audience: &str, issuer: &str) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidAudience => AuthError::Audience(audience.to_owned()),
        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
            AuthError::Issuer(issuer.to_owned())
        }
        other => AuthError::Malformed(format!("{other:?}")),
    }
}

/// Remembers the `jti` of every assertion until it expires, so that none
/// is accepted twice.
pub trait ReplayGuard: Send + Sync {
    /// True the first time `jti` of `client` is seen before `expires_at`
    /// (seconds since the epoch).
    fn first_use(&self, client: &str, jti: &str, expires_at: u64) -> bool;
}

/// A [`ReplayGuard`] in this process's memory (one token endpoint replica).
#[derive(Debug, Default)]
pub struct MemoryReplayGuard {
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl ReplayGuard for MemoryReplayGuard {
    fn first_use(&self, client: &str, jti: &str, expires_at: u64) -> bool {
        let now = jsonwebtoken::get_current_timestamp();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, until| *until + LEEWAY.as_secs() >= now);
        seen.insert((client.to_owned(), jti.to_owned()), expires_at)
            .is_none()
    }
}

/// What a verified client assertion says that its verifier still needs:
/// the `jti` to refuse a second use of, until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Assertion {
    pub exp: u64,
    pub jti: String,
}

/// The client an access token claims to be for (`sub`), read without
/// verifying anything: only to describe a refused token, never to trust.
pub fn claimed_subject(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    jsonwebtoken::dangerous::insecure_decode::<Subject>(token)
        .ok()
        .map(|data| data.claims.sub)
}

/// The client id an assertion claims to come from (`iss`), read without
/// verifying anything, to find the keys to verify it with.
pub fn assertion_client(assertion: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    jsonwebtoken::dangerous::insecure_decode::<Issuer>(assertion)
        .map(|data| data.claims.iss)
        .map_err(|e| AuthError::Malformed(e.to_string()))
}

/// Check a client's assertion: signed by one of `client_keys` (RS384 or
/// ES384), issued by and about `client_id`, for `token_url`, expiring
/// within five minutes. The caller must still refuse a `jti` used before
/// ([`verify_assertion`] does both, with a [`ReplayGuard`]).
pub fn check_assertion(
    assertion: &str,
    client_id: &str,
    client_keys: &JwkSet,
    token_url: &str,
) -> Result<Assertion, AuthError> {
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|e| AuthError::Malformed(e.to_string()))?;
    if !matches!(header.alg, Algorithm::ES384 | Algorithm::RS384) {
        return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => client_keys.find(kid),
        None if client_keys.keys.len() == 1 => client_keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| AuthError::UnknownKey(header.kid.clone().unwrap_or_default()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Malformed(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY.as_secs();
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Assertion>(assertion, &key, &validation)
        .map_err(|e| refusal(e.kind(), token_url, client_id))?
        .claims;
    let now = jsonwebtoken::get_current_timestamp();
    if claims.exp > now + MAX_ASSERTION_LIFETIME.as_secs() + LEEWAY.as_secs() {
        return Err(AuthError::TooLong);
    }
    Ok(claims)
}

/// [`check_assertion`], then refuse a `jti` that `replay` has seen.
pub fn verify_assertion(
    assertion: &str,
    client_id: &str,
    client_keys: &JwkSet,
    token_url: &str,
    replay: &dyn ReplayGuard,
) -> Result<(), AuthError> {
    let claims = check_assertion(assertion, client_id, client_keys, token_url)?;
    if !replay.first_use(client_id, &claims.jti, claims.exp) {
        return Err(AuthError::Replayed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use serde_json::json;

    const ISSUER: &str = "https://node.example/corridor";
    const AUDIENCE: &str = "corridor";
    const TOKEN_URL: &str = "https://node.example/fhir/token";

    fn claims(exp_in: i64) -> AccessClaims {
        let now = jsonwebtoken::get_current_timestamp();
        AccessClaims {
            iss: ISSUER.to_owned(),
            sub: "hospital-ehr".to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now.saturating_add_signed(exp_in),
            iat: now,
            jti: "t-1".to_owned(),
            organization: "Organization/ospedale".to_owned(),
            jurisdiction: "IT".to_owned(),
            scope: "system/Patient.rs".to_owned(),
            admin: false,
            cnf: None,
        }
    }

    fn verifier(keys: &NodeKeys) -> Verifier {
        Verifier {
            jwks: keys.jwks(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
        }
    }

    #[test]
    fn an_issued_token_verifies_and_says_who_and_what() {
        let keys = NodeKeys::generate().unwrap();
        let token = issue(&keys, &claims(300)).unwrap();
        assert_eq!(verifier(&keys).verify(&token).unwrap(), claims_like(&token));
    }

    fn claims_like(token: &str) -> AccessClaims {
        jsonwebtoken::dangerous::insecure_decode::<AccessClaims>(token)
            .unwrap()
            .claims
    }

    #[test]
    fn expired_foreign_tampered_and_misaddressed_tokens_are_refused() {
        let keys = NodeKeys::generate().unwrap();
        let v = verifier(&keys);
        let expired = issue(&keys, &claims(-120)).unwrap();
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));

        let mut other_audience = claims(300);
        other_audience.aud = "someone-else".to_owned();
        let token = issue(&keys, &other_audience).unwrap();
        assert_eq!(
            v.verify(&token),
            Err(AuthError::Audience(AUDIENCE.to_owned()))
        );

        let mut other_issuer = claims(300);
        other_issuer.iss = "https://elsewhere".to_owned();
        let token = issue(&keys, &other_issuer).unwrap();
        assert_eq!(v.verify(&token), Err(AuthError::Issuer(ISSUER.to_owned())));

        let stranger = NodeKeys::generate().unwrap();
        let token = issue(&stranger, &claims(300)).unwrap();
        assert!(matches!(v.verify(&token), Err(AuthError::UnknownKey(_))));

        // The payload changed after signing: more scopes.
        let token = issue(&keys, &claims(300)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut widened = claims_like(&token);
        widened.scope = "system/*.cruds".to_owned();
        parts[1] = base64_url(&serde_json::to_vec(&widened).unwrap());
        assert_eq!(v.verify(&parts.join(".")), Err(AuthError::Signature));

        assert!(matches!(
            v.verify("not-a-jwt"),
            Err(AuthError::Malformed(_))
        ));
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn tokens_signed_before_a_rotation_verify_until_their_key_is_retired() {
        let mut keys = NodeKeys::generate().unwrap();
        let before = issue(&keys, &claims(300)).unwrap();
        keys.rotate(SigningKey::generate().unwrap());
        let after = issue(&keys, &claims(300)).unwrap();
        assert!(verifier(&keys).verify(&before).is_ok());
        assert!(verifier(&keys).verify(&after).is_ok());
        keys.rotate(SigningKey::generate().unwrap());
        assert!(matches!(
            verifier(&keys).verify(&before),
            Err(AuthError::UnknownKey(_))
        ));
        assert!(verifier(&keys).verify(&after).is_ok());
    }

    /// A client's key pair: its private key and its registered JWKS.
    fn client() -> (SigningKey, JwkSet) {
        let key = SigningKey::generate().unwrap();
        let jwks = JwkSet {
            keys: vec![key.jwk.clone()],
        };
        (key, jwks)
    }

    fn assertion(key: &SigningKey, client_id: &str, aud: &str, exp_in: u64, jti: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(key.kid.clone());
        let body = json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in, "jti": jti});
        jsonwebtoken::encode(&header, &body, &key.encoding).unwrap()
    }

    #[test]
    fn a_client_assertion_is_accepted_once() {
        let (key, jwks) = client();
        let guard = MemoryReplayGuard::default();
        let signed = assertion(&key, "ngo-app", TOKEN_URL, 240, "a-1");
        assert_eq!(
            verify_assertion(&signed, "ngo-app", &jwks, TOKEN_URL, &guard),
            Ok(())
        );
        assert_eq!(
            verify_assertion(&signed, "ngo-app", &jwks, TOKEN_URL, &guard),
            Err(AuthError::Replayed)
        );
    }

    #[test]
    fn assertions_for_another_endpoint_client_or_key_or_too_long_are_refused() {
        let (key, jwks) = client();
        let guard = MemoryReplayGuard::default();
        let check = |signed: &str, client_id: &str, keys: &JwkSet| {
            verify_assertion(signed, client_id, keys, TOKEN_URL, &guard)
        };
        let wrong_aud = assertion(&key, "ngo-app", "https://elsewhere/token", 240, "a-2");
        assert_eq!(
            check(&wrong_aud, "ngo-app", &jwks),
            Err(AuthError::Audience(TOKEN_URL.to_owned()))
        );
        let as_other = assertion(&key, "ngo-app", TOKEN_URL, 240, "a-3");
        assert_eq!(
            check(&as_other, "hospital-ehr", &jwks),
            Err(AuthError::Issuer("hospital-ehr".to_owned()))
        );
        let (_, other_jwks) = client();
        let unregistered = assertion(&key, "ngo-app", TOKEN_URL, 240, "a-4");
        assert!(matches!(
            check(&unregistered, "ngo-app", &other_jwks),
            Err(AuthError::UnknownKey(_))
        ));
        let long = assertion(&key, "ngo-app", TOKEN_URL, 3_600, "a-5");
        assert_eq!(check(&long, "ngo-app", &jwks), Err(AuthError::TooLong));
        let hmac = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"iss": "ngo-app", "sub": "ngo-app", "aud": TOKEN_URL, "exp": 9_999_999_999u64, "jti": "a-6"}),
            &jsonwebtoken::EncodingKey::from_secret(b"guessable").unwrap(),
        )
        .unwrap();
        assert_eq!(
            check(&hmac, "ngo-app", &jwks),
            Err(AuthError::Algorithm("HS256".to_owned()))
        );
    }

    #[test]
    fn a_pem_key_round_trips_to_the_same_kid() {
        let pem = SigningKey::generate_pkcs8_pem().unwrap();
        let a = SigningKey::from_pkcs8_pem(&pem).unwrap();
        let b = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(a.kid, b.kid);
        assert!(
            SigningKey::from_pkcs8_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )
            .is_err()
        );
    }
}
