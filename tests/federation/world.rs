//! Two federated nodes and the parties of a cross-border referral: node A
//! (it-1, Italy) where an NGO refers, node B (fr-1, France) where a
//! hospital that accepts cross-border referrals performs. Optionally each
//! node reaches the other through a [`Link`] the test can cut.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corridor_proto::fhir::v1::{Resource, SearchParameter};
use corridor_proto::identity::v1 as idpb;
use corridor_proto::referrals::v1 as refpb;
use corridor_tests::Backend;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::node::Node;

/// The passport both registries know the referred person by.
pub const PASSPORT: &str = "http://hl7.org/fhir/sid/passport-ETH";

/// Both nodes and who acts on each.
pub struct World {
    pub a: Node,
    pub b: Node,
    /// The NGO on A, `Organization/<id>`, and a token acting for it.
    pub ngo: String,
    pub ngo_token: String,
    /// The hospital on B, and a token acting for it.
    pub hospital: String,
    pub hospital_token: String,
    /// The hospital as A's directory keeps it.
    pub hospital_on_a: String,
    /// The links A→B and B→A, when the world was made with them.
    pub links: Option<(Link, Link)>,
    /// This world's turn among the suite's tests (see [`crate::node::turn`]).
    _turn: tokio::sync::OwnedSemaphorePermit,
}

/// A TCP relay on loopback that the test can cut (a partition) and heal.
#[derive(Clone)]
pub struct Link {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Bumped on every cut, so that relays opened before it end.
    cuts: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Link {
    /// A relay to `target`.
    pub async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind link");
        let addr = listener.local_addr().expect("link address");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let cuts = Arc::new(cuts);
        let link = Self { addr, open, cuts };
        let accepting = link.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.open.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = accepting.cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        link
    }

    /// Drop every connection and refuse new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn heal(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

/// Poll `probe` until it answers Some, for at most `limit`; what it
/// answered. A liveness bound, not a speed claim.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two nodes that take each other as peers, started, with the NGO on A,
/// the published hospital on B, and the hospital in A's directory. None
/// when the backend is not available here.
pub async fn world(backend: Backend, with_links: bool) -> Option<World> {
    let turn = crate::node::turn().await;
    let mut a = Node::prepare("it-1", "IT", backend).await?;
    let mut b = Node::prepare("fr-1", "FR", backend).await?;
    let links = if with_links {
        Some((
            Link::to(b.federation_addr()).await,
            Link::to(a.federation_addr()).await,
        ))
    } else {
        None
    };
    a.peer_with(&b, links.as_ref().map(|(to_b, _)| to_b.endpoint()));
    b.peer_with(&a, links.as_ref().map(|(_, to_a)| to_a.endpoint()));
    a.start().await;
    b.start().await;
    let hospital = register(
        &b,
        None,
        &json!({
            "resourceType": "Organization",
            "meta": {"tag": [{"system": "urn:corridor:federation", "code": "cross-border-referrals"}]},
            "name": "Hôpital Saint-Louis",
            "active": true,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
        }),
    )
    .await;
    let ngo = register(
        &a,
        None,
        &json!({"resourceType": "Organization", "name": "Frontier Care NGO", "active": true}),
    )
    .await;
    let hospital_id = hospital.trim_start_matches("Organization/").to_owned();
    let hospital_on_a = eventually(
        "A's directory lists the hospital",
        Duration::from_secs(30),
        || {
            let a = &a;
            let hospital_id = hospital_id.clone();
            async move {
                let found = search(
                    a,
                    "Organization",
                    &[(
                        "identifier",
                        &format!("urn:corridor:node:fr-1|Organization/{hospital_id}"),
                    )],
                )
                .await;
                found["entry"][0]["resource"]["id"]
                    .as_str()
                    .map(|id| format!("Organization/{id}"))
            }
        },
    )
    .await;
    let ngo_token = a.token(&ngo);
    let hospital_token = b.token(&hospital);
    Some(World {
        a,
        b,
        ngo,
        ngo_token,
        hospital,
        hospital_token,
        hospital_on_a,
        links,
        _turn: turn,
    })
}

/// Create `resource` in `node`'s identity (as `token`'s organization, or
/// the node itself); `Type/<id>`.
pub async fn register(node: &Node, token: Option<&str>, resource: &Value) -> String {
    let created = node
        .identity(token)
        .await
        .create(idpb::CreateRequest {
            resource: resource.to_string(),
            if_none_exist: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("register {}: {s:?}", resource["resourceType"]))
        .into_inner()
        .resource
        .expect("resource");
    format!("{}/{}", created.resource_type, created.id)
}

/// A search of identity (Organization, Patient, AuditEvent, …) as the node.
pub async fn search(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> Value {
    let bundle = node
        .identity(None)
        .await
        .search(idpb::SearchRequest {
            resource_type: resource_type.to_owned(),
            parameters: parameters(params),
            page_token: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("{resource_type}?{params:?}: {s:?}"))
        .into_inner()
        .bundle
        .expect("bundle");
    serde_json::from_str(&bundle.json).expect("Bundle JSON")
}

/// A search of referrals (Task, ServiceRequest) as the node.
pub async fn search_referrals(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> Value {
    let bundle = node
        .referrals(None)
        .await
        .search(refpb::SearchRequest {
            resource_type: resource_type.to_owned(),
            parameters: parameters(params),
            page_token: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("{resource_type}?{params:?}: {s:?}"))
        .into_inner()
        .bundle
        .expect("bundle");
    serde_json::from_str(&bundle.json).expect("Bundle JSON")
}

fn parameters(params: &[(&str, &str)]) -> Vec<SearchParameter> {
    params
        .iter()
        .map(|(name, value)| SearchParameter {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect()
}

impl World {
    /// Register a patient on A (as the NGO); `Patient/<id>`.
    pub async fn patient(&self, family: &str) -> String {
        register(&self.a, Some(&self.ngo_token), &person(family)).await
    }

    /// Record the NGO's Consent of `patient`: `kind` (permit or deny) for
    /// `actor`; `Consent/<id>`.
    pub async fn consent(&self, patient: &str, kind: &str, actor: &str) -> String {
        register(
            &self.a,
            Some(&self.ngo_token),
            &consent(patient, &self.ngo, kind, actor),
        )
        .await
    }

    /// The NGO refers `patient` to the hospital; (ServiceRequest, Task).
    pub async fn refer(&self, patient: &str) -> Result<(Resource, Resource), tonic::Status> {
        let answer = self
            .a
            .referrals(Some(&self.ngo_token))
            .await
            .create_referral(refpb::CreateReferralRequest {
                service_request: service_request(patient, &self.ngo, &self.hospital_on_a)
                    .to_string(),
                draft: false,
            })
            .await?
            .into_inner();
        Ok((
            answer.service_request.expect("service request"),
            answer.task.expect("task"),
        ))
    }

    /// B's Task of A's referral Task `a_task`, once it has arrived.
    pub async fn on_b(&self, a_task: &str) -> Value {
        eventually(
            &format!("Task/{a_task} reaches node B"),
            Duration::from_secs(30),
            || async move { self.b_task(a_task).await },
        )
        .await
    }

    /// B's Task of A's referral Task `a_task`, if there is one.
    pub async fn b_task(&self, a_task: &str) -> Option<Value> {
        let found = search_referrals(
            &self.b,
            "Task",
            &[(
                "identifier",
                &format!("urn:corridor:node:it-1|Task/{a_task}"),
            )],
        )
        .await;
        assert!(
            found["total"].as_i64().unwrap_or(0) <= 1,
            "one Task on B per referral: {found}"
        );
        Some(found["entry"][0]["resource"].clone()).filter(|t| t.is_object())
    }

    /// A Task of `node` as JSON.
    pub async fn task(node: &Node, id: &str) -> Value {
        let stored = node
            .referrals(None)
            .await
            .read(refpb::ReadRequest {
                resource_type: "Task".to_owned(),
                id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|s| panic!("Task/{id}: {s:?}"))
            .into_inner()
            .resource
            .expect("task");
        serde_json::from_str(&stored.json).expect("Task JSON")
    }

    /// Wait until `node`'s Task `id` has `status`.
    pub async fn until_status(node: &Node, id: &str, status: &str) -> Value {
        eventually(
            &format!("Task/{id} on node {} becomes {status}", node.id),
            Duration::from_secs(30),
            || async move {
                let task = Self::task(node, id).await;
                (task["status"] == status).then_some(task)
            },
        )
        .await
    }

    /// Wait until neither node has a message pending or parked.
    pub async fn settled(&self) {
        for node in [&self.a, &self.b] {
            eventually(
                &format!("node {} has delivered everything", node.id),
                Duration::from_secs(60),
                || async move { node.deliveries("").await.is_empty().then_some(()) },
            )
            .await;
        }
    }
}

/// Move `task_id` (at `version`) on `node`, acting with `token`.
pub async fn transition(
    node: &Node,
    token: &str,
    task_id: &str,
    version: &str,
    status: &str,
    reason: &str,
    outputs: &[&str],
) -> Result<Resource, tonic::Status> {
    Ok(node
        .referrals(Some(token))
        .await
        .transition(refpb::TransitionRequest {
            task_id: task_id.to_owned(),
            if_match: version.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            outputs: outputs.iter().map(|o| (*o).to_owned()).collect(),
        })
        .await?
        .into_inner()
        .task
        .expect("task"))
}

/// The person both registries know: same name, birth date and passport.
pub fn person(family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": PASSPORT, "value": passport(family)}],
        "name": [{"family": family, "given": ["Meron"]}],
        "gender": "female",
        "birthDate": "1988-03-02",
    })
}

/// The passport number of the person named `family` in these tests.
pub fn passport(family: &str) -> String {
    let n = family
        .bytes()
        .fold(7u64, |n, b| (n * 131 + u64::from(b)) % 10_000_000);
    format!("EP{n:07}")
}

/// A Consent of `patient` recorded by `recorder`.
pub fn consent(patient: &str, recorder: &str, kind: &str, actor: &str) -> Value {
    json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "dateTime": "2026-11-29T10:00:00Z",
        "organization": [{"reference": recorder}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": kind, "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
            "reference": {"reference": actor}}]}})
}

/// The NGO's ServiceRequest for `patient`, to `performer`.
pub fn service_request(patient: &str, ngo: &str, performer: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "11797002", "display": "Telemedicine consultation with patient"}]},
        "subject": {"reference": patient},
        "authoredOn": "2026-11-29T09:00:00Z",
        "requester": {"reference": ngo},
        "performer": [{"reference": performer}],
        "reasonCode": [{"text": "Blood pressure 152/96 at the field clinic"}],
    })
}
