//! Shared harness of the integration suites: start a real service on port 0
//! with a fresh database of its own (a temporary SQLite file, or a
//! UUID-named PostgreSQL database), and talk to it with the generated gRPC
//! client.
//!
//! PostgreSQL tests run when `CORRIDOR_TEST_POSTGRES_URL` names a server
//! (any database on it; test databases are created beside it). Without it
//! they are skipped, except when `CI` is set: then they fail, so that CI can
//! never pass by skipping them.

pub mod bench;
pub mod clinic;
pub mod merge;
pub mod population;
pub mod referral;
pub mod rest;
pub mod scrape;

pub use scrape::Scrape;

use std::net::SocketAddr;
use std::time::Duration;

use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_runtime::{ServiceConfig, ShutdownTrigger, shutdown_channel};
use corridor_store::StoreConfig;
use secrecy::SecretString;
use sqlx::Connection;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generate one test per backend for each listed `async fn name(Backend)`:
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    )*};
}

/// The `corridor` binary of this build, built once per test process.
pub fn corridor_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        // target/<profile>/deps/federation-… → target/<profile>/corridor
        let exe = std::env::current_exe().expect("test executable");
        let profile_dir = exe
            .parent()
            .and_then(std::path::Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-q", "-p", "corridor", "--bin", "corridor"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p corridor failed");
        profile_dir.join("corridor")
    })
}

/// A token from `corridor token <args>`, signed with the key of the node
/// whose settings are `env` (as `corridor serve` reads them).
pub fn corridor_token(args: &[&str], env: &[(String, String)]) -> String {
    let out = std::process::Command::new(corridor_binary())
        .arg("token")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("corridor token");
    assert!(
        out.status.success(),
        "corridor token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("token")
        .trim()
        .to_owned()
}

/// A port nobody listens on now, and that nothing else will be given while
/// this test process runs: for a `corridor serve` process a test starts.
///
/// A node keeps its ports across restarts, and some nodes are prepared long
/// before they start. A port taken with `bind(":0")` comes from the kernel's
/// ephemeral range, which the kernel hands out again to any other listener
/// or outgoing connection once it is released; one CI run lost a node that
/// way ("Address already in use"). So ports come from below that range
/// (32768 and up on Linux), each at most once per process, from a start that
/// depends on the process id so that two test processes rarely overlap.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 97) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN)
}

/// The PostgreSQL server for tests, or None to skip (never under CI).
pub fn postgres_url() -> Option<String> {
    match std::env::var("CORRIDOR_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but CORRIDOR_TEST_POSTGRES_URL is not: the PostgreSQL suites must run in CI"
            )
        }
        _ => {
            eprintln!("skipped: set CORRIDOR_TEST_POSTGRES_URL to run the PostgreSQL suites");
            None
        }
    }
}

/// A database that exists for one test and is removed after it.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh database, or None when the backend is not available here.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin = postgres_url()?;
                let name = format!("corridor_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .expect("connect to CORRIDOR_TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = with_database(&admin, &name);
                Some(Self {
                    url,
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    /// The PostgreSQL database `name`, created when missing and kept when
    /// dropped: for benchmarks that reuse a large registry between runs.
    pub async fn kept_postgres(name: &str) -> Option<Self> {
        let admin = postgres_url()?;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .expect("connect to CORRIDOR_TEST_POSTGRES_URL");
        let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .expect("look for the database")
            .is_some();
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create the database");
        }
        conn.close().await.ok();
        Some(Self {
            url: with_database(&admin, name),
            _dir: None,
            postgres: None,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async context; a short-lived runtime on its own
        // thread removes the database even when the test panicked.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Service logs in test output, filtered by RUST_LOG (default: warnings),
/// so a failing test shows what the server saw.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// The configuration a test service gets: port 0 and `db`.
pub fn service_config(db: &TestDatabase, schema: &str) -> ServiceConfig {
    ServiceConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: StoreConfig {
            url: SecretString::from(db.url.clone()),
            schema: schema.to_owned(),
            max_connections: 8,
        },
        limits: corridor_fhir::Limits::default(),
        shutdown_grace: Duration::from_secs(5),
        tls: None,
    }
}

/// A service task and the trigger that stops it.
#[derive(Debug)]
pub struct Running {
    name: &'static str,
    trigger: ShutdownTrigger,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Run `serve` (a service's `run_until_stopped`) on its own task.
    pub fn start<F>(name: &'static str, serve: impl FnOnce(corridor_runtime::Shutdown) -> F) -> Self
    where
        F: std::future::Future<Output = Result<(), corridor_runtime::server::ServeError>>
            + Send
            + 'static,
    {
        let (trigger, shutdown) = shutdown_channel();
        let run = serve(shutdown);
        let task = tokio::spawn(async move {
            run.await
                .unwrap_or_else(|e| panic!("{name} service failed: {e}"));
        });
        Self {
            name,
            trigger,
            task: Some(task),
        }
    }

    /// Stop the service and wait until it has drained.
    pub async fn stop(&mut self) {
        self.trigger.trigger();
        if let Some(task) = self.task.take() {
            task.await
                .unwrap_or_else(|e| panic!("{} service stops cleanly: {e}", self.name));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.trigger.trigger();
    }
}

/// The organization a test's calls act for unless it says otherwise.
pub const TEST_ORGANIZATION: &str = "Organization/test-partner";
/// The scopes of a test's default token: everything a partner can have.
pub const ALL_SCOPES: &str = "system/*.cruds";

/// The token settings of every identity service a test starts (one key per
/// test process), so that a test can sign tokens its services accept.
pub fn token_settings() -> &'static corridor_identity::tokens::TokenSettings {
    static SETTINGS: std::sync::OnceLock<corridor_identity::tokens::TokenSettings> =
        std::sync::OnceLock::new();
    SETTINGS.get_or_init(|| {
        corridor_identity::tokens::TokenSettings::ephemeral().expect("a test signing key")
    })
}

/// What a test's token says, before it is signed: client `test-client`,
/// valid for five minutes.
pub fn claims(organization: &str, scope: &str) -> corridor_auth::AccessClaims {
    let settings = token_settings();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    corridor_auth::AccessClaims {
        iss: settings.issuer.clone(),
        sub: "test-client".to_owned(),
        aud: settings.issuer.clone(),
        exp: now + 300,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        organization: organization.to_owned(),
        jurisdiction: settings.jurisdiction.clone(),
        scope: scope.to_owned(),
        admin: false,
        cnf: None,
    }
}

/// Sign `claims` with the test node key.
pub fn sign(claims: &corridor_auth::AccessClaims) -> String {
    corridor_auth::tokens::issue(&token_settings().keys, claims).expect("token signs")
}

/// An access token for `organization` with `scope`.
pub fn token(organization: &str, scope: &str) -> String {
    sign(&claims(organization, scope))
}

/// A node operator's token (it may also register clients).
pub fn admin_token() -> String {
    sign(&corridor_auth::AccessClaims {
        admin: true,
        cnf: None,
        sub: "test-operator".to_owned(),
        ..claims(TEST_ORGANIZATION, ALL_SCOPES)
    })
}

/// `Bearer <token>` as metadata.
pub fn bearer(token: &str) -> MetadataValue<Ascii> {
    format!("Bearer {token}").parse().expect("ascii token")
}

/// Sends an access token with every call that does not carry its own.
#[derive(Debug, Clone)]
pub struct Bearer(pub Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0
            && !request.metadata().contains_key("authorization")
        {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry an access token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// A channel to a service at `addr` whose calls carry the node operator's
/// token (for [`TEST_ORGANIZATION`], every scope): the suites that test
/// what services do, not who may do it, see and change everything, as the
/// operator does. Who may do what is the security suite's, with partners'
/// tokens ([`token`], [`with_token`]).
pub async fn connect(addr: SocketAddr) -> Authed {
    connect_with(addr, Some(&admin_token())).await
}

/// A channel to a service at `addr` whose calls carry `token` (none: no
/// token at all).
pub async fn connect_with(addr: SocketAddr, token: Option<&str>) -> Authed {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    InterceptedService::new(channel, Bearer(token.map(bearer)))
}

/// `message` sent with a node operator's token.
pub fn as_admin<T>(message: T) -> tonic::Request<T> {
    with_token(&admin_token(), message)
}

/// `message` sent with `token`.
pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer(token));
    request
}

/// A running identity service and a client connected to it.
#[derive(Debug)]
pub struct IdentityApp {
    pub addr: SocketAddr,
    pub client: IdentityServiceClient<Authed>,
    running: Running,
    /// The database it owns, if any (removed when the app is dropped).
    _db: Option<TestDatabase>,
}

impl IdentityApp {
    /// Start the identity service, or None when `backend` is skipped here.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Start it with a configuration changed by `adjust`.
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut ServiceConfig),
    ) -> Option<Self> {
        init_logs();
        let db = TestDatabase::new(backend).await?;
        let mut config = service_config(&db, corridor_identity::SCHEMA);
        adjust(&mut config);
        let mut app = Self::spawn_on(config).await;
        app._db = Some(db);
        Some(app)
    }

    /// Start it with matching rules of its own.
    pub async fn spawn_with_rules(
        backend: Backend,
        rules: corridor_matching::Rules,
    ) -> Option<Self> {
        init_logs();
        let db = TestDatabase::new(backend).await?;
        let config = service_config(&db, corridor_identity::SCHEMA);
        let app =
            corridor_identity::Application::build_full(config, rules, token_settings().clone())
                .await
                .expect("identity service builds");
        let mut app = Self::run(app).await;
        app._db = Some(db);
        Some(app)
    }

    /// Start the identity service on a database that the caller keeps.
    pub async fn spawn_on(config: ServiceConfig) -> Self {
        init_logs();
        let app = corridor_identity::Application::build_full(
            config,
            corridor_matching::Rules::default_rules(),
            token_settings().clone(),
        )
        .await
        .expect("identity service builds");
        Self::run(app).await
    }

    async fn run(app: corridor_identity::Application) -> Self {
        let addr = app.local_addr();
        let running = Running::start("identity", |shutdown| app.run_until_stopped(shutdown));
        let client = IdentityServiceClient::new(connect(addr).await)
            .max_decoding_message_size(64 * 1024 * 1024);
        Self {
            addr,
            client,
            running,
            _db: None,
        }
    }

    /// Create `resource` (JSON) in the registry; its id.
    pub async fn register(&self, resource: &serde_json::Value) -> String {
        self.client
            .clone()
            .create(corridor_proto::identity::v1::CreateRequest {
                resource: resource.to_string(),
                if_none_exist: String::new(),
            })
            .await
            .unwrap_or_else(|s| panic!("{} registered: {s:?}", resource["resourceType"]))
            .into_inner()
            .resource
            .expect("resource")
            .id
    }

    /// The current version of `resource_type/id` as JSON.
    pub async fn read(&self, resource_type: &str, id: &str) -> serde_json::Value {
        let resource = self
            .client
            .clone()
            .read(corridor_proto::identity::v1::ReadRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|s| panic!("read {resource_type}/{id}: {s:?}"))
            .into_inner()
            .resource
            .expect("resource");
        serde_json::from_str(&resource.json).expect("stored JSON")
    }

    /// Where other services reach it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop the service and wait until it has drained.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Stop the service in place (its address then refuses connections).
    pub async fn halt(&mut self) {
        self.running.stop().await;
    }
}

/// A running encounters service and a client connected to it. It does not
/// own its database, so that several instances can share one.
#[derive(Debug)]
pub struct EncountersApp {
    pub addr: SocketAddr,
    pub client: EncountersServiceClient<Authed>,
    /// The access decisions it caches.
    pub decisions: std::sync::Arc<corridor_encounters::access::Decisions>,
    running: Running,
}

/// The configuration a test encounters service gets.
pub fn encounters_config(
    db: &TestDatabase,
    identity_url: &str,
) -> corridor_encounters::EncountersConfig {
    corridor_encounters::EncountersConfig {
        service: service_config(db, corridor_encounters::SCHEMA),
        identity_url: identity_url.to_owned(),
        referrals_url: None,
        identity_deadline: Duration::from_secs(3),
        channel_buffer: corridor_encounters::DEFAULT_CHANNEL_BUFFER,
        channel_stall: corridor_encounters::DEFAULT_CHANNEL_STALL,
    }
}

impl EncountersApp {
    /// Start an encounters service on `db` that asks identity at
    /// `identity_url`, with its configuration changed by `adjust`.
    pub async fn spawn(
        db: &TestDatabase,
        identity_url: &str,
        adjust: impl FnOnce(&mut corridor_encounters::EncountersConfig),
    ) -> Self {
        init_logs();
        let mut config = encounters_config(db, identity_url);
        adjust(&mut config);
        let app = corridor_encounters::Application::build(config)
            .await
            .expect("encounters service builds");
        Self::run(app).await
    }

    /// Run an encounters service that is built.
    pub async fn run(app: corridor_encounters::Application) -> Self {
        let addr = app.local_addr();
        let decisions = app.decisions();
        let running = Running::start("encounters", |shutdown| app.run_until_stopped(shutdown));
        let client = EncountersServiceClient::new(connect(addr).await)
            .max_decoding_message_size(64 * 1024 * 1024);
        Self {
            addr,
            client,
            decisions,
            running,
        }
    }

    /// Stop the service and wait until it has drained.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}

/// Identity and encounters running together, each on its own fresh
/// database of one backend.
#[derive(Debug)]
pub struct Node {
    pub identity: IdentityApp,
    pub encounters: EncountersApp,
    /// The encounters database, for a second instance on the same data.
    pub encounters_db: TestDatabase,
}

impl Node {
    /// Start both services, or None when `backend` is skipped here.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut corridor_encounters::EncountersConfig),
    ) -> Option<Self> {
        let identity = IdentityApp::spawn(backend).await?;
        let encounters_db = TestDatabase::new(backend).await?;
        let encounters = EncountersApp::spawn(&encounters_db, &identity.url(), adjust).await;
        Some(Self {
            identity,
            encounters,
            encounters_db,
        })
    }

    /// Stop both services and drop the encounters database.
    pub async fn stop(self) {
        let Self {
            identity,
            encounters,
            encounters_db,
        } = self;
        encounters.stop().await;
        identity.stop().await;
        drop(encounters_db);
    }

    /// Another encounters instance on the same database and identity.
    pub async fn second_encounters(&self) -> EncountersApp {
        EncountersApp::spawn(&self.encounters_db, &self.identity.url(), |_| {}).await
    }
}

/// A running referrals service and a client connected to it. It does not
/// own its database, so that several instances can share one.
#[derive(Debug)]
pub struct ReferralsApp {
    pub addr: SocketAddr,
    pub client: ReferralsServiceClient<Authed>,
    running: Running,
}

impl ReferralsApp {
    /// Start a referrals service on `db` that asks identity and encounters
    /// at these URLs.
    pub async fn spawn(
        db: &TestDatabase,
        identity_url: &str,
        encounters_url: &str,
        adjust: impl FnOnce(&mut corridor_referrals::ReferralsConfig),
    ) -> Self {
        init_logs();
        let mut config = corridor_referrals::ReferralsConfig {
            service: service_config(db, corridor_referrals::SCHEMA),
            identity_url: identity_url.to_owned(),
            encounters_url: encounters_url.to_owned(),
            deadline: Duration::from_secs(3),
            watch: corridor_runtime::follow::Limits {
                buffer: corridor_encounters::DEFAULT_CHANNEL_BUFFER,
                stall: corridor_encounters::DEFAULT_CHANNEL_STALL,
            },
            federation: None,
        };
        adjust(&mut config);
        let app = corridor_referrals::Application::build(config)
            .await
            .expect("referrals service builds");
        let addr = app.local_addr();
        let running = Running::start("referrals", |shutdown| app.run_until_stopped(shutdown));
        let client = ReferralsServiceClient::new(connect(addr).await)
            .max_decoding_message_size(64 * 1024 * 1024);
        Self {
            addr,
            client,
            running,
        }
    }

    /// Stop the service and wait until it has drained.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}

/// A whole node: identity, encounters and referrals, wired to each other,
/// each on its own fresh database of one backend.
#[derive(Debug)]
pub struct FullNode {
    pub identity: IdentityApp,
    pub encounters: EncountersApp,
    pub referrals: ReferralsApp,
    pub encounters_db: TestDatabase,
    pub referrals_db: TestDatabase,
}

impl FullNode {
    /// Start all three, or None when `backend` is skipped here.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        let identity = IdentityApp::spawn(backend).await?;
        let encounters_db = TestDatabase::new(backend).await?;
        let referrals_db = TestDatabase::new(backend).await?;
        init_logs();
        // Encounters and referrals ask each other: bind encounters first,
        // start referrals with its address, then tell encounters where
        // referrals is.
        let mut encounters = corridor_encounters::Application::build(encounters_config(
            &encounters_db,
            &identity.url(),
        ))
        .await
        .expect("encounters service builds");
        let encounters_url = format!("http://{}", encounters.local_addr());
        let referrals =
            ReferralsApp::spawn(&referrals_db, &identity.url(), &encounters_url, |_| {}).await;
        encounters
            .link_referrals(&format!("http://{}", referrals.addr))
            .expect("referrals URL");
        let encounters = EncountersApp::run(encounters).await;
        Some(Self {
            identity,
            encounters,
            referrals,
            encounters_db,
            referrals_db,
        })
    }

    /// Another referrals instance on the same database.
    pub async fn another_referrals(&self) -> ReferralsApp {
        ReferralsApp::spawn(
            &self.referrals_db,
            &self.identity.url(),
            &format!("http://{}", self.encounters.addr),
            |_| {},
        )
        .await
    }
}

/// The OperationOutcome carried by an error status; panics when missing,
/// since every error must carry one.
pub fn outcome(status: &tonic::Status) -> serde_json::Value {
    corridor_runtime::outcome::outcome_of(status)
        .unwrap_or_else(|| panic!("status {status:?} carries no OperationOutcome"))
}

/// The first issue's `expression[0]` of an error status.
pub fn expression(status: &tonic::Status) -> String {
    outcome(status)["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The first issue's `code` of an error status.
pub fn issue_code(status: &tonic::Status) -> String {
    outcome(status)["issue"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Path of a file under `tests/fixtures`.
pub fn fixture(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}
