//! Mutual TLS between a node's services, and for partner clients that
//! present a certificate.
//!
//! A node has one certificate authority of its own (the node CA). It signs
//! each service's certificate, whose subject alternative names hold the
//! service's host names and one URI per service it runs,
//! `urn:corridor:service:<name>` ([`SERVICE_URI_PREFIX`]). With TLS
//! configured ([`Tls`]):
//! - every service serves gRPC over TLS, and asks the caller for a client
//!   certificate, verified against the node CA and any partner CAs the
//!   operator trusts; with `require_client_certificate`, a connection
//!   without one, or with one no trusted CA signed, is refused in the
//!   handshake;
//! - calls between services go over TLS, verifying the other service
//!   against the node CA and presenting the caller's own certificate;
//! - each call's [`Peer`] says what the connection proved: a node service
//!   (a certificate the node CA itself signed, naming the service), a
//!   client certificate (by its SHA-256 thumbprint, which binds access
//!   tokens to it, RFC 8705), or nothing.
//!
//! [`development_certificates`] makes a node CA and certificates for a
//! node on this machine, for `corridor certs` and the tests; nothing of it
//! is committed.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The subject alternative name URI that marks a node service's
/// certificate: `urn:corridor:service:identity`, and so on.
pub const SERVICE_URI_PREFIX: &str = "urn:corridor:service:";

/// Peers remembered by certificate thumbprint: classifying one costs a
/// parse and a signature check, and a connection's calls all present the
/// same certificate.
const PEER_CACHE: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {why}")]
    Unusable { what: String, why: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

fn unusable(what: &str, why: impl fmt::Display) -> TlsError {
    TlsError::Unusable {
        what: what.to_owned(),
        why: why.to_string(),
    }
}

/// What the connection of a call proved about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// No TLS, or TLS without a client certificate.
    Anonymous,
    /// A service of this node: its certificate was signed by the node CA
    /// and names these services.
    Service(Vec<String>),
    /// A client certificate another trusted CA signed, or one of the node
    /// CA's that names no service: its base64url SHA-256 thumbprint.
    Client { thumbprint: String },
}

impl Peer {
    /// The service names, when the peer is a node service.
    pub fn service(&self) -> Option<&[String]> {
        match self {
            Self::Service(names) => Some(names),
            _ => None,
        }
    }
}

/// A service's TLS: its certificate and key, the node CA, and what it
/// asks of clients.
#[derive(Clone)]
pub struct Tls {
    cert_pem: String,
    key_pem: String,
    node_ca_pem: String,
    /// The node CA (DER), whose key signs every service's certificate.
    node_ca_der: Vec<u8>,
    /// Roots of client certificates: the node CA, then partners' CAs.
    client_roots_pem: String,
    require_client_certificate: bool,
    peers: Arc<Mutex<HashMap<Vec<u8>, Peer>>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field(
                "require_client_certificate",
                &self.require_client_certificate,
            )
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// A service's TLS from PEM text: its certificate chain and private
    /// key, the node CA, and further CAs whose client certificates are
    /// accepted (partners'). The certificate must be one the node CA
    /// signed, so that the other services accept it; every fault is named.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        node_ca_pem: &str,
        partner_cas_pem: Option<&str>,
        require_client_certificate: bool,
    ) -> Result<Self, TlsError> {
        let node_ca = pem_certificates(node_ca_pem, "the node CA")?;
        let node_ca_der = node_ca.into_iter().next().unwrap_or_default();
        let (_, ca) = X509Certificate::from_der(&node_ca_der)
            .map_err(|e| unusable("the node CA", format!("not an X.509 certificate: {e}")))?;
        if !ca.is_ca() {
            return Err(unusable(
                "the node CA",
                "it is not a CA certificate (basicConstraints CA:TRUE)",
            ));
        }
        let chain = pem_certificates(cert_pem, "the service certificate")?;
        let leaf = chain.first().cloned().unwrap_or_default();
        let (_, cert) = X509Certificate::from_der(&leaf).map_err(|e| {
            unusable(
                "the service certificate",
                format!("not an X.509 certificate: {e}"),
            )
        })?;
        if cert.verify_signature(Some(ca.public_key())).is_err() {
            return Err(unusable(
                "the service certificate",
                "the node CA did not sign it, so the other services would refuse it",
            ));
        }
        if service_names(&cert).is_empty() {
            return Err(unusable(
                "the service certificate",
                format!(
                    "it names no service; its subject alternative names need a URI {SERVICE_URI_PREFIX}<service>"
                ),
            ));
        }
        if !key_pem.contains("PRIVATE KEY-----") {
            return Err(unusable(
                "the service key",
                "not a PEM private key (-----BEGIN PRIVATE KEY-----)",
            ));
        }
        let mut client_roots_pem = node_ca_pem.trim_end().to_owned();
        client_roots_pem.push('\n');
        if let Some(partners) = partner_cas_pem {
            let partner_cas = pem_certificates(partners, "the partner CAs")?;
            if partner_cas.is_empty() {
                return Err(unusable("the partner CAs", "no certificate in the file"));
            }
            client_roots_pem.push_str(partners);
        }
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            node_ca_pem: node_ca_pem.to_owned(),
            node_ca_der,
            client_roots_pem,
            require_client_certificate,
            peers: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// [`Tls::from_pem`] from files.
    pub fn from_files(
        cert: &std::path::Path,
        key: &std::path::Path,
        node_ca: &std::path::Path,
        partner_cas: Option<&std::path::Path>,
        require_client_certificate: bool,
    ) -> Result<Self, TlsError> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let partners = partner_cas.map(read).transpose()?;
        Self::from_pem(
            &read(cert)?,
            &read(key)?,
            &read(node_ca)?,
            partners.as_deref(),
            require_client_certificate,
        )
    }

    /// Whether a connection without a client certificate is refused.
    pub fn requires_client_certificate(&self) -> bool {
        self.require_client_certificate
    }

    /// The server side: this service's certificate, client certificates
    /// verified against the node CA and the partner CAs, and required or
    /// optional as configured.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.client_roots_pem))
            .client_auth_optional(!self.require_client_certificate)
    }

    /// The client side of calls to the node's other services: they must
    /// show a certificate of the node CA; this service shows its own.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.node_ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// The client side of calls to a peer node: it must show a
    /// certificate of `peer_ca_pem` (the CA configured for that peer, and
    /// no other); this node shows its own.
    pub fn peer_client(&self, peer_ca_pem: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(peer_ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// The TLS of the peer-facing port: this node's certificate, and a
    /// client certificate required of every connection, from one of the
    /// peers' CAs (`peer_cas_pem`, concatenated) only.
    pub fn for_peers(&self, peer_cas_pem: &str) -> Result<Self, TlsError> {
        if pem_certificates(peer_cas_pem, "the peers' CAs")?.is_empty() {
            return Err(unusable("the peers' CAs", "no certificate"));
        }
        Ok(Self {
            client_roots_pem: peer_cas_pem.to_owned(),
            require_client_certificate: true,
            peers: Arc::new(Mutex::new(HashMap::new())),
            ..self.clone()
        })
    }

    /// The nodes this service's own certificate names.
    pub fn own_nodes(&self) -> Result<Vec<String>, TlsError> {
        node_names(&self.cert_pem)
    }

    /// What the connection of a request proved: see [`Peer`].
    pub fn peer(&self, extensions: &http::Extensions) -> Peer {
        let Some(leaf) = extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs)
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
        else {
            return Peer::Anonymous;
        };
        if let Some(peer) = lock(&self.peers).get(&leaf) {
            return peer.clone();
        }
        let peer = self.classify(&leaf);
        let mut peers = lock(&self.peers);
        if peers.len() >= PEER_CACHE {
            peers.clear();
        }
        peers.insert(leaf, peer.clone());
        peer
    }

    fn classify(&self, leaf: &[u8]) -> Peer {
        let client = Peer::Client {
            thumbprint: thumbprint(leaf),
        };
        let (Ok((_, cert)), Ok((_, ca))) = (
            X509Certificate::from_der(leaf),
            X509Certificate::from_der(&self.node_ca_der),
        ) else {
            return client;
        };
        let names = service_names(&cert);
        // A service only by the node CA's own signature: a partner CA that
        // the node trusts for client certificates cannot make one.
        if names.is_empty() || cert.verify_signature(Some(ca.public_key())).is_err() {
            return client;
        }
        Peer::Service(names)
    }
}

/// The RFC 8705 thumbprint of a certificate (DER): base64url SHA-256.
pub fn thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// The thumbprint of the client certificate a request's connection
/// presented, if any.
pub fn client_thumbprint(extensions: &http::Extensions) -> Option<String> {
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|certs| certs.first().map(|c| thumbprint(c.as_ref())))
}

/// The SAN URI prefix that names a node (a jurisdiction's deployment) in
/// the certificate it shows its peers: `urn:corridor:node:<node id>`.
pub const NODE_URI_PREFIX: &str = "urn:corridor:node:";

/// The leaf certificate (DER) a request's connection presented, if any.
pub fn peer_certificate(extensions: &http::Extensions) -> Option<Vec<u8>> {
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
}

/// The nodes `leaf` (DER) names, if the CA `ca_pem` signed it; why not
/// otherwise.
pub fn nodes_certified_by(leaf: &[u8], ca_pem: &str) -> Result<Vec<String>, String> {
    let ca_der = pem_certificates(ca_pem, "the peer CA")
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("the peer CA file holds no certificate")?;
    let (_, ca) = X509Certificate::from_der(&ca_der).map_err(|e| format!("the peer CA: {e}"))?;
    let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| format!("the certificate: {e}"))?;
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return Err("the peer's CA did not sign the certificate".to_owned());
    }
    Ok(uris(&cert, NODE_URI_PREFIX))
}

/// The nodes a PEM certificate names (`urn:corridor:node:<id>`).
pub fn node_names(cert_pem: &str) -> Result<Vec<String>, TlsError> {
    let der = pem_certificates(cert_pem, "the node certificate")?
        .into_iter()
        .next()
        .unwrap_or_default();
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| {
        unusable(
            "the node certificate",
            format!("not an X.509 certificate: {e}"),
        )
    })?;
    Ok(uris(&cert, NODE_URI_PREFIX))
}

fn service_names(cert: &X509Certificate<'_>) -> Vec<String> {
    uris(cert, SERVICE_URI_PREFIX)
}

fn uris(cert: &X509Certificate<'_>, prefix: &str) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(prefix),
            _ => None,
        })
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

fn pem_certificates(pem: &str, what: &str) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut certificates = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| unusable(what, format!("not PEM: {e}")))?;
        if block.label == "CERTIFICATE" {
            certificates.push(block.contents);
        }
    }
    if certificates.is_empty() {
        return Err(unusable(
            what,
            "no certificate in it (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certificates)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// The certificate's RFC 8705 thumbprint (see [`thumbprint`]).
    pub fn thumbprint(&self) -> Result<String, TlsError> {
        let der = pem_certificates(&self.cert_pem, "the certificate")?;
        Ok(thumbprint(
            der.first().map(Vec::as_slice).unwrap_or_default(),
        ))
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// A certificate authority that can issue certificates (development and
/// tests: the key is in memory).
pub struct Authority {
    issued: Issued,
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA named `name`, valid for a year.
    pub fn generate(name: &str) -> Result<Self, TlsError> {
        let fault = |e: rcgen::Error| unusable("a new CA", e);
        let key = rcgen::KeyPair::generate().map_err(fault)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fault)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        valid_for_a_year(&mut params);
        let cert = params.self_signed(&key).map_err(fault)?;
        Ok(Self {
            issued: Issued {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            },
            key,
            params,
        })
    }

    /// The CA's own certificate and key.
    pub fn certificate(&self) -> &Issued {
        &self.issued
    }

    /// A certificate for the services `services` of a node reachable at
    /// `hosts` (DNS names or IP addresses), for serving and for calling.
    pub fn service(&self, services: &[&str], hosts: &[&str]) -> Result<Issued, TlsError> {
        self.service_with_uris(services, hosts, &[])
    }

    fn service_with_uris(
        &self,
        services: &[&str],
        hosts: &[&str],
        extra_uris: &[String],
    ) -> Result<Issued, TlsError> {
        let mut names: Vec<rcgen::SanType> = Vec::new();
        for host in hosts {
            names.push(match host.parse::<IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(
                    (*host)
                        .try_into()
                        .map_err(|e| unusable(&format!("host name '{host}'"), e))?,
                ),
            });
        }
        for service in services {
            let uri = format!("{SERVICE_URI_PREFIX}{service}");
            names.push(rcgen::SanType::URI(
                uri.as_str()
                    .try_into()
                    .map_err(|e| unusable(&format!("service '{service}'"), e))?,
            ));
        }
        for uri in extra_uris {
            names.push(rcgen::SanType::URI(
                uri.as_str()
                    .try_into()
                    .map_err(|e| unusable(&format!("URI '{uri}'"), e))?,
            ));
        }
        self.issue(&services.join("+"), names)
    }

    /// The certificate of a whole node: every service of [`NODE_SERVICES`]
    /// at `hosts`, and, when it federates, its node id as the SAN URI
    /// `urn:corridor:node:<node>` that its peers check.
    pub fn node(&self, node: Option<&str>, hosts: &[&str]) -> Result<Issued, TlsError> {
        let extra: Vec<String> = node
            .map(|node| format!("{NODE_URI_PREFIX}{node}"))
            .into_iter()
            .collect();
        self.service_with_uris(NODE_SERVICES, hosts, &extra)
    }

    /// A client certificate for a partner system (`client_id`), to present
    /// when it calls over mutual TLS.
    pub fn client(&self, client_id: &str) -> Result<Issued, TlsError> {
        self.issue(client_id, Vec::new())
    }

    fn issue(&self, common_name: &str, names: Vec<rcgen::SanType>) -> Result<Issued, TlsError> {
        let fault = |e: rcgen::Error| unusable(&format!("a certificate for '{common_name}'"), e);
        let key = rcgen::KeyPair::generate().map_err(fault)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fault)?;
        params.subject_alt_names = names;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        valid_for_a_year(&mut params);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(fault)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn valid_for_a_year(params: &mut rcgen::CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
}

/// The services a whole node runs, as its certificate names them.
pub const NODE_SERVICES: &[&str] = &["identity", "encounters", "referrals", "gateway"];

/// A development node's certificates: a new node CA, and one certificate
/// for all of the node's services on this machine (`localhost`,
/// 127.0.0.1 and ::1, plus `hosts`).
/// With `node`, the certificate also names the node for its peers.
pub fn development_certificates(
    node: Option<&str>,
    hosts: &[&str],
) -> Result<(Authority, Issued), TlsError> {
    let ca = Authority::generate(&match node {
        Some(node) => format!("Corridor development CA of node {node}"),
        None => "Corridor development node CA".to_owned(),
    })?;
    let mut all = vec!["localhost", "127.0.0.1", "::1"];
    all.extend_from_slice(hosts);
    let node = ca.node(node, &all)?;
    Ok((ca, node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        pem_certificates(pem, "test").unwrap().remove(0)
    }

    #[test]
    fn a_certificate_of_the_node_ca_naming_services_is_a_service_and_a_partner_ca_cannot_make_one()
    {
        let (ca, node) = development_certificates(None, &[]).unwrap();
        let partner_ca = Authority::generate("partner CA").unwrap();
        let tls = Tls::from_pem(
            &node.cert_pem,
            &node.key_pem,
            &ca.certificate().cert_pem,
            Some(&partner_ca.certificate().cert_pem),
            false,
        )
        .unwrap();
        assert_eq!(
            tls.classify(&der(&node.cert_pem)),
            Peer::Service(NODE_SERVICES.iter().map(|s| (*s).to_owned()).collect())
        );
        let forged = partner_ca.service(&["identity"], &["localhost"]).unwrap();
        let forged_der = der(&forged.cert_pem);
        assert_eq!(
            tls.classify(&forged_der),
            Peer::Client {
                thumbprint: thumbprint(&forged_der)
            }
        );
        let client = ca.client("clinic-ehr").unwrap();
        assert!(matches!(
            tls.classify(&der(&client.cert_pem)),
            Peer::Client { .. }
        ));
    }

    #[test]
    fn a_service_certificate_the_node_ca_did_not_sign_is_refused_naming_why() {
        let (ca, _) = development_certificates(None, &[]).unwrap();
        let (_, stranger) = development_certificates(None, &[]).unwrap();
        let err = Tls::from_pem(
            &stranger.cert_pem,
            &stranger.key_pem,
            &ca.certificate().cert_pem,
            None,
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("did not sign"), "{err}");
        let client = ca.client("clinic-ehr").unwrap();
        let err = Tls::from_pem(
            &client.cert_pem,
            &client.key_pem,
            &ca.certificate().cert_pem,
            None,
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("names no service"), "{err}");
        let err = Tls::from_pem("not pem", "", &ca.certificate().cert_pem, None, true).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
