//! A federated node as its own process: the `corridor` binary with its own
//! data directory (or PostgreSQL database), development certificates that
//! name it, a peers file, and free ports on loopback. Tests talk to it over
//! gRPC with mutual TLS, presenting its node certificate (which makes a
//! call without a token the node's own, as an operator's CLI is) and, to
//! act for an organization, a token `corridor token` signs with its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::federation::v1 as fedpb;
use corridor_proto::federation::v1::federation_operator_service_client::FederationOperatorServiceClient;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_tests::{Backend, TestDatabase, bearer, corridor_binary, free_port};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// How many tests of this suite run their nodes at once. Every node is a
/// whole `corridor serve` process. On a 2-core machine, sixteen tests at
/// once (two or three processes each) starved the nodes until calls between
/// a node's own services ran past their deadlines, and four at once did too
/// when the machine was busy with anything else. Tests wait their turn here;
/// the suite is CPU-bound anyway, so it takes hardly longer.
const TURNS: usize = 2;

/// Wait for a turn to run nodes; the turn lasts while the permit is held.
pub async fn turn() -> tokio::sync::OwnedSemaphorePermit {
    static TURN: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    Arc::clone(TURN.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(TURNS))))
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

/// Sends a token with every call, or says the call is the node's
/// referrals service's own.
#[derive(Debug, Clone)]
pub struct Acting {
    token: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Acting {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        match &self.token {
            Some(token) => request
                .metadata_mut()
                .insert("authorization", token.clone()),
            None => request.metadata_mut().insert(
                corridor_runtime::auth::ACTING_SERVICE,
                MetadataValue::from_static("referrals"),
            ),
        };
        Ok(request)
    }
}

/// A channel to a node's service.
pub type Authed = InterceptedService<Channel, Acting>;

/// One node: a `corridor serve` process and everything it runs on.
pub struct Node {
    pub id: &'static str,
    pub jurisdiction: &'static str,
    dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
    env: Vec<(String, String)>,
    pub identity_port: u16,
    pub encounters_port: u16,
    pub referrals_port: u16,
    pub federation_port: u16,
    pub gateway_port: u16,
    /// Metrics and health for probes, in plaintext.
    pub ops_port: u16,
    child: Option<Child>,
    peers: String,
    /// How many times the process was started (its log is appended to).
    started: usize,
}

impl Node {
    /// Prepare node `id` of `jurisdiction`: certificates, ports and a
    /// database of `backend`. None when that backend is not available.
    pub async fn prepare(
        id: &'static str,
        jurisdiction: &'static str,
        backend: Backend,
    ) -> Option<Self> {
        corridor_tests::init_logs();
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::new(Backend::Postgres).await?),
        };
        let dir = tempfile::tempdir().expect("node dir");
        let out = Command::new(corridor_binary())
            .args(["certs", "--out"])
            .arg(dir.path().join("tls"))
            .args(["--node", id])
            .output()
            .expect("corridor certs");
        assert!(
            out.status.success(),
            "corridor certs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let file = |name: &str| dir.path().join(name).display().to_string();
        let mut env: Vec<(String, String)> = vec![
            ("CORRIDOR_DATA_DIR", file("data")),
            ("CORRIDOR_IDENTITY_ADDR", format!("127.0.0.1:{}", ports[0])),
            (
                "CORRIDOR_ENCOUNTERS_ADDR",
                format!("127.0.0.1:{}", ports[1]),
            ),
            ("CORRIDOR_REFERRALS_ADDR", format!("127.0.0.1:{}", ports[2])),
            (
                "CORRIDOR_FEDERATION_ADDR",
                format!("127.0.0.1:{}", ports[3]),
            ),
            ("CORRIDOR_GATEWAY_ADDR", format!("127.0.0.1:{}", ports[4])),
            ("CORRIDOR_OPS_ADDR", format!("127.0.0.1:{}", ports[5])),
            ("CORRIDOR_TLS_CERT_FILE", file("tls/node.pem")),
            ("CORRIDOR_TLS_KEY_FILE", file("tls/node-key.pem")),
            ("CORRIDOR_TLS_CA_FILE", file("tls/ca.pem")),
            ("CORRIDOR_NODE_ID", id.to_owned()),
            ("CORRIDOR_JURISDICTION", jurisdiction.to_owned()),
            ("CORRIDOR_PEERS_FILE", file("peers.toml")),
            ("CORRIDOR_FEDERATION_DIRECTORY_SECS", "1".to_owned()),
            ("CORRIDOR_FEDERATION_RETRY_MIN_MS", "50".to_owned()),
            ("CORRIDOR_FEDERATION_RETRY_MAX_MS", "500".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(db) = &db {
            env.push(("CORRIDOR_DATABASE_URL".to_owned(), db.url.clone()));
        }
        Some(Self {
            id,
            jurisdiction,
            dir,
            _db: db,
            env,
            identity_port: ports[0],
            encounters_port: ports[1],
            referrals_port: ports[2],
            federation_port: ports[3],
            gateway_port: ports[4],
            ops_port: ports[5],
            child: None,
            peers: String::new(),
            started: 0,
        })
    }

    /// The node's metrics, as Prometheus scrapes them.
    pub async fn metrics(&self) -> corridor_tests::Scrape {
        corridor_tests::Scrape::of(&format!("127.0.0.1:{}", self.ops_port)).await
    }

    /// The node's folder: its certificates are in `tls/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where peers reach this node's federation API.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.federation_port)
    }

    /// Take `peer` as a peer, reached at `endpoint` (its own when None).
    pub fn peer_with(&mut self, peer: &Node, endpoint: Option<String>) {
        self.peer_raw(
            peer.id,
            peer.jurisdiction,
            &endpoint.unwrap_or_else(|| peer.endpoint()),
            &peer.dir().join("tls/ca.pem"),
        );
    }

    /// Take node `id` of `jurisdiction` as a peer, at `endpoint`, certified
    /// by the CA in `ca_file`.
    pub fn peer_raw(&mut self, id: &str, jurisdiction: &str, endpoint: &str, ca_file: &Path) {
        self.peers.push_str(&format!(
            "[[peer]]\nnode = \"{id}\"\njurisdiction = \"{jurisdiction}\"\nendpoint = \"{endpoint}\"\nca_file = \"{}\"\n\n",
            ca_file.display()
        ));
    }

    /// Start the process and wait until it serves.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "node {} runs already", self.id);
        std::fs::write(self.dir.path().join("peers.toml"), &self.peers).expect("peers file");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(corridor_binary())
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start corridor serve");
        self.child = Some(child);
        self.started += 1;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("node {} exited with {status}:\n{}", self.id, self.log());
            }
            let ready = self.log().matches("corridor node ready").count();
            if ready >= self.started && self.serving().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not start:\n{}",
                self.id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the referrals service answers SERVING and the federation
    /// port accepts connections (only peers may call it).
    async fn serving(&self) -> bool {
        if std::net::TcpStream::connect(self.federation_addr()).is_err() {
            return false;
        }
        let Ok(channel) = self.try_channel(self.referrals_port).await else {
            return false;
        };
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok_and(|r| r.into_inner().status == 1)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// What the node printed and logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stop the node with SIGTERM and wait until it has exited.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.wait();
    }

    /// Kill the node with SIGKILL: no draining, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A token signed with the node's key acting for `organization`.
    pub fn token(&self, organization: &str) -> String {
        corridor_tests::corridor_token(&["--organization", organization], &self.env)
    }

    async fn try_channel(&self, port: u16) -> Result<Channel, tonic::transport::Error> {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.path().join("tls").join(name)).expect("certificate")
        };
        Channel::from_shared(format!("https://127.0.0.1:{port}"))
            .expect("endpoint")
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read("ca.pem")))
                    .identity(Identity::from_pem(read("node.pem"), read("node-key.pem"))),
            )?
            .connect()
            .await
    }

    /// A channel to one of the node's services; with `token`, calls act
    /// for its organization, else as the node's referrals service (as the
    /// operator's CLI does, with the node's certificate).
    pub async fn channel(&self, port: u16, token: Option<&str>) -> Authed {
        let channel = self
            .try_channel(port)
            .await
            .unwrap_or_else(|e| panic!("connect to node {} port {port}: {e}", self.id));
        InterceptedService::new(
            channel,
            Acting {
                token: token.map(bearer),
            },
        )
    }

    /// The identity service over mutual TLS with the node's certificate,
    /// with neither a token nor a service named.
    pub async fn bare_identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(
            self.try_channel(self.identity_port)
                .await
                .expect("connect to identity"),
        )
    }

    pub async fn identity(&self, token: Option<&str>) -> IdentityServiceClient<Authed> {
        IdentityServiceClient::new(self.channel(self.identity_port, token).await)
    }

    pub async fn encounters(&self, token: Option<&str>) -> EncountersServiceClient<Authed> {
        EncountersServiceClient::new(self.channel(self.encounters_port, token).await)
    }

    pub async fn referrals(&self, token: Option<&str>) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::new(self.channel(self.referrals_port, token).await)
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// The deliveries to peers in `state`, as the operator sees them.
    pub async fn deliveries(&self, state: &str) -> Vec<fedpb::Delivery> {
        let mut operator =
            FederationOperatorServiceClient::new(self.channel(self.referrals_port, None).await);
        operator
            .list_deliveries(fedpb::ListDeliveriesRequest {
                state: state.to_owned(),
                peer: String::new(),
                limit: 10_000,
            })
            .await
            .expect("list deliveries")
            .into_inner()
            .deliveries
    }

    /// The federation API's address.
    pub fn federation_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.federation_port))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- node {} log (tail)", self.id);
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        self.kill();
    }
}
