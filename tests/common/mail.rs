//! A real SMTP server on localhost (aiosmtpd, from the test virtualenv) that keeps every
//! email it receives, and a tiny HTTP receiver standing in for an SMS gateway.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Python interpreter with the test tools, if there is one.
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("CONFIDE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    crate::helpers::report_skip(&format!("the Python module {module} (CONFIDE_TEST_PYTHON)"));
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// One received email.
#[derive(Debug, Clone)]
pub struct Email {
    pub envelope_to: String,
    pub raw: String,
}

impl Email {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.raw
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }

    /// The text, with quoted-printable soft line breaks and escapes undone.
    pub fn decoded(&self) -> String {
        let joined = self.raw.replace("=\r\n", "").replace("=\n", "");
        let mut out = String::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        let mut buf = Vec::new();
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    buf.push(b);
                    i += 3;
                    continue;
                }
            }
            buf.push(bytes[i]);
            i += 1;
        }
        out.push_str(&String::from_utf8_lossy(&buf));
        out
    }

    /// The first link to this server's `path_prefix`, e.g. `/invitations/`.
    pub fn link(&self, path_prefix: &str) -> Option<String> {
        let text = self.decoded();
        let start = text.find(path_prefix)?;
        let begin = text[..start].rfind("http")?;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
            .map(|e| start + e)?;
        Some(text[begin..end].to_string())
    }
}

impl SmtpSink {
    pub fn start(port: u16) -> Option<SmtpSink> {
        let python = python_with("aiosmtpd")?;
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Some(SmtpSink { port, dir, child })
    }

    pub fn emails(&self) -> Vec<Email> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                let raw = std::fs::read_to_string(&path).unwrap();
                let envelope_to = raw
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("X-Envelope-To: ")
                    .to_string();
                out.push(Email { envelope_to, raw });
            }
        }
        out
    }

    /// The emails to `address`, waiting up to `secs` for at least `count` of them.
    pub async fn wait_for(&self, address: &str, count: usize, secs: u64) -> Vec<Email> {
        for _ in 0..secs * 20 {
            let found: Vec<Email> = self
                .emails()
                .into_iter()
                .filter(|e| e.envelope_to == address)
                .collect();
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.emails()
            .into_iter()
            .filter(|e| e.envelope_to == address)
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the SMS gateway received: (Authorization header, JSON body) per request.
pub type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A stand-in SMS gateway: keeps each request's Authorization header and JSON body.
pub struct SmsReceiver {
    pub url: String,
    pub received: Received,
    _server: tokio::task::JoinHandle<()>,
}

impl SmsReceiver {
    pub async fn start() -> SmsReceiver {
        use poem::{handler, post, web::Json, EndpointExt, Request, Route};
        let received: Received = Arc::default();
        #[handler]
        fn send(
            req: &Request,
            Json(body): Json<serde_json::Value>,
            store: poem::web::Data<&Received>,
        ) -> &'static str {
            let auth = req.header("authorization").unwrap_or_default().to_string();
            store.lock().unwrap().push((auth, body));
            "queued"
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let app = Route::new().at("/send", post(send)).data(received.clone());
        let server = tokio::spawn(async move {
            let _ = poem::Server::new(poem::listener::TcpListener::bind(format!(
                "127.0.0.1:{port}"
            )))
            .run(app)
            .await;
        });
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        SmsReceiver {
            url: format!("http://127.0.0.1:{port}/send"),
            received,
            _server: server,
        }
    }
}

/// Points the server's mail at the sink and makes the sender quick.
pub fn use_sink(config: &mut confide::Config, port: u16) {
    config.mail.transport = confide::config::MailTransport::Smtp;
    config.mail.host = "127.0.0.1".into();
    config.mail.port = port;
    config.mail.tls = confide::config::SmtpTls::None;
    config.notifications.poll_interval_ms = 50;
}

/// A server whose mail goes to a fresh SMTP sink; `None` when aiosmtpd is missing.
pub async fn with_sink(
    backend: crate::helpers::Backend,
    tweak: impl FnOnce(&mut confide::Config),
) -> Option<(crate::helpers::TestApp, SmtpSink)> {
    let sink = SmtpSink::start(free_port())?;
    let port = sink.port;
    let app = crate::helpers::TestApp::spawn_with(backend, |c| {
        use_sink(c, port);
        tweak(c);
    })
    .await;
    Some((app, sink))
}
