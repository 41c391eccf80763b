//! The product's rules and values, as pure functions over plain data. No I/O here.

pub mod attachments;
pub mod chart;
pub mod ids;
pub mod mailbox;
pub mod markdown;
pub mod password;
pub mod people;
pub mod quotas;
pub mod role;
pub mod search;
pub mod values;

pub use ids::{PersonId, PracticeId, SessionId};
pub use role::{Role, Status};

/// A refusal by a rule: a stable machine-readable code and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub code: &'static str,
    pub field: Option<&'static str>,
    pub message: String,
}

impl RuleViolation {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    pub fn field(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field),
            message: message.into(),
        }
    }
}
