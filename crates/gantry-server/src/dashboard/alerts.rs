//! Alerts: what fires or is pending now (highlighted), the rules (metric,
//! condition, `for` / keep-firing, target, actions, notifiers), the
//! notifiers (kind and URL origin only: webhook URLs are secrets), and the
//! history from the audit log: state changes (`alert.firing`,
//! `alert.resolved`, …) and the actions taken by `alert:<name>` actors.
//! Read-only: rules and notifiers are managed through the API.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gantry_api_types::{GuardrailSource, NotifierKind};
use gantry_core::{AuditEntry, Store};
use gantry_release::alert::{AlertAction, AlertStatus};
use gantry_release::Timestamp;

use super::html::{when, Html, Seg};
use super::layout::{self, NavItem};
use super::rollouts::{condition, duration, value};
use super::session::Session;
use super::{error_box, fmt_rfc3339, fmt_time};
use crate::error::ApiError;
use crate::html;
use crate::release::alerts::AlertEntry;
use crate::release::notify::{origin, NotifierEntry};
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/alerts", label: "Alerts" };

/// Most history rows shown (the audit log has the rest).
const HISTORY_ROWS: usize = 50;

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new().route("/ui/alerts", get(list_alerts::<St>))
}

fn at(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis()).map_or_else(|| t.to_string(), fmt_time)
}

fn status_badge(s: AlertStatus) -> Html {
    match s {
        AlertStatus::Inactive => html!("<span class=\"badge info\">inactive</span>"),
        AlertStatus::Pending => html!("<span class=\"badge warn\">pending</span>"),
        AlertStatus::Firing => html!("<span class=\"badge off\">firing</span>"),
        AlertStatus::Resolved => html!("<span class=\"badge on\">resolved</span>"),
    }
}

fn status_class(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Inactive => "inactive",
        AlertStatus::Pending => "pending",
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

fn source(s: &GuardrailSource) -> Html {
    match s {
        GuardrailSource::Events => html!("Gantry events"),
        GuardrailSource::Prometheus { url, query, .. } => html!("Prometheus {} <code>{}</code>", origin(url), query.as_str()),
        GuardrailSource::Probe { url, .. } => html!("health probe of {}", origin(url)),
    }
}

fn action(a: &AlertAction) -> Html {
    match a {
        AlertAction::AbortRollout { flag, environment } => html!(
            "<li>abort the rollout of <a href=\"/ui/rollouts/{}/{}\">{}</a> in {}</li>",
            Seg(environment),
            Seg(flag),
            flag.as_str(),
            environment.as_str()
        ),
        AlertAction::KillSwitch { flag, environment } => {
            html!("<li>turn <a href=\"/ui/flags/{}\">{}</a> off in {}</li>", Seg(flag), flag.as_str(), environment.as_str())
        }
        AlertAction::MaintenanceMode => html!("<li>switch maintenance mode on</li>"),
    }
}

fn timing(e: &AlertEntry) -> String {
    let r = &e.def.rule;
    let f = if r.for_ms == 0 { "at once".to_owned() } else { format!("after {}", duration(r.for_ms)) };
    let keep = if r.keep_firing_for_ms == 0 { String::new() } else { format!("; keeps firing {}", duration(r.keep_firing_for_ms)) };
    format!("fires {f}{keep}; every {}", duration(r.interval_ms))
}

fn last_value(e: &AlertEntry) -> Html {
    match e.state.value {
        Some(v) => html!("<strong>{}</strong>", value(e.def.rule.check.metric, v)),
        None => html!("<span class=\"muted\">—</span>"),
    }
}

fn now_section(rules: &[AlertEntry]) -> Html {
    let active: Vec<&AlertEntry> = rules.iter().filter(|e| matches!(e.state.status, AlertStatus::Firing | AlertStatus::Pending)).collect();
    if active.is_empty() {
        return html!("<p class=\"notice\" id=\"alerts-quiet\">Nothing is firing or pending.</p>");
    }
    let cards: Html = active
        .iter()
        .map(|e| {
            let st = &e.state;
            let since = match st.status {
                AlertStatus::Firing => st.fired_at.map(|t| format!("firing since {}", at(t))),
                _ => st.active_since.map(|t| format!("breaching since {}; fires after {}", at(t), duration(e.def.rule.for_ms))),
            }
            .unwrap_or_default();
            let summary = e.def.rule.annotations.get("summary").cloned().unwrap_or_default();
            html!(
                "<article class=\"alert-now {}\" id=\"now-{}\"><h3>{} {}</h3><p>{}</p><p class=\"small\">{} · value {} · {} in {}</p></article>",
                status_class(st.status),
                Seg(&e.def.rule.name),
                status_badge(st.status),
                e.def.rule.name.as_str(),
                summary,
                since,
                last_value(e),
                e.def.target.flag.as_str(),
                e.def.target.environment.as_str()
            )
        })
        .collect();
    html!("<div class=\"envs wide\">{}</div>", cards)
}

fn rules_table(rules: &[AlertEntry], notifiers: &[String]) -> Html {
    if rules.is_empty() {
        return html!("<p class=\"empty\">No alert rules. Create one with <code>POST /api/v1/alert-rules</code>.</p>");
    }
    let to: Html = if notifiers.is_empty() {
        html!("<span class=\"muted\">no notifier</span>")
    } else {
        notifiers.iter().map(|k| html!("<span class=\"tag\">{}</span> ", k.as_str())).collect()
    };
    let rows: Html = rules
        .iter()
        .map(|e| {
            let r = &e.def.rule;
            let actions: Html = r.actions.iter().map(action).collect();
            html!(
                "<tr class=\"alert {}\" id=\"rule-{}\"><th scope=\"row\">{}<div class=\"muted small\">{}</div></th><td data-label=\"State\">{}</td>\
<td data-label=\"Metric\">{}<div class=\"muted small\">{}, window {}</div></td><td data-label=\"Fires when\"><code class=\"cond\">{}</code><div class=\"muted small\">{}</div></td>\
<td data-label=\"Last value\">{}<div class=\"muted small\">{}</div></td><td data-label=\"Target\"><a href=\"/ui/flags/{}\">{}</a> in {}</td>\
<td data-label=\"Actions\">{}</td><td data-label=\"Notifiers\">{}</td></tr>",
                status_class(e.state.status),
                Seg(&r.name),
                r.name.as_str(),
                r.annotations.get("summary").cloned().unwrap_or_default(),
                status_badge(e.state.status),
                match r.check.metric {
                    gantry_release::guardrail::Metric::ErrorRate => "error rate",
                    gantry_release::guardrail::Metric::ArmValue => "arm value",
                    gantry_release::guardrail::Metric::Scalar => "scalar",
                },
                source(&e.def.source),
                duration(r.check.window_ms),
                condition(r.check.metric, &r.check.condition),
                timing(e),
                last_value(e),
                e.state.last_eval_at.map(|t| format!("evaluated {}", at(t))).unwrap_or_else(|| "not evaluated yet".into()),
                Seg(&e.def.target.flag),
                e.def.target.flag.as_str(),
                e.def.target.environment.as_str(),
                if actions.as_str().is_empty() { html!("<span class=\"muted\">notify only</span>") } else { html!("<ul class=\"plain\">{}</ul>", actions) },
                to.clone()
            )
        })
        .collect();
    html!(
        "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">State</th><th scope=\"col\">Metric</th><th scope=\"col\">Fires when</th><th scope=\"col\">Last value</th><th scope=\"col\">Target</th><th scope=\"col\">Actions</th><th scope=\"col\">Notifiers</th></tr></thead><tbody>{}</tbody></table></div>\
<p class=\"hint\">Every notifier receives every alert, grouped by its own policy.</p>",
        rows
    )
}

fn notifiers_table(notifiers: &[(String, NotifierEntry)]) -> Html {
    if notifiers.is_empty() {
        return html!("<p class=\"empty\">No notifiers. Add one with <code>POST /api/v1/notifiers</code>.</p>");
    }
    let rows: Html = notifiers
        .iter()
        .map(|(key, n)| {
            let p = &n.def.policy;
            html!(
                "<tr><th scope=\"row\">{}</th><td data-label=\"Kind\">{}</td><td data-label=\"Sends to\"><code>{}</code></td><td data-label=\"Grouping\">by {}; wait {}, interval {}, repeat {}</td><td data-label=\"Delivered\" class=\"num\">{}</td><td data-label=\"Failed\" class=\"num\">{}</td></tr>",
                key.as_str(),
                match n.def.kind {
                    NotifierKind::Webhook => "webhook",
                    NotifierKind::Slack => "Slack",
                },
                origin(&n.def.url),
                if p.group_by.is_empty() { "alert name".to_owned() } else { p.group_by.join(", ") },
                duration(p.group_wait_ms),
                duration(p.group_interval_ms),
                duration(p.repeat_interval_ms),
                n.delivered.load(std::sync::atomic::Ordering::Relaxed),
                n.failed.load(std::sync::atomic::Ordering::Relaxed)
            )
        })
        .collect();
    html!(
        "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Notifier</th><th scope=\"col\">Kind</th><th scope=\"col\">Sends to</th><th scope=\"col\">Grouping</th><th scope=\"col\" class=\"num\">Delivered</th><th scope=\"col\" class=\"num\">Failed</th></tr></thead><tbody>{}</tbody></table></div>\
<p class=\"hint\">Only the URL's origin is shown: webhook URLs carry their secret.</p>",
        rows
    )
}

/// Audit entries of alerts, newest first: rule changes, state changes and
/// what `alert:<name>` actors did.
async fn history_of<St: Store>(app: &AppState<St>) -> Result<Vec<AuditEntry>, ApiError> {
    let mut out = Vec::new();
    let mut before = None;
    for _ in 0..4 {
        let page = app.store.audit_page(before, 500).await?;
        let full = page.len() == 500;
        for e in page {
            before = Some(e.seq);
            if (e.actor.starts_with("alert:") || e.target_kind == "alert_rule") && out.len() < HISTORY_ROWS {
                out.push(e);
            }
        }
        if !full || out.len() == HISTORY_ROWS {
            break;
        }
    }
    Ok(out)
}

fn history(entries: &[AuditEntry]) -> Html {
    if entries.is_empty() {
        return html!("<p class=\"empty\">No alert has changed state yet.</p>");
    }
    let rows: Html = entries
        .iter()
        .map(|e| {
            let rule = e.actor.strip_prefix("alert:").unwrap_or(if e.target_kind == "alert_rule" { &e.target } else { "" });
            let s = |k: &str| e.after.as_ref().and_then(|v| v.get(k)).and_then(|x| x.as_str()).map(str::to_owned);
            let what = match (e.action.strip_prefix("alert."), s("from"), s("to")) {
                (Some(_), Some(f), Some(t)) => html!("{} → <strong>{}</strong>", f, t),
                _ => html!("<code>{}</code> {}", e.action.as_str(), e.target.as_str()),
            };
            let class = match e.action.as_str() {
                "alert.firing" => "firing",
                "alert.pending" => "pending",
                _ => "",
            };
            html!(
                "<tr class=\"alert {}\"><td data-label=\"When\">{}</td><th scope=\"row\">{}</th><td data-label=\"What\">{}</td><td data-label=\"By\" class=\"muted small\">{}</td></tr>",
                class,
                fmt_rfc3339(&e.at),
                rule.to_owned(),
                what,
                e.actor.as_str()
            )
        })
        .collect();
    html!(
        "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Rule</th><th scope=\"col\">What</th><th scope=\"col\">By</th></tr></thead><tbody>{}</tbody></table></div>",
        rows
    )
}

async fn list_alerts<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    let rules: Vec<AlertEntry> = app.release.alerts.lock().await.values().cloned().collect();
    let notifiers: Vec<(String, NotifierEntry)> = app.release.notifiers.lock().await.iter().map(|(k, n)| (k.clone(), n.clone())).collect();
    let keys: Vec<String> = notifiers.iter().map(|(k, _)| k.clone()).collect();
    let (hist, error) = match history_of(&app).await {
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let firing = rules.iter().filter(|e| e.state.status == AlertStatus::Firing).count();
    let body = html!(
        "<h1>Alerts{}</h1>\
<section id=\"alerts-now\" class=\"spaced\" data-live aria-labelledby=\"now-h\"><h2 id=\"now-h\">Now</h2>{}</section>\
<section id=\"alerts-rules\" class=\"spaced\" data-live aria-labelledby=\"rules-h\"><h2 id=\"rules-h\">Rules</h2>{}</section>\
<section id=\"alerts-notifiers\" class=\"spaced\" data-live aria-labelledby=\"notifiers-h\"><h2 id=\"notifiers-h\">Notifiers</h2>{}</section>\
<section id=\"alerts-history\" class=\"spaced\" data-live aria-labelledby=\"history-h\"><h2 id=\"history-h\">History</h2>{}{}</section>",
        when(firing > 0, html!(" <span class=\"badge off\">{} firing</span>", firing)),
        now_section(&rules),
        rules_table(&rules, &keys),
        notifiers_table(&notifiers),
        error.as_ref().map(error_box).unwrap_or_default(),
        history(&hist)
    );
    layout::page(&s, "Alerts", NAV.href, body)
}
