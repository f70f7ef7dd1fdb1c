//! The token endpoint (SMART Backend Services): partner systems are
//! registered with their public keys and allowed scopes, and exchange a
//! signed client assertion for a short-lived access token signed by the
//! node. Every service requires these tokens (see `corridor_runtime::auth`).

use std::time::Duration;

use corridor_auth::Scopes;
use corridor_auth::keys::NodeKeys;
use corridor_auth::tokens::{self, AccessClaims, AuthError};
use corridor_fhir::Issue;
use corridor_proto::identity::v1 as pb;
use corridor_runtime::ApiError;
use corridor_runtime::tls::Peer;
use corridor_store::Store;
use corridor_store::clients::Client;

/// The client assertion type of the client-credentials grant.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Access token lifetime by default.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// What the token endpoint signs with and says.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub keys: NodeKeys,
    /// The node, as `iss` and `aud` of its access tokens.
    pub issuer: String,
    /// The token endpoint's URL: the audience of client assertions.
    pub token_url: String,
    /// ISO 3166 code of the node's jurisdiction.
    pub jurisdiction: String,
    pub lifetime: Duration,
}

impl TokenSettings {
    /// The node's public keys, as JSON.
    pub fn jwks(&self) -> String {
        serde_json::to_string(&self.keys.jwks()).unwrap_or_default()
    }

    /// A node on this machine with a key of its own that lives as long as
    /// the process (tests, and a first run).
    pub fn ephemeral() -> Result<Self, corridor_auth::KeyError> {
        Ok(Self {
            keys: NodeKeys::generate()?,
            issuer: "http://127.0.0.1:8080/fhir".to_owned(),
            token_url: "http://127.0.0.1:8080/fhir/token".to_owned(),
            jurisdiction: "XX".to_owned(),
            lifetime: DEFAULT_LIFETIME,
        })
    }
}

/// Registration and token issue over the identity store.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
    settings: TokenSettings,
}

fn invalid(at: &str, text: impl Into<String>) -> ApiError {
    ApiError::Invalid(Issue::new("invalid", text).at(at.to_owned()))
}

fn refused(err: &AuthError) -> ApiError {
    ApiError::Unauthenticated(Issue::new("login", err.to_string()).at("client_assertion"))
}

impl Tokens {
    pub fn new(store: Store, settings: TokenSettings) -> Self {
        Self { store, settings }
    }

    /// The node's public keys, as JSON.
    pub fn jwks(&self) -> String {
        self.settings.jwks()
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Register a client; `operator` is the node operator's client id, which
    /// is recorded with what the request says of who registers it.
    pub async fn register(
        &self,
        req: pb::RegisterClientRequest,
        operator: &str,
    ) -> Result<pb::RegisterClientResponse, ApiError> {
        let client_id = req.client_id.trim();
        if client_id.is_empty()
            || client_id.len() > 64
            || !client_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(invalid(
                "client_id",
                "client_id is 1 to 64 letters, digits, '-', '.' or '_'",
            ));
        }
        if req.registered_by.trim().is_empty() {
            return Err(ApiError::Invalid(
                Issue::new("required", "say who registers the client").at("registered_by"),
            ));
        }
        let organization = req.organization.trim();
        let Some(org_id) = organization.strip_prefix("Organization/") else {
            return Err(invalid(
                "organization",
                "organization must be Organization/<id>",
            ));
        };
        match self.store.read("Organization", org_id).await {
            Ok(_) => {}
            Err(
                corridor_store::StoreError::NotFound { .. }
                | corridor_store::StoreError::Deleted { .. },
            ) => {
                return Err(ApiError::NotFound(
                    Issue::new(
                        "not-found",
                        format!("{organization} is not registered here"),
                    )
                    .at("organization"),
                ));
            }
            Err(err) => return Err(err.into()),
        }
        let jwks = client_keys(&req.jwks)?;
        let scopes = Scopes::parse(&req.scopes).map_err(|e| invalid("scopes", e.to_string()))?;
        if scopes.is_empty() {
            return Err(invalid(
                "scopes",
                "give at least one scope, e.g. system/Patient.rs",
            ));
        }
        let client = Client {
            client_id: client_id.to_owned(),
            organization: organization.to_owned(),
            jwks: serde_json::to_string(&jwks).unwrap_or_default(),
            scopes: scopes.to_string(),
            registered_at: String::new(),
            registered_by: format!("{} (operator client {operator})", req.registered_by.trim()),
            require_certificate: req.require_certificate,
        };
        self.store.register_client(&client).await?;
        tracing::info!(client = %client.client_id, organization = %client.organization, scopes = %client.scopes, "client registered");
        Ok(pb::RegisterClientResponse {
            client_id: client.client_id,
            scopes: client.scopes,
            require_certificate: client.require_certificate,
        })
    }

    /// Answer a token request that came on a connection which proved
    /// `peer` (see `corridor_runtime::tls`).
    pub async fn token(
        &self,
        req: pb::TokenRequest,
        peer: &Peer,
    ) -> Result<pb::TokenResponse, ApiError> {
        if req.grant_type != "client_credentials" {
            return Err(invalid(
                "grant_type",
                format!(
                    "grant_type must be client_credentials, not '{}'",
                    req.grant_type
                ),
            ));
        }
        if req.client_assertion_type != JWT_BEARER {
            return Err(invalid(
                "client_assertion_type",
                format!("client_assertion_type must be {JWT_BEARER}"),
            ));
        }
        let client_id = tokens::assertion_client(&req.client_assertion).map_err(|e| refused(&e))?;
        let Some(client) = self.store.client(&client_id).await? else {
            return Err(ApiError::Unauthenticated(
                Issue::new(
                    "login",
                    format!("no client '{client_id}' is registered here"),
                )
                .at("client_assertion"),
            ));
        };
        let keys = client_keys(&client.jwks)?;
        let assertion = tokens::check_assertion(
            &req.client_assertion,
            &client_id,
            &keys,
            &self.settings.token_url,
        )
        .map_err(|e| refused(&e))?;
        let now = now_secs();
        let first = self
            .store
            .first_use_of_assertion(
                &client_id,
                &assertion.jti,
                i64::try_from(assertion.exp).unwrap_or(i64::MAX),
                i64::try_from(now).unwrap_or(i64::MAX),
            )
            .await?;
        if !first {
            return Err(refused(&AuthError::Replayed));
        }
        let cnf = if client.require_certificate {
            let Peer::Client { thumbprint } = peer else {
                return Err(ApiError::Unauthenticated(
                    Issue::new(
                        "login",
                        format!(
                            "client '{client_id}' is registered to require mutual TLS: ask for its token \
                             over gRPC (IdentityService/Token) on a TLS connection that presents its \
                             client certificate; the REST /token endpoint cannot carry one"
                        ),
                    )
                    .at("client_assertion"),
                ));
            };
            Some(corridor_auth::Confirmation {
                x5t_s256: thumbprint.clone(),
            })
        } else {
            None
        };
        let granted = Scopes::parse(&client.scopes).map_err(|e| invalid("scope", e.to_string()))?;
        let scopes = if req.scope.trim().is_empty() {
            granted
        } else {
            Scopes::parse(&req.scope)
                .map_err(|e| invalid("scope", e.to_string()))?
                .within(&granted)
        };
        if scopes.is_empty() {
            return Err(ApiError::Forbidden(
                Issue::new(
                    "forbidden",
                    format!(
                        "none of the scopes asked for are granted to '{client_id}'; it may have: {}",
                        client.scopes
                    ),
                )
                .at("scope"),
            ));
        }
        let lifetime = self.settings.lifetime.as_secs();
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: client_id.clone(),
            aud: self.settings.issuer.clone(),
            exp: now + lifetime,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            organization: client.organization.clone(),
            jurisdiction: self.settings.jurisdiction.clone(),
            scope: scopes.to_string(),
            admin: false,
            cnf,
        };
        let access_token = tokens::issue(&self.settings.keys, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            ApiError::Unavailable(Issue::new("exception", "the token could not be signed"))
        })?;
        tracing::info!(client = %client_id, scope = %claims.scope, "token issued");
        Ok(pb::TokenResponse {
            access_token,
            token_type: "bearer".to_owned(),
            expires_in: i64::try_from(lifetime).unwrap_or(i64::MAX),
            scope: claims.scope,
        })
    }
}

impl Tokens {
    /// Audit a token request of `client` (as its assertion names it):
    /// issued or refused. A request that cannot be audited is refused.
    pub async fn audit_issue(
        &self,
        client: &str,
        result: &Result<pb::TokenResponse, ApiError>,
    ) -> Result<(), ApiError> {
        let organization = match self.store.client(client).await {
            Ok(Some(registered)) => registered.organization,
            _ => String::new(),
        };
        let mut record = corridor_runtime::audit::Record::new("E", "$token").ended(result);
        if let Ok(token) = result {
            record.query = Some(format!("scope={}", token.scope));
        }
        let event = corridor_runtime::audit::event_of(
            &corridor_runtime::audit::Agent {
                organization: &organization,
                client_id: if client.is_empty() { "unknown" } else { client },
                jurisdiction: &self.settings.jurisdiction,
                break_glass: None,
            },
            &record,
            "identity",
        );
        match self.store.create(&event, None, None).await {
            Ok(_) => Ok(()),
            Err(err) => Err(corridor_runtime::audit::unaudited(&err.into())),
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A client's JWKS: public EC P-384 or RSA keys only.
fn client_keys(json: &str) -> Result<jsonwebtoken::jwk::JwkSet, ApiError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| invalid("jwks", format!("jwks is not JSON: {e}")))?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            invalid(
                "jwks",
                "jwks must be {\"keys\": [...]} with at least one key",
            )
        })?;
    for (n, key) in keys.iter().enumerate() {
        if key.get("d").is_some() {
            return Err(invalid(
                "jwks",
                format!("key {n} holds private key material (\"d\"); register the public key only"),
            ));
        }
        match (
            key.get("kty").and_then(serde_json::Value::as_str),
            key.get("crv").and_then(serde_json::Value::as_str),
        ) {
            (Some("EC"), Some("P-384")) | (Some("RSA"), _) => {}
            _ => {
                return Err(invalid(
                    "jwks",
                    format!("key {n} must be an EC P-384 (ES384) or RSA (RS384) public key"),
                ));
            }
        }
    }
    serde_json::from_value(value)
        .map_err(|e| invalid("jwks", format!("jwks is not a JWK set: {e}")))
}
