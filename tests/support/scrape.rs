//! Reading a process's Prometheus metrics as a scraper does.

use std::collections::BTreeMap;

/// One sample: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// One scrape of `/metrics`: the text and its samples.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    /// Each sample's labels, by series name (`corridor_rpc_requests_total`).
    samples: BTreeMap<String, Vec<Sample>>,
}

impl Scrape {
    /// GET `http://<addr>/metrics`; panics unless it answers 200 with the
    /// OpenMetrics text format.
    pub async fn of(addr: &str) -> Self {
        let response = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("scrape /metrics");
        assert_eq!(response.status(), 200, "GET /metrics");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "content type {content_type}"
        );
        Self::parse(&response.text().await.expect("metrics text"))
    }

    /// Parse the text exposition format.
    pub fn parse(text: &str) -> Self {
        let mut samples: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a sample value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels_of(rest.strip_suffix('}').expect("}"))),
                None => (series, BTreeMap::new()),
            };
            samples
                .entry(name.to_owned())
                .or_default()
                .push((labels, value));
        }
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// Whether the metric family `name` is declared (it may have no
    /// samples yet).
    pub fn declares(&self, name: &str) -> bool {
        self.text
            .lines()
            .any(|l| l.starts_with(&format!("# TYPE {name} ")))
    }

    /// The sum of the samples of series `name` that carry every label of
    /// `labels` (0 when none does).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(have, _)| {
                labels
                    .iter()
                    .all(|(k, v)| have.get(*k).is_some_and(|h| h == v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Whether some sample of series `name` carries every label of `labels`.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .any(|(have, _)| {
                labels
                    .iter()
                    .all(|(k, v)| have.get(*k).is_some_and(|h| h == v))
            })
    }
}

/// `a="x",b="y"` (values may hold commas, braces and escaped quotes).
fn labels_of(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_braces_and_commas_are_read_whole() {
        let scrape = Scrape::parse(
            "# TYPE x counter\nx_total{route=\"/fhir/Patient/{id}\",method=\"GET\",status=\"200\"} 3\nx_total{route=\"a,b\",method=\"GET\",status=\"500\"} 1\n# EOF\n",
        );
        assert_eq!(
            scrape.sum("x_total", &[("route", "/fhir/Patient/{id}")]),
            3.0
        );
        assert_eq!(scrape.sum("x_total", &[("method", "GET")]), 4.0);
        assert_eq!(
            scrape.sum("x_total", &[("route", "a,b"), ("status", "500")]),
            1.0
        );
        assert!(scrape.declares("x"));
    }
}
