//! One database helper for the integration tests and the benchmarks: a fresh PostgreSQL
//! database on the server `CONFIDE_TEST_POSTGRES_URL` names (dropped with the value), or a
//! SQLite file in a given data directory.

use std::path::Path;

use sqlx::Connection;

/// The database engines Confide runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres` (as benchmarks take it on their command line).
    pub fn parse(name: &str) -> Option<Backend> {
        match name {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// The PostgreSQL server tests may create databases on, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("CONFIDE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database of one test's or benchmark's own.
pub struct Database {
    pub url: String,
    /// (the server's admin URL, the database's name) on PostgreSQL.
    postgres: Option<(String, String)>,
}

impl Database {
    /// A new database: on PostgreSQL a fresh one (the server from `CONFIDE_TEST_POSTGRES_URL`),
    /// on SQLite the file `confide.db` in `data_dir`.
    pub async fn create(backend: Backend, data_dir: &Path) -> Database {
        if backend == Backend::Sqlite {
            return Database {
                url: format!("sqlite://{}", data_dir.join("confide.db").display()),
                postgres: None,
            };
        }
        let admin_url = postgres_url().expect("CONFIDE_TEST_POSTGRES_URL");
        let name = format!("confide_t_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to CONFIDE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a database");
        conn.close().await.ok();
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b.to_string(), format!("?{q}")),
            None => (admin_url.clone(), String::new()),
        };
        let server = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(&base);
        Database {
            url: format!("{server}/{name}{query}"),
            postgres: Some((admin_url, name)),
        }
    }

    /// A connection of the caller's own, beside the app's pool (to hold a lock, or to
    /// change a row behind the app's back).
    pub async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect to the database")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Async drop does not exist; a short-lived runtime on its own thread does it.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                    Ok::<_, sqlx::Error>(())
                })
                .map_err(std::io::Error::other)
            })
            .join();
        }
    }
}
