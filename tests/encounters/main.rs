//! The encounters service, driven over gRPC beside a real identity service,
//! on SQLite and on PostgreSQL.

mod api;
mod everything;
mod merges;
mod search;
mod shutdown;
mod writes;
