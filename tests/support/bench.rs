//! What the benchmarks share: their settings, the backends they run on,
//! and how they summarize latencies. Figures are printed, never asserted.

use std::time::Duration;

use crate::{Backend, postgres_url};

/// A positive number from the environment, or `default`.
pub fn setting(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive number, not '{value}'")),
        Err(_) => default,
    }
}

/// SQLite always; PostgreSQL when CORRIDOR_TEST_POSTGRES_URL is set.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if postgres_url().is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

/// The `p`th percentile of sorted `values` (nearest rank).
pub fn percentile(values: &[Duration], p: usize) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * values.len()).div_ceil(100).max(1);
    values[rank.min(values.len()) - 1]
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
