//! The web inbox (DESIGN.md §5 "Web pages"): the journeys of staff and clients as plain
//! form posts with a cookie jar (no JavaScript), the same rules as the API, the security
//! of the pages, and the pages in a real browser with axe-core.
//! Every test runs on SQLite and, when CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/browser.rs"]
mod browser;
#[path = "../common/helpers.rs"]
mod helpers;
#[path = "../common/mail.rs"]
mod mail;
#[path = "../common/web.rs"]
mod web;

mod admin;
mod browsing;
mod conversations;
mod journeys;
mod journeys_in_browser;
mod security;
mod settings;

pub use helpers::{user, Cast};
