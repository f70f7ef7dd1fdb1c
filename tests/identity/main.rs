//! The identity service, driven over gRPC as a partner system would, on
//! SQLite and on PostgreSQL.

mod api;
mod examples;
mod lifecycle;
mod matching;
mod search;
mod tokens;
mod validation;
mod writes;
