//! Patient matching for the identity service: deciding whether two
//! records describe the same person when they come from different
//! organizations, scripts and romanizations.
//!
//! - [`names`]: names across scripts (Arabic, Persian, Pashto, Cyrillic,
//!   Ge'ez, Latin) and romanization variants, as comparable token forms.
//! - [`dates`]: birth dates, estimated ones included.
//! - [`person`]: what a Patient says, normalized (phones to E.164).
//! - [`score`]: Fellegi-Sunter weights and grades, with the evidence.
//! - [`rules`]: the rules file that sets every weight and threshold.
//! - [`keys`]: the blocking keys stored with each Patient.
//!
//! It knows nothing about storage or gRPC, so it is tested on its own.

pub mod dates;
pub mod keys;
pub mod names;
pub mod person;
pub mod rules;
pub mod score;

pub use person::Person;
pub use rules::{Rules, RulesError};
pub use score::{Evidence, Grade, compare, grade};
