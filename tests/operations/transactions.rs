//! Transactions that span services when a process fails: the services of
//! one node run as separate `corridor serve --service …` processes, as in
//! production, and the test stops or kills one of them mid-transaction.

use std::path::Path;
use std::time::{Duration, Instant};

use corridor_tests::{Backend, TestDatabase, for_each_backend, free_port};
use serde_json::{Value, json};

use crate::process::Process;

for_each_backend!(
    with_encounters_stopped_a_patient_and_encounter_transaction_fails_and_leaves_no_patient,
    a_gateway_killed_mid_transaction_leaves_no_part_of_it_visible_after_restart,
);

/// The service addresses and database of one node, shared by its
/// processes.
struct Node {
    identity: u16,
    encounters: u16,
    referrals: u16,
    federation: u16,
    /// On PostgreSQL, the node's database (dropped with it).
    database: Option<TestDatabase>,
}

impl Node {
    /// A node on `backend`, or None when it is skipped here.
    async fn new(backend: Backend) -> Option<Self> {
        corridor_tests::init_logs();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::new(Backend::Postgres).await?),
        };
        Some(Self {
            identity: free_port(),
            encounters: free_port(),
            referrals: free_port(),
            federation: free_port(),
            database,
        })
    }

    /// `corridor serve` running `services` of this node, with its gateway
    /// (if it runs one) on `gateway`.
    fn start(
        &self,
        dir: &Path,
        name: &str,
        services: &str,
        gateway: u16,
        extra: &[(&str, &str)],
    ) -> Process {
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let mut env: Vec<(String, String)> = vec![
            ("CORRIDOR_SERVICES".into(), services.into()),
            ("CORRIDOR_IDENTITY_ADDR".into(), addr(self.identity)),
            ("CORRIDOR_ENCOUNTERS_ADDR".into(), addr(self.encounters)),
            ("CORRIDOR_REFERRALS_ADDR".into(), addr(self.referrals)),
            ("CORRIDOR_FEDERATION_ADDR".into(), addr(self.federation)),
            ("CORRIDOR_GATEWAY_ADDR".into(), addr(gateway)),
        ];
        if let Some(database) = &self.database {
            env.push(("CORRIDOR_DATABASE_URL".into(), database.url.clone()));
        }
        env.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::start(dir, name, &env)
    }
}

/// A REST client of one gateway, with an operator's token.
struct Rest {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Rest {
    fn new(gateway: u16, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{gateway}/fhir"),
            token: token.to_owned(),
        }
    }

    async fn post(&self, body: &Value) -> (u16, Value) {
        let answer = self
            .http
            .post(&self.base)
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("the gateway answers");
        let status = answer.status().as_u16();
        let body = answer.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// How many resources `query` (`Type?…`) matches, or None while the
    /// gateway cannot be reached.
    async fn count(&self, query: &str) -> Option<i64> {
        let answer = self
            .http
            .get(format!("{}/{query}&_summary=count", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .ok()?;
        assert!(answer.status().is_success(), "{query}: {}", answer.status());
        let body = answer.bytes().await.ok()?;
        serde_json::from_slice::<Value>(&body).ok()?["total"].as_i64()
    }
}

/// A Patient and `observations` Observations about them, one transaction
/// with parts at identity and encounters.
fn patient_with_observations(family: &str, code: &str, observations: usize) -> Value {
    let patient = "urn:uuid:5f0c7a2e-9d3b-4e8f-a1b2-c3d4e5f60718";
    let mut entries = vec![json!({
        "fullUrl": patient,
        "resource": {"resourceType": "Patient", "name": [{"family": family}]},
        "request": {"method": "POST", "url": "Patient"}
    })];
    for value in 0..observations {
        entries.push(json!({
            "resource": {"resourceType": "Observation", "status": "final",
                         "code": {"coding": [{"system": "https://corridor.test/codes", "code": code}]},
                         "subject": {"reference": patient},
                         "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
            "request": {"method": "POST", "url": "Observation"}
        }));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Wait until `done` holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn with_encounters_stopped_a_patient_and_encounter_transaction_fails_and_leaves_no_patient(
    backend: Backend,
) {
    let Some(node) = Node::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = free_port();
    let mut main = node.start(
        dir.path(),
        "main",
        "identity,referrals,gateway",
        gateway,
        &[],
    );
    let mut encounters = node.start(dir.path(), "encounters", "encounters", free_port(), &[]);
    main.ready().await;
    encounters.ready().await;
    let rest = Rest::new(gateway, &main.admin_token());
    let bundle = patient_with_observations("Unfinished", "stopped-1", 1);

    drop(encounters);
    let (status, outcome) = rest.post(&bundle).await;
    assert_eq!(status, 503, "{outcome}");
    assert!(
        outcome.to_string().contains("encounters"),
        "the error names the service that could not be reached: {outcome}"
    );
    assert_eq!(rest.count("Patient?family=Unfinished").await, Some(0));

    // Once encounters is back, the same Bundle goes through, whole.
    let mut encounters = node.start(
        dir.path(),
        "encounters-again",
        "encounters",
        free_port(),
        &[],
    );
    encounters.ready().await;
    let (status, answer) = rest.post(&bundle).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rest.count("Patient?family=Unfinished").await, Some(1));
    assert_eq!(
        rest.count("Observation?code=https://corridor.test/codes|stopped-1")
            .await,
        Some(1)
    );
}

async fn a_gateway_killed_mid_transaction_leaves_no_part_of_it_visible_after_restart(
    backend: Backend,
) {
    let Some(node) = Node::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let timeout = [("CORRIDOR_TRANSACTION_TIMEOUT_SECS", "3")];
    let mut services = node.start(
        dir.path(),
        "services",
        "identity,encounters,referrals",
        free_port(),
        &timeout,
    );
    services.ready().await;
    let (first, second) = (free_port(), free_port());
    let mut doomed = node.start(dir.path(), "gateway", "gateway", first, &[]);
    let mut observer = node.start(dir.path(), "observer", "gateway", second, &[]);
    doomed.ready().await;
    observer.ready().await;
    let token = services.admin_token();
    let watching = Rest::new(second, &token);
    let patients = "Patient?family=Interrupted";
    let observations = "Observation?code=https://corridor.test/codes|killed-1";

    // Enough Observations that the encounters part takes a while.
    let bundle = patient_with_observations("Interrupted", "killed-1", 900);
    let sender = Rest::new(first, &token);
    let sent = tokio::spawn(async move { sender.post(&bundle).await });
    // The identity part is written and visible: kill the gateway now.
    eventually(
        Duration::from_secs(60),
        "the identity part is written",
        || async { watching.count(patients).await == Some(1) },
    )
    .await;
    doomed.kill();
    if let Ok((status, answer)) = sent.await {
        assert_ne!(
            status, 200,
            "the transaction finished before the gateway was killed: {answer}"
        );
    }

    // Past the node's transaction timeout, the identity service presumes
    // the transaction aborted and purges every part.
    eventually(Duration::from_secs(30), "the parts are purged", || async {
        watching.count(patients).await == Some(0) && watching.count(observations).await == Some(0)
    })
    .await;
    let mut restarted = node.start(dir.path(), "gateway-again", "gateway", first, &[]);
    restarted.ready().await;
    let again = Rest::new(first, &token);
    assert_eq!(again.count(patients).await, Some(0));
    assert_eq!(again.count(observations).await, Some(0));
    assert!(
        services.log().contains("presumed aborted"),
        "the identity service says what it did:\n{}",
        services.log()
    );
}
