//! The flags page: search, filters (environment state, tag, staleness),
//! each environment's on/off at a glance, and a form to create a flag.

use std::collections::{BTreeSet, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gantry_core::{Store, StoredFlag};
use gantry_engine::model::{Condition, EnvironmentConfig, Flag, FlagKind};
use serde::Deserialize;

use super::html::{Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Posted, Session};
use super::{badge, csrf_field, error_box, fmt_time, status_of};
use crate::error::ApiError;
use crate::extract::{AdminPrincipal, Json};
use crate::html;
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/flags", label: "Flags" };

/// A flag counts as stale when nothing evaluated it for this long.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::days(7);

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new().route("/ui/flags", get(list_flags::<St>).post(create_flag::<St>))
}

/// Filters of the flag list.
#[derive(Debug, Default, Deserialize)]
pub struct FlagsParams {
    /// Substring of key or description.
    q: Option<String>,
    /// Required tag.
    tag: Option<String>,
    /// Environment the state filter applies to.
    env: Option<String>,
    /// `on` or `off` in `env`.
    state: Option<String>,
    /// `stale` or `fresh`.
    stale: Option<String>,
}

/// A short summary of one environment's configuration (`25 %`, `3 rules`).
pub fn summary(cfg: Option<&EnvironmentConfig>) -> String {
    let Some(cfg) = cfg else { return "not configured".into() };
    match cfg.rules.as_slice() {
        [] => "everyone".into(),
        [r] if r.constraints.is_empty() && r.segments.is_empty() => match &r.condition {
            Condition::Rollout(ro) => format!("{} %", ro.percentage),
            Condition::All => "everyone".into(),
            Condition::UserIds { ids } => format!("{} users", ids.len()),
            _ => "1 rule".into(),
        },
        [_] => "1 rule".into(),
        rules => format!("{} rules", rules.len()),
    }
}

/// Whether a flag is stale: marked so, or not evaluated anywhere for
/// [`STALE_AFTER`] (counted from its creation when never evaluated).
pub fn is_stale(f: &StoredFlag, last_eval_ms: Option<i64>, now: chrono::DateTime<chrono::Utc>) -> bool {
    if f.flag.stale {
        return true;
    }
    let since = last_eval_ms.and_then(chrono::DateTime::from_timestamp_millis).unwrap_or(f.created_at);
    now - since > STALE_AFTER
}

async fn last_evaluations<St: Store>(app: &AppState<St>) -> HashMap<String, i64> {
    let stored = app.store.usage().await.unwrap_or_default();
    let mut out: HashMap<String, i64> = HashMap::new();
    for u in crate::admin::usage_rows(app, stored) {
        if let Some(ms) =
            u.last_evaluated_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp_millis())
        {
            let e = out.entry(u.flag).or_insert(ms);
            *e = (*e).max(ms);
        }
    }
    out
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Html {
    let opts: Html = options
        .iter()
        .map(|(v, l)| {
            if current == Some(v.as_str()) {
                html!("<option value=\"{}\" selected>{}</option>", v, l)
            } else {
                html!("<option value=\"{}\">{}</option>", v, l)
            }
        })
        .collect();
    html!(
        "<div class=\"field\"><label for=\"f-{}\">{}</label><select id=\"f-{}\" name=\"{}\">{}</select></div>",
        name,
        label,
        name,
        name,
        opts
    )
}

async fn render<St: Store>(app: &AppState<St>, s: &Session, q: &FlagsParams, error: Option<&ApiError>) -> Response {
    let v = app.views();
    let now = app.clock.now();
    let last = last_evaluations(app).await;
    let envs: Vec<&str> = v.environments.iter().map(|e| e.environment.name.as_str()).collect();
    let needle = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
    let tag = q.tag.as_deref().filter(|s| !s.is_empty());
    let env = q.env.as_deref().filter(|e| envs.contains(e));
    let state = q.state.as_deref().filter(|s| *s == "on" || *s == "off");
    let stale = q.stale.as_deref().filter(|s| *s == "stale" || *s == "fresh");
    let tags: BTreeSet<&str> = v.flags.values().flat_map(|f| f.flag.tags.iter().map(String::as_str)).collect();

    let shown: Vec<&StoredFlag> = v
        .flags
        .values()
        .filter(|f| {
            needle.as_deref().is_none_or(|n| {
                f.flag.key.to_lowercase().contains(n) || f.flag.description.as_deref().is_some_and(|d| d.to_lowercase().contains(n))
            })
        })
        .filter(|f| tag.is_none_or(|t| f.flag.tags.iter().any(|x| x == t)))
        .filter(|f| match (env, state) {
            (Some(e), Some(st)) => f.flag.environments.get(e).is_some_and(|c| c.enabled) == (st == "on"),
            _ => true,
        })
        .filter(|f| stale.is_none_or(|st| is_stale(f, last.get(&f.flag.key).copied(), now) == (st == "stale")))
        .collect();

    let opt = |pairs: Vec<(String, String)>| -> Vec<(String, String)> {
        let mut all = vec![(String::new(), "any".to_owned())];
        all.extend(pairs);
        all
    };
    let filters = html!(
        "<form method=\"get\" action=\"/ui/flags\" class=\"filters\" role=\"search\"><div class=\"field grow\"><label for=\"f-q\">Search</label><input id=\"f-q\" type=\"search\" name=\"q\" value=\"{}\" placeholder=\"key or description\"></div>{}{}{}{}<div class=\"field\"><button type=\"submit\">Filter</button> <a href=\"/ui/flags\">Clear</a></div></form>",
        q.q.clone().unwrap_or_default(),
        select("tag", "Tag", tag, &opt(tags.iter().map(|t| (t.to_string(), t.to_string())).collect())),
        select("env", "Environment", env, &opt(envs.iter().map(|e| (e.to_string(), e.to_string())).collect())),
        select("state", "State there", state, &opt(vec![("on".into(), "on".into()), ("off".into(), "off".into())])),
        select("stale", "Staleness", stale, &opt(vec![("stale".into(), "stale".into()), ("fresh".into(), "in use".into())]))
    );

    let head: Html = envs.iter().map(|e| html!("<th scope=\"col\">{}</th>", e)).collect();
    let rows: Html = shown
        .iter()
        .map(|f| {
            let cells: Html = envs
                .iter()
                .map(|e| {
                    let cfg = f.flag.environments.get(*e);
                    let on = cfg.is_some_and(|c| c.enabled);
                    html!("<td data-label=\"{}\">{} <span class=\"muted\">{}</span></td>", e, badge(on), summary(cfg))
                })
                .collect();
            let last_ms = last.get(&f.flag.key).copied();
            let last_txt = last_ms.and_then(chrono::DateTime::from_timestamp_millis).map(fmt_time).unwrap_or_else(|| "never".into());
            let stale_badge = if is_stale(f, last_ms, now) { html!(" <span class=\"badge stale\">stale</span>") } else { Html::new() };
            let tags: Html = f.flag.tags.iter().map(|t| html!("<span class=\"tag\">{}</span> ", t)).collect();
            html!(
                "<tr><th scope=\"row\"><a href=\"/ui/flags/{}\">{}</a>{}{}</th><td data-label=\"Tags\">{}</td>{}<td data-label=\"Last evaluated\">{}</td></tr>",
                Seg(&f.flag.key),
                f.flag.key,
                stale_badge,
                f.flag.description.as_deref().map(|d| html!("<div class=\"muted small\">{}</div>", d)).unwrap_or_default(),
                tags,
                cells,
                last_txt
            )
        })
        .collect();
    let table = if shown.is_empty() {
        html!("<p class=\"empty\">No flag matches.</p>")
    } else {
        html!(
            "<div class=\"table-wrap\"><table class=\"flags\"><thead><tr><th scope=\"col\">Flag</th><th scope=\"col\">Tags</th>{}<th scope=\"col\">Last evaluated</th></tr></thead><tbody>{}</tbody></table></div>",
            head,
            rows
        )
    };
    let err = error.map(error_box).unwrap_or_default();
    let body = html!(
        "<h1>Flags</h1>{}<section id=\"flags-list\" data-live aria-labelledby=\"flags-count\"><p id=\"flags-count\" class=\"muted\">{} of {} flags</p>{}</section>\
<section class=\"card\" aria-labelledby=\"new-flag\"><h2 id=\"new-flag\">New flag</h2>{}<form method=\"post\" action=\"/ui/flags\" class=\"grid-form\">{}\
<div class=\"field\"><label for=\"new-key\">Key</label><input id=\"new-key\" name=\"key\" required maxlength=\"100\" autocomplete=\"off\"></div>\
<div class=\"field\"><label for=\"new-kind\">Type</label><select id=\"new-kind\" name=\"kind\"><option value=\"boolean\">boolean</option><option value=\"string\">string</option><option value=\"number\">number</option><option value=\"json\">json</option></select></div>\
<div class=\"field grow\"><label for=\"new-desc\">Description</label><input id=\"new-desc\" name=\"description\"></div>\
<div class=\"field\"><label for=\"new-tags\">Tags</label><input id=\"new-tags\" name=\"tags\" placeholder=\"comma separated\"></div>\
<div class=\"field\"><button type=\"submit\" class=\"primary\">Create flag</button></div></form><p class=\"hint\">A new flag is off in every environment.</p></section>",
        filters,
        shown.len(),
        v.flags.len(),
        table,
        err,
        csrf_field(s)
    );
    let status = error.map(status_of).unwrap_or(axum::http::StatusCode::OK);
    layout::page_with_status(s, status, "Flags", NAV.href, body)
}

/// The flag list.
async fn list_flags<St: Store>(State(app): State<AppState<St>>, s: Session, q: Result<Query<FlagsParams>, QueryRejection>) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    render(&app, &s, &q, None).await
}

/// Comma-separated tags.
pub fn parse_tags(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// Creates a flag through the admin API's handler.
async fn create_flag<St: Store>(State(app): State<AppState<St>>, p: Posted) -> Response {
    let f = &p.fields;
    let kind = match f.get("kind") {
        Some("string") => FlagKind::String,
        Some("number") => FlagKind::Number,
        Some("json") => FlagKind::Json,
        _ => FlagKind::Boolean,
    };
    let key = f.get("key").unwrap_or("").trim().to_owned();
    let flag = Flag { key: key.clone(), kind, description: f.text("description"), tags: parse_tags(f.get("tags")), ..Default::default() };
    match crate::admin::create_flag(State(app.clone()), AdminPrincipal(p.session.principal()), Json(flag)).await {
        Ok(_) => super::see_other(&format!("/ui/flags/{}", super::html_url_encode(&key))),
        Err(e) => render(&app, &p.session, &FlagsParams::default(), Some(&e)).await,
    }
}
