//! The FHIR REST gateway, driven over HTTP as a partner's FHIR client
//! would, in front of real identity, encounters and referrals services, on
//! SQLite and on PostgreSQL.

mod bulk;
mod bundles;
mod capability;
mod errors;
mod interactions;
mod oauth;
mod operations;
mod spanning;
