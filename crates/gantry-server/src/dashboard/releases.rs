//! Releases per app: the latest version in each environment, the history
//! (newest first), and the version check ("is there an update for version
//! V?") answered with the API's own ordering ([`crate::releases::latest`],
//! [`crate::releases::update_available`]). Read-only: CI records releases
//! through the API.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gantry_api_types::Release;
use gantry_core::Store;
use serde::Deserialize;

use super::html::{Html, Seg};
use super::layout::{self, NavItem};
use super::session::Session;
use super::{fmt_rfc3339, html_url_encode};
use crate::html;
use crate::releases::{latest, update_available};
use crate::state::{AppState, Views};

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/releases", label: "Releases" };

/// Most history rows shown per app (the API pages through the rest).
const HISTORY_ROWS: usize = 50;

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new().route("/ui/releases", get(list_releases::<St>))
}

/// The version check's question.
#[derive(Debug, Default, Deserialize)]
pub struct CheckParams {
    /// Application.
    app: Option<String>,
    /// Environment.
    env: Option<String>,
    /// The version the asker runs.
    current: Option<String>,
}

fn latest_in<'a>(v: &'a Views, app: &str, env: &str) -> Option<(&'a Release, bool)> {
    let rs: Vec<&Release> = v.releases.get(app).map(|rs| rs.iter().filter(|r| r.environment == env).collect()).unwrap_or_default();
    latest(&rs)
}

fn overview(v: &Views) -> Html {
    if v.releases.is_empty() {
        return html!(
            "<p class=\"empty\">No release recorded yet. CI records one with <code>gantry release record --app APP --version V --env ENV</code> or <code>POST /api/v1/apps/{app}/releases</code>.</p>"
        );
    }
    let head: Html = v.environments.iter().map(|e| html!("<th scope=\"col\">{}</th>", e.environment.name)).collect();
    let rows: Html = v
        .releases
        .keys()
        .map(|app| {
            let cells: Html = v
                .environments
                .iter()
                .map(|e| {
                    let name = &e.environment.name;
                    match latest_in(v, app, name) {
                        Some((r, _)) => html!(
                            "<td data-label=\"{}\"><strong>{}</strong><div class=\"muted small\">{}</div></td>",
                            name,
                            r.version,
                            fmt_rfc3339(&r.released_at)
                        ),
                        None => html!("<td data-label=\"{}\" class=\"muted\">—</td>", name),
                    }
                })
                .collect();
            html!("<tr><th scope=\"row\"><a href=\"#app-{}\">{}</a></th>{}</tr>", Seg(app), app, cells)
        })
        .collect();
    html!(
        "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">App</th>{}</tr></thead><tbody>{}</tbody></table></div>\
<p class=\"hint\">Latest: the highest semantic version when every version of the app in the environment is one, else the most recently recorded.</p>",
        head,
        rows
    )
}

fn history(v: &Views) -> Html {
    v.releases
        .iter()
        .map(|(app, rs)| {
            let rows: Html = rs
                .iter()
                .rev()
                .take(HISTORY_ROWS)
                .map(|r| {
                    html!(
                        "<tr><th scope=\"row\">{}</th><td data-label=\"Environment\">{}</td><td data-label=\"Commit\">{}</td><td data-label=\"Notes\" class=\"notes\">{}</td><td data-label=\"When\">{}</td><td data-label=\"By\" class=\"muted small\">{}</td></tr>",
                        r.version,
                        r.environment,
                        r.commit.as_deref().map(|c| html!("<code>{}</code>", c.chars().take(12).collect::<String>())).unwrap_or_default(),
                        r.notes.clone().unwrap_or_default(),
                        fmt_rfc3339(&r.released_at),
                        r.recorded_by
                    )
                })
                .collect();
            let more = if rs.len() > HISTORY_ROWS {
                html!(
                    "<p class=\"hint\">{} older records: <code>GET /api/v1/apps/{}/releases</code> pages through them.</p>",
                    rs.len() - HISTORY_ROWS,
                    app
                )
            } else {
                Html::new()
            };
            html!(
                "<section class=\"card\" id=\"app-{}\"><h3>{} <span class=\"muted small\">{} release{}</span></h3><div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Version</th><th scope=\"col\">Environment</th><th scope=\"col\">Commit</th><th scope=\"col\">Notes</th><th scope=\"col\">When</th><th scope=\"col\">Recorded by</th></tr></thead><tbody>{}</tbody></table></div>{}</section>",
                app,
                app,
                rs.len(),
                if rs.len() == 1 { "" } else { "s" },
                rows,
                more
            )
        })
        .collect()
}

fn options(list: impl Iterator<Item = String>, current: Option<&str>) -> Html {
    list.map(|x| {
        if current == Some(x.as_str()) {
            html!("<option value=\"{}\" selected>{}</option>", x, x)
        } else {
            html!("<option value=\"{}\">{}</option>", x, x)
        }
    })
    .collect()
}

fn check_form(v: &Views, q: &CheckParams) -> Html {
    html!(
        "<form method=\"get\" action=\"/ui/releases\" class=\"grid-form\" role=\"search\" aria-label=\"Version check\">\
<div class=\"field\"><label for=\"chk-app\">App</label><select id=\"chk-app\" name=\"app\">{}</select></div>\
<div class=\"field\"><label for=\"chk-env\">Environment</label><select id=\"chk-env\" name=\"env\">{}</select></div>\
<div class=\"field\"><label for=\"chk-current\">Current version</label><input id=\"chk-current\" name=\"current\" value=\"{}\" placeholder=\"1.4.0\"></div>\
<div class=\"field\"><button type=\"submit\">Check for an update</button></div></form>",
        options(v.releases.keys().cloned(), q.app.as_deref()),
        options(v.environments.iter().map(|e| e.environment.name.clone()), q.env.as_deref()),
        q.current.clone().unwrap_or_default()
    )
}

fn check_result(v: &Views, q: &CheckParams) -> Html {
    let (Some(app), Some(env)) = (q.app.as_deref(), q.env.as_deref()) else { return Html::new() };
    let Some((r, semver_order)) = latest_in(v, app, env) else {
        return html!("<p class=\"warning\" id=\"check-result\">No release of <strong>{}</strong> is recorded in {}.</p>", app, env);
    };
    let ordering = if semver_order { "semantic versions" } else { "record order" };
    match q.current.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if update_available(&r.version, c, semver_order) => html!(
            "<p class=\"notice\" id=\"check-result\"><strong>Update available:</strong> {} {} in {} is newer than {} (by {}).</p>",
            app,
            r.version,
            env,
            c,
            ordering
        ),
        Some(c) => html!(
            "<p class=\"notice\" id=\"check-result\"><strong>Up to date:</strong> {} {} is not older than {} in {} (by {}).</p>",
            app,
            c,
            r.version,
            env,
            ordering
        ),
        None => html!(
            "<p class=\"notice\" id=\"check-result\">Latest {} in {}: <strong>{}</strong> (by {}).</p>",
            app,
            env,
            r.version,
            ordering
        ),
    }
}

async fn list_releases<St: Store>(State(app): State<AppState<St>>, s: Session, q: Result<Query<CheckParams>, QueryRejection>) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let v = app.views();
    let body = html!(
        "<h1>Releases</h1><section id=\"releases-latest\" data-live aria-labelledby=\"latest-h\"><h2 id=\"latest-h\">Latest per environment</h2>{}</section>\
<section class=\"card\" aria-labelledby=\"check-h\"><h2 id=\"check-h\">Is there an update?</h2>{}<div id=\"releases-check\" data-live>{}</div>\
<p class=\"hint\">Apps ask the same with <code>GET /api/v1/apps/{}/version?current=V</code>.</p></section>\
<section id=\"releases-history\" data-live aria-labelledby=\"history-h\"><h2 id=\"history-h\">History</h2>{}</section>",
        overview(&v),
        check_form(&v, &q),
        check_result(&v, &q),
        q.app.as_deref().map(html_url_encode).unwrap_or_else(|| "{app}".into()),
        history(&v)
    );
    layout::page(&s, "Releases", NAV.href, body)
}
