//! A person using the web inbox without JavaScript: plain HTTP with a cookie jar, reading
//! each page's CSRF token from its forms and following no redirect on its own (so tests
//! see each 303 and where it points).

use reqwest::header::HeaderMap;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD};

/// One page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn assert_redirect(&self, to: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.html);
        assert_eq!(self.location(), to);
    }

    /// The page's `<title>`.
    pub fn title(&self) -> &str {
        let start = self.html.find("<title>").map(|i| i + 7).unwrap_or(0);
        let end = self.html[start..].find("</title>").unwrap_or(0) + start;
        &self.html[start..end]
    }

    /// The values of every `name="<name>" value="…"` input of the page.
    pub fn values(&self, name: &str) -> Vec<String> {
        let needle = format!("name=\"{name}\" value=\"");
        self.html
            .match_indices(&needle)
            .map(|(i, _)| {
                let rest = &self.html[i + needle.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
            .collect()
    }

    /// The ids that follow `prefix` (such as `/p/oak/threads/`) in the page's links, in
    /// order, each once.
    pub fn ids_after(&self, prefix: &str) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for (i, _) in self.html.match_indices(prefix) {
            let rest = &self.html[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            let id = rest[..end].to_string();
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

/// A browser without JavaScript: a cookie jar and the CSRF token of the last page seen.
pub struct WebUser {
    pub client: reqwest::Client,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    pub base: String,
    pub slug: String,
    csrf: std::sync::Mutex<String>,
}

impl WebUser {
    pub fn new(app: &TestApp, slug: &str) -> WebUser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        WebUser {
            client: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar,
            base: app.url(""),
            slug: slug.to_string(),
            csrf: Default::default(),
        }
    }

    /// A path under this practice's pages.
    pub fn path(&self, rest: &str) -> String {
        format!("/p/{}/{rest}", self.slug)
    }

    async fn page(&self, resp: reqwest::Response) -> Page {
        let status = resp.status();
        let headers = resp.headers().clone();
        let html = resp.text().await.unwrap();
        let page = Page {
            status,
            headers,
            html,
        };
        if let Some(token) = page.values("csrf_token").into_iter().next() {
            *self.csrf.lock().unwrap() = token;
        }
        page
    }

    /// GETs an absolute path.
    pub async fn get(&self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// The value of a cookie the jar would send to this practice's pages.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = format!("{}{}", self.base, self.path("mail/inbox"))
            .parse()
            .unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    /// The CSRF token of the last page seen.
    pub fn csrf(&self) -> String {
        self.csrf.lock().unwrap().clone()
    }

    /// POSTs a urlencoded form (with the CSRF token of the last page) to an absolute path.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POSTs exactly these fields.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// POSTs a multipart form with files `(name, bytes)` in `file` fields.
    pub async fn post_files(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> Page {
        let mut form = Form::new().text("csrf_token", self.csrf());
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        for (name, bytes) in files {
            form = form.part(
                "file",
                Part::bytes(bytes.to_vec()).file_name(name.to_string()),
            );
        }
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// Signs in at the portal page; returns the answer to the sign-in POST.
    pub async fn try_sign_in(&self, email: &str, password: &str, next: &str) -> Page {
        let portal = self.get(&self.path("")).await;
        assert_eq!(portal.status, StatusCode::OK, "{}", portal.html);
        self.post(
            &self.path("sign-in"),
            &[("email", email), ("password", password), ("next", next)],
        )
        .await
    }

    /// Signs in (password [`PASSWORD`]) and lands in the inbox.
    pub async fn sign_in(app: &TestApp, slug: &str, email: &str) -> WebUser {
        let user = WebUser::new(app, slug);
        let done = user.try_sign_in(email, PASSWORD, "").await;
        done.assert_redirect(&user.path("mail/inbox"));
        user
    }
}
