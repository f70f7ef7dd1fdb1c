//! The token endpoint over HTTP, as SMART Backend Services clients call
//! it: `POST /fhir/token` with a form-encoded client-credentials grant and
//! a signed client assertion, answered by the identity service's `Token`.
//! Discovery is at `/fhir/.well-known/smart-configuration`, the node's keys
//! at `/fhir/.well-known/jwks.json`. Errors here are OAuth's JSON errors
//! (RFC 6749 §5.2), not OperationOutcomes, because that is what OAuth
//! clients read. The services do not require the tokens yet (issue 7).

use http::{StatusCode, header};
use serde_json::json;
use tonic::Code;

use crate::reply::{HttpError, Reply};
use crate::rest::{Call, Gateway, query_pairs};

/// `POST /fhir/token`.
pub async fn token(gateway: &Gateway, call: &Call) -> Result<Reply, HttpError> {
    match call.header("content-type") {
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {}
        _ => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send the grant as application/x-www-form-urlencoded",
            ));
        }
    }
    let form = query_pairs(&String::from_utf8_lossy(&call.body));
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    use corridor_proto::identity::v1 as pb;
    let message = pb::TokenRequest {
        grant_type: field("grant_type"),
        client_assertion_type: field("client_assertion_type"),
        client_assertion: field("client_assertion"),
        scope: field("scope"),
    };
    let answer = gateway
        .backends
        .identity()
        .token(gateway.backends.request(message, &call.context))
        .await;
    match answer {
        Ok(response) => {
            let token = response.into_inner();
            Ok(Reply::json(
                StatusCode::OK,
                json!({
                    "access_token": token.access_token,
                    "token_type": token.token_type,
                    "expires_in": token.expires_in,
                    "scope": token.scope,
                }),
            )
            .header(header::CACHE_CONTROL, "no-store".to_owned())
            .header(header::PRAGMA, "no-cache".to_owned()))
        }
        Err(status) => {
            let at = corridor_runtime::outcome::outcome_of(&status)
                .and_then(|o| {
                    o.pointer("/issue/0/expression/0")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let (code, error) = match (status.code(), at.as_str()) {
                (Code::Unauthenticated, _) => (StatusCode::UNAUTHORIZED, "invalid_client"),
                (Code::InvalidArgument, "grant_type") => {
                    (StatusCode::BAD_REQUEST, "unsupported_grant_type")
                }
                (Code::InvalidArgument | Code::PermissionDenied, "scope") => {
                    (StatusCode::BAD_REQUEST, "invalid_scope")
                }
                (Code::InvalidArgument, _) => (StatusCode::BAD_REQUEST, "invalid_request"),
                _ => return Err(HttpError::from_status(&status, "identity")),
            };
            Ok(oauth_error(code, error, status.message()))
        }
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": error, "error_description": description}),
    )
    .header(header::CACHE_CONTROL, "no-store".to_owned())
}

/// `GET /fhir/.well-known/smart-configuration`.
pub fn smart_configuration(call: &Call) -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({
            "issuer": call.base,
            "jwks_uri": call.absolute(".well-known/jwks.json"),
            "token_endpoint": call.absolute("token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
            "scopes_supported": ["system/*.cruds", "system/*.rs"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        }),
    )
}

/// `GET /fhir/.well-known/jwks.json`: the node's public signing keys.
pub async fn jwks(gateway: &Gateway, call: &Call) -> Result<Reply, HttpError> {
    use corridor_proto::identity::v1 as pb;
    let jwks = gateway
        .backends
        .identity()
        .jwks(gateway.backends.request(pb::JwksRequest {}, &call.context))
        .await
        .map_err(|s| HttpError::from_status(&s, "identity"))?
        .into_inner()
        .jwks;
    let body = serde_json::from_str(&jwks).map_err(|_| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            "exception",
            "the identity service answered keys that are not JSON",
        )
    })?;
    Ok(Reply::json(StatusCode::OK, body))
}
