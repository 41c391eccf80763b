//! Building the application: state, routes, the listener (port 0 in tests) and the janitor.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::{AddData, Csrf};
use poem::web::cookie::SameSite;
use poem::{get, EndpointExt, Route};

use crate::auth::PasswordHasher;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::problem_from_poem_error;
use crate::metrics::Metrics;
use crate::service::{sessions as session_service, AppState};
use crate::store::Store;
use crate::{api, web};

impl AppState {
    /// Makes the data directory private, opens the database (applying migrations) and
    /// prepares shared services.
    pub async fn open(
        config: Config,
        clock: Arc<dyn Clock>,
        public_url: String,
    ) -> anyhow::Result<Self> {
        crate::data_dir::restrict_new_files();
        crate::data_dir::prepare(&config.storage.data_dir)?;
        let store = Store::open(
            &config.database_url(),
            config.database.max_connections,
            config.database.busy_timeout_ms,
        )
        .await?;
        let store = if config.database.group_commit {
            store.with_group_commit()
        } else {
            store
        };
        let secret = crate::service::keys::load_secret(&config)?;
        {
            let mut conn = store.write().await?;
            crate::service::keys::check_fingerprint(&mut conn, &secret).await?;
        }
        let keys = Arc::new(crate::store::keys::Keyring::with_refresh(
            crate::service::keys::load_kek(&config)?,
            Duration::from_secs(config.encryption.refresh_seconds),
        ));
        let cursors = crate::service::cursor::Cursors::with_key(secret.derive("cursor_v2"));
        let csrf_key = secret.derive("csrf_v2");
        let state = AppState {
            cursors,
            csrf_key,
            live: crate::events::Live::new(),
            keys,
            mailer: crate::notify::Mailer::from_config(&config.mail, &config.storage.data_dir)?,
            sms: crate::notify::SmsGateway::from_config(&config.sms)?,
            blobs: crate::blobs::BlobStore::from_config(&config.storage)?,
            search: crate::search::SearchIndex::new(&config.storage.data_dir),
            hasher: PasswordHasher::new(config.auth.max_concurrent_hashes)?,
            config: Arc::new(config),
            store,
            clock,
            metrics: Metrics::new(),
            public_url: public_url.trim_end_matches('/').to_string(),
        };
        crate::service::sealing::prepare(&state).await?;
        Ok(state)
    }
}

/// The configured public URL, or one derived from the address the server listens on.
pub fn public_url(config: &Config, addr: SocketAddr) -> String {
    if config.server.public_url.is_empty() {
        format!("http://{addr}")
    } else {
        config.server.public_url.clone()
    }
}

pub struct App {
    state: AppState,
    acceptor: poem::listener::TcpAcceptor,
    address: SocketAddr,
    metrics_acceptor: Option<poem::listener::TcpAcceptor>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Binds the listener first (so the public URL can name its real port), then opens
    /// the database.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let metrics_acceptor = match config.metrics.bind.parse::<SocketAddr>() {
            Ok(bind) => Some(
                TcpListener::bind(bind)
                    .into_acceptor()
                    .await
                    .with_context(|| format!("cannot listen on metrics.bind {bind}"))?,
            ),
            Err(_) => None,
        };
        let acceptor = TcpListener::bind(config.server.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on server.bind {}", config.server.bind))?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no address")?;
        let public_url = public_url(&config, address);
        let state = AppState::open(config, clock, public_url).await?;
        Ok(App {
            state,
            acceptor,
            address,
            metrics_acceptor,
        })
    }

    /// Where metrics are served when `metrics.bind` is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_acceptor
            .as_ref()?
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let janitor = tokio::spawn(janitor(state.clone()));
        let anchor = tokio::spawn(audit_anchor(state.clone()));
        let sender = tokio::spawn(crate::notify::worker::run(state.clone()));
        let scheduler = tokio::spawn(crate::service::mailbox::scheduled::run(state.clone()));
        let follower = tokio::spawn(crate::events::run(
            state.store.clone(),
            state.live.clone(),
            state.config.database_url(),
            Duration::from_millis(state.config.live.poll_interval_ms),
        ));
        let stop_indexer = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let indexer = {
            let (handle, store, keys, search, stop) = (
                tokio::runtime::Handle::current(),
                state.store.clone(),
                state.keys.clone(),
                state.search.clone(),
                stop_indexer.clone(),
            );
            let pace = crate::search::indexer::Pace::from_config(&state.config.search);
            std::thread::Builder::new()
                .name("search-indexer".into())
                .spawn(move || crate::search::indexer::run(handle, store, keys, search, pace, stop))
                .context("starting the search indexer")?
        };
        let server = &state.config.server;
        let limits = crate::server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            send_timeout: Duration::from_secs(server.send_timeout_secs),
            max_connections: server.max_connections,
            max_per_address: (!server.trust_forwarded_for)
                .then_some(server.max_connections_per_address),
            grace: Duration::from_secs(10),
            http2_from: server
                .http2_balancers
                .iter()
                .map(|ip| ip.to_canonical())
                .collect(),
        };
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = self.metrics_acceptor.map(|acceptor| {
            let routes = Route::new()
                .at("/metrics", get(web::metrics))
                .with(AddData::new(state.clone()))
                .catch_all_error(|err| async move { problem_from_poem_error(err) });
            tokio::spawn(crate::server::serve(
                acceptor,
                routes,
                limits.clone(),
                async {
                    let _ = metrics_stopped.await;
                },
            ))
        });
        // Open event streams end as the server stops, so that it need not wait for them.
        let live = state.live.clone();
        let shutdown = async move {
            shutdown.await;
            live.close();
        };
        let result = crate::server::serve(self.acceptor, routes(&state), limits, shutdown).await;
        let _ = stop_metrics.send(());
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        janitor.abort();
        anchor.abort();
        sender.abort();
        scheduler.abort();
        live_stop(&state, follower).await;
        stop_indexer.store(true, std::sync::atomic::Ordering::Relaxed);
        // The indexer commits what it has and lets go of the index before the pool closes.
        let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
        state.store.close().await;
        result.context("serving HTTP")
    }
}

/// Every route of the main address, behind the middleware every request passes through.
fn routes(state: &AppState) -> impl poem::Endpoint {
    let secure_cookies = state.public_url.starts_with("https://");
    let (routes, docs_csp) = with_api(Route::new(), state);
    let mut routes = routes
        .at("/healthz", get(web::healthz))
        .at("/readyz", get(web::readyz))
        .at("/static/confide.css", get(web::stylesheet))
        .at("/static/inbox.js", get(web::script))
        .nest("/", form_pages(state.csrf_key, secure_cookies));
    if state.config.metrics.bind.is_empty() {
        routes = routes.at("/metrics", get(web::metrics));
    }
    with_middleware(routes, state, docs_csp, secure_cookies)
}

/// Adds the API under `/api/v1`, its OpenAPI document and its Swagger UI page to
/// `routes`; also returns the content security policy that page needs.
fn with_api(routes: Route, state: &AppState) -> (Route, Arc<String>) {
    let api = api::service(state);
    let raw_spec = api.spec();
    let spec = api::document::finish(&raw_spec, state.config.limits.body_max_chars);
    // The docs page holds the document inline: the finished one, like the served one.
    let docs_html = api.swagger_ui_html();
    assert!(
        docs_html.contains(&raw_spec),
        "poem-openapi's docs page holds its document verbatim"
    );
    let docs_html = docs_html.replacen(&raw_spec, &spec, 1);
    let docs_csp = Arc::new(web::docs_csp(&docs_html));
    let methods = Arc::new(api::document::Methods::of(&spec));
    let routes = routes
        .nest(
            "/api/v1",
            poem::IntoEndpoint::into_endpoint(api)
                .catch_all_error(|err| async move { problem_from_poem_error(err) })
                .around(move |ep, req| allow_on_405(ep, req, methods.clone())),
        )
        .at(
            "/api/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(spec.clone())
            })),
        )
        .at(
            "/api/docs",
            get(poem::endpoint::make_sync(move |_| {
                poem::web::Html(docs_html.clone())
            })),
        );
    (routes, docs_csp)
}

/// Adds `Allow` to a 405 of the API, naming the methods its path takes (RFC 9110 §15.5.6).
async fn allow_on_405<E: poem::Endpoint>(
    ep: Arc<E>,
    req: poem::Request,
    methods: Arc<api::document::Methods>,
) -> poem::Result<poem::Response> {
    let path = req.original_uri().path().to_string();
    let mut resp = ep.get_response(req).await;
    if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = path
            .strip_prefix("/api/v1")
            .and_then(|p| methods.allow(p))
            .and_then(|a| poem::http::HeaderValue::from_str(&a).ok());
        if let Some(allow) = allow {
            resp.headers_mut().insert(poem::http::header::ALLOW, allow);
        }
    }
    Ok(resp)
}

/// Declares a set of pages once: `$build()` makes their routes and `$list` names every
/// (method, path) of them, so that tests can hold each page to a row of the
/// authorization matrix and a new page cannot go without one.
macro_rules! pages {
    ($(#[$doc:meta])* $build:ident, $list:ident {
        $($path:literal => $($method:ident $handler:path),+;)*
    }) => {
        $(#[$doc])*
        fn $build() -> Route {
            Route::new()$(.at($path, poem::RouteMethod::new()$(.$method($handler))+))*
        }

        /// Every (method, path) that the matching route function serves.
        pub const $list: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];
    };
}

/// The HTML pages behind one-time links (setup, invitations, password resets, email
/// changes), whose forms are protected by a CSRF cookie. Its key is kept in the database,
/// so that a form one node served is accepted by another, and after a restart.
fn form_pages(csrf_key: [u8; 32], secure_cookies: bool) -> impl poem::Endpoint {
    link_pages()
        .nest("/p", inbox_pages().at("/*rest", web::unknown_page))
        .with(
            Csrf::new()
                .key(csrf_key)
                .cookie_name("confide-csrf")
                .secure(secure_cookies)
                .same_site(SameSite::Strict),
        )
}

pages! {
    /// The pages one reaches from a link in an email, with its single-use token.
    link_pages, LINK_PAGES {
        "/setup/:token" => get web::setup_page, post web::setup_submit;
        "/invitations/:token" => get web::invitation_page, post web::invitation_submit;
        "/password-resets/:token" => get web::reset_page, post web::reset_submit;
        "/email-changes/:token" => get web::email_change_page, post web::email_change_submit;
    }
}

pages! {
    /// The web inbox of each practice, under `/p/{slug}/` (DESIGN.md §5 "Web pages").
    inbox_pages, INBOX_PAGES {
        "/:slug/" => get web::portal;
        "/:slug/sign-in" => post web::sign_in;
        "/:slug/sign-out" => post web::sign_out;
        "/:slug/forgot-password" => get web::forgot_page, post web::forgot_submit;
        "/:slug/mail/bulk" => post web::bulk;
        "/:slug/mail/:folder" => get web::folder_page;
        "/:slug/threads/:id" => get web::thread_page;
        "/:slug/threads/:id/reply" => post web::reply;
        "/:slug/threads/:id/quick-note" => post web::quick_note;
        "/:slug/threads/:id/announcement" => post web::announcement;
        "/:slug/threads/:id/completion" => post web::completion;
        "/:slug/threads/:id/notes" => post web::add_note;
        "/:slug/threads/:id/pin" => post web::pin_thread;
        "/:slug/threads/:id/team" => post web::team;
        "/:slug/threads/:id/messages/:message/pin" => post web::pin_message;
        "/:slug/threads/:id/share" => get web::share_page, post web::share;
        "/:slug/threads/:id/messages/:message/reactions" => post web::react;
        "/:slug/threads/:id/export" => get web::export;
        "/:slug/threads/:id/delete" => get web::delete_thread_page, post web::delete_thread;
        "/:slug/threads/:thread/messages/:id/delete" => get web::delete_message_page, post web::delete_message;
        "/:slug/compose" => get web::compose_page, post web::compose_submit;
        "/:slug/drafts/:id" => get web::draft_page;
        "/:slug/scheduled/:id/cancel" => post web::cancel_scheduled;
        "/:slug/search" => post web::search;
        "/:slug/settings" => get web::settings_page, post web::settings_submit;
        "/:slug/settings/sessions/:id/end" => post web::end_session;
        "/:slug/admin/people" => get web::people_page, post web::create_person;
        "/:slug/admin/people/:id/invitation" => post web::resend_invitation;
        "/:slug/admin/people/:id/status" => post web::set_status;
        "/:slug/admin/audit" => get web::audit_page;
        "/:slug/admin/settings" => get web::practice_settings_page, post web::practice_settings_submit;
        "/:slug/updates" => get web::updates;
        "/:slug/events" => get web::events;
        "/:slug/attachments/:id" => get web::download;
        "/:slug/folders" => post web::create_folder;
        "/:slug/folders/:id/rename" => post web::rename_folder;
        "/:slug/folders/:id/delete" => post web::delete_folder;
    }
}

/// Wraps `routes` in the shared state and configuration, problem-shaped errors, request
/// limits, the refusal of NUL bytes, security headers (HSTS when `hsts`) and metrics.
fn with_middleware(
    routes: Route,
    state: &AppState,
    docs_csp: Arc<String>,
    hsts: bool,
) -> impl poem::Endpoint {
    let observed_state = state.clone();
    let limits_config = state.config.clone();
    routes
        .with(AddData::new(state.clone()))
        .with(AddData::new(state.config.clone()))
        .catch_all_error(|err| async move { problem_from_poem_error(err) })
        .around(move |ep, req| web::request_limits(ep, req, limits_config.clone()))
        .around(web::refuse_nul)
        .around(move |ep, req| web::security_headers(ep, req, docs_csp.clone(), hsts))
        .around(move |ep, req| web::observe(ep, req, observed_state.clone()))
}

const JANITOR_EVERY: Duration = Duration::from_secs(300);

/// Stops the live follower (the streams ended with the server).
async fn live_stop(state: &AppState, follower: tokio::task::JoinHandle<()>) {
    state.live.close();
    let _ = follower.await;
}

/// Writes the audit chain's head to the log and to `/metrics` at start and every
/// `[audit] anchor_interval_minutes` (on every node: each keeps its own log).
async fn audit_anchor(state: AppState) {
    let every = Duration::from_secs(state.config.audit.anchor_interval_minutes * 60);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match crate::service::audit::anchor(&state.store).await {
            Ok((seq, hash)) => {
                tracing::info!(seq, hash = %hash, "audit anchor");
                state.metrics.set_audit_anchor(seq, &hash);
            }
            Err(e) => {
                tracing::warn!(error = %e.describe(), "audit anchor: cannot read the chain's head")
            }
        }
    }
}

/// Removes expired sessions, stale sign-in attempts, week-old idempotency keys, changes
/// older than `[live] changes_retention_days` and threads past their practice's retention
/// every few minutes.
/// With several nodes, one of them at a time (a lease in the database).
async fn janitor(state: AppState) {
    let mut tick = tokio::time::interval(JANITOR_EVERY);
    let holder = hex::encode(rand::random::<[u8; 8]>());
    loop {
        tick.tick().await;
        match crate::service::take_lease(&state, "janitor", &holder, JANITOR_EVERY).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "janitor: cannot take its lease");
                continue;
            }
        }
        if let Err(e) = session_service::sweep(&state).await {
            tracing::warn!(error = %e, "janitor sweep failed");
        }
        if let Err(e) = crate::service::attachments::sweep(&state).await {
            tracing::warn!(error = %e.describe(), "janitor: removing unused attachments failed");
        }
        if let Err(e) = crate::service::mailbox::idempotency::forget_old_keys(&state).await {
            tracing::warn!(error = %e, "janitor: forgetting old idempotency keys failed");
        }
        if let Err(e) = crate::service::changes::forget_old(&state).await {
            tracing::warn!(error = %e, "janitor: forgetting old changes failed");
        }
        match crate::service::retention::purge(&state).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "janitor: threads past their retention deleted"),
            Err(e) => tracing::warn!(error = %e.describe(), "janitor: retention failed"),
        }
    }
}
