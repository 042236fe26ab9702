//! The audit log, newest first, with a before/after diff of every entry
//! (changed JSON paths only) and a filter over action, target and actor.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gantry_core::Store;
use serde::Deserialize;
use serde_json::Value;

use super::html::{Html, Q};
use super::layout::{self, NavItem};
use super::session::Session;
use super::{error_box, fmt_rfc3339};
use crate::error::ApiError;
use crate::html;
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/audit", label: "Audit log" };

/// Entries per page.
pub const PAGE: u32 = 50;

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new().route("/ui/audit", get(list_audit::<St>))
}

/// Query of the audit page.
#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    /// Substring of action, target or actor.
    q: Option<String>,
    /// Entries older than this sequence number.
    before: Option<i64>,
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(if prefix.is_empty() { "(value)".into() } else { prefix.to_owned() }, other.to_string());
        }
    }
}

/// The changed paths between two JSON documents: (path, before, after).
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<(String, Option<String>, Option<String>)> {
    let (mut b, mut a) = (BTreeMap::new(), BTreeMap::new());
    if let Some(v) = before {
        flatten("", v, &mut b);
    }
    if let Some(v) = after {
        flatten("", v, &mut a);
    }
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    keys.into_iter().filter(|k| b.get(*k) != a.get(*k)).map(|k| ((*k).clone(), b.get(k).cloned(), a.get(k).cloned())).collect()
}

fn diff_table(before: Option<&Value>, after: Option<&Value>) -> Html {
    let rows: Html = diff(before, after)
        .into_iter()
        .map(|(path, b, a)| {
            html!(
                "<tr><th scope=\"row\"><code>{}</code></th><td class=\"del\">{}</td><td class=\"add\">{}</td></tr>",
                path,
                b.unwrap_or_else(|| "—".into()),
                a.unwrap_or_else(|| "—".into())
            )
        })
        .collect();
    if rows.as_str().is_empty() {
        return html!("<p class=\"muted\">No recorded change of content.</p>");
    }
    html!("<table class=\"diff\"><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Before</th><th scope=\"col\">After</th></tr></thead><tbody>{}</tbody></table>", rows)
}

fn target_link(kind: &str, target: &str) -> Html {
    match kind {
        "flag" => html!("<a href=\"/ui/flags/{}\">{}</a>", super::html::Seg(target), target),
        "segment" => html!("<a href=\"/ui/segments#segment-{}\">segment {}</a>", target, target),
        "experiment" => html!("<a href=\"/ui/experiments/{}\">{}</a>", super::html::Seg(target), target),
        _ => html!("{} {}", kind, target),
    }
}

async fn list_audit<St: Store>(State(app): State<AppState<St>>, s: Session, q: Result<Query<AuditParams>, QueryRejection>) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let needle = q.q.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_lowercase);
    // Filtering scans up to 10 pages of the store; without a filter one page is read.
    let want = PAGE as usize;
    let mut entries = Vec::new();
    let mut before = q.before;
    let mut error = None;
    let mut more = false;
    for _ in 0..10 {
        match app.store.audit_page(before, 500).await {
            Ok(page) => {
                let full = page.len() == 500;
                for e in page {
                    before = Some(e.seq);
                    let hit = needle.as_deref().is_none_or(|n| {
                        e.action.to_lowercase().contains(n) || e.target.to_lowercase().contains(n) || e.actor.to_lowercase().contains(n)
                    });
                    if hit {
                        if entries.len() == want {
                            more = true;
                            break;
                        }
                        entries.push(e);
                    }
                }
                if more || !full {
                    break;
                }
            }
            Err(e) => {
                error = Some(ApiError::from(e));
                break;
            }
        }
    }
    let rows: Html = entries
        .iter()
        .map(|e| {
            html!(
                "<li class=\"card\" id=\"audit-{}\"><div class=\"row\"><strong>#{}</strong> <code>{}</code> {} <span class=\"muted\">by {} at {}</span></div><details><summary>Changes</summary>{}</details></li>",
                e.seq,
                e.seq,
                e.action,
                target_link(&e.target_kind, &e.target),
                e.actor,
                fmt_rfc3339(&e.at),
                diff_table(e.before.as_ref(), e.after.as_ref())
            )
        })
        .collect();
    let next = match (more, entries.last()) {
        (true, Some(last)) => {
            html!(
                "<p><a href=\"/ui/audit?before={}&amp;q={}\" rel=\"next\">Older entries →</a></p>",
                last.seq,
                Q(q.q.as_deref().unwrap_or(""))
            )
        }
        _ => Html::new(),
    };
    let body = html!(
        "<h1>Audit log</h1>{}<form method=\"get\" action=\"/ui/audit\" class=\"filters\" role=\"search\"><div class=\"field grow\"><label for=\"audit-q\">Filter</label><input id=\"audit-q\" type=\"search\" name=\"q\" value=\"{}\" placeholder=\"action, target or actor\"></div><div class=\"field\"><button type=\"submit\">Filter</button></div></form>\
<section id=\"audit-list\" data-live><ul class=\"audit\">{}</ul>{}</section><p class=\"hint\">Every entry is hash-chained to the previous one; <code>gantry audit verify</code> checks the chain.</p>",
        error.as_ref().map(error_box).unwrap_or_default(),
        q.q.clone().unwrap_or_default(),
        if rows.as_str().is_empty() { html!("<p class=\"empty\">No entries.</p>") } else { rows },
        next
    );
    layout::page(&s, "Audit log", NAV.href, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_changed_paths_only() {
        let b = serde_json::json!({"key": "f", "environments": {"production": {"enabled": false}}, "tags": ["a"]});
        let a = serde_json::json!({"key": "f", "environments": {"production": {"enabled": true}}, "tags": ["a", "b"]});
        assert_eq!(
            diff(Some(&b), Some(&a)),
            vec![
                ("environments.production.enabled".into(), Some("false".into()), Some("true".into())),
                ("tags[1]".into(), None, Some("\"b\"".into())),
            ]
        );
        assert_eq!(diff(None, Some(&serde_json::json!({"k": 1}))), vec![("k".into(), None, Some("1".into()))]);
    }
}
