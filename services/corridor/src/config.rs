//! Command line and environment configuration, validated before anything
//! binds a port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use corridor_referrals::federation::config::valid_node_id;
use corridor_runtime::ServiceConfig;
use corridor_store::{Backend, StoreConfig};
use secrecy::{ExposeSecret, SecretString};

pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_IDENTITY_ADDR: &str = "127.0.0.1:50051";
pub const DEFAULT_ENCOUNTERS_ADDR: &str = "127.0.0.1:50052";
pub const DEFAULT_REFERRALS_ADDR: &str = "127.0.0.1:50053";
pub const DEFAULT_GATEWAY_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_FEDERATION_ADDR: &str = "127.0.0.1:50054";
pub const DEFAULT_IDENTITY_DEADLINE_MS: u64 = 3000;
pub const MAX_CHANNEL_BUFFER: usize = 1 << 20;
pub const DEFAULT_CHANNEL_STALL_MS: u64 = 5000;
pub const DEFAULT_MAX_RESOURCE_BYTES: usize = corridor_fhir::DEFAULT_MAX_BYTES;
pub const MAX_MAX_RESOURCE_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = corridor_runtime::DEFAULT_SHUTDOWN_GRACE.as_secs();

#[derive(Debug, Parser)]
#[command(
    name = "corridor",
    version,
    about = "Corridor: FHIR records shared between health systems and migrant-support organizations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run services (all of a node's services unless --service is given).
    Serve(ServeArgs),
    /// Print an access token signed with this node's key (the operator's
    /// tool: it reads the signing key, so only who runs the node can use it).
    /// Partners' systems get theirs from the token endpoint instead.
    Token(TokenArgs),
    /// Make a development node CA and certificates for mutual TLS: the
    /// node's (for every service, on this machine) and partner clients'.
    /// Production certificates come from the operator's own CA.
    Certs(CertsArgs),
    /// The node operator's view of deliveries to peer nodes: list them, and
    /// put parked ones back to be sent.
    Federation(FederationArgs),
    /// Ask a process's operations port whether it is healthy: exits 0 when
    /// it answers SERVING, 1 otherwise (a container health check).
    Health(HealthArgs),
    /// Send files or folders of FHIR Bundles (*.json) and NDJSON (*.ndjson)
    /// to a node's REST gateway, a few requests at a time, with a progress
    /// bar; report every failure by file and entry, and resume after an
    /// interruption without writing anything twice. Exits 0 when everything
    /// was written, 1 when something failed, 2 for a usage error.
    Import(ImportArgs),
}

/// `corridor import`: what to send, where, and how much at once.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or folders (walked recursively, in path order) of FHIR Bundles
    /// of type transaction or batch, or single resources (*.json), and
    /// NDJSON files (*.ndjson, one resource a line).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The node's FHIR REST base (plain http: put TLS in front of the
    /// gateway, not in this client).
    #[arg(long, env = "CORRIDOR_IMPORT_BASE_URL", default_value = crate::import::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// The access token sent as `Authorization: Bearer`, e.g. from
    /// `corridor token --scope 'system/*.cruds' --lifetime-secs 43200`.
    /// Resume with a token of the same client: idempotency keys are the
    /// client's own.
    #[arg(long, env = "CORRIDOR_TOKEN", value_parser = secret, hide_env_values = true)]
    pub token: Option<SecretString>,
    /// The file that records every unit written, so that a second run with
    /// the same file skips them.
    #[arg(long, env = "CORRIDOR_IMPORT_STATE", default_value = crate::import::DEFAULT_STATE_FILE)]
    pub state: PathBuf,
    /// Ignore the state file and start over (it is truncated).
    #[arg(long)]
    pub restart: bool,
    /// NDJSON lines sent in one batch Bundle; at most the node's
    /// CORRIDOR_GATEWAY_MAX_BUNDLE_ENTRIES. A resumed import needs the
    /// batch size it started with.
    #[arg(long, env = "CORRIDOR_IMPORT_BATCH_SIZE", default_value_t = crate::import::DEFAULT_BATCH_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Requests in flight at once.
    #[arg(long, env = "CORRIDOR_IMPORT_CONCURRENCY", default_value_t = crate::import::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Times a request is sent again (with the same idempotency key) after a
    /// connection failure or a 408, 429, 502, 503 or 504 answer.
    #[arg(long, env = "CORRIDOR_IMPORT_RETRIES", default_value_t = crate::import::DEFAULT_RETRIES)]
    pub retries: u32,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The operations port to ask (host:port), as CORRIDOR_OPS_ADDR.
    #[arg(long, env = "CORRIDOR_OPS_ADDR", default_value = "127.0.0.1:9464")]
    pub addr: String,
    /// The health service to ask about: "" (ready) or "liveness".
    #[arg(long, default_value = "")]
    pub service: String,
}

#[derive(Debug, Args)]
pub struct FederationArgs {
    #[command(subcommand)]
    pub action: FederationAction,
    /// The node's settings, read as `corridor serve` reads them: the
    /// referrals service is called at its URL, over mutual TLS with the
    /// node's certificate when the node has one, else with an operator's
    /// token signed with the node's key.
    #[command(flatten)]
    pub node: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum FederationAction {
    /// List messages to peers: pending and parked ones, unless --state says.
    Deliveries {
        /// pending, parked or delivered.
        #[arg(long)]
        state: Option<String>,
        /// Only those to this peer node.
        #[arg(long)]
        peer: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Put parked messages back to be sent now, in their referral's order.
    Retry {
        /// A delivery's id (repeatable), as `deliveries` lists it.
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Every parked message (of --peer, if given).
        #[arg(long)]
        all_parked: bool,
        #[arg(long)]
        peer: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write them to; it must not hold certificates already.
    #[arg(long, default_value = "./data/tls")]
    pub out: PathBuf,
    /// Further host names or addresses the node is reached at (localhost,
    /// 127.0.0.1 and ::1 are always in).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// A partner client to make a client certificate for (repeatable).
    #[arg(long = "client")]
    pub clients: Vec<String>,
    /// The node id, for a node that federates: its certificate then also
    /// names it (SAN URI urn:corridor:node:<id>) for its peers.
    #[arg(long = "node")]
    pub node: Option<String>,
}

impl CertsArgs {
    /// Write the files; what was written, one line each.
    pub fn write(&self) -> Result<Vec<String>, String> {
        use corridor_runtime::tls;
        for client in &self.clients {
            if client.is_empty()
                || !client
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                return Err(format!(
                    "--client is a client id (letters, digits, '-', '.', '_'), not '{client}'"
                ));
            }
        }
        if let Some(node) = &self.node {
            valid_node_id(node).map_err(|e| format!("--node: {e}"))?;
        }
        let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
        let (ca, node) = tls::development_certificates(self.node.as_deref(), &hosts)
            .map_err(|e| e.to_string())?;
        // (file name, PEM, whether only the owner may read it)
        let mut files = vec![
            (
                "ca.pem".to_owned(),
                ca.certificate().cert_pem.clone(),
                false,
            ),
            (
                "ca-key.pem".to_owned(),
                ca.certificate().key_pem.clone(),
                true,
            ),
            ("node.pem".to_owned(), node.cert_pem, false),
            ("node-key.pem".to_owned(), node.key_pem, true),
        ];
        for client in &self.clients {
            let issued = ca.client(client).map_err(|e| e.to_string())?;
            files.push((format!("{client}.pem"), issued.cert_pem, false));
            files.push((format!("{client}-key.pem"), issued.key_pem, true));
        }
        std::fs::create_dir_all(&self.out)
            .map_err(|e| format!("--out: cannot create {}: {e}", self.out.display()))?;
        for (name, _, _) in &files {
            let path = self.out.join(name);
            if path.exists() {
                return Err(format!(
                    "{} exists already; choose another --out (certificates are never overwritten)",
                    path.display()
                ));
            }
        }
        let mut written = Vec::new();
        for (name, text, private) in files {
            let path = self.out.join(name);
            let result = if private {
                write_private(&path, &text)
            } else {
                std::fs::write(&path, text)
            };
            result.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path.display().to_string());
        }
        Ok(written)
    }
}

/// Whether the node is a developer's or a real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// A development key is generated under the data directory when none
    /// is configured.
    Development,
    /// A configured signing key and a real jurisdiction are required.
    Production,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The organization the token acts for, as Organization/<id>.
    #[arg(long, default_value = DEV_ORGANIZATION)]
    pub organization: String,
    /// SMART scopes granted, space-separated.
    #[arg(long, default_value = "system/*.cruds")]
    pub scope: String,
    /// A node operator's token, which may also register clients.
    #[arg(long)]
    pub admin: bool,
    /// The client id the token names (its `sub`).
    #[arg(long, default_value = "corridor-cli")]
    pub client_id: String,
    /// Seconds the token is valid (at most 12 hours).
    #[arg(long, default_value_t = 3600)]
    pub lifetime_secs: u64,
    /// The node's settings, read as `corridor serve` reads them.
    #[command(flatten)]
    pub node: ServeArgs,
}

/// The organization a development token acts for unless told otherwise.
pub const DEV_ORGANIZATION: &str = "Organization/corridor-dev";
/// The longest token `corridor token` signs.
pub const MAX_CLI_TOKEN_SECS: u64 = 12 * 3600;

/// A short-lived operator's token signed with the node's key, for the
/// CLI's own calls to a node without mutual TLS.
pub fn operator_token(
    settings: &corridor_identity::tokens::TokenSettings,
) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = corridor_auth::AccessClaims {
        iss: settings.issuer.clone(),
        sub: "corridor-cli".to_owned(),
        aud: settings.issuer.clone(),
        exp: now + 300,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        organization: DEV_ORGANIZATION.to_owned(),
        jurisdiction: settings.jurisdiction.clone(),
        scope: "system/*.cruds".to_owned(),
        admin: true,
        cnf: None,
    };
    corridor_auth::tokens::issue(&settings.keys, &claims).map_err(|e| e.to_string())
}

impl TokenArgs {
    /// The signed token, or why none can be made.
    pub fn mint(self) -> Result<String, String> {
        let organization = self.organization.trim();
        if organization
            .strip_prefix("Organization/")
            .is_none_or(|id| id.is_empty() || id.contains('/'))
        {
            return Err(format!(
                "--organization must be Organization/<id>, not '{organization}'"
            ));
        }
        let scopes =
            corridor_auth::Scopes::parse(&self.scope).map_err(|e| format!("--scope: {e}"))?;
        if scopes.is_empty() {
            return Err("--scope: give at least one scope, e.g. system/Patient.rs".to_owned());
        }
        if self.lifetime_secs == 0 || self.lifetime_secs > MAX_CLI_TOKEN_SECS {
            return Err(format!(
                "--lifetime-secs must be from 1 to {MAX_CLI_TOKEN_SECS}, not {}",
                self.lifetime_secs
            ));
        }
        let tokens = self.node.token_settings()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims = corridor_auth::AccessClaims {
            iss: tokens.settings.issuer.clone(),
            sub: self.client_id.trim().to_owned(),
            aud: tokens.settings.issuer.clone(),
            exp: now + self.lifetime_secs,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            organization: organization.to_owned(),
            jurisdiction: tokens.settings.jurisdiction.clone(),
            scope: scopes.to_string(),
            admin: self.admin,
            cnf: None,
        };
        corridor_auth::tokens::issue(&tokens.settings.keys, &claims).map_err(|e| e.to_string())
    }
}

impl Cli {
    /// The command to run; no subcommand means `serve`, still read from the
    /// environment.
    pub fn into_command(self) -> Result<Command, clap::Error> {
        match self.command {
            Some(command) => Ok(command),
            None => match Self::try_parse_from(["corridor", "serve"])?.command {
                Some(command) => Ok(command),
                None => Err(<Self as CommandFactory>::command()
                    .error(ErrorKind::MissingSubcommand, "no command")),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Identity,
    Encounters,
    Referrals,
    /// The FHIR REST gateway (HTTP), in front of the other three.
    Gateway,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Run only these services (repeat or comma-separate); default: all.
    #[arg(long = "service", env = "CORRIDOR_SERVICES", value_delimiter = ',')]
    pub services: Vec<ServiceName>,

    /// Directory for the embedded SQLite databases.
    #[arg(long, env = "CORRIDOR_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Database for every service (sqlite:... or postgres://...). On
    /// PostgreSQL each service keeps its tables in its own schema.
    #[arg(long, env = "CORRIDOR_DATABASE_URL", value_parser = secret, hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// Database of the identity service; overrides --database-url.
    #[arg(long, env = "CORRIDOR_IDENTITY_DATABASE_URL", value_parser = secret, hide_env_values = true)]
    pub identity_database_url: Option<SecretString>,

    /// Address the identity service listens on (host:port).
    #[arg(long, env = "CORRIDOR_IDENTITY_ADDR", default_value = DEFAULT_IDENTITY_ADDR)]
    pub identity_addr: SocketAddr,

    /// Database of the encounters service; overrides --database-url.
    #[arg(long, env = "CORRIDOR_ENCOUNTERS_DATABASE_URL", value_parser = secret, hide_env_values = true)]
    pub encounters_database_url: Option<SecretString>,

    /// Address the encounters service listens on (host:port).
    #[arg(long, env = "CORRIDOR_ENCOUNTERS_ADDR", default_value = DEFAULT_ENCOUNTERS_ADDR)]
    pub encounters_addr: SocketAddr,

    /// Database of the referrals service; overrides --database-url.
    #[arg(long, env = "CORRIDOR_REFERRALS_DATABASE_URL", value_parser = secret, hide_env_values = true)]
    pub referrals_database_url: Option<SecretString>,

    /// Address the referrals service listens on (host:port).
    #[arg(long, env = "CORRIDOR_REFERRALS_ADDR", default_value = DEFAULT_REFERRALS_ADDR)]
    pub referrals_addr: SocketAddr,

    /// Address the FHIR REST gateway listens on (host:port); the API is
    /// under /fhir.
    #[arg(long, env = "CORRIDOR_GATEWAY_ADDR", default_value = DEFAULT_GATEWAY_ADDR)]
    pub gateway_addr: SocketAddr,

    /// The gateway's public base URL (e.g. https://fhir.example.org/fhir),
    /// used in links and Location headers; default: from each request's
    /// Host header.
    #[arg(long, env = "CORRIDOR_GATEWAY_BASE_URL")]
    pub gateway_base_url: Option<String>,

    /// Largest HTTP request body the gateway reads, in bytes.
    #[arg(long, env = "CORRIDOR_GATEWAY_MAX_BODY_BYTES", default_value_t = corridor_gateway::DEFAULT_MAX_BODY)]
    pub gateway_max_body_bytes: usize,

    /// Most entries in one batch or transaction Bundle.
    #[arg(long, env = "CORRIDOR_GATEWAY_MAX_BUNDLE_ENTRIES", default_value_t = corridor_gateway::DEFAULT_MAX_ENTRIES)]
    pub gateway_max_bundle_entries: usize,

    /// Seconds one HTTP request may take, reading its body included.
    #[arg(long, env = "CORRIDOR_GATEWAY_TIMEOUT_SECS", default_value_t = corridor_gateway::DEFAULT_TIMEOUT.as_secs())]
    pub gateway_timeout_secs: u64,

    /// Where other services reach the identity service (http://host:port);
    /// default: the identity address above.
    #[arg(long, env = "CORRIDOR_IDENTITY_URL")]
    pub identity_url: Option<String>,

    /// Where other services reach the encounters service; default: the
    /// encounters address above.
    #[arg(long, env = "CORRIDOR_ENCOUNTERS_URL")]
    pub encounters_url: Option<String>,

    /// Where other services reach the referrals service; default: the
    /// referrals address above.
    #[arg(long, env = "CORRIDOR_REFERRALS_URL")]
    pub referrals_url: Option<String>,

    /// Milliseconds a call to the identity service may take.
    #[arg(long, env = "CORRIDOR_IDENTITY_DEADLINE_MS", default_value_t = DEFAULT_IDENTITY_DEADLINE_MS)]
    pub identity_deadline_ms: u64,

    /// Seconds a transaction whose entries belong to several services may
    /// stay undecided: past it the identity service aborts it and purges
    /// every part written (a gateway that died mid-transaction). Longer
    /// than the gateways' CORRIDOR_GATEWAY_TIMEOUT_SECS.
    #[arg(long, env = "CORRIDOR_TRANSACTION_TIMEOUT_SECS", default_value_t = corridor_identity::transactions::DEFAULT_TIMEOUT.as_secs())]
    pub transaction_timeout_secs: u64,

    /// Messages buffered for each consult channel reader.
    #[arg(long, env = "CORRIDOR_CHANNEL_BUFFER", default_value_t = corridor_encounters::DEFAULT_CHANNEL_BUFFER)]
    pub channel_buffer: usize,

    /// Milliseconds a consult channel reader may leave its full buffer unread
    /// while messages wait, before it is cut off.
    #[arg(long, env = "CORRIDOR_CHANNEL_STALL_MS", default_value_t = DEFAULT_CHANNEL_STALL_MS)]
    pub channel_stall_ms: u64,

    /// Largest FHIR resource accepted, in bytes.
    #[arg(long, env = "CORRIDOR_MAX_RESOURCE_BYTES", default_value_t = DEFAULT_MAX_RESOURCE_BYTES)]
    pub max_resource_bytes: usize,

    /// Database connections per service.
    #[arg(long, env = "CORRIDOR_DB_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub db_max_connections: u32,

    /// A Patient matching rules file (TOML) to use instead of the shipped
    /// one, crates/matching/rules.toml, which documents the format.
    #[arg(long, env = "CORRIDOR_MATCH_RULES")]
    pub match_rules: Option<PathBuf>,

    /// development or production. Production refuses to start without
    /// CORRIDOR_SIGNING_KEY_FILE, a real CORRIDOR_JURISDICTION and mutual
    /// TLS (CORRIDOR_TLS_*).
    #[arg(
        long,
        env = "CORRIDOR_ENVIRONMENT",
        value_enum,
        default_value = "development"
    )]
    pub environment: Environment,

    /// PKCS#8 PEM file of the node's ES384 (P-384) signing key for access
    /// tokens. Unset: <data-dir>/signing-key.pem, generated on first start
    /// (development only).
    #[arg(long, env = "CORRIDOR_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,

    /// PKCS#8 PEM file of the signing key this one replaced, during a key
    /// rotation: its public half stays in the node's JWKS, so that tokens
    /// it signed verify until they expire; it signs nothing. Drop it once
    /// a token lifetime has passed since the rotation.
    #[arg(long, env = "CORRIDOR_RETIRED_SIGNING_KEY_FILE")]
    pub retired_signing_key_file: Option<PathBuf>,

    /// ISO 3166 code of the node's jurisdiction (e.g. IT, DE-BY), written
    /// into the access tokens it issues.
    #[arg(long, env = "CORRIDOR_JURISDICTION", default_value = "XX")]
    pub jurisdiction: String,

    /// Seconds an access token is valid.
    #[arg(long, env = "CORRIDOR_TOKEN_LIFETIME_SECS", default_value_t = corridor_identity::tokens::DEFAULT_LIFETIME.as_secs())]
    pub token_lifetime_secs: u64,

    /// PEM certificate (chain) of the services run here, for mutual TLS:
    /// issued by the node CA, naming each service as a subject alternative
    /// name URI urn:corridor:service:<name> and the hosts it is reached at.
    /// With it (and the key and CA files), every service serves gRPC over
    /// TLS and calls the others over mutual TLS. `corridor certs` makes
    /// development ones.
    #[arg(long, env = "CORRIDOR_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "CORRIDOR_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM certificate of the node CA, which issued every service's
    /// certificate.
    #[arg(long, env = "CORRIDOR_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,

    /// PEM certificates of partners' CAs whose client certificates are
    /// accepted too (the node CA's always are).
    #[arg(long, env = "CORRIDOR_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Refuse every connection that does not present a client certificate
    /// of a trusted CA. Otherwise a certificate is asked for but optional,
    /// and required only of clients registered to require one.
    #[arg(long, env = "CORRIDOR_TLS_REQUIRE_CLIENT_CERT")]
    pub tls_require_client_cert: bool,

    /// Seconds that in-flight calls may take to finish after SIGTERM.
    #[arg(long, env = "CORRIDOR_SHUTDOWN_GRACE_SECS", default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    /// This node's id among federated nodes (lower-case letters, digits,
    /// '-'); its certificate names it as urn:corridor:node:<id>. Needed
    /// with --peers-file.
    #[arg(long, env = "CORRIDOR_NODE_ID")]
    pub node_id: Option<String>,

    /// TOML file of the peer nodes this node federates with: [[peer]]
    /// entries with node, jurisdiction, endpoint (https://host:port) and
    /// ca_file (the CA that certifies that peer). With it, the referrals
    /// service forwards cross-border referrals and serves its peers.
    #[arg(long, env = "CORRIDOR_PEERS_FILE")]
    pub peers_file: Option<PathBuf>,

    /// Address the peer-facing federation API listens on (mutual TLS).
    #[arg(long, env = "CORRIDOR_FEDERATION_ADDR", default_value = DEFAULT_FEDERATION_ADDR)]
    pub federation_addr: SocketAddr,

    /// Milliseconds before the first retry of a message a peer did not
    /// take; each retry waits twice as long, up to the maximum.
    #[arg(long, env = "CORRIDOR_FEDERATION_RETRY_MIN_MS", default_value_t = 500)]
    pub federation_retry_min_ms: u64,

    /// The longest wait between retries, in milliseconds.
    #[arg(
        long,
        env = "CORRIDOR_FEDERATION_RETRY_MAX_MS",
        default_value_t = 60_000
    )]
    pub federation_retry_max_ms: u64,

    /// Seconds after which a message still undeliverable is parked for an
    /// operator (`corridor federation retry`); it is never dropped.
    #[arg(
        long,
        env = "CORRIDOR_FEDERATION_PARK_AFTER_SECS",
        default_value_t = 86_400
    )]
    pub federation_park_after_secs: u64,

    /// Seconds between fetches of the peers' directories.
    #[arg(long, env = "CORRIDOR_FEDERATION_DIRECTORY_SECS", default_value_t = 60)]
    pub federation_directory_secs: u64,

    /// Address of the operations port (host:port): Prometheus metrics at
    /// /metrics and gRPC health for probes ("" ready, "liveness" alive),
    /// in plaintext; it serves no records. Unset: no operations port.
    #[arg(long, env = "CORRIDOR_OPS_ADDR")]
    pub ops_addr: Option<SocketAddr>,
}

fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// A validated service, with a printable (password-free) store label.
#[derive(Debug)]
pub struct Service {
    pub name: ServiceName,
    pub config: ServiceConfig,
    pub store_label: String,
}

#[derive(Debug)]
pub struct Node {
    pub services: Vec<Service>,
    /// How services reach each other.
    pub identity_url: String,
    pub encounters_url: String,
    pub referrals_url: String,
    pub identity_deadline: Duration,
    /// How long a transaction that spans services may stay undecided.
    pub transaction_timeout: Duration,
    pub channel_buffer: usize,
    pub channel_stall: Duration,
    /// Patient matching rules for the identity service.
    pub match_rules: corridor_matching::Rules,
    /// The REST gateway, when it runs here.
    pub gateway: Option<corridor_gateway::GatewayConfig>,
    /// The identity service's token endpoint, when identity runs here.
    pub tokens: Option<Tokens>,
    /// Whether the services run mutual TLS.
    pub tls: bool,
    /// The services' mutual TLS, when they run one.
    pub service_tls: Option<corridor_runtime::tls::Tls>,
    /// Cross-border referrals with peer nodes, when configured.
    pub federation: Option<corridor_referrals::federation::FederationConfig>,
    /// Where metrics and health for probes are served, if anywhere.
    pub ops_addr: Option<SocketAddr>,
}

/// What the identity service signs access tokens with.
#[derive(Debug)]
pub struct Tokens {
    pub settings: corridor_identity::tokens::TokenSettings,
    /// Where the signing key came from, for printing.
    pub key_label: String,
    /// Whether it is the development key generated under the data directory.
    pub development: bool,
}

impl ServeArgs {
    /// Every check that can fail, before any port is bound.
    pub fn validate(self) -> Result<Node, String> {
        if self.max_resource_bytes == 0 || self.max_resource_bytes > MAX_MAX_RESOURCE_BYTES {
            return Err(format!(
                "CORRIDOR_MAX_RESOURCE_BYTES (--max-resource-bytes) must be from 1 to {MAX_MAX_RESOURCE_BYTES}, not {}",
                self.max_resource_bytes
            ));
        }
        if self.db_max_connections == 0 {
            return Err(
                "CORRIDOR_DB_MAX_CONNECTIONS (--db-max-connections) must be at least 1".to_owned(),
            );
        }
        if self.transaction_timeout_secs == 0 {
            return Err(
                "CORRIDOR_TRANSACTION_TIMEOUT_SECS (--transaction-timeout-secs) must be at least 1"
                    .to_owned(),
            );
        }
        if self.identity_deadline_ms == 0 {
            return Err(
                "CORRIDOR_IDENTITY_DEADLINE_MS (--identity-deadline-ms) must be at least 1"
                    .to_owned(),
            );
        }
        if self.channel_buffer == 0 || self.channel_buffer > MAX_CHANNEL_BUFFER {
            return Err(format!(
                "CORRIDOR_CHANNEL_BUFFER (--channel-buffer) must be from 1 to {MAX_CHANNEL_BUFFER}, not {}",
                self.channel_buffer
            ));
        }
        if self.channel_stall_ms == 0 {
            return Err(
                "CORRIDOR_CHANNEL_STALL_MS (--channel-stall-ms) must be at least 1".to_owned(),
            );
        }
        let match_rules = match &self.match_rules {
            None => corridor_matching::Rules::default_rules(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "CORRIDOR_MATCH_RULES (--match-rules): cannot read {}: {e}",
                        path.display()
                    )
                })?;
                corridor_matching::Rules::parse(&text).map_err(|e| {
                    format!(
                        "CORRIDOR_MATCH_RULES (--match-rules) {}: {e}",
                        path.display()
                    )
                })?
            }
        };
        let tls = self.tls()?;
        let secure = tls.is_some();
        let identity_url = service_url(
            self.identity_url.as_deref(),
            self.identity_addr,
            "CORRIDOR_IDENTITY_URL (--identity-url)",
            secure,
        )?;
        let encounters_url = service_url(
            self.encounters_url.as_deref(),
            self.encounters_addr,
            "CORRIDOR_ENCOUNTERS_URL (--encounters-url)",
            secure,
        )?;
        let referrals_url = service_url(
            self.referrals_url.as_deref(),
            self.referrals_addr,
            "CORRIDOR_REFERRALS_URL (--referrals-url)",
            secure,
        )?;
        let mut names = self.services.clone();
        if names.is_empty() {
            names = ServiceName::value_variants().to_vec();
        }
        names.dedup();
        let limits = corridor_fhir::Limits {
            max_bytes: self.max_resource_bytes,
            ..corridor_fhir::Limits::default()
        };
        let grace = Duration::from_secs(self.shutdown_grace_secs);
        if names.contains(&ServiceName::Gateway)
            && names.contains(&ServiceName::Identity)
            && self.transaction_timeout_secs <= self.gateway_timeout_secs
        {
            return Err(format!(
                "CORRIDOR_TRANSACTION_TIMEOUT_SECS ({}) must be longer than CORRIDOR_GATEWAY_TIMEOUT_SECS ({}): a transaction the gateway is still writing would be presumed aborted",
                self.transaction_timeout_secs, self.gateway_timeout_secs
            ));
        }
        let gateway = if names.contains(&ServiceName::Gateway) {
            if self.gateway_max_body_bytes == 0 {
                return Err(
                    "CORRIDOR_GATEWAY_MAX_BODY_BYTES (--gateway-max-body-bytes) must be at least 1"
                        .to_owned(),
                );
            }
            if self.gateway_max_bundle_entries == 0 {
                return Err("CORRIDOR_GATEWAY_MAX_BUNDLE_ENTRIES (--gateway-max-bundle-entries) must be at least 1".to_owned());
            }
            if self.gateway_timeout_secs == 0 {
                return Err(
                    "CORRIDOR_GATEWAY_TIMEOUT_SECS (--gateway-timeout-secs) must be at least 1"
                        .to_owned(),
                );
            }
            if let Some(base) = &self.gateway_base_url
                && !(base.starts_with("http://") || base.starts_with("https://"))
            {
                return Err(format!(
                    "CORRIDOR_GATEWAY_BASE_URL (--gateway-base-url) must be an http:// or https:// URL, e.g. https://fhir.example.org/fhir, not '{base}'"
                ));
            }
            Some(corridor_gateway::GatewayConfig {
                listen: self.gateway_addr,
                identity_url: identity_url.clone(),
                encounters_url: encounters_url.clone(),
                referrals_url: referrals_url.clone(),
                deadline: Duration::from_millis(self.identity_deadline_ms),
                base_url: self.gateway_base_url.clone(),
                limits: corridor_gateway::Limits {
                    max_body: self.gateway_max_body_bytes,
                    max_entries: self.gateway_max_bundle_entries,
                    timeout: Duration::from_secs(self.gateway_timeout_secs),
                },
                shutdown_grace: grace,
                tls: tls.clone(),
            })
        } else {
            None
        };
        // Only the identity service signs tokens: a node without it reads
        // no key and writes none (its root filesystem may be read-only).
        let tokens = if names.contains(&ServiceName::Identity) {
            Some(self.token_settings()?)
        } else {
            self.check_token_rules()?;
            None
        };
        let federation = self.federation(&self.check_token_rules()?, tls.is_some())?;
        if self.environment == Environment::Production && tls.is_none() {
            return Err("CORRIDOR_ENVIRONMENT=production needs mutual TLS between the services: set CORRIDOR_TLS_CERT_FILE, CORRIDOR_TLS_KEY_FILE and CORRIDOR_TLS_CA_FILE (--tls-cert-file, --tls-key-file, --tls-ca-file); `corridor certs --help` says what they hold".to_owned());
        }
        let mut services = Vec::new();
        for name in names {
            let (listen, own_url, own_var, file, schema) = match name {
                ServiceName::Identity => (
                    self.identity_addr,
                    self.identity_database_url.as_ref(),
                    "CORRIDOR_IDENTITY_DATABASE_URL",
                    "identity.db",
                    corridor_identity::SCHEMA,
                ),
                ServiceName::Encounters => (
                    self.encounters_addr,
                    self.encounters_database_url.as_ref(),
                    "CORRIDOR_ENCOUNTERS_DATABASE_URL",
                    "encounters.db",
                    corridor_encounters::SCHEMA,
                ),
                ServiceName::Referrals => (
                    self.referrals_addr,
                    self.referrals_database_url.as_ref(),
                    "CORRIDOR_REFERRALS_DATABASE_URL",
                    "referrals.db",
                    corridor_referrals::SCHEMA,
                ),
                // No store: configured above.
                ServiceName::Gateway => continue,
            };
            let (url, var) = match (own_url, self.database_url.as_ref()) {
                (Some(url), _) => (url.expose_secret().to_owned(), own_var),
                (None, Some(url)) => (url.expose_secret().to_owned(), "CORRIDOR_DATABASE_URL"),
                (None, None) => (
                    format!("sqlite://{}", self.data_dir.join(file).display()),
                    "CORRIDOR_DATA_DIR",
                ),
            };
            let store_label = match Backend::of_url(&url) {
                Some(Backend::Sqlite) => url.clone(),
                Some(Backend::Postgres) => format!("{} (schema {schema})", redact(&url)),
                None => {
                    return Err(format!(
                        "{var} must be a sqlite: or postgres:// URL, e.g. sqlite://./data/identity.db or postgres://postgres@127.0.0.1:5432/corridor"
                    ));
                }
            };
            services.push(Service {
                name,
                config: ServiceConfig {
                    listen,
                    store: StoreConfig {
                        url: SecretString::from(url),
                        schema: schema.to_owned(),
                        max_connections: self.db_max_connections,
                    },
                    limits,
                    shutdown_grace: grace,
                    tls: tls.clone(),
                },
                store_label,
            });
        }
        Ok(Node {
            services,
            identity_url,
            encounters_url,
            referrals_url,
            identity_deadline: Duration::from_millis(self.identity_deadline_ms),
            transaction_timeout: Duration::from_secs(self.transaction_timeout_secs),
            channel_buffer: self.channel_buffer,
            channel_stall: Duration::from_millis(self.channel_stall_ms),
            match_rules,
            gateway,
            tokens,
            tls: tls.is_some(),
            service_tls: tls,
            federation,
            ops_addr: self.ops_addr,
        })
    }

    /// The federation settings, all checked; None without a peers file.
    fn federation(
        &self,
        jurisdiction: &str,
        tls: bool,
    ) -> Result<Option<corridor_referrals::federation::FederationConfig>, String> {
        use corridor_referrals::federation::config;
        let Some(peers_file) = &self.peers_file else {
            if self.node_id.is_some() {
                return Err("CORRIDOR_NODE_ID (--node-id) is for a node that federates: give its peers too, CORRIDOR_PEERS_FILE (--peers-file)".to_owned());
            }
            return Ok(None);
        };
        let node_id = self.node_id.as_deref().ok_or(
            "CORRIDOR_PEERS_FILE (--peers-file) needs this node's id too: CORRIDOR_NODE_ID (--node-id)",
        )?;
        valid_node_id(node_id).map_err(|e| format!("CORRIDOR_NODE_ID (--node-id): {e}"))?;
        if jurisdiction == "XX" {
            return Err("a federating node needs its real jurisdiction, which its peers check: set CORRIDOR_JURISDICTION (--jurisdiction), e.g. IT or DE-BY".to_owned());
        }
        if !tls {
            return Err("a federating node talks to its peers over mutual TLS only: set CORRIDOR_TLS_CERT_FILE, CORRIDOR_TLS_KEY_FILE and CORRIDOR_TLS_CA_FILE (`corridor certs --node <id>` makes development ones)".to_owned());
        }
        let peers = config::read_peers(peers_file, node_id)
            .map_err(|e| format!("CORRIDOR_PEERS_FILE (--peers-file): {e}"))?;
        if peers.is_empty() {
            return Err(format!(
                "CORRIDOR_PEERS_FILE (--peers-file) {} lists no [[peer]]",
                peers_file.display()
            ));
        }
        if self.federation_retry_min_ms == 0
            || self.federation_retry_max_ms < self.federation_retry_min_ms
        {
            return Err(format!(
                "CORRIDOR_FEDERATION_RETRY_MIN_MS must be at least 1 and CORRIDOR_FEDERATION_RETRY_MAX_MS at least that, not {} and {}",
                self.federation_retry_min_ms, self.federation_retry_max_ms
            ));
        }
        if self.federation_park_after_secs == 0 || self.federation_directory_secs == 0 {
            return Err("CORRIDOR_FEDERATION_PARK_AFTER_SECS and CORRIDOR_FEDERATION_DIRECTORY_SECS must be at least 1".to_owned());
        }
        Ok(Some(config::FederationConfig {
            node_id: node_id.to_owned(),
            jurisdiction: jurisdiction.to_owned(),
            listen: self.federation_addr,
            peers,
            retry_min: Duration::from_millis(self.federation_retry_min_ms),
            retry_max: Duration::from_millis(self.federation_retry_max_ms),
            park_after: Duration::from_secs(self.federation_park_after_secs),
            directory_every: Duration::from_secs(self.federation_directory_secs),
            deadline: Duration::from_millis(self.identity_deadline_ms.max(5000)),
        }))
    }

    /// The services' mutual TLS: all three files or none (production
    /// requires them, checked in [`ServeArgs::validate`] after the token
    /// rules).
    fn tls(&self) -> Result<Option<corridor_runtime::tls::Tls>, String> {
        const FILES: &str = "CORRIDOR_TLS_CERT_FILE, CORRIDOR_TLS_KEY_FILE and CORRIDOR_TLS_CA_FILE (--tls-cert-file, --tls-key-file, --tls-ca-file)";
        match (&self.tls_cert_file, &self.tls_key_file, &self.tls_ca_file) {
            (Some(cert), Some(key), Some(ca)) => corridor_runtime::tls::Tls::from_files(
                cert,
                key,
                ca,
                self.tls_client_ca_file.as_deref(),
                self.tls_require_client_cert,
            )
            .map(Some)
            .map_err(|e| format!("mutual TLS ({FILES}): {e}")),
            (None, None, None) => {
                if self.tls_client_ca_file.is_some() || self.tls_require_client_cert {
                    return Err(format!(
                        "CORRIDOR_TLS_CLIENT_CA_FILE and CORRIDOR_TLS_REQUIRE_CLIENT_CERT need TLS: set {FILES}"
                    ));
                }
                Ok(None)
            }
            _ => Err(format!("mutual TLS needs all three of {FILES}, or none")),
        }
    }
}

impl ServeArgs {
    /// The jurisdiction, token lifetime and environment rules, checked.
    fn check_token_rules(&self) -> Result<String, String> {
        let jurisdiction = self.jurisdiction.trim().to_owned();
        let valid_jurisdiction = {
            let (country, subdivision) =
                jurisdiction.split_once('-').unwrap_or((&jurisdiction, ""));
            country.len() == 2
                && country.chars().all(|c| c.is_ascii_uppercase())
                && subdivision.len() <= 3
                && subdivision.chars().all(|c| c.is_ascii_alphanumeric())
                && !(jurisdiction.contains('-') && subdivision.is_empty())
        };
        if !valid_jurisdiction {
            return Err(format!(
                "CORRIDOR_JURISDICTION (--jurisdiction) must be an ISO 3166 code such as IT or DE-BY, not '{jurisdiction}'"
            ));
        }
        if self.token_lifetime_secs == 0 || self.token_lifetime_secs > 3600 {
            return Err(format!(
                "CORRIDOR_TOKEN_LIFETIME_SECS (--token-lifetime-secs) must be from 1 to 3600, not {}",
                self.token_lifetime_secs
            ));
        }
        if self.environment == Environment::Production && jurisdiction == "XX" {
            return Err("CORRIDOR_ENVIRONMENT=production needs the node's real jurisdiction: set CORRIDOR_JURISDICTION (--jurisdiction), e.g. IT or DE-BY".to_owned());
        }
        Ok(jurisdiction)
    }

    /// What the node signs access tokens with and says in them: the key
    /// (read, or in development generated once under the data directory),
    /// the issuer (the gateway's public URL) and the jurisdiction.
    pub fn token_settings(&self) -> Result<Tokens, String> {
        let jurisdiction = self.check_token_rules()?;
        // Only what signs tokens needs the key: the identity service and
        // `corridor token`. The other services verify with identity's JWKS.
        if self.environment == Environment::Production && self.signing_key_file.is_none() {
            return Err("CORRIDOR_ENVIRONMENT=production needs the node's signing key: set CORRIDOR_SIGNING_KEY_FILE (--signing-key-file) to a PKCS#8 PEM P-384 key; a development key is never generated in production".to_owned());
        }
        let issuer = match &self.gateway_base_url {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = self.gateway_addr;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}{}", corridor_gateway::BASE_PATH)
            }
        };
        let (key, label) = signing_key(self.signing_key_file.as_deref(), &self.data_dir)?;
        let retired = match &self.retired_signing_key_file {
            None => Vec::new(),
            Some(path) => {
                const VAR: &str = "CORRIDOR_RETIRED_SIGNING_KEY_FILE (--retired-signing-key-file)";
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| format!("{VAR}: cannot read {}: {e}", path.display()))?;
                let old = corridor_auth::keys::SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| format!("{VAR} {}: {e}", path.display()))?;
                if old.kid == key.kid {
                    return Err(format!(
                        "{VAR} is the signing key itself; give the key it replaced"
                    ));
                }
                vec![old]
            }
        };
        Ok(Tokens {
            settings: corridor_identity::tokens::TokenSettings {
                keys: corridor_auth::NodeKeys::from_keys(key, retired),
                token_url: format!("{issuer}/token"),
                issuer,
                jurisdiction,
                lifetime: Duration::from_secs(self.token_lifetime_secs),
            },
            key_label: label,
            development: self.signing_key_file.is_none(),
        })
    }
}

/// The node's signing key: from `file` when given, otherwise the
/// development key under `data_dir`, generated on first start.
fn signing_key(
    file: Option<&std::path::Path>,
    data_dir: &std::path::Path,
) -> Result<(corridor_auth::keys::SigningKey, String), String> {
    use corridor_auth::keys::SigningKey;
    let read = |path: &std::path::Path, var: &str| {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("{var}: cannot read {}: {e}", path.display()))?;
        SigningKey::from_pkcs8_pem(&pem).map_err(|e| format!("{var} {}: {e}", path.display()))
    };
    if let Some(path) = file {
        let key = read(path, "CORRIDOR_SIGNING_KEY_FILE (--signing-key-file)")?;
        return Ok((key, path.display().to_string()));
    }
    let path = data_dir.join("signing-key.pem");
    if !path.exists() {
        let pem = SigningKey::generate_pkcs8_pem().map_err(|e| e.to_string())?;
        std::fs::create_dir_all(data_dir).map_err(|e| {
            format!(
                "CORRIDOR_DATA_DIR: cannot create {}: {e}",
                data_dir.display()
            )
        })?;
        write_private(&path, &pem).map_err(|e| {
            format!(
                "cannot write the development signing key {}: {e}",
                path.display()
            )
        })?;
    }
    let key = read(&path, "the development signing key")?;
    Ok((
        key,
        format!(
            "{} (development key; set CORRIDOR_SIGNING_KEY_FILE in production)",
            path.display()
        ),
    ))
}

/// Write `text` to a new file that only its owner may read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// How other services reach one at `addr`: `url` when given (checked), or
/// `http://` (`https://` when `secure`, the node running TLS) and the
/// address (an unspecified host becomes 127.0.0.1).
fn service_url(
    url: Option<&str>,
    addr: SocketAddr,
    var: &str,
    secure: bool,
) -> Result<String, String> {
    let scheme = if secure { "https://" } else { "http://" };
    match url {
        Some(url) if url.starts_with(scheme) => Ok(url.to_owned()),
        Some(url) if secure && url.starts_with("http://") => Err(format!(
            "{var} must be an https:// URL when the node runs TLS, not '{url}'"
        )),
        Some(url) if !secure && url.starts_with("https://") => Err(format!(
            "{var} is an https:// URL, but the node does not run TLS: set CORRIDOR_TLS_CERT_FILE, CORRIDOR_TLS_KEY_FILE and CORRIDOR_TLS_CA_FILE, or use http://"
        )),
        Some(url) => Err(format!(
            "{var} must be an {scheme} URL, e.g. {scheme}127.0.0.1:50051, not '{url}'"
        )),
        None => {
            let mut addr = addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            Ok(format!("{scheme}{addr}"))
        }
    }
}

/// A URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Print a clap error; for a bad value, also name the environment variable
/// that may have supplied it.
pub fn report_parse_error(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    if matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) && let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg)
    {
        let long = arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_start_matches("--");
        let command = <Cli as CommandFactory>::command();
        let env = command
            .get_subcommands()
            .flat_map(|sub| sub.get_arguments())
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned());
        if let Some(env) = env {
            eprintln!("hint: this value comes from --{long} or the environment variable {env}");
        }
    }
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Only {
        #[command(flatten)]
        args: ServeArgs,
    }

    /// A data directory of this test process's own, so that no test writes
    /// a development key into the source tree.
    fn scratch() -> String {
        std::env::temp_dir()
            .join(format!("corridor-config-{}", std::process::id()))
            .display()
            .to_string()
    }

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let dir = scratch();
        let mut argv = vec!["serve"];
        if !extra.contains(&"--data-dir") {
            argv.extend(["--data-dir", dir.as_str()]);
        }
        argv.extend_from_slice(extra);
        Only::parse_from(argv).args
    }

    #[test]
    fn in_production_only_the_identity_service_needs_the_signing_key() {
        for service in ["gateway", "encounters", "referrals"] {
            let err = serve_args(&[
                "--service",
                service,
                "--environment",
                "production",
                "--jurisdiction",
                "IT",
            ])
            .validate()
            .unwrap_err();
            assert!(
                !err.contains("CORRIDOR_SIGNING_KEY_FILE"),
                "{service}: {err}"
            );
            assert!(err.contains("CORRIDOR_TLS_CERT_FILE"), "{service}: {err}");
        }
        let err = serve_args(&[
            "--service",
            "identity",
            "--environment",
            "production",
            "--jurisdiction",
            "IT",
        ])
        .validate()
        .unwrap_err();
        assert!(err.contains("CORRIDOR_SIGNING_KEY_FILE"), "{err}");
    }

    #[test]
    fn a_node_running_gateway_and_identity_wants_a_transaction_timeout_longer_than_a_request() {
        let dir = std::env::temp_dir().join(format!("corridor-txn-{}", std::process::id()));
        let dir_text = dir.display().to_string();
        let err = serve_args(&["--data-dir", &dir_text, "--transaction-timeout-secs", "60"])
            .validate()
            .unwrap_err();
        assert!(
            err.contains("CORRIDOR_TRANSACTION_TIMEOUT_SECS (60)")
                && err.contains("CORRIDOR_GATEWAY_TIMEOUT_SECS (60)"),
            "{err}"
        );
        // Identity alone does not know how long its gateways let a request run.
        let alone = serve_args(&[
            "--data-dir",
            &dir_text,
            "--service",
            "identity",
            "--transaction-timeout-secs",
            "3",
        ])
        .validate();
        assert!(alone.is_ok(), "{:?}", alone.err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn production_refuses_to_start_without_a_configured_key_or_a_real_jurisdiction() {
        let dir = std::env::temp_dir().join(format!("corridor-prod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir_text = dir.display().to_string();
        let err = serve_args(&[
            "--data-dir",
            &dir_text,
            "--environment",
            "production",
            "--jurisdiction",
            "IT",
        ])
        .validate()
        .unwrap_err();
        assert!(err.contains("CORRIDOR_SIGNING_KEY_FILE"), "{err}");
        assert!(
            !dir.join("signing-key.pem").exists(),
            "no development key is made in production"
        );
        let key = dir.join("node-key.pem");
        std::fs::write(
            &key,
            corridor_auth::keys::SigningKey::generate_pkcs8_pem().unwrap(),
        )
        .unwrap();
        let key_text = key.display().to_string();
        let err = serve_args(&[
            "--data-dir",
            &dir_text,
            "--environment",
            "production",
            "--signing-key-file",
            &key_text,
        ])
        .validate()
        .unwrap_err();
        assert!(err.contains("CORRIDOR_JURISDICTION"), "{err}");
        let err = serve_args(&[
            "--data-dir",
            &dir_text,
            "--environment",
            "production",
            "--signing-key-file",
            &key_text,
            "--jurisdiction",
            "IT",
        ])
        .validate()
        .unwrap_err();
        assert!(err.contains("CORRIDOR_TLS_CERT_FILE"), "{err}");
        let tls = dir.join("tls");
        CertsArgs {
            out: tls.clone(),
            hosts: Vec::new(),
            clients: Vec::new(),
            node: None,
        }
        .write()
        .unwrap();
        let file = |name: &str| tls.join(name).display().to_string();
        let node = serve_args(&[
            "--data-dir",
            &dir_text,
            "--environment",
            "production",
            "--signing-key-file",
            &key_text,
            "--jurisdiction",
            "IT",
            "--tls-cert-file",
            &file("node.pem"),
            "--tls-key-file",
            &file("node-key.pem"),
            "--tls-ca-file",
            &file("ca.pem"),
        ])
        .validate()
        .unwrap();
        assert!(!node.tokens.unwrap().development);
        assert!(node.tls);
        assert!(node.identity_url.starts_with("https://"));
        assert!(node.services.iter().all(|s| s.config.tls.is_some()));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_federating_node_needs_its_id_a_real_jurisdiction_mutual_tls_and_valid_peers() {
        let dir = std::env::temp_dir().join(format!("corridor-federation-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir_text = dir.display().to_string();
        let tls = dir.join("tls");
        let written = CertsArgs {
            out: tls.clone(),
            hosts: Vec::new(),
            clients: Vec::new(),
            node: Some("it-1".to_owned()),
        }
        .write()
        .unwrap();
        assert_eq!(written.len(), 4);
        let file = |name: &str| tls.join(name).display().to_string();
        let pem = std::fs::read_to_string(tls.join("node.pem")).unwrap();
        assert_eq!(
            corridor_runtime::tls::node_names(&pem).unwrap(),
            ["it-1"],
            "the node certificate names its node"
        );
        let peers = dir.join("peers.toml");
        std::fs::write(
            &peers,
            format!(
                "[[peer]]\nnode = \"fr-1\"\njurisdiction = \"FR\"\nendpoint = \"https://127.0.0.1:51054\"\nca_file = \"{}\"\n",
                file("ca.pem")
            ),
        )
        .unwrap();
        let peers_text = peers.display().to_string();
        let tls_args = [
            "--tls-cert-file".to_owned(),
            file("node.pem"),
            "--tls-key-file".to_owned(),
            file("node-key.pem"),
            "--tls-ca-file".to_owned(),
            file("ca.pem"),
        ];
        let with = |extra: &[&str], tls: bool| {
            let mut args: Vec<&str> = vec!["--data-dir", &dir_text];
            args.extend_from_slice(extra);
            if tls {
                args.extend(tls_args.iter().map(String::as_str));
            }
            serve_args(&args).validate()
        };
        let err = with(&["--peers-file", &peers_text, "--jurisdiction", "IT"], true).unwrap_err();
        assert!(err.contains("CORRIDOR_NODE_ID"), "{err}");
        let err = with(&["--node-id", "it-1"], true).unwrap_err();
        assert!(err.contains("CORRIDOR_PEERS_FILE"), "{err}");
        let err = with(&["--node-id", "it-1", "--peers-file", &peers_text], true).unwrap_err();
        assert!(err.contains("CORRIDOR_JURISDICTION"), "{err}");
        let err = with(
            &[
                "--node-id",
                "it-1",
                "--peers-file",
                &peers_text,
                "--jurisdiction",
                "IT",
            ],
            false,
        )
        .unwrap_err();
        assert!(err.contains("mutual TLS"), "{err}");
        let err = with(
            &[
                "--node-id",
                "It 1",
                "--peers-file",
                &peers_text,
                "--jurisdiction",
                "IT",
            ],
            true,
        )
        .unwrap_err();
        assert!(err.contains("lower-case"), "{err}");
        let node = with(
            &[
                "--node-id",
                "it-1",
                "--peers-file",
                &peers_text,
                "--jurisdiction",
                "IT",
            ],
            true,
        )
        .unwrap();
        let federation = node.federation.expect("federates");
        assert_eq!(federation.node_id, "it-1");
        assert_eq!(federation.peers[0].node_id, "fr-1");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn after_a_key_rotation_tokens_of_the_retired_key_still_verify_and_new_ones_use_the_new_key() {
        let dir = std::env::temp_dir().join(format!("corridor-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write_key = |name: &str| {
            let path = dir.join(name);
            std::fs::write(
                &path,
                corridor_auth::keys::SigningKey::generate_pkcs8_pem().unwrap(),
            )
            .unwrap();
            path.display().to_string()
        };
        let (old, new) = (write_key("old.pem"), write_key("new.pem"));
        let token_with = |key: &str| {
            TokenOnly::parse_from(["token", "--signing-key-file", key])
                .args
                .mint()
                .unwrap()
        };
        let before = token_with(&old);
        let settings = serve_args(&[
            "--signing-key-file",
            &new,
            "--retired-signing-key-file",
            &old,
        ])
        .validate()
        .unwrap()
        .tokens
        .unwrap()
        .settings;
        let verifier =
            corridor_auth::Verifier::for_node(&settings.jwks(), &settings.issuer).unwrap();
        verifier
            .verify(&before)
            .expect("a token of the retired key");
        verifier
            .verify(&token_with(&new))
            .expect("a token of the new key");
        let issued = corridor_auth::tokens::issue(
            &settings.keys,
            &corridor_auth::AccessClaims {
                iss: settings.issuer.clone(),
                sub: "c".to_owned(),
                aud: settings.issuer.clone(),
                exp: u64::MAX / 2,
                iat: 0,
                jti: "j".to_owned(),
                organization: "Organization/o".to_owned(),
                jurisdiction: "XX".to_owned(),
                scope: "system/Patient.r".to_owned(),
                admin: false,
                cnf: None,
            },
        )
        .unwrap();
        let new_only = corridor_identity::tokens::TokenSettings {
            keys: corridor_auth::NodeKeys::from_keys(
                corridor_auth::keys::SigningKey::from_pkcs8_pem(
                    &std::fs::read_to_string(&new).unwrap(),
                )
                .unwrap(),
                Vec::new(),
            ),
            ..settings.clone()
        };
        corridor_auth::Verifier::for_node(&new_only.jwks(), &settings.issuer)
            .unwrap()
            .verify(&issued)
            .expect("the node signs with the new key only");
        let err = serve_args(&[
            "--signing-key-file",
            &new,
            "--retired-signing-key-file",
            &new,
        ])
        .validate()
        .unwrap_err();
        assert!(err.contains("the signing key itself"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn tls_needs_all_three_files_https_urls_and_never_overwrites_certificates() {
        let dir = std::env::temp_dir().join(format!("corridor-tls-{}", std::process::id()));
        let certs = CertsArgs {
            out: dir.clone(),
            hosts: vec!["identity.corridor.internal".to_owned()],
            clients: vec!["clinic-ehr".to_owned()],
            node: None,
        };
        let written = certs.write().unwrap();
        assert_eq!(written.len(), 6, "{written:?}");
        let again = certs.write().unwrap_err();
        assert!(again.contains("never overwritten"), "{again}");
        let file = |name: &str| dir.join(name).display().to_string();
        let scratch = scratch();
        let err = serve_args(&["--data-dir", &scratch, "--tls-cert-file", &file("node.pem")])
            .validate()
            .unwrap_err();
        assert!(err.contains("all three"), "{err}");
        let all = [
            "--data-dir",
            &scratch,
            "--tls-cert-file",
            &file("node.pem"),
            "--tls-key-file",
            &file("node-key.pem"),
            "--tls-ca-file",
            &file("ca.pem"),
        ];
        let mut plain_url = all.to_vec();
        plain_url.extend(["--identity-url", "http://127.0.0.1:50051"]);
        let err = serve_args(&plain_url).validate().unwrap_err();
        assert!(err.contains("must be an https:// URL"), "{err}");
        // A client certificate is not a service's: refused, naming why.
        let mut client_cert = all.to_vec();
        let client = file("clinic-ehr.pem");
        client_cert[3] = &client;
        let client_key = file("clinic-ehr-key.pem");
        client_cert[5] = &client_key;
        let err = serve_args(&client_cert).validate().unwrap_err();
        assert!(err.contains("names no service"), "{err}");
        let node = serve_args(&all).validate().unwrap();
        assert_eq!(node.encounters_url, "https://127.0.0.1:50052");
        let err = serve_args(&["--data-dir", &scratch, "--tls-require-client-cert"])
            .validate()
            .unwrap_err();
        assert!(err.contains("need TLS"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[derive(Debug, Parser)]
    struct TokenOnly {
        #[command(flatten)]
        args: TokenArgs,
    }

    #[test]
    fn corridor_token_signs_what_the_node_verifies_for_the_organization_asked() {
        let dir = std::env::temp_dir().join(format!("corridor-cli-{}", std::process::id()));
        let dir_text = dir.display().to_string();
        let token = TokenOnly::parse_from([
            "token",
            "--organization",
            "Organization/ngo",
            "--scope",
            "system/Patient.rs",
            "--data-dir",
            &dir_text,
        ])
        .args
        .mint()
        .unwrap();
        let settings = serve_args(&["--data-dir", &dir_text])
            .validate()
            .unwrap()
            .tokens
            .unwrap()
            .settings;
        let claims = corridor_auth::Verifier::for_node(&settings.jwks(), &settings.issuer)
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(claims.organization, "Organization/ngo");
        assert_eq!(claims.scope, "system/Patient.rs");
        assert!(!claims.admin, "an operator's token only when asked");
        let err = TokenOnly::parse_from([
            "token",
            "--organization",
            "Patient/x",
            "--data-dir",
            &dir_text,
        ])
        .args
        .mint()
        .unwrap_err();
        assert!(err.contains("--organization"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_development_signing_key_is_made_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("corridor-key-{}", std::process::id()));
        let dir_text = dir.display().to_string();
        let first = serve_args(&["--data-dir", &dir_text]).validate().unwrap();
        let again = serve_args(&["--data-dir", &dir_text]).validate().unwrap();
        let (first, again) = (first.tokens.unwrap(), again.tokens.unwrap());
        assert_eq!(
            first.settings.keys.current().kid,
            again.settings.keys.current().kid
        );
        assert!(first.key_label.contains("development key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("signing-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_node_without_identity_reads_and_writes_no_signing_key() {
        let dir = std::env::temp_dir().join(format!("corridor-nokey-{}", std::process::id()));
        let dir_text = dir.display().to_string();
        let node = serve_args(&[
            "--data-dir",
            &dir_text,
            "--service",
            "encounters",
            "--signing-key-file",
            "/nonexistent/key.pem",
        ])
        .validate()
        .unwrap();
        assert!(node.tokens.is_none());
        assert!(!dir.join("signing-key.pem").exists());
    }

    #[test]
    fn an_unreadable_or_foreign_signing_key_is_refused_naming_the_variable() {
        let err = serve_args(&["--signing-key-file", "/nonexistent/key.pem"])
            .validate()
            .unwrap_err();
        assert!(err.contains("CORRIDOR_SIGNING_KEY_FILE"), "{err}");
        let path =
            std::env::temp_dir().join(format!("corridor-notakey-{}.pem", std::process::id()));
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = serve_args(&["--signing-key-file", &path.display().to_string()])
            .validate()
            .unwrap_err();
        assert!(err.contains("P-384"), "{err}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_jurisdiction_that_is_not_iso_3166_is_refused() {
        for bad in ["Italy", "it", "DE-", "DE-BAVARIA"] {
            let err = serve_args(&["--jurisdiction", bad]).validate().unwrap_err();
            assert!(err.contains("CORRIDOR_JURISDICTION"), "{bad}: {err}");
        }
        for good in ["IT", "DE-BY"] {
            assert!(
                serve_args(&["--jurisdiction", good]).validate().is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn defaults_put_each_service_in_a_sqlite_file_under_data() {
        let node = serve_args(&["--data-dir", "/tmp/x"]).validate().unwrap();
        let urls: Vec<&str> = node
            .services
            .iter()
            .map(|s| s.config.store.url.expose_secret())
            .collect();
        assert_eq!(
            urls,
            [
                "sqlite:///tmp/x/identity.db",
                "sqlite:///tmp/x/encounters.db",
                "sqlite:///tmp/x/referrals.db"
            ]
        );
        assert_eq!(node.identity_url, "http://127.0.0.1:50051");
        assert_eq!(node.encounters_url, "http://127.0.0.1:50052");
        assert_eq!(node.referrals_url, "http://127.0.0.1:50053");
    }

    #[test]
    fn encounters_reach_identity_on_its_address_unless_told_otherwise() {
        let node = serve_args(&["--identity-addr", "0.0.0.0:7000"])
            .validate()
            .unwrap();
        assert_eq!(node.identity_url, "http://127.0.0.1:7000");
        let node = serve_args(&["--identity-url", "http://identity:50051"])
            .validate()
            .unwrap();
        assert_eq!(node.identity_url, "http://identity:50051");
        let err = serve_args(&["--identity-url", "identity:50051"])
            .validate()
            .unwrap_err();
        assert!(err.contains("CORRIDOR_IDENTITY_URL"), "{err}");
    }

    #[test]
    fn a_per_service_url_overrides_the_shared_one() {
        let node = serve_args(&[
            "--database-url",
            "postgres://a@h/shared",
            "--identity-database-url",
            "postgres://a@h/identity",
        ])
        .validate()
        .unwrap();
        assert_eq!(
            node.services[0].config.store.url.expose_secret(),
            "postgres://a@h/identity"
        );
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_naming_the_variable() {
        let err = serve_args(&["--database-url", "mysql://x"])
            .validate()
            .unwrap_err();
        assert!(err.contains("CORRIDOR_DATABASE_URL"), "{err}");
    }

    #[test]
    fn a_zero_resource_limit_is_refused_naming_the_variable() {
        let err = serve_args(&["--max-resource-bytes", "0"])
            .validate()
            .unwrap_err();
        assert!(err.contains("CORRIDOR_MAX_RESOURCE_BYTES"), "{err}");
    }

    #[test]
    fn a_bad_match_rules_file_is_refused_naming_the_variable_and_the_fault() {
        let dir = std::env::temp_dir().join(format!("corridor-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules.toml");
        let text =
            corridor_matching::rules::DEFAULT_RULES.replace("certain = 24.0", "certain = 2.0");
        std::fs::write(&path, text).unwrap();
        let err = serve_args(&["--match-rules", path.to_str().unwrap()])
            .validate()
            .unwrap_err();
        assert!(
            err.contains("CORRIDOR_MATCH_RULES") && err.contains("grades must fall"),
            "{err}"
        );
        let err = serve_args(&["--match-rules", "/nonexistent/rules.toml"])
            .validate()
            .unwrap_err();
        assert!(err.contains("cannot read /nonexistent/rules.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passwords_are_redacted_from_printed_urls() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
