//! The real `confide` binary as its own process, on a test's database and data directory:
//! for what only a process shows (its log, its memory, kill -9, the command line).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{TestDatabase, PASSWORD};

/// A running `confide serve`.
pub struct Binary {
    pub child: Child,
    pub base: String,
    pub address: String,
    /// What it wrote to standard error (its log).
    pub log: Arc<Mutex<String>>,
}

impl Binary {
    /// The command with the test database and data directory, and `env` on top.
    pub fn command(db: &TestDatabase, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confide"));
        std::fs::create_dir_all(db.data_dir()).unwrap();
        let config = db.data_dir().with_extension("toml");
        std::fs::write(&config, "").unwrap();
        cmd.env("CONFIDE_CONFIG", &config)
            .env("CONFIDE__DATABASE__URL", &db.url)
            .env("CONFIDE__STORAGE__DATA_DIR", db.data_dir())
            .env("CONFIDE__SERVER__BIND", "127.0.0.1:0")
            .env("CONFIDE__LOG__LEVEL", "info")
            .env_remove("RUST_LOG");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Creates practice `oak` with admin avery@oak.example (password [`PASSWORD`]).
    pub fn create_practice(db: &TestDatabase, env: &[(&str, &str)]) {
        Self::admin_command(
            db,
            env,
            &[
                "create-practice",
                "--slug",
                "oak",
                "--name",
                "Oak",
                "--admin-email",
                "avery@oak.example",
                "--admin-name",
                "Avery Admin",
                "--password-stdin",
            ],
        );
    }

    /// Adds a person to practice `oak` with [`PASSWORD`].
    pub fn create_user(
        db: &TestDatabase,
        env: &[(&str, &str)],
        role: &str,
        email: &str,
        name: &str,
    ) {
        Self::admin_command(
            db,
            env,
            &[
                "create-user",
                "--practice",
                "oak",
                "--role",
                role,
                "--email",
                email,
                "--name",
                name,
                "--password-stdin",
            ],
        );
    }

    /// Runs `confide admin ARGS` with [`PASSWORD`] on its standard input; it must succeed.
    pub fn admin_command(db: &TestDatabase, env: &[(&str, &str)], args: &[&str]) {
        let mut setup = Self::command(db, env)
            .arg("admin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        setup
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(setup.wait().unwrap().success(), "confide admin {args:?}");
    }

    /// Starts `confide serve` and waits for the address it listens on.
    pub fn serve(db: &TestDatabase, env: &[(&str, &str)]) -> Binary {
        let mut child = Self::command(db, env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep reading, so that what it prints next (a setup link) finds its pipe open.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let base = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(base.starts_with("http://"), "serve printed {line:?}");
        let address = base.trim_start_matches("http://").to_string();
        Binary {
            child,
            base,
            address,
            log,
        }
    }

    /// Its log once it says it is listening (what it logged while starting is in it).
    pub fn startup_log(&self) -> String {
        for _ in 0..100 {
            let log = self.log.lock().unwrap().clone();
            if log.contains("listening") {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.log.lock().unwrap().clone()
    }

    /// Its peak resident memory so far, in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Signs a person of practice `oak` in; returns (bearer token, person id).
    pub async fn sign_in(&self, email: &str) -> (String, String) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/sessions", self.base))
            .json(&json!({"practice": "oak", "email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        (
            body["token"].as_str().unwrap().to_string(),
            body["user"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// Signs the practice's admin in; returns the bearer token.
    pub async fn admin_token(&self) -> String {
        self.sign_in("avery@oak.example").await.0
    }

    /// Kills it with SIGKILL (no shutdown of any kind) and waits for it to go.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
