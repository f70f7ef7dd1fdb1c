//! Operating a node: what Prometheus and Kubernetes see on the operations
//! port of a real `corridor serve` process (metrics that move with the
//! traffic, health for probes), replicas that start at once on one fresh
//! PostgreSQL database without racing their migrations, and PostgreSQL
//! over TLS.

mod import;
mod metrics;
mod postgres;
mod process;
mod transactions;
