//! The referrals service, driven over gRPC as the NGO's and the hospital's
//! systems would, beside real identity and encounters services, on SQLite
//! and on PostgreSQL.

mod flow;
mod merges;
mod search;
mod watch;
