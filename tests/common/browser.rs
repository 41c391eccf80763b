//! A small W3C WebDriver client for Debian's chromedriver and headless Chromium: enough to
//! open a page, fill a form, click, and read what a person would see.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// One browser at a time: several headless Chromiums on a 2-core machine starve each other.
static ONE_AT_A_TIME: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

pub struct Browser {
    _turn: tokio::sync::OwnedMutexGuard<()>,
    http: reqwest::Client,
    session_url: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts chromedriver and a headless Chromium. Without chromedriver the test is
    /// skipped locally, but fails under CI (which installs it).
    pub async fn start() -> Option<Browser> {
        let driver_path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(driver_path) = driver_path else {
            crate::helpers::report_skip("chromedriver (Debian's chromium-driver)");
            return None;
        };
        let turn = ONE_AT_A_TIME.clone().lock_owned().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(resp) = http.get(format!("{base}/status")).send().await {
                if resp
                    .json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v["value"]["ready"] == true)
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new browser session: {created}"));
        Some(Browser {
            _turn: turn,
            http,
            session_url: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.session_url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let value: Value = req.send().await.unwrap().json().await.unwrap();
        value["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The element matching `css`, waiting up to thirty seconds for it to appear.
    pub async fn find(&self, css: &str) -> String {
        for _ in 0..300 {
            let found = self
                .command(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = self.source().await;
        let tail: String = source
            .chars()
            .rev()
            .take(1500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("no element {css}; the page ends with:\n{tail}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (up to thirty seconds) until the element matching `css` reads `expected`; pages
    /// may still be navigating after a click.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let mut last = String::new();
        for _ in 0..300 {
            let found = self
                .command(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                let text = self
                    .command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
                    .await;
                if let Some(text) = text.as_str() {
                    if text == expected {
                        return;
                    }
                    last = text.to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never read {expected:?}; last it read {last:?}");
    }

    /// Saves the page as a PNG in the directory `CONFIDE_SCREENSHOTS` names, if set (to
    /// look at a page as its user sees it).
    #[allow(dead_code)]
    pub async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("CONFIDE_SCREENSHOTS") else {
            return;
        };
        let png = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let bytes = data_encoding::BASE64
            .decode(png.as_str().unwrap_or_default().as_bytes())
            .expect("a screenshot in base64");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.png")),
            bytes,
        )
        .unwrap();
    }

    pub async fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs an async script in the page; it gets a callback as its last argument.
    pub async fn run_async(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Resizes the window (the page's width, for phone-sized layouts).
    pub async fn set_size(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Whether the page is wider than the window (something overflows sideways).
    pub async fn scrolls_sideways(&self) -> bool {
        self.run_async(
            "const done = arguments[arguments.length - 1]; \
             done(document.documentElement.scrollWidth > document.documentElement.clientWidth);",
        )
        .await
            == Value::Bool(true)
    }

    /// What axe-core (vendored in tests/tools) finds wrong with the page: one line per
    /// violation, with the elements it concerns.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("../tools/axe.min.js");
        let script = format!(
            "const done = arguments[arguments.length - 1]; {AXE}; \
             axe.run(document).then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' ' + \
             v.nodes.map(n => n.target.join(' ')).join(', ')))).catch(e => done(['axe failed: ' + e]));"
        );
        let found = self.run_async(&script).await;
        found
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe answered {found}")])
    }

    /// What the page logged to its console (CSP violations show up here).
    pub async fn console(&self) -> Vec<String> {
        let log = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        log.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session_url).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
