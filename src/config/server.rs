//! The sections on serving HTTP: `[server]`, `[auth]`, `[limits]`, `[log]` and `[metrics]`.

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The address people use to reach this server; links in emails and the console use it.
    /// Empty: derived from `bind`.
    pub public_url: String,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// A connection must send a whole request head within this many seconds; the same
    /// bound closes a kept-alive connection that sends nothing.
    pub header_read_timeout_secs: u64,
    /// A request (reading its body and answering it) must finish within this many seconds;
    /// streamed uploads are bounded by `body_idle_timeout_secs` instead.
    pub request_timeout_secs: u64,
    /// A streamed upload that sends nothing for this many seconds is cut off.
    pub body_idle_timeout_secs: u64,
    /// Connections open at once; more wait until one closes.
    pub max_connections: usize,
    /// Connections open at once from one client address; more are closed at once. Not
    /// applied with `trust_forwarded_for` (every connection then comes from the proxy).
    pub max_connections_per_address: usize,
    /// A response the client reads nothing of for this many seconds is cut off.
    pub send_timeout_secs: u64,
    /// Load balancers that may speak HTTP/2 without TLS (h2c, prior knowledge) to this
    /// server: their event streams then share a few connections instead of holding one
    /// each. Connections from any other address are served HTTP/1.1 only. Empty: none.
    pub http2_balancers: Vec<std::net::IpAddr>,
    /// The secret the CSRF and cursor keys are made from; every node of a cluster needs
    /// the same. Empty: `secret.key` in the data directory, made on first start.
    pub secret_key: SecretString,
}

/// A configured secret: never printed (its Debug says only whether it is set).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_string())
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "(unset)"
        } else {
            "(set)"
        })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            trust_forwarded_for: false,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            body_idle_timeout_secs: 30,
            max_connections: 1024,
            max_connections_per_address: 128,
            send_timeout_secs: 30,
            http2_balancers: Vec::new(),
            secret_key: SecretString::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_idle_minutes: i64,
    pub session_max_hours: i64,
    /// Password hashes computed at once; each takes ~19 MiB and a core for a moment.
    pub max_concurrent_hashes: usize,
    pub failure_window_minutes: i64,
    pub max_failures_per_account: i64,
    pub max_failures_per_address: i64,
    /// A device (browser or API client) that signed in successfully is remembered this many
    /// days: it keeps its own count of failed sign-ins, so guesses from elsewhere cannot
    /// lock the person out of it.
    pub trusted_device_days: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            session_max_hours: 12,
            max_concurrent_hashes: 2,
            failure_window_minutes: 15,
            max_failures_per_account: 5,
            max_failures_per_address: 50,
            trusted_device_days: 90,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON request body accepted (and any other body but forms and uploads), in bytes.
    pub json_body_max_bytes: usize,
    /// Largest HTML form body accepted, in bytes.
    pub form_body_max_bytes: usize,
    /// Longest message body accepted, in characters of Markdown.
    pub body_max_chars: usize,
    /// Largest attachment accepted, in bytes.
    pub attachment_max_bytes: u64,
    /// Files accepted in one upload request.
    pub attachments_per_upload: usize,
    /// The kinds of file accepted, decided by their content: any of pdf, doc, docx, txt,
    /// rtf, csv, jpeg, png, gif, bmp, heic, and audio for voice notes: m4a, aac, mp3, ogg
    /// (Opus or Vorbis), webm, wav.
    pub attachment_types: Vec<String>,
    /// A pending upload that no message or draft uses is removed after this many hours.
    pub pending_attachment_hours: i64,
    /// Bytes of unsent uploads one person may hold at once.
    pub pending_upload_max_bytes: u64,
    /// Files one person may upload per hour.
    pub uploads_per_hour: i64,
    /// Drafts one person may keep.
    pub drafts_per_person: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            json_body_max_bytes: 1024 * 1024,
            form_body_max_bytes: 64 * 1024,
            body_max_chars: 100_000,
            attachment_max_bytes: 10 * 1024 * 1024,
            attachments_per_upload: 20,
            attachment_types: crate::domain::attachments::Kind::ALL
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            pending_attachment_hours: 24,
            pending_upload_max_bytes: 200 * 1024 * 1024,
            uploads_per_hour: 200,
            drafts_per_person: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Confide's own level (`info`, `debug`…; other crates log warnings and errors only), or
    /// a whole tracing filter such as `confide=debug,tantivy=info,warn`. `RUST_LOG` wins.
    pub level: String,
    /// `text` for people, `json` (one object per line) for log collectors.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LogConfig {
    /// The tracing filter `level` stands for: a bare level is Confide's own, with every
    /// other crate at `warn` (tantivy, for one, reports each commit at info).
    pub fn filter(&self) -> String {
        let level = self.level.trim();
        if level.contains('=') || level.contains(',') {
            level.to_string()
        } else {
            format!("warn,confide={level}")
        }
    }
}

/// Who may read `/metrics`, and where.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token `/metrics` requires. Empty: only requests from this machine
    /// (loopback, not forwarded by a proxy) are answered.
    pub token: String,
    /// Serve metrics on this address (e.g. `127.0.0.1:9090`) instead of the main one.
    /// Empty: on the main address.
    pub bind: String,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &if self.token.is_empty() { "" } else { "(set)" })
            .field("bind", &self.bind)
            .finish()
    }
}
