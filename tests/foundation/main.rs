//! Foundation: sign-in and sessions, people, audit, the HTTP contract, setup and the CLI.
//! Every test runs on SQLite and, when CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/browser.rs"]
mod browser;
#[path = "../common/helpers.rs"]
mod helpers;

mod audit;
mod cli;
mod conformance;
mod group_commit;
mod pages;
mod people;
mod platform;
mod problems;
mod sessions;
mod setup;
