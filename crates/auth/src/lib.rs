//! Authentication for Corridor nodes, after SMART Backend Services: a
//! partner's system proves who it is with a JWT signed by its own key
//! (the client assertion), gets a short-lived access token signed by the
//! node, and presents that token on every call.
//!
//! This crate holds the parts with no I/O:
//! - [`scopes`]: SMART v2 scopes and what they permit;
//! - [`keys`]: the node's ES384 signing keys, their rotation and the JWKS
//!   that services verify against;
//! - [`tokens`]: issuing and verifying access tokens, and verifying client
//!   assertions (signature, audience, expiry, `jti` replay).
//!
//! The services verify tokens in `corridor-runtime`'s `auth` module.

pub mod keys;
pub mod scopes;
pub mod tokens;

pub use keys::{KeyError, NodeKeys};
pub use scopes::{Interaction, Scopes};
pub use tokens::{AccessClaims, Assertion, AuthError, Confirmation, ReplayGuard, Verifier};
