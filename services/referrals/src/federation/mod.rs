//! Federation: cross-border referrals between jurisdictions' nodes.
//!
//! A node federates when it is given a node id, a jurisdiction and peers
//! ([`config`]). Then the referrals service also:
//!
//! - serves the peer-facing `FederationService` on its own port, over
//!   mutual TLS only ([`receive`]): a peer is known by a certificate its
//!   configured CA signed that names it (`urn:corridor:node:<id>`), and a
//!   message must claim that node and its jurisdiction;
//! - keeps a **directory** ([`directory`]): it publishes the Organizations
//!   tagged `urn:corridor:federation|cross-border-referrals`, and mirrors
//!   each peer's in identity (tagged `urn:corridor:peer|<node>`, with the
//!   peer's id as an identifier), so that a case manager picks one as a
//!   referral's performer;
//! - **relays** ([`relay`]) every local change to a cross-border referral's
//!   Task from the referral event stream into the deliveries outbox, in the
//!   order of the stream, exactly once;
//! - **sends** ([`send`]) each peer's deliveries with back-off, one at a
//!   time per referral, building the message at sending time: a referral
//!   carries the Patient and a patient summary ([`summary`]) only while a
//!   Consent permits it; undeliverable messages are parked for the
//!   operator ([`operator`]).
//!
//! A cross-border referral's Task carries the extension
//! [`EXTENSION`] (peer, side, consent). A version written because of a
//! peer's message has `meta.source` `urn:corridor:node:<peer>`, which the
//! relay never sends back. How both sides agree on the status is
//! [`lanes`].

use serde_json::{Value, json};

pub mod config;
pub mod directory;
pub mod lanes;
pub mod operator;
pub mod receive;
pub mod relay;
pub mod send;
pub mod summary;

pub use config::{FederationConfig, PeerConfig};
pub use lanes::Side;

/// The Task extension of a cross-border referral.
pub const EXTENSION: &str = "urn:corridor:extension:cross-border-referral";
/// The tag (system and code) of an Organization a node publishes to its
/// peers as accepting cross-border referrals.
pub const PUBLISHED_SYSTEM: &str = "urn:corridor:federation";
pub const PUBLISHED_CODE: &str = "cross-border-referrals";
/// The tag system of a peer's Organization in the directory; its code is
/// the peer's node id.
pub const PEER_SYSTEM: &str = "urn:corridor:peer";

/// The identifier system (and `meta.source`) of node `node`'s resources.
pub fn node_system(node: &str) -> String {
    format!("{}{node}", corridor_runtime::tls::NODE_URI_PREFIX)
}

/// What makes a Task a cross-border referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossBorder {
    /// The node on the other side.
    pub peer: String,
    /// Which side this node is.
    pub side: Side,
    /// The Consent the referral was shared under (`Consent/<id>` of the
    /// requesting node).
    pub consent: String,
    /// The sequence of the last message applied from the peer (its Task
    /// version): a message at or below it is a retry, already applied.
    pub peer_sequence: i64,
}

impl CrossBorder {
    /// The Task extension that says so.
    pub fn extension(&self) -> Value {
        json!({
            "url": EXTENSION,
            "extension": [
                {"url": "peer", "valueString": self.peer},
                {"url": "side", "valueCode": self.side.as_str()},
                {"url": "consent", "valueString": self.consent},
                {"url": "peerSequence", "valueInteger": self.peer_sequence},
            ],
        })
    }

    /// What `task` (FHIR JSON) says, if it is a cross-border referral.
    pub fn of(task: &Value) -> Option<Self> {
        let extension = task["extension"]
            .as_array()?
            .iter()
            .find(|e| e["url"] == EXTENSION)?;
        let find = |name: &str| {
            extension["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"] == name)
        };
        let part =
            |name: &str, key: &str| find(name).and_then(|e| e[key].as_str()).map(str::to_owned);
        Some(Self {
            peer: part("peer", "valueString")?,
            side: Side::parse(&part("side", "valueCode")?)?,
            consent: part("consent", "valueString").unwrap_or_default(),
            peer_sequence: find("peerSequence")
                .and_then(|e| e["valueInteger"].as_i64())
                .unwrap_or(0),
        })
    }

    /// `task` (FHIR JSON object) marked with this, in place of any marker
    /// it had.
    pub fn mark(&self, task: &mut serde_json::Map<String, Value>) {
        let mut extensions = task
            .get("extension")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        extensions.retain(|e| e["url"] != EXTENSION);
        extensions.push(self.extension());
        task.insert("extension".into(), Value::Array(extensions));
    }
}

/// The peer node a resource version was written for (its `meta.source`),
/// if a peer's message made it.
pub fn from_peer(resource: &Value) -> Option<&str> {
    resource["meta"]["source"]
        .as_str()
        .and_then(|s| s.strip_prefix(corridor_runtime::tls::NODE_URI_PREFIX))
}

/// The requesting node's id of a Task received from it: (node, Task id),
/// from its identifier `urn:corridor:node:<node>|Task/<id>`.
pub fn origin_of(task: &Value) -> Option<(String, String)> {
    task["identifier"]
        .as_array()?
        .iter()
        .find_map(|identifier| {
            let node = identifier["system"]
                .as_str()?
                .strip_prefix(corridor_runtime::tls::NODE_URI_PREFIX)?;
            let id = identifier["value"].as_str()?.strip_prefix("Task/")?;
            Some((node.to_owned(), id.to_owned()))
        })
}

/// The peer an Organization of the directory belongs to, and its id
/// there: from its tag and identifier.
pub fn peer_organization(organization: &Value) -> Option<(String, String)> {
    let peer = organization["meta"]["tag"]
        .as_array()?
        .iter()
        .find(|t| t["system"] == PEER_SYSTEM)?["code"]
        .as_str()?
        .to_owned();
    let system = node_system(&peer);
    let id = organization["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"] == system.as_str())?["value"]
        .as_str()?
        .to_owned();
    Some((peer, id))
}

/// A federating node's referrals service: its settings, the links it
/// works through, and a client per peer.
#[derive(Debug)]
pub struct Federation {
    pub config: FederationConfig,
    pub resources: corridor_runtime::resources::Resources,
    pub identity: corridor_runtime::identity::IdentityLink,
    pub encounters: crate::links::EncountersLink,
    peers: Vec<Peer>,
    /// Woken when the relay has queued messages.
    pub(crate) queued: tokio::sync::Notify,
}

/// A peer and the lazily connected client of its federation API.
#[derive(Debug, Clone)]
pub struct Peer {
    pub config: PeerConfig,
    pub client: corridor_proto::federation::v1::federation_service_client::FederationServiceClient<
        tonic::transport::Channel,
    >,
}

impl Federation {
    /// Prepare the clients of every peer: mutual TLS with this node's
    /// certificate, trusting for each peer only the CA configured for it.
    pub fn new(
        config: FederationConfig,
        tls: &corridor_runtime::tls::Tls,
        resources: corridor_runtime::resources::Resources,
        identity: corridor_runtime::identity::IdentityLink,
        encounters: crate::links::EncountersLink,
    ) -> Result<Self, tonic::transport::Error> {
        let mut peers = Vec::new();
        for peer in &config.peers {
            let channel = tonic::transport::Endpoint::from_shared(peer.endpoint.clone())?
                .connect_timeout(config.deadline)
                .tcp_nodelay(true)
                .tls_config(tls.peer_client(&peer.ca_pem))?
                .connect_lazy();
            peers.push(Peer {
                config: peer.clone(),
                client:
                    corridor_proto::federation::v1::federation_service_client::FederationServiceClient::new(
                        channel,
                    ),
            });
        }
        Ok(Self {
            config,
            resources,
            identity,
            encounters,
            peers,
            queued: tokio::sync::Notify::new(),
        })
    }

    /// The configured peer `node`, if there is one.
    pub fn peer(&self, node: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.config.node_id == node)
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Start the relay, which starts one sender per peer and the directory
    /// sync once this replica leads, until `shutdown`.
    pub fn start(self: &std::sync::Arc<Self>, shutdown: &corridor_runtime::Shutdown) {
        self.sample_outbox();
        tokio::spawn(relay::run(std::sync::Arc::clone(self), shutdown.clone()));
    }

    /// Report the outbox in the process's metrics at each scrape: messages
    /// pending and parked per peer, the oldest pending one's age (the lag),
    /// and the events not yet relayed.
    fn sample_outbox(self: &std::sync::Arc<Self>) {
        use corridor_runtime::metrics::{self, PeerLabel, PeerState};
        let store = self.resources.store().clone();
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|p| p.config.node_id.clone())
            .collect();
        metrics::register_sampler(
            "federation-outbox",
            std::sync::Arc::new(move || {
                let store = store.clone();
                let peers = peers.clone();
                Box::pin(async move {
                    let m = metrics::metrics();
                    let backlog = match store.backlog().await {
                        Ok(backlog) => backlog,
                        Err(err) => {
                            tracing::warn!(error = %err, "outbox metrics: cannot read the deliveries");
                            return;
                        }
                    };
                    let now = corridor_store::deliveries::now_millis();
                    for peer in &peers {
                        for state in ["pending", "parked"] {
                            let found =
                                backlog.iter().find(|b| b.peer == *peer && b.state == state);
                            m.outbox_messages
                                .get_or_create(&PeerState {
                                    peer: peer.clone(),
                                    state,
                                })
                                .set(found.map_or(0, |b| b.messages));
                            if state == "pending" {
                                let age = found.map_or(0.0, |b| {
                                    (now - b.oldest_created_at).max(0) as f64 / 1000.0
                                });
                                m.outbox_oldest_pending_age
                                    .get_or_create(&PeerLabel { peer: peer.clone() })
                                    .set(age);
                            }
                        }
                    }
                    match store.unread(crate::EVENTS, relay::CURSOR).await {
                        Ok(n) => {
                            m.outbox_unrelayed_events
                                .get_or_create(&metrics::ServiceLabel {
                                    service: "referrals".to_owned(),
                                })
                                .set(n);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "outbox metrics: cannot read the relay's cursor");
                        }
                    }
                })
            }),
        );
    }
}

/// The referrals service acting on its own (for a peer, not a client):
/// what its local writes are audited as.
pub fn acting_for_node() -> std::sync::Arc<corridor_runtime::auth::Caller> {
    std::sync::Arc::new(corridor_runtime::auth::Caller::service(
        "referrals",
        corridor_runtime::tls::Peer::Service(vec!["referrals".to_owned()]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cross_border_task_says_its_peer_side_and_consent() {
        let marker = CrossBorder {
            peer: "fr-1".into(),
            side: Side::Requesting,
            consent: "Consent/c1".into(),
            peer_sequence: 4,
        };
        let task = json!({"resourceType": "Task", "extension": [marker.extension()]});
        assert_eq!(CrossBorder::of(&task), Some(marker));
        assert_eq!(CrossBorder::of(&json!({"resourceType": "Task"})), None);
    }

    #[test]
    fn a_received_task_names_its_origin_and_the_peer_that_wrote_it() {
        let task = json!({
            "identifier": [{"system": "urn:corridor:node:it-1", "value": "Task/t9"}],
            "meta": {"source": "urn:corridor:node:it-1"},
        });
        assert_eq!(origin_of(&task), Some(("it-1".into(), "t9".into())));
        assert_eq!(from_peer(&task), Some("it-1"));
        assert_eq!(from_peer(&json!({"meta": {}})), None);
    }

    #[test]
    fn a_directory_organization_names_its_peer_and_its_id_there() {
        let org = json!({
            "meta": {"tag": [{"system": PEER_SYSTEM, "code": "fr-1"}]},
            "identifier": [{"system": "urn:corridor:node:fr-1", "value": "Organization/h1"}],
        });
        assert_eq!(
            peer_organization(&org),
            Some(("fr-1".into(), "Organization/h1".into()))
        );
    }
}
