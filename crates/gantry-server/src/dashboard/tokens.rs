//! API tokens: list (never secrets), create (the secret is shown once, on
//! the response to the creating POST, and never stored), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::{CreateTokenRequest, CreatedToken, TokenKind};
use gantry_core::Store;

use super::html::{Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Posted, Session};
use super::{csrf_field, error_box, fmt_time, see_other, status_of};
use crate::error::ApiError;
use crate::extract::AdminPrincipal;
use crate::html;
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/tokens", label: "Tokens" };

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ui/tokens", get(list_tokens::<St>).post(create_token::<St>))
        .route("/ui/tokens/{id}/revoke", post(revoke_token::<St>))
}

fn render<St: Store>(app: &AppState<St>, s: &Session, created: Option<&CreatedToken>, error: Option<&ApiError>) -> Response {
    let v = app.views();
    let now = app.clock.now();
    let mut tokens: Vec<_> = v.tokens.values().collect();
    tokens.sort_by(|a, b| {
        (b.created_at, a.kind.as_str(), &a.environment, &a.name, &a.id).cmp(&(
            a.created_at,
            b.kind.as_str(),
            &b.environment,
            &b.name,
            &b.id,
        ))
    });
    let rows: Html = tokens
        .iter()
        .map(|t| {
            let status = if t.revoked_at.is_some() {
                html!("<span class=\"badge off\">revoked</span>")
            } else if t.expires_at.is_some_and(|e| e <= now) {
                html!("<span class=\"badge off\">expired</span>")
            } else {
                html!("<span class=\"badge on\">active</span>")
            };
            let action = if t.revoked_at.is_none() {
                html!(
                    "<form method=\"post\" action=\"/ui/tokens/{}/revoke\">{}<button type=\"submit\" class=\"danger\" aria-label=\"Revoke token {}\">Revoke</button></form>",
                    Seg(&t.id),
                    csrf_field(s),
                    t.name.clone().unwrap_or_else(|| t.id.clone())
                )
            } else {
                Html::new()
            };
            let mine = if t.id == s.token_id { html!(" <span class=\"badge info\">this session</span>") } else { Html::new() };
            html!(
                "<tr><th scope=\"row\">{}{}<div class=\"muted small\"><code>{}…</code></div></th><td data-label=\"Kind\">{}</td><td data-label=\"Environment\">{}</td><td data-label=\"Created\">{}</td><td data-label=\"Expires\">{}</td><td data-label=\"Status\">{}</td><td data-label=\"Actions\">{}</td></tr>",
                t.name.clone().unwrap_or_else(|| t.id.clone()),
                mine,
                t.prefix,
                t.kind.as_str(),
                t.environment.clone().unwrap_or_else(|| "all".into()),
                fmt_time(t.created_at),
                t.expires_at.map(fmt_time).unwrap_or_else(|| "never".into()),
                status,
                action
            )
        })
        .collect();
    let secret = match created {
        Some(c) => html!(
            "<section class=\"notice\" role=\"alert\" id=\"new-secret\"><h2>Token created: copy the secret now</h2><p>This is the only time it is shown; Gantry keeps only its hash.</p><p class=\"secret\">{}</p><p class=\"muted\">{} token{}</p></section>",
            c.secret,
            c.info.kind.as_str(),
            c.info.environment.as_deref().map(|e| html!(" for {}", e)).unwrap_or_default()
        ),
        None => Html::new(),
    };
    let envs: Html =
        v.environments.iter().map(|e| html!("<option value=\"{}\">{}</option>", e.environment.name, e.environment.name)).collect();
    let body = html!(
        "<h1>API tokens</h1>{}{}<section id=\"tokens-list\" data-live><div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Token</th><th scope=\"col\">Kind</th><th scope=\"col\">Environment</th><th scope=\"col\">Created</th><th scope=\"col\">Expires</th><th scope=\"col\">Status</th><th scope=\"col\">Actions</th></tr></thead><tbody>{}</tbody></table></div></section>\
<section class=\"card\" aria-labelledby=\"new-token\"><h2 id=\"new-token\">New token</h2><form method=\"post\" action=\"/ui/tokens\" class=\"grid-form\">{}\
<div class=\"field\"><label for=\"tok-kind\">Kind</label><select id=\"tok-kind\" name=\"kind\"><option value=\"server\">server (SDKs on servers)</option><option value=\"client\">client (browsers, apps)</option><option value=\"admin\">admin (everything)</option></select></div>\
<div class=\"field\"><label for=\"tok-env\">Environment</label><select id=\"tok-env\" name=\"environment\"><option value=\"\">— (admin tokens)</option>{}</select></div>\
<div class=\"field grow\"><label for=\"tok-name\">Name</label><input id=\"tok-name\" name=\"name\" placeholder=\"what uses it\"></div>\
<div class=\"field\"><label for=\"tok-exp\">Expires (RFC 3339, optional)</label><input id=\"tok-exp\" name=\"expires_at\" placeholder=\"2030-01-01T00:00:00Z\"></div>\
<div class=\"field\"><button type=\"submit\" class=\"primary\">Create token</button></div></form></section>",
        error.map(error_box).unwrap_or_default(),
        secret,
        rows,
        csrf_field(s),
        envs
    );
    let status = error.map(status_of).unwrap_or(if created.is_some() { StatusCode::CREATED } else { StatusCode::OK });
    layout::page_with_status(s, status, "Tokens", NAV.href, body)
}

async fn list_tokens<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    render(&app, &s, None, None)
}

/// Creates a token and shows its secret once (no redirect: the secret is in this response only).
async fn create_token<St: Store>(State(app): State<AppState<St>>, p: Posted) -> Response {
    let kind = match p.fields.get("kind") {
        Some("admin") => TokenKind::Admin,
        Some("client") => TokenKind::Client,
        _ => TokenKind::Server,
    };
    let req = CreateTokenRequest {
        kind,
        environment: p.fields.text("environment"),
        name: p.fields.text("name"),
        expires_at: p.fields.text("expires_at"),
    };
    match crate::admin::create_token_for(&app, &p.session.principal(), &req).await {
        Ok(created) => render(&app, &p.session, Some(&created), None),
        Err(e) => render(&app, &p.session, None, Some(&e)),
    }
}

async fn revoke_token<St: Store>(State(app): State<AppState<St>>, Path(id): Path<String>, p: Posted) -> Response {
    if p.fields.get("confirm") != Some("yes") {
        let own = if id == p.session.token_id { " It is the token this session signed in with: you will be signed out." } else { "" };
        return super::confirm_page(
            &p.session,
            NAV.href,
            "Revoke this token?",
            &format!("Everything using it is refused from now on.{own}"),
            &format!("/ui/tokens/{}/revoke", super::html_url_encode(&id)),
            "Yes, revoke it",
            NAV.href,
        );
    }
    match crate::admin::revoke_token(State(app.clone()), AdminPrincipal(p.session.principal()), Path(id)).await {
        Ok(_) => see_other(NAV.href),
        Err(e) => render(&app, &p.session, None, Some(&e)),
    }
}
