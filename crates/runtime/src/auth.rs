//! Who is calling, proved on every call.
//!
//! Every gRPC call to a Corridor service carries `authorization: Bearer
//! <access token>`, a token the node's identity service issued (see
//! `corridor-auth`). The server harness verifies it before any handler
//! runs ([`AuthLayer`]): signature against the node's published keys,
//! issuer, audience and expiry. A call without a valid token is refused
//! with UNAUTHENTICATED and never reaches the service.
//!
//! The verified [`Caller`] is then the request's context for as long as
//! its handler runs: [`current`] says who it is, [`require`] checks that
//! its scopes cover an interaction (PERMISSION_DENIED otherwise), and calls
//! the service makes to others on the caller's behalf carry the same token
//! ([`crate::link`]), so that each service decides with the caller's own
//! rights. A few methods are public by nature (health, reflection, and
//! identity's token endpoint and keys); the service names them.
//!
//! Keys come from a [`KeySource`]: identity reads its own, the other
//! services ask identity for its JWKS through their `IdentityLink`. An unknown `kid` makes the source
//! be asked again, so a key rotation needs no restart.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use corridor_auth::tokens::{AccessClaims, AuthError, LEEWAY, Verifier};
use corridor_auth::{Interaction, Scopes};
use corridor_fhir::Issue;

use crate::ApiError;
use crate::tls::{Peer, Tls};

/// The metadata key of the access token.
pub const AUTHORIZATION: &str = "authorization";
/// Metadata by which a node service acts on its own, with no token: it
/// names the acting service, and the connection must show a node service's
/// certificate (that service's, or another's that relays its call; see
/// [`Caller::service`]). Only the node's own background work sends it; the
/// REST gateway never passes it on, so that a request without a token
/// through the gateway (whose certificate is a service's) stays
/// unauthenticated.
pub const ACTING_SERVICE: &str = "corridor-acting-service";
/// The metadata key of an emergency read's stated reason.
pub const BREAK_GLASS: &str = "break-glass";

/// How long after fetching keys an unknown `kid` may make the source be
/// asked again: a rotation is seen within this time, and a flood of
/// made-up kids costs at most one fetch per interval.
const REFETCH_AFTER: Duration = Duration::from_secs(5);
/// Verified tokens remembered, so that a client's token (reused for its
/// whole lifetime) costs one signature check, not one per call.
const VERIFIED_CACHE: usize = 10_000;

/// The verified caller of the request being handled.
#[derive(Clone)]
pub struct Caller {
    /// The client id (the token's `sub`).
    pub client_id: String,
    /// `Organization/<id>` the client acts for.
    pub organization: String,
    /// ISO 3166 code of the jurisdiction whose node issued the token.
    pub jurisdiction: String,
    pub scopes: Scopes,
    /// A node operator's token: it may also register clients.
    pub admin: bool,
    /// The reason of an emergency ("break-glass") read, when the call
    /// states one (metadata `break-glass`).
    pub break_glass: Option<String>,
    /// What the call's connection proved (see [`crate::tls`]).
    pub peer: Peer,
    /// Whether the service runs mutual TLS, so that [`Caller::peer`] is
    /// known; without it no call can prove it comes from a node service.
    pub mtls: bool,
    /// The thumbprint of the client certificate the token is bound to.
    bound_to: Option<String>,
    token: String,
    /// The node service acting on its own behalf, if that is the caller.
    acting: Option<String>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("client_id", &self.client_id)
            .field("organization", &self.organization)
            .field("scopes", &self.scopes.to_string())
            .field("admin", &self.admin)
            .field("break_glass", &self.break_glass)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Caller {
    fn from_claims(claims: AccessClaims, token: &str) -> Result<Self, ApiError> {
        let scopes = Scopes::parse(&claims.scope)
            .map_err(|e| unauthenticated(format!("the token's scope is not readable: {e}")))?;
        Ok(Self {
            client_id: claims.sub,
            organization: claims.organization,
            jurisdiction: claims.jurisdiction,
            scopes,
            admin: claims.admin,
            break_glass: None,
            peer: Peer::Anonymous,
            mtls: false,
            bound_to: claims.cnf.map(|cnf| cnf.x5t_s256),
            token: token.to_owned(),
            acting: None,
        })
    }

    /// A node service acting on its own behalf (`service`, e.g. the
    /// referrals service's federation worker, which acts for a peer node,
    /// not for a client). Over the wire it is a call without a token that
    /// names the service in [`ACTING_SERVICE`] metadata, from a connection
    /// whose certificate is a node service's (`peer`): the service itself,
    /// or another that relays its call, as node services relay each other's
    /// callers. Such a caller works for no organization and may do what an
    /// operator may; the audit trail names it `service:<service>`.
    pub fn service(service: &str, peer: Peer) -> Self {
        Self {
            client_id: format!("service:{service}"),
            organization: String::new(),
            jurisdiction: String::new(),
            scopes: Scopes::parse("system/*.cruds").unwrap_or_default(),
            admin: true,
            break_glass: None,
            peer,
            mtls: true,
            bound_to: None,
            token: String::new(),
            acting: Some(service.to_owned()),
        }
    }

    /// The service a node service acting on its own behalf
    /// ([`Caller::service`]) acts as; it has no token to pass on.
    pub fn acting_service(&self) -> Option<&str> {
        self.acting.as_deref()
    }

    /// The access token, to send on calls made on the caller's behalf.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Refuse unless some scope covers `interaction` on `resource_type`.
    pub fn require(&self, resource_type: &str, interaction: Interaction) -> Result<(), ApiError> {
        if self.scopes.allows(resource_type, interaction) {
            return Ok(());
        }
        Err(ApiError::Forbidden(
            Issue::new(
                "forbidden",
                format!(
                    "this needs scope system/{resource_type}.{} (or system/*.{}); the token of '{}' grants: {}",
                    interaction.letter(),
                    interaction.letter(),
                    self.client_id,
                    if self.scopes.is_empty() {
                        "nothing".to_owned()
                    } else {
                        self.scopes.to_string()
                    }
                ),
            )
            .at(AUTHORIZATION),
        ))
    }
}

tokio::task_local! {
    static CALLER: Arc<Caller>;
}

/// The caller of the request being handled. Outside a verified request
/// (which [`AuthLayer`] makes impossible in a running service) this is
/// UNAUTHENTICATED, so that nothing is ever served to nobody.
pub fn current() -> Result<Arc<Caller>, ApiError> {
    CALLER
        .try_with(Arc::clone)
        .map_err(|_| unauthenticated(missing_token()))
}

/// The caller, refused unless its scopes cover `interaction` on
/// `resource_type`.
pub fn require(resource_type: &str, interaction: Interaction) -> Result<Arc<Caller>, ApiError> {
    let caller = current()?;
    caller.require(resource_type, interaction)?;
    Ok(caller)
}

/// The caller, refused unless it holds a node operator's token (minted
/// with the node's key by `corridor token --admin`).
pub fn require_admin(what: &str) -> Result<Arc<Caller>, ApiError> {
    let caller = current()?;
    if caller.admin {
        return Ok(caller);
    }
    Err(ApiError::Forbidden(
        Issue::new(
            "forbidden",
            format!(
                "only a node operator may {what}; '{}' holds a partner's token. Use a token from `corridor token --admin` on the node",
                caller.client_id
            ),
        )
        .at(AUTHORIZATION),
    ))
}

/// The node services the caller's connection proves it is, refused unless
/// it is one: for the methods only the node's own services call (`what`).
/// On a node without mutual TLS no caller can prove it, and the call is
/// let through as `None`: such a node trusts every token holder with
/// these methods (development; see the README's security section).
pub fn require_service(what: &str) -> Result<Option<Vec<String>>, ApiError> {
    let caller = current()?;
    if !caller.mtls {
        return Ok(None);
    }
    match &caller.peer {
        Peer::Service(names) => Ok(Some(names.clone())),
        _ => Err(ApiError::Forbidden(
            Issue::new(
                "forbidden",
                format!(
                    "only the node's own services may {what}: over mutual TLS with a certificate \
                     the node CA issued for a service; '{}' did not present one",
                    caller.client_id
                ),
            )
            .at(AUTHORIZATION),
        )),
    }
}

/// The node services a call's connection proves it comes from, for a
/// public method that only services may call (`what`), which has no
/// caller to ask: refused unless the connection shows a service's
/// certificate. Without TLS (`tls` None) nobody can prove it, and the call
/// is let through as `None`, as [`require_service`] does.
pub fn require_service_peer(
    tls: Option<&Tls>,
    extensions: &http::Extensions,
    what: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    match tls.peer(extensions) {
        Peer::Service(names) => Ok(Some(names)),
        _ => Err(ApiError::Forbidden(Issue::new(
            "forbidden",
            format!(
                "only the node's own services may {what}: over mutual TLS with a certificate \
                 the node CA issued for a service"
            ),
        ))),
    }
}

/// Run `future` as `caller`: what [`AuthLayer`] does for every call, and
/// what a test of code below the harness does.
pub async fn acting_as<F: Future>(caller: Arc<Caller>, future: F) -> F::Output {
    CALLER.scope(caller, future).await
}

fn unauthenticated(text: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated(Issue::new("login", text).at(AUTHORIZATION))
}

fn missing_token() -> String {
    "send an access token: metadata 'authorization: Bearer <token>'. Get one from the token \
     endpoint (gRPC corridor.identity.v1.IdentityService/Token, or POST /fhir/token); on a \
     development node, `corridor token` prints one"
        .to_owned()
}

/// What a node publishes about its tokens.
#[derive(Debug, Clone)]
pub struct Published {
    /// The JWKS, as JSON.
    pub jwks: String,
    /// The issuer, which is also the audience.
    pub issuer: String,
}

/// A future returned by a [`KeySource`].
pub type Fetching<'a> = Pin<Box<dyn Future<Output = Result<Published, ApiError>> + Send + 'a>>;

/// Where a service gets the keys that tokens are verified against.
pub trait KeySource: Send + Sync + fmt::Debug {
    fn fetch(&self) -> Fetching<'_>;
}

/// The keys a service holds itself (identity, which signs).
#[derive(Debug, Clone)]
pub struct OwnKeys(pub Published);

impl KeySource for OwnKeys {
    fn fetch(&self) -> Fetching<'_> {
        let published = self.0.clone();
        Box::pin(async move { Ok(published) })
    }
}

/// Verifies access tokens against a [`KeySource`], fetching its keys when
/// first needed and again when a token names a key it does not know.
pub struct Authenticator {
    source: Arc<dyn KeySource>,
    keys: tokio::sync::Mutex<Option<(Verifier, Instant)>>,
    /// Verified tokens: their expiry (`exp`) and caller.
    verified: Mutex<HashMap<String, (u64, Arc<Caller>)>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            keys: tokio::sync::Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The caller `token` proves, or UNAUTHENTICATED naming what is wrong
    /// (UNAVAILABLE when the keys cannot be had).
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Caller>, ApiError> {
        let now = now_secs();
        if let Some(caller) = self.remembered(token, now) {
            return Ok(caller);
        }
        let claims = self.verify(token).await?;
        let exp = claims.exp;
        let caller = Arc::new(Caller::from_claims(claims, token)?);
        self.remember(token, &caller, exp, now);
        Ok(caller)
    }

    fn remembered(&self, token: &str, now: u64) -> Option<Arc<Caller>> {
        let verified = lock(&self.verified);
        let (exp, caller) = verified.get(token)?;
        (exp.saturating_add(LEEWAY.as_secs()) > now).then(|| Arc::clone(caller))
    }

    fn remember(&self, token: &str, caller: &Arc<Caller>, exp: u64, now: u64) {
        let mut verified = lock(&self.verified);
        if verified.len() >= VERIFIED_CACHE {
            verified.retain(|_, (e, _)| *e > now);
            if verified.len() >= VERIFIED_CACHE {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), (exp, Arc::clone(caller)));
    }

    /// Fetch the keys now if none are held yet, retrying (every second, at
    /// most `attempts` times) while the source cannot answer: a service
    /// started beside identity has the keys before its first call, and keeps
    /// them if identity is down later.
    pub async fn warm(&self, attempts: usize) {
        for attempt in 1..=attempts {
            {
                let mut keys = self.keys.lock().await;
                if keys.is_some() {
                    return;
                }
                match self.load().await {
                    Ok(loaded) => {
                        *keys = Some(loaded);
                        return;
                    }
                    Err(err) if attempt == attempts => {
                        tracing::warn!(error = %err, "no token signing keys yet; fetching them on the first call");
                    }
                    Err(_) => {}
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let mut keys = self.keys.lock().await;
        if keys.is_none() {
            *keys = Some(self.load().await?);
        }
        let Some((verifier, fetched)) = keys.as_ref() else {
            return Err(unauthenticated("no keys to verify the token against"));
        };
        match verifier.verify(token) {
            Err(AuthError::UnknownKey(kid)) if fetched.elapsed() >= REFETCH_AFTER => {
                tracing::info!(%kid, "token names an unknown key; fetching the node's keys again");
                let reloaded = self.load().await?;
                let result = reloaded.0.verify(token);
                *keys = Some(reloaded);
                result.map_err(|e| refused(&e))
            }
            result => result.map_err(|e| refused(&e)),
        }
    }

    async fn load(&self) -> Result<(Verifier, Instant), ApiError> {
        let published = self.source.fetch().await?;
        let verifier = Verifier::for_node(&published.jwks, &published.issuer).map_err(|e| {
            ApiError::Unavailable(Issue::new(
                "exception",
                format!("the node's signing keys are unreadable: {e}"),
            ))
        })?;
        Ok((verifier, Instant::now()))
    }
}

fn refused(err: &AuthError) -> ApiError {
    unauthenticated(format!("the access token is refused: {err}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The bearer token of a call, or why there is none.
fn bearer(headers: &http::HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauthenticated(missing_token()))?
        .to_str()
        .map_err(|_| unauthenticated("the authorization metadata is not readable text"))?
        .trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthenticated(
            "the authorization metadata must be 'Bearer <access token>'",
        ));
    }
    Ok(token.trim())
}

/// A call refused for its token (UNAUTHENTICATED), to be audited.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// `/package.Service/Method`.
    pub method: String,
    /// Why it was refused.
    pub reason: String,
    /// The client the token claimed to be for (`sub`), unverified.
    pub claimed_client: Option<String>,
}

/// A future returned by [`Refusals::record`].
pub type Reporting<'a> = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>>;

/// Where a service records the calls it refuses for their token, so that
/// denied attempts leave an AuditEvent too: identity writes its own, the
/// others send theirs to identity (`RecordRefusal`).
pub trait Refusals: Send + Sync + fmt::Debug {
    fn record(&self, refusal: Refusal) -> Reporting<'_>;
}

/// Refusals recorded per second at most; beyond, they are counted in the
/// log, so that a flood of bad calls cannot flood the audit trail.
const REFUSALS_PER_SECOND: u32 = 20;

/// Reports refusals to a [`Refusals`] in the background, rate-limited.
#[derive(Debug, Clone)]
pub struct RefusalAudit {
    sink: Arc<dyn Refusals>,
    /// (start of the current second, refusals recorded in it, dropped).
    window: Arc<Mutex<(Instant, u32, u64)>>,
}

impl RefusalAudit {
    pub fn new(sink: Arc<dyn Refusals>) -> Self {
        Self {
            sink,
            window: Arc::new(Mutex::new((Instant::now(), 0, 0))),
        }
    }

    /// Record `refusal` without holding up the answer: the call is refused
    /// whether or not its record is written.
    fn report(&self, refusal: Refusal) {
        {
            let mut window = lock(&self.window);
            if window.0.elapsed() >= Duration::from_secs(1) {
                if window.2 > 0 {
                    tracing::warn!(
                        dropped = window.2,
                        "refused calls not audited: more than {REFUSALS_PER_SECOND} a second"
                    );
                }
                *window = (Instant::now(), 0, 0);
            }
            if window.1 >= REFUSALS_PER_SECOND {
                window.2 += 1;
                return;
            }
            window.1 += 1;
        }
        let sink = Arc::clone(&self.sink);
        tokio::spawn(async move {
            let method = refusal.method.clone();
            if let Err(err) = sink.record(refusal).await {
                tracing::warn!(%method, error = %err, "a refused call could not be audited");
            }
        });
    }
}

/// How a service authenticates its calls: the verifier, and the full
/// method paths (`/package.Service/Method`) or service prefixes (ending in
/// `/`) that anyone may call.
#[derive(Debug, Clone)]
pub struct Auth {
    pub authenticator: Arc<Authenticator>,
    pub public: &'static [&'static str],
    /// Where calls refused for their token are audited, if anywhere.
    pub refusals: Option<RefusalAudit>,
    /// The service's mutual TLS, when it runs one: the server is set up
    /// with it, and each call's [`Peer`] is read from its connection.
    pub tls: Option<Tls>,
}

/// The services every Corridor server adds, which anyone may call.
const ALWAYS_PUBLIC: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

impl Auth {
    /// A service other than identity: tokens verified against the keys
    /// identity publishes, asked through the service's `identity` link; no
    /// public methods of its own.
    pub fn from_identity(identity: crate::identity::IdentityLink) -> Self {
        Self {
            authenticator: Arc::new(Authenticator::new(Arc::new(identity))),
            public: &[],
            tls: None,
            refusals: None,
        }
    }

    /// The same, with calls refused for their token audited in `sink`.
    #[must_use]
    pub fn with_refusals(self, sink: Arc<dyn Refusals>) -> Self {
        Self {
            refusals: Some(RefusalAudit::new(sink)),
            ..self
        }
    }

    /// The same, served over `tls` when it is given.
    #[must_use]
    pub fn with_tls(self, tls: Option<Tls>) -> Self {
        Self { tls, ..self }
    }

    /// Audit a call to `method` refused for its token (`token`, if it sent
    /// one); a refusal that is not about the token (the keys could not be
    /// had) is not a denied attempt and is only logged.
    fn audit_refusal(&self, method: &str, token: Option<&str>, err: &ApiError) {
        let (Some(refusals), ApiError::Unauthenticated(issue)) = (&self.refusals, err) else {
            return;
        };
        refusals.report(Refusal {
            method: method.to_owned(),
            reason: issue.diagnostics.clone(),
            claimed_client: token.and_then(corridor_auth::tokens::claimed_subject),
        });
    }

    /// The caller a verified token names, with what the connection
    /// proved; a certificate-bound token (RFC 8705) is refused unless the
    /// connection presented that certificate, or a node service relays it
    /// (which checked it at its own edge).
    fn on_connection(
        &self,
        caller: Arc<Caller>,
        extensions: &http::Extensions,
    ) -> Result<Arc<Caller>, ApiError> {
        let Some(tls) = &self.tls else {
            if caller.bound_to.is_some() {
                return Err(unauthenticated(
                    "the token is bound to a client certificate, and this service does not run mutual TLS to see one",
                ));
            }
            return Ok(caller);
        };
        let peer = tls.peer(extensions);
        if let Some(bound) = &caller.bound_to {
            let holds = match &peer {
                Peer::Client { thumbprint } => thumbprint == bound,
                Peer::Service(_) => true,
                Peer::Anonymous => false,
            };
            if !holds {
                return Err(unauthenticated(format!(
                    "the token of '{}' is bound to its client certificate (x5t#S256 {bound}); call over mutual TLS with that certificate",
                    caller.client_id
                )));
            }
        }
        Ok(Arc::new(Caller {
            peer,
            mtls: true,
            ..(*caller).clone()
        }))
    }

    /// The node service a call says it acts as ([`ACTING_SERVICE`]), and
    /// the connection's peer, if that is a node service (mutual TLS, a
    /// certificate of the node CA naming services): the service itself or
    /// one relaying its call. None otherwise.
    fn acting_service<B>(&self, request: &http::Request<B>) -> Option<(String, Peer)> {
        let claimed = request.headers().get(ACTING_SERVICE)?.to_str().ok()?.trim();
        let valid = (1..=32).contains(&claimed.len())
            && claimed.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
        let peer = self.tls.as_ref()?.peer(request.extensions());
        match &peer {
            Peer::Service(_) if valid => Some((claimed.to_owned(), peer)),
            _ => None,
        }
    }

    fn is_public(&self, path: &str) -> bool {
        ALWAYS_PUBLIC.iter().chain(self.public).any(|p| {
            if p.ends_with('/') {
                path.starts_with(p)
            } else {
                path == *p
            }
        })
    }
}

/// The tower layer that authenticates every call before it reaches a
/// service (see the module docs).
#[derive(Debug, Clone)]
pub struct AuthLayer(pub Auth);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            auth: self.0.clone(),
        }
    }
}

/// A service whose calls are authenticated; see [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Auth,
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if self.auth.is_public(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let auth = self.auth.clone();
        Box::pin(async move {
            let token = match bearer(request.headers()) {
                Ok(token) => token.to_owned(),
                Err(_)
                    if request.headers().get(AUTHORIZATION).is_none()
                        && let Some((name, peer)) = auth.acting_service(&request) =>
                {
                    // A node service acting on its own, proven by its
                    // certificate rather than a token.
                    let caller = Arc::new(Caller::service(&name, peer));
                    tracing::Span::current().record("enduser.id", caller.client_id.as_str());
                    return CALLER.scope(caller, inner.call(request)).await;
                }
                Err(err) => {
                    auth.audit_refusal(request.uri().path(), None, &err);
                    return Ok(refusal(request.uri().path(), err));
                }
            };
            let verified = match auth.authenticator.authenticate(&token).await {
                Ok(caller) => auth.on_connection(caller, request.extensions()),
                Err(err) => Err(err),
            };
            if let Err(err) = &verified {
                auth.audit_refusal(request.uri().path(), Some(&token), err);
            }
            match verified {
                Ok(caller) => {
                    let caller = match break_glass(request.headers()) {
                        Ok(None) => caller,
                        Ok(Some(reason)) => Arc::new(Caller {
                            break_glass: Some(reason),
                            ..(*caller).clone()
                        }),
                        Err(err) => return Ok(refusal(request.uri().path(), err)),
                    };
                    tracing::Span::current().record("enduser.id", caller.client_id.as_str());
                    CALLER.scope(caller, inner.call(request)).await
                }
                Err(err) => Ok(refusal(request.uri().path(), err)),
            }
        })
    }
}

/// The stated reason of an emergency read, if the call makes one; an empty
/// or unreadable reason is refused, never taken as none.
fn break_glass(headers: &http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(BREAK_GLASS) else {
        return Ok(None);
    };
    let reason = value.to_str().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(ApiError::Invalid(
            Issue::new(
                "required",
                "an emergency read must state its reason: metadata 'break-glass: <reason>' (REST: X-Break-Glass), in ASCII",
            )
            .at(BREAK_GLASS),
        ));
    }
    Ok(Some(reason.to_owned()))
}

fn refusal(path: &str, err: ApiError) -> http::Response<tonic::body::Body> {
    tracing::info!(method = path, error = %err, "call refused");
    tonic::Status::from(err).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_auth::NodeKeys;
    use corridor_auth::tokens::issue;

    const ISSUER: &str = "http://node.test/fhir";

    fn claims(scope: &str, exp_in: i64) -> AccessClaims {
        let now = now_secs();
        AccessClaims {
            iss: ISSUER.to_owned(),
            sub: "clinic-ehr".to_owned(),
            aud: ISSUER.to_owned(),
            exp: now.saturating_add_signed(exp_in),
            iat: now,
            jti: uuid_like(),
            organization: "Organization/clinic".to_owned(),
            jurisdiction: "DE".to_owned(),
            scope: scope.to_owned(),
            admin: false,
            cnf: None,
        }
    }

    fn uuid_like() -> String {
        format!("{:?}", Instant::now())
    }

    fn authenticator(keys: &NodeKeys) -> Authenticator {
        Authenticator::new(Arc::new(OwnKeys(Published {
            jwks: serde_json::to_string(&keys.jwks()).unwrap(),
            issuer: ISSUER.to_owned(),
        })))
    }

    #[tokio::test]
    async fn a_verified_token_names_the_caller_and_its_scopes_gate_interactions() {
        let keys = NodeKeys::generate().unwrap();
        let token = issue(&keys, &claims("system/Patient.rs", 300)).unwrap();
        let caller = authenticator(&keys).authenticate(&token).await.unwrap();
        assert_eq!(caller.organization, "Organization/clinic");
        assert!(caller.require("Patient", Interaction::Search).is_ok());
        let denied = caller.require("Encounter", Interaction::Read).unwrap_err();
        assert!(
            matches!(&denied, ApiError::Forbidden(issue) if issue.diagnostics.contains("system/Encounter.r")),
            "{denied:?}"
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_even_when_it_was_verified_before() {
        let keys = NodeKeys::generate().unwrap();
        let auth = authenticator(&keys);
        let token = issue(&keys, &claims("system/Patient.r", 300)).unwrap();
        auth.authenticate(&token).await.unwrap();
        assert!(auth.remembered(&token, now_secs()).is_some());
        let later = now_secs() + 300 + LEEWAY.as_secs() + 1;
        assert!(auth.remembered(&token, later).is_none());
        let old = issue(&keys, &claims("system/Patient.r", -3600)).unwrap();
        let refused = auth.authenticate(&old).await.unwrap_err();
        assert!(
            matches!(&refused, ApiError::Unauthenticated(issue) if issue.diagnostics.contains("expired")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn no_caller_outside_a_verified_request() {
        assert!(matches!(current(), Err(ApiError::Unauthenticated(_))));
    }

    #[test]
    fn only_a_bearer_authorization_is_taken() {
        let mut headers = http::HeaderMap::new();
        assert!(bearer(&headers).is_err());
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&headers).is_err());
        headers.insert(AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers).unwrap(), "abc");
    }
}
