//! Test support (never shipped): [`TestApp`] starts the real server on
//! `127.0.0.1:0` over a fresh SQLite file, with an injectable clock and
//! ready-made tokens for every kind of principal.
#![forbid(unsafe_code)]

use std::sync::Arc;

use gantry_api_types::{CreateTokenRequest, TokenKind};
use gantry_core::{AuditDraft, Clock, ManualClock, Mutation};
use gantry_server::{AppState, ServerConfig};
use gantry_store_sqlite::SqliteStore;
use tokio::sync::oneshot;

/// Tokens created for a test app.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Admin.
    pub admin: String,
    /// Server SDK token for `production`.
    pub server: String,
    /// Client/frontend token for `production`.
    pub client: String,
    /// Server SDK token for `development`.
    pub server_dev: String,
}

/// A running server for one test.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Tokens by principal.
    pub tokens: Tokens,
    /// The state (to inspect or drive directly).
    pub state: AppState<SqliteStore>,
    /// The manual clock, when the app was built with one.
    pub clock: Option<ManualClock>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Data directory (dropped with the app).
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Creates a token directly through the state (as `gantry token create` does).
pub async fn create_token(state: &AppState<SqliteStore>, kind: TokenKind, env: Option<&str>) -> String {
    let now = state.clock.now();
    let req = CreateTokenRequest { kind, environment: env.map(str::to_owned), name: None, expires_at: None };
    let mut secret = None;
    state
        .write(|v| {
            let envs: Vec<String> = v.environments.iter().map(|e| e.environment.name.clone()).collect();
            let (t, s) = gantry_server::admin::new_token(&req, &envs, now).map_err(|e| e.message)?;
            secret = Some(s);
            let a = AuditDraft {
                actor: "test".into(),
                action: "token.create".into(),
                target_kind: "token".into(),
                target: t.id.clone(),
                before: None,
                after: None,
            };
            Ok::<_, String>((vec![Mutation::InsertToken(t)], vec![a], vec![]))
        })
        .await
        .expect("token request valid")
        .expect("token stored");
    secret.expect("secret")
}

/// Options of [`TestApp::spawn_with`].
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Use a manual clock starting at this time (ms since the epoch).
    pub manual_clock_ms: Option<i64>,
    /// Server configuration.
    pub config: ServerConfig,
    /// Listen here instead of an ephemeral port (restart tests).
    pub listen: Option<std::net::SocketAddr>,
    /// Reuse this data directory instead of a fresh one (restart tests).
    pub data_dir: Option<std::path::PathBuf>,
}

impl TestApp {
    /// A server with default settings and the system clock.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    /// A server with options.
    pub async fn spawn_with(opts: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = opts.data_dir.clone().unwrap_or_else(|| dir.path().to_owned());
        let store = SqliteStore::open_dir(&data).await.expect("open store");
        let manual = opts.manual_clock_ms.map(ManualClock::new);
        let clock: Arc<dyn Clock> = match &manual {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(gantry_core::SystemClock),
        };
        let state = AppState::load(store, clock, opts.config).await.expect("load state");
        let tokens = Tokens {
            admin: create_token(&state, TokenKind::Admin, None).await,
            server: create_token(&state, TokenKind::Server, Some("production")).await,
            client: create_token(&state, TokenKind::Client, Some("production")).await,
            server_dev: create_token(&state, TokenKind::Server, Some("development")).await,
        };
        let addr = opts.listen.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(gantry_server::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestApp { base, tokens, state, clock: manual, http: reqwest::Client::new(), dir, shutdown: Some(tx), handle: Some(handle) }
    }

    /// A full URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn req(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// GET as admin.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::GET, path, Some(&self.tokens.admin)).send().await.expect("request")
    }

    /// POST JSON as admin.
    pub async fn admin_post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.req(reqwest::Method::POST, path, Some(&self.tokens.admin)).json(body).send().await.expect("request")
    }

    /// PUT JSON as admin.
    pub async fn admin_put(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.req(reqwest::Method::PUT, path, Some(&self.tokens.admin)).json(body).send().await.expect("request")
    }

    /// Creates a flag as admin and asserts 201.
    pub async fn create_flag(&self, flag: serde_json::Value) -> serde_json::Value {
        let r = self.admin_post("/api/v1/flags", &flag).await;
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status, 201, "create flag failed: {body}");
        body
    }

    /// OFREP single evaluation with a token (environment from the token).
    pub async fn ofrep(&self, token: &str, key: &str, context: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .req(reqwest::Method::POST, &format!("/ofrep/v1/evaluate/flags/{}", urlencode(key)), Some(token))
            .json(&serde_json::json!({ "context": context }))
            .send()
            .await
            .expect("request");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Kills the server abruptly: the serving task is aborted, every
    /// connection drops without a goodbye (the in-process `kill -9`).
    pub async fn kill(mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
            let _ = h.await;
        }
        self.state.begin_shutdown();
        self.shutdown.take();
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Percent-encodes a path segment (like `encodeURIComponent`).
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
