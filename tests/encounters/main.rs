//! The encounters service, driven over gRPC beside a real identity service,
//! on SQLite and on PostgreSQL.

mod api;
mod everything;
mod search;
mod shutdown;
mod writes;
