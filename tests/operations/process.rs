//! A `corridor serve` process for a test, on free loopback ports, killed
//! when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corridor_tests::{corridor_binary, free_port};

/// One running `corridor serve`.
pub struct Process {
    child: Option<Child>,
    log: std::path::PathBuf,
    env: Vec<(String, String)>,
    /// host:port of the operations port.
    pub ops: String,
    pub identity_port: u16,
    pub referrals_port: u16,
    pub gateway_port: u16,
}

impl Process {
    /// Start `corridor serve` with data under `dir`, on fresh ports, with
    /// `extra` settings; `name` tells its log apart.
    pub fn start(dir: &Path, name: &str, extra: &[(&str, &str)]) -> Self {
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
        let mut env: Vec<(String, String)> = vec![
            (
                "CORRIDOR_DATA_DIR".into(),
                dir.join("data").display().to_string(),
            ),
            ("CORRIDOR_IDENTITY_ADDR".into(), addr(0)),
            ("CORRIDOR_ENCOUNTERS_ADDR".into(), addr(1)),
            ("CORRIDOR_REFERRALS_ADDR".into(), addr(2)),
            ("CORRIDOR_GATEWAY_ADDR".into(), addr(3)),
            ("CORRIDOR_FEDERATION_ADDR".into(), addr(4)),
            ("CORRIDOR_OPS_ADDR".into(), addr(5)),
            ("RUST_LOG".into(), "info".into()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(corridor_binary())
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start corridor serve");
        Self {
            child: Some(child),
            log,
            env,
            ops: addr(5),
            identity_port: ports[0],
            referrals_port: ports[2],
            gateway_port: ports[3],
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the operations port reports the process ready, as a
    /// Kubernetes readiness probe asks.
    pub async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("corridor serve exited with {status}:\n{}", self.log());
            }
            if corridor_runtime::ops::check(&self.ops, "").await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready within 90 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kill the process with SIGKILL, as a crash would: no shutdown runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// An operator's token, signed with the node's key.
    pub fn admin_token(&self) -> String {
        corridor_tests::corridor_token(&["--admin"], &self.env)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A whole node (`corridor serve`, every service) on `backend`, ready, with
/// its data directory and, on PostgreSQL, its database; None when the
/// backend is skipped here.
pub async fn node(
    backend: corridor_tests::Backend,
) -> Option<(
    tempfile::TempDir,
    Option<corridor_tests::TestDatabase>,
    Process,
)> {
    corridor_tests::init_logs();
    let dir = tempfile::tempdir().expect("node dir");
    let db = match backend {
        corridor_tests::Backend::Sqlite => None,
        corridor_tests::Backend::Postgres => {
            Some(corridor_tests::TestDatabase::new(corridor_tests::Backend::Postgres).await?)
        }
    };
    let mut extra = Vec::new();
    if let Some(db) = &db {
        extra.push(("CORRIDOR_DATABASE_URL", db.url.as_str()));
    }
    let mut process = Process::start(dir.path(), "node", &extra);
    process.ready().await;
    Some((dir, db, process))
}
