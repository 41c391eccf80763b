//! The product's rules and values, as pure functions over plain data. No I/O here.

pub mod attachments;
pub mod chart;
pub mod conversations;
pub mod events;
pub mod ids;
pub mod mailbox;
pub mod markdown;
pub mod password;
pub mod people;
pub mod problem;
pub mod quotas;
pub mod role;
pub mod search;
pub mod teams;
pub mod values;

pub use ids::{PersonId, PracticeId, SessionId};
pub use problem::{Code, RuleViolation};
pub use role::{Role, Status};
