//! A whole node with its REST gateway, and an HTTP client for it, for the
//! gateway suite.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{Backend, FullNode, Running, init_logs};

/// A node (identity, encounters, referrals) with the gateway in front.
#[derive(Debug)]
pub struct RestNode {
    pub node: FullNode,
    /// `http://127.0.0.1:<port>/fhir`
    pub base: String,
    pub http: reqwest::Client,
    _gateway: Running,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The diagnostics of an OperationOutcome body.
    pub fn diagnostics(&self) -> String {
        self.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Panic unless the body is an OperationOutcome with an error.
    pub fn assert_outcome(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "{}",
            self.body
        );
        assert_eq!(self.body["issue"][0]["severity"], "error", "{}", self.body);
    }
}

/// Gateway limits small enough to test.
pub const TEST_MAX_BODY: usize = 256 * 1024;
pub const TEST_MAX_ENTRIES: usize = 20;

impl RestNode {
    /// Start a node and its gateway, or None when `backend` is skipped.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, Duration::from_secs(30)).await
    }

    pub async fn spawn_with(backend: Backend, timeout: Duration) -> Option<Self> {
        let node = FullNode::spawn(backend).await?;
        init_logs();
        let (base, gateway) = gateway_for(&node, timeout).await;
        Some(Self {
            node,
            base,
            http: client(),
            _gateway: gateway,
        })
    }

    /// Another gateway in front of the same services, as this one is after
    /// a restart (it remembers nothing): its base URL, and the gateway,
    /// stopped when dropped.
    pub async fn another_gateway(&self) -> (String, Running) {
        gateway_for(&self.node, Duration::from_secs(30)).await
    }

    /// An `Authorization` header value that acts for `organization`.
    pub fn acting_for(organization: &str) -> String {
        format!("Bearer {}", crate::token(organization, crate::ALL_SCOPES))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Send a request; `body` as FHIR JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("the gateway answers")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// Create `resource`; its id. Panics unless 201.
    pub async fn create(&self, resource: &Value) -> String {
        let resource_type = resource["resourceType"].as_str().expect("resourceType");
        let answer = self.post(resource_type, resource).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_str().expect("id").to_owned()
    }

    /// Every resource a search finds, following `next` links to the end;
    /// and how many pages that took.
    pub async fn search_all(&self, path: &str) -> (Vec<Value>, usize) {
        let mut resources = Vec::new();
        let mut pages = 0;
        let mut next = Some(self.url(path));
        while let Some(url) = next.take() {
            let answer = self.get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.body);
            pages += 1;
            for entry in answer.body["entry"].as_array().into_iter().flatten() {
                if entry["search"]["mode"] == "match" {
                    resources.push(entry["resource"].clone());
                }
            }
            next = answer.body["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
            assert!(pages < 1_000, "next links never end");
        }
        (resources, pages)
    }
}

/// A gateway with the test limits in front of `node`'s services: its base
/// URL, and the gateway.
async fn gateway_for(node: &FullNode, timeout: Duration) -> (String, Running) {
    let config = corridor_gateway::GatewayConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        identity_url: node.identity.url(),
        encounters_url: format!("http://{}", node.encounters.addr),
        referrals_url: format!("http://{}", node.referrals.addr),
        deadline: Duration::from_secs(5),
        base_url: None,
        limits: corridor_gateway::Limits {
            max_body: TEST_MAX_BODY,
            max_entries: TEST_MAX_ENTRIES,
            timeout,
        },
        shutdown_grace: Duration::from_secs(2),
        tls: None,
    };
    let app = corridor_gateway::Application::build(config)
        .await
        .expect("gateway builds");
    let base = format!("http://{}{}", app.local_addr(), corridor_gateway::BASE_PATH);
    let gateway = Running::start("gateway", |shutdown| app.run_until_stopped(shutdown));
    (base, gateway)
}

/// An HTTP client whose requests carry the node operator's test token
/// (acting for [`crate::TEST_ORGANIZATION`]) unless they set
/// `Authorization` themselves.
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", crate::admin_token())
            .parse()
            .expect("ascii token"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// Read a response whole; a JSON body is parsed (gzip undone first).
pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response.bytes().await.expect("body").to_vec();
    let text = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .expect("gzip body");
        out
    } else {
        raw.clone()
    };
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&text).unwrap_or(Value::Null)
    };
    Answer {
        status,
        headers,
        body,
        raw,
    }
}
