//! Confide: a secure, asynchronous mailbox server for health and therapy practices.

pub mod api;
pub mod app;
pub mod auth;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod domain;
pub mod error;
pub mod events;
pub mod metrics;
pub mod notify;
pub mod search;
pub mod server;
pub mod service;
pub mod store;
pub mod web;

pub use app::App;
pub use config::Config;
