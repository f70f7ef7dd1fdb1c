//! Calls from one service to another: a lazily connected channel, and each
//! call made with a deadline, the current trace context and the caller's
//! access token (every such call is made on a caller's behalf), its failures
//! sorted into "the other service has no such thing" and "it could not be
//! asked" (UNAVAILABLE, so that the caller's request fails cleanly).

use std::future::Future;
use std::time::Duration;

use corridor_fhir::Issue;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::ApiError;
use crate::tls::Tls;

/// A channel to the service at `url` that connects on first use, so that a
/// service starts even while the ones it asks are down. With `tls` (the
/// calling service's), the call goes over mutual TLS: `url` must be
/// `https://`, the other service must show a certificate of the node CA,
/// and the caller shows its own.
pub fn channel(
    url: &str,
    deadline: Duration,
    tls: Option<&Tls>,
) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(deadline)
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.client())?;
    }
    Ok(endpoint.connect_lazy())
}

/// Send `message` with `send` (a generated client's method) within
/// `deadline`. `Ok(None)` means the other service answered that it has no
/// such thing (NOT_FOUND or INVALID_ARGUMENT); a timeout or any other
/// failure is UNAVAILABLE, naming `service` and `what` was asked.
pub async fn call<M, R, F, Fut>(
    service: &str,
    what: &str,
    deadline: Duration,
    message: M,
    send: F,
) -> Result<Option<R>, ApiError>
where
    F: FnOnce(tonic::Request<M>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let request = outgoing(message, deadline);
    let late = || format!("no answer within {} ms", deadline.as_millis());
    match tokio::time::timeout(deadline, send(request)).await {
        Err(_) => Err(unreachable(service, what, &late())),
        Ok(Ok(response)) => Ok(Some(response.into_inner())),
        Ok(Err(status)) => match status.code() {
            Code::NotFound | Code::InvalidArgument => Ok(None),
            // The caller may not see it there: say so, as that service said.
            Code::PermissionDenied => Err(ApiError::Forbidden(Issue::new(
                "forbidden",
                format!("the {service} service refused {what}: {}", status.message()),
            ))),
            Code::DeadlineExceeded => Err(unreachable(service, what, &late())),
            code => {
                tracing::warn!(service, ?code, message = status.message(), "call failed");
                Err(unreachable(service, what, &format!("it answered {code:?}")))
            }
        },
    }
}

/// Like [`call`], for a node service acting on its own (no caller to act
/// for), which needs to know why the other service said no: every refusal
/// keeps its kind and the other service's words.
pub async fn ask<M, R, F, Fut>(
    service: &str,
    what: &str,
    deadline: Duration,
    message: M,
    send: F,
) -> Result<R, ApiError>
where
    F: FnOnce(tonic::Request<M>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let request = outgoing(message, deadline);
    let late = || format!("no answer within {} ms", deadline.as_millis());
    let said = |status: &tonic::Status| {
        format!("the {service} service refused {what}: {}", status.message())
    };
    match tokio::time::timeout(deadline, send(request)).await {
        Err(_) => Err(unreachable(service, what, &late())),
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(match status.code() {
            Code::InvalidArgument | Code::AlreadyExists => {
                ApiError::Invalid(Issue::new("invalid", said(&status)))
            }
            Code::NotFound => ApiError::NotFound(Issue::new("not-found", said(&status))),
            Code::PermissionDenied | Code::Unauthenticated => {
                ApiError::Forbidden(Issue::new("forbidden", said(&status)))
            }
            Code::FailedPrecondition => {
                ApiError::Conflict(Issue::new("business-rule", said(&status)))
            }
            Code::DeadlineExceeded => unreachable(service, what, &late()),
            code => unreachable(
                service,
                what,
                &format!("it answered {code:?}: {}", status.message()),
            ),
        }),
    }
}

/// `message` as a call made for the current caller: with `deadline`, the
/// trace context, and the caller's access token, so that the other service
/// decides with the caller's own rights. A node service acting on its own
/// has no token: its certificate speaks for it, and it says so in
/// [`crate::auth::ACTING_SERVICE`]. An emergency read stays one, and is
/// audited as one, everywhere.
fn outgoing<M>(message: M, deadline: Duration) -> tonic::Request<M> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    crate::telemetry::inject_current(request.metadata_mut());
    let Ok(caller) = crate::auth::current() else {
        return request;
    };
    let metadata = request.metadata_mut();
    match caller.acting_service() {
        Some(service) => {
            if let Ok(value) = service.parse() {
                metadata.insert(crate::auth::ACTING_SERVICE, value);
            }
        }
        None => {
            if let Ok(value) = format!("Bearer {}", caller.token()).parse() {
                metadata.insert(crate::auth::AUTHORIZATION, value);
            }
        }
    }
    if let Some(reason) = caller.break_glass.as_deref()
        && let Ok(value) = reason.parse()
    {
        metadata.insert(crate::auth::BREAK_GLASS, value);
    }
    request
}

/// The error of a request that needed `service` and could not ask it.
pub fn unreachable(service: &str, what: &str, why: &str) -> ApiError {
    ApiError::Unavailable(Issue::new(
        "transient",
        format!(
            "the {service} service could not be asked {what} ({why}); nothing was written; retry later"
        ),
    ))
}
