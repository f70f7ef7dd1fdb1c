//! Authentication and scopes on a whole node (identity, encounters and
//! referrals, each its own service), on SQLite and on PostgreSQL: every
//! call is refused without a valid access token, a scope that does not
//! cover the interaction is PERMISSION_DENIED, and a refused call leaves
//! nothing behind. Over mutual TLS, only certificates of the node's CA
//! (or partners' CAs it trusts) connect, only its services ask what only
//! services ask, and a certificate-bound token needs its certificate.

mod audit;
mod matrix;
mod mtls;
mod tokens;
