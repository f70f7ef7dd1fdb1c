//! Federation across jurisdictions, with real nodes: each node is its own
//! `corridor serve` process with its own database (SQLite files, or a
//! PostgreSQL database of its own), development certificates naming it,
//! and a peers file, on loopback. A cross-border referral goes from an NGO
//! on node A (it-1, IT) to a hospital on node B (fr-1, FR) and its outcome
//! comes back; messages survive a peer that is down and a node killed
//! mid-delivery, arriving once and in order; concurrent moves on both
//! sides converge; nothing leaves without Consent; and only the configured
//! peers, proven by their certificates, are heard.

mod consent;
mod delivery;
mod edits;
mod full_loop;
mod metrics;
mod node;
mod peers;
mod world;
