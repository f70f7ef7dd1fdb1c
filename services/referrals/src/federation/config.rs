//! A node's federation settings: who it is, and its peers (read from a
//! TOML file), each with the endpoint it serves federation on, its
//! jurisdiction and the CA that certifies it.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// What the referrals service needs to federate with peer nodes.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// This node's id, as its certificate names it
    /// (`urn:corridor:node:<id>`).
    pub node_id: String,
    /// This node's jurisdiction (ISO 3166, e.g. IT or DE-BY).
    pub jurisdiction: String,
    /// Where peers reach this node's federation API (mutual TLS only).
    pub listen: SocketAddr,
    pub peers: Vec<PeerConfig>,
    /// Back-off between attempts at one message: from `retry_min`,
    /// doubling, up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// A message still undelivered this long after it was written is parked
    /// for an operator, never dropped.
    pub park_after: Duration,
    /// How often the peers' directories are fetched again.
    pub directory_every: Duration,
    /// How long one call to a peer may take.
    pub deadline: Duration,
}

/// One peer node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub node_id: String,
    pub jurisdiction: String,
    /// `https://host:port` of its federation API.
    pub endpoint: String,
    /// PEM of the CA that certifies it (and only it, as far as this node
    /// is concerned).
    pub ca_pem: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersFile {
    #[serde(default)]
    peer: Vec<PeerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerEntry {
    node: String,
    jurisdiction: String,
    endpoint: String,
    ca_file: std::path::PathBuf,
}

/// Whether `id` is a usable node id: 1 to 64 lower-case letters, digits and
/// '-', as it appears in URIs and message ids.
pub fn valid_node_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a node id is 1 to 64 lower-case letters, digits and '-', not '{id}'"
        ))
    }
}

/// Whether `code` is an ISO 3166 country code, with a subdivision where
/// one is given (IT, DE-BY).
pub fn valid_jurisdiction(code: &str) -> bool {
    let (country, subdivision) = code.split_once('-').unwrap_or((code, ""));
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && subdivision.len() <= 3
        && subdivision
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !(code.contains('-') && subdivision.is_empty())
}

/// Read the peers file at `path`: every fault named with the entry it is in.
/// CA files are read relative to the file's folder.
pub fn read_peers(path: &std::path::Path, own_node: &str) -> Result<Vec<PeerConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the peers file {}: {e}", path.display()))?;
    let file: PeersFile =
        toml::from_str(&text).map_err(|e| format!("the peers file {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let mut peers: Vec<PeerConfig> = Vec::new();
    for (i, entry) in file.peer.into_iter().enumerate() {
        let at = format!("the peers file {}, [[peer]] {}", path.display(), i + 1);
        valid_node_id(&entry.node).map_err(|e| format!("{at}: node: {e}"))?;
        if entry.node == own_node {
            return Err(format!("{at}: node '{}' is this node's own id", entry.node));
        }
        if peers.iter().any(|p| p.node_id == entry.node) {
            return Err(format!("{at}: node '{}' is listed twice", entry.node));
        }
        if !valid_jurisdiction(&entry.jurisdiction) {
            return Err(format!(
                "{at}: jurisdiction is an ISO 3166 code such as FR or ES-CT, not '{}'",
                entry.jurisdiction
            ));
        }
        if !entry.endpoint.starts_with("https://") {
            return Err(format!(
                "{at}: endpoint is the peer's federation address as https://host:port (node-to-node traffic is mutual TLS only), not '{}'",
                entry.endpoint
            ));
        }
        let ca_path = base.join(&entry.ca_file);
        let ca_pem = std::fs::read_to_string(&ca_path)
            .map_err(|e| format!("{at}: cannot read ca_file {}: {e}", ca_path.display()))?;
        if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "{at}: ca_file {} holds no PEM certificate",
                ca_path.display()
            ));
        }
        peers.push(PeerConfig {
            node_id: entry.node,
            jurisdiction: entry.jurisdiction,
            endpoint: entry.endpoint,
            ca_pem,
        });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_and_jurisdictions_are_checked_as_they_appear_in_uris() {
        assert!(valid_node_id("node-a1").is_ok());
        for bad in ["", "Node", "a/b", "a b", &"x".repeat(65)] {
            assert!(valid_node_id(bad).is_err(), "{bad}");
        }
        for good in ["IT", "DE-BY", "ES-CT", "FR"] {
            assert!(valid_jurisdiction(good), "{good}");
        }
        for bad in ["", "it", "ITA", "DE-", "DE-bayern"] {
            assert!(!valid_jurisdiction(bad), "{bad}");
        }
    }

    #[test]
    fn a_peers_file_names_the_faulty_entry_and_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("corridor-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "-----BEGIN CERTIFICATE-----\nx\n").unwrap();
        let file = dir.join("peers.toml");
        let write = |text: &str| std::fs::write(&file, text).unwrap();
        write(
            "[[peer]]\nnode = \"fr\"\njurisdiction = \"FR\"\nendpoint = \"https://127.0.0.1:1\"\nca_file = \"ca.pem\"\n",
        );
        let peers = read_peers(&file, "it").unwrap();
        assert_eq!(peers[0].node_id, "fr");
        assert_eq!(peers[0].jurisdiction, "FR");
        write(
            "[[peer]]\nnode = \"fr\"\njurisdiction = \"FR\"\nendpoint = \"http://127.0.0.1:1\"\nca_file = \"ca.pem\"\n",
        );
        let err = read_peers(&file, "it").unwrap_err();
        assert!(
            err.contains("[[peer]] 1") && err.contains("https://"),
            "{err}"
        );
        write(
            "[[peer]]\nnode = \"it\"\njurisdiction = \"FR\"\nendpoint = \"https://127.0.0.1:1\"\nca_file = \"ca.pem\"\n",
        );
        assert!(read_peers(&file, "it").unwrap_err().contains("own id"));
        write(
            "[[peer]]\nnode = \"fr\"\njurisdiction = \"FR\"\nendpoint = \"https://127.0.0.1:1\"\nca_file = \"missing.pem\"\n",
        );
        assert!(read_peers(&file, "it").unwrap_err().contains("missing.pem"));
        write("[[peer]]\nnode = \"fr\"\nport = 3\n");
        assert!(read_peers(&file, "it").unwrap_err().contains("port"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
