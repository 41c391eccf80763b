//! The security review's findings (issue "Security fixes"), each reproduced as an attack
//! that must now fail: slow and oversized requests against the real binary, file modes,
//! metrics, transport, quotas, lock-outs and search statistics; and the authorization
//! matrix of every operation and page against every kind of actor. Every test runs on SQLite
//! and, when CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;
// Only the plain-HTTP browser of it is used here.
#[allow(dead_code)]
#[path = "../common/web.rs"]
mod web;

mod access;
mod authorization;
mod encryption;
mod files;
mod requests;

pub use helpers::Binary;
