//! The mailbox rulebook (DESIGN.md §2): composing, replies, privacy, inactive clients,
//! deletion, folders, drafts, lists, the event log and the audit of mailbox actions.
//! Every test runs on SQLite and, when CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;

mod compose;
mod delete;
mod drafts;
mod folders;
mod privacy;
mod replies;
mod retention;
mod seed;

pub use helpers::{user, Cast};
