//! Rollouts: the list (`/ui/rollouts`) and one rollout
//! (`/ui/rollouts/{env}/{flag}`): status, current step and percentage, the
//! plan as a step timeline, when the hold ends, each guardrail's latest
//! verdict, the transition history from the audit log, and the commands
//! Promote / Pause / Resume / Abort / Retry as the status allows.
//!
//! Commands call the rollout API's own handlers with `If-Match` set to the
//! version the page was rendered from (and, for Promote, the step the person
//! saw), so a rollout that moved on meanwhile is refused rather than pushed
//! a second step. Abort, and every command in a protected environment,
//! asks first.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::GuardrailSource;
use gantry_core::{AuditEntry, Store};
use gantry_release::guardrail::{Condition, GuardrailSpec, Metric, Op, Verdict};
use gantry_release::rollout::{Evaluation, Status, Step};
use gantry_release::Timestamp;

use super::flag::if_match;
use super::html::{when, Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Fields, Posted, Session};
use super::{csrf_field, error_box, fmt_rfc3339, fmt_time, see_other, status_of};
use crate::error::ApiError;
use crate::extract::AdminPrincipal;
use crate::html;
use crate::release::{rollout_key, RolloutEntry};
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/rollouts", label: "Rollouts" };

/// Most history rows shown (the audit log has the rest).
const HISTORY_ROWS: usize = 50;

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ui/rollouts", get(list_rollouts::<St>))
        .route("/ui/rollouts/{env}/{flag}", get(get_rollout::<St>))
        .route("/ui/rollouts/{env}/{flag}/{action}", post(command_rollout::<St>))
}

/// Label and badge class of a status.
pub fn status_badge(s: Status) -> Html {
    let (label, class) = match s {
        Status::Pending => ("not started", "info"),
        Status::Progressing => ("progressing", "on"),
        Status::AwaitingApproval => ("awaiting approval", "warn"),
        Status::Paused => ("paused", "warn"),
        Status::Completed => ("completed", "on"),
        Status::RolledBack => ("rolled back", "off"),
        Status::Aborted => ("aborted", "off"),
    };
    html!("<span class=\"badge {}\">{}</span>", class, label)
}

fn at(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis()).map_or_else(|| t.to_string(), fmt_time)
}

/// `90 s`, `5 min`, `2 h 30 min`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 if ms > 0 => format!("{ms} ms"),
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s % 3600 / 60 == 0 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

fn op(o: Op) -> &'static str {
    match o {
        Op::Gt => ">",
        Op::Ge => "≥",
        Op::Lt => "<",
        Op::Le => "≤",
    }
}

/// A value in the metric's unit: error rates as percentages.
pub fn value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{:.2} %", v * 100.0),
        _ if v.fract() == 0.0 && v.abs() < 1e12 => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

/// The bad case of a check, e.g. `> 5.00 %` or `> 2 × control`.
pub fn condition(metric: Metric, c: &Condition) -> String {
    match c {
        Condition::Threshold { op: o, value: v } => format!("{} {}", op(*o), value(metric, *v)),
        Condition::RelativeToControl { op: o, factor, floor } => {
            let floor = floor.map(|f| format!(" and {} {}", op(*o), value(metric, f))).unwrap_or_default();
            format!("{} {factor} × control{floor}", op(*o))
        }
        Condition::Sequential { alpha, relative_margin, .. } => {
            format!("worse than control by > {:.0} % (sequential test, α {alpha})", relative_margin * 100.0)
        }
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::ErrorRate => "error rate",
        Metric::ArmValue => "arm value",
        Metric::Scalar => "scalar",
    }
}

/// The latest verdict as a badge.
pub fn verdict_badge(v: Option<Verdict>) -> Html {
    match v {
        Some(Verdict::Successful) => html!("<span class=\"badge on\">Successful</span>"),
        Some(Verdict::Failed) => html!("<span class=\"badge off\">Failed</span>"),
        Some(Verdict::Inconclusive) => html!("<span class=\"badge warn\">Inconclusive</span>"),
        Some(Verdict::Error) => html!("<span class=\"badge off\">Error</span>"),
        None => html!("<span class=\"muted\">not evaluated yet</span>"),
    }
}

fn source_name(e: &RolloutEntry, g: &str) -> String {
    match e.def.sources.get(g) {
        None | Some(GuardrailSource::Events) => "Gantry events".into(),
        Some(GuardrailSource::Prometheus { .. }) => "Prometheus".into(),
        Some(GuardrailSource::Probe { .. }) => "health probe".into(),
    }
}

fn step_label(s: &Step) -> Html {
    match s {
        Step::Ramp { percentage, hold_ms: 0 } => html!("<strong>{}</strong>", percentage.to_string()),
        Step::Ramp { percentage, hold_ms } => {
            html!("<strong>{}</strong> <span class=\"muted\">hold {}</span>", percentage.to_string(), duration(*hold_ms))
        }
        Step::Approval => html!("<strong>approval</strong> <span class=\"muted\">waits for Promote</span>"),
    }
}

/// When the current step's hold ends (active ramps only).
fn hold_end(e: &RolloutEntry) -> Option<Timestamp> {
    let st = &e.state;
    if st.status != Status::Progressing {
        return None;
    }
    match e.def.plan.steps.get(st.step)? {
        Step::Ramp { hold_ms, .. } => st.hold_started_at.map(|h| h.plus(*hold_ms)),
        Step::Approval => None,
    }
}

fn timeline(e: &RolloutEntry) -> Html {
    let st = &e.state;
    let started = st.status != Status::Pending;
    let items: Html = e
        .def
        .plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (class, word) = if !started || i > st.step {
                ("next", "next")
            } else if i < st.step || st.status == Status::Completed {
                ("done", "done")
            } else if st.status.is_finished() {
                ("stopped", "stopped here")
            } else {
                ("current", "current")
            };
            html!(
                "<li class=\"step {}\"{}><span class=\"step-n\">Step {}</span> {} <span class=\"step-state\">{}</span></li>",
                class,
                when(class == "current", html!(" aria-current=\"step\"")),
                i + 1,
                step_label(s),
                word
            )
        })
        .collect();
    html!("<ol class=\"timeline\">{}</ol>", items)
}

fn guardrails(e: &RolloutEntry, latest: Option<&std::collections::BTreeMap<String, Evaluation>>) -> Html {
    let plan = &e.def.plan;
    if plan.guardrails.is_empty() {
        return html!("<p class=\"empty\">No guardrails: the steps advance on time alone.</p>");
    }
    let rows: Html = plan
        .guardrails
        .iter()
        .map(|g: &GuardrailSpec| {
            let gs = e.state.guardrails.get(&g.name).cloned().unwrap_or_default();
            let ev = latest.and_then(|l| l.get(&g.name));
            let metric = g.check.metric;
            let measured = match ev.and_then(|ev| ev.assessment.value) {
                Some(v) => {
                    let control = ev
                        .and_then(|ev| ev.assessment.control_value)
                        .map(|c| html!(" <span class=\"muted\">(control {})</span>", value(metric, c)))
                        .unwrap_or_default();
                    html!("<strong>{}</strong>{}", value(metric, v), control)
                }
                None => html!("<span class=\"muted\">—</span>"),
            };
            let sample = ev.map_or_else(|| "—".to_owned(), |ev| ev.assessment.requests.to_string());
            let status = serde_json::to_value(gs.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            html!(
                "<tr class=\"guardrail g-{}\"><th scope=\"row\">{}{}<div class=\"muted small\">{} · {}, every {}, window {}</div></th>\
<td data-label=\"Latest verdict\">{}</td><td data-label=\"Value\">{}</td><td data-label=\"Bad when\"><code class=\"cond\">{}</code></td>\
<td data-label=\"Sample\" class=\"num\">{}</td><td data-label=\"Status\">{} <span class=\"muted small\">{} evaluations, {} failures</span></td><td data-label=\"Evaluated\">{}</td></tr>",
                status.as_str(),
                g.name.as_str(),
                when(g.dry_run, html!(" <span class=\"badge info\">dry run</span>")),
                metric_name(metric),
                source_name(e, &g.name),
                duration(g.interval_ms),
                duration(g.check.window_ms),
                verdict_badge(gs.last_verdict),
                measured,
                condition(metric, &g.check.condition),
                sample,
                status.replace('_', " "),
                gs.evaluations,
                gs.failures,
                gs.last_eval_at.map(at).unwrap_or_else(|| "—".into())
            )
        })
        .collect();
    html!(
        "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Guardrail</th><th scope=\"col\">Latest verdict</th><th scope=\"col\">Value</th><th scope=\"col\">Bad when</th><th scope=\"col\" class=\"num\">Sample</th><th scope=\"col\">Status</th><th scope=\"col\">Evaluated</th></tr></thead><tbody>{}</tbody></table></div>",
        rows
    )
}

/// Which commands the status allows, in display order.
fn commands(s: Status) -> &'static [&'static str] {
    match s {
        Status::Pending => &["resume", "abort"],
        Status::Progressing | Status::AwaitingApproval => &["promote", "pause", "abort"],
        Status::Paused => &["resume", "promote", "abort"],
        Status::RolledBack | Status::Aborted => &["retry"],
        Status::Completed => &[],
    }
}

fn command_label(action: &str, s: Status) -> &'static str {
    match action {
        "promote" if s == Status::AwaitingApproval => "Approve and promote",
        "promote" => "Promote to the next step",
        "pause" => "Pause",
        "resume" if s == Status::Pending => "Start",
        "resume" => "Resume",
        "abort" => "Abort",
        _ => "Retry from step 1",
    }
}

fn action_forms(s: &Session, e: &RolloutEntry) -> Html {
    let t = &e.def.plan.target;
    let forms: Html = commands(e.state.status)
        .iter()
        .map(|a| {
            let class = match *a {
                "abort" => "danger",
                "promote" | "resume" | "retry" => "primary",
                _ => "",
            };
            html!(
                "<form method=\"post\" action=\"/ui/rollouts/{}/{}/{}\">{}<input type=\"hidden\" name=\"version\" value=\"{}\"><input type=\"hidden\" name=\"step\" value=\"{}\"><button type=\"submit\" class=\"{}\">{}</button></form>",
                Seg(&t.environment),
                Seg(&t.flag),
                *a,
                csrf_field(s),
                e.version,
                e.state.step,
                class,
                command_label(a, e.state.status)
            )
        })
        .collect();
    if forms.as_str().is_empty() {
        return html!("<p class=\"hint\">Completed: nothing left to do. Delete it through the API to plan a new rollout.</p>");
    }
    html!("<div class=\"actions\" id=\"rollout-actions\">{}</div>", forms)
}

fn is_protected<St: Store>(app: &AppState<St>, env: &str) -> bool {
    app.views().environments.iter().any(|e| e.environment.name == env && e.environment.protected)
}

fn detail_path(env: &str, flag: &str) -> Html {
    html!("/ui/rollouts/{}/{}", Seg(env), Seg(flag))
}

fn pause_reason(e: &RolloutEntry) -> Html {
    match (&e.state.status, &e.state.pause_cause) {
        (Status::Paused, Some(c)) => {
            let v = serde_json::to_value(c).unwrap_or_default();
            let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default().replace('_', " ");
            match v.get("guardrail").and_then(|g| g.as_str()) {
                Some(g) => html!(" <span class=\"muted\">({}: {})</span>", kind, g.to_owned()),
                None if kind == "command" => html!(" <span class=\"muted\">(by a person)</span>"),
                None => html!(" <span class=\"muted\">({})</span>", kind),
            }
        }
        _ => Html::new(),
    }
}

fn summary(s: &Session, e: &RolloutEntry, protected: bool, now: Timestamp) -> Html {
    let st = &e.state;
    let n = e.def.plan.steps.len();
    let hold = match hold_end(e) {
        Some(end) if end > now => html!("{} <span class=\"muted\">(in {})</span>", at(end), duration(end.since(now))),
        Some(end) => html!("{} <span class=\"muted\">(elapsed; waits for conclusive guardrails)</span>", at(end)),
        None if st.status == Status::AwaitingApproval => html!("waits for approval"),
        None if st.status == Status::Paused => html!("stopped while paused (time paused does not count)"),
        None => html!("—"),
    };
    html!(
        "<dl class=\"debug-result\"><dt>Step</dt><dd>{} of {}</dd><dt>Percentage</dt><dd><strong>{}</strong> <span class=\"muted\">of {}</span></dd>\
<dt>Hold ends</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>Last change</dt><dd>{} <span class=\"muted\">(version {})</span></dd></dl>{}{}",
        (st.step + 1).min(n),
        n,
        st.percentage.to_string(),
        e.def.plan.final_percentage().to_string(),
        hold,
        st.started_at.map(at).unwrap_or_else(|| "not yet".into()),
        fmt_time(e.updated_at),
        e.version,
        when(protected, html!("<p class=\"hint\"><strong>Protected environment:</strong> every command asks for confirmation.</p>")),
        action_forms(s, e)
    )
}

/// Audit entries of one rollout, newest first (at most [`HISTORY_ROWS`]).
async fn history_of<St: Store>(app: &AppState<St>, key: &str) -> Result<Vec<AuditEntry>, ApiError> {
    let mut out = Vec::new();
    let mut before = None;
    for _ in 0..4 {
        let page = app.store.audit_page(before, 500).await?;
        let full = page.len() == 500;
        for e in page {
            before = Some(e.seq);
            if e.target_kind == "rollout" && e.target == key && out.len() < HISTORY_ROWS {
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
        return html!("<p class=\"empty\">No transitions yet.</p>");
    }
    let rows: Html = entries
        .iter()
        .map(|e| {
            let a = e.after.as_ref();
            let s = |k: &str| a.and_then(|v| v.get(k)).and_then(|x| x.as_str()).map(|x| x.replace('_', " ")).unwrap_or_default();
            let change = match (s("from"), s("to")) {
                (f, t) if f.is_empty() || t.is_empty() => Html::new(),
                (f, t) if f == t => html!("{}", t),
                (f, t) => html!("{} → {}", f, t),
            };
            let step = a.and_then(|v| v.get("step")).and_then(serde_json::Value::as_u64).map(|n| (n + 1).to_string()).unwrap_or_default();
            let pct = a.and_then(|v| v.get("percentage")).map(|p| p.to_string().trim_matches('"').to_owned()).unwrap_or_default();
            let cause = a
                .and_then(|v| v.get("cause"))
                .map(|c| {
                    let kind = c.get("kind").and_then(|k| k.as_str()).unwrap_or_default().replace('_', " ");
                    match c.get("guardrail").and_then(|g| g.as_str()) {
                        Some(g) => format!("{kind}: {g}"),
                        None => kind,
                    }
                })
                .unwrap_or_default();
            html!(
                "<tr><td data-label=\"When\">{}</td><th scope=\"row\"><code>{}</code></th><td data-label=\"Status\">{}</td><td data-label=\"Step\" class=\"num\">{}</td><td data-label=\"Percentage\" class=\"num\">{}</td><td data-label=\"Cause\">{}</td><td data-label=\"By\" class=\"muted small\">{}</td></tr>",
                fmt_rfc3339(&e.at),
                e.action.trim_start_matches("rollout."),
                change,
                step,
                if pct.is_empty() { String::new() } else { format!("{pct} %") },
                cause,
                e.actor
            )
        })
        .collect();
    html!(
        "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">When</th><th scope=\"col\">What</th><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Step</th><th scope=\"col\" class=\"num\">Percentage</th><th scope=\"col\">Cause</th><th scope=\"col\">By</th></tr></thead><tbody>{}</tbody></table></div>",
        rows
    )
}

async fn list_rollouts<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    let entries: Vec<RolloutEntry> = app.release.rollouts.lock().await.values().cloned().collect();
    let now = crate::release::now_of(&app);
    let list = if entries.is_empty() {
        html!(
            "<p class=\"empty\">No rollout yet. Plan one with <code>gantry rollout create</code> or <code>POST /api/v1/rollouts</code>.</p>"
        )
    } else {
        let rows: Html = entries
            .iter()
            .map(|e| {
                let t = &e.def.plan.target;
                let failing = e.state.guardrails.values().filter(|g| g.status != gantry_release::guardrail::GuardrailStatus::Ok).count();
                let guards = match (e.def.plan.guardrails.len(), failing) {
                    (0, _) => html!("<span class=\"muted\">none</span>"),
                    (n, 0) => html!("{} ok", n),
                    (n, f) => html!("<span class=\"no\">{} of {} not ok</span>", f, n),
                };
                let hold = hold_end(e).filter(|end| *end > now).map(|end| html!("hold ends {}", at(end))).unwrap_or_default();
                html!(
                    "<tr><th scope=\"row\"><a href=\"{}\">{}</a></th><td data-label=\"Environment\">{}</td><td data-label=\"Status\">{}{}</td><td data-label=\"Step\">{} of {} <span class=\"muted small\">{}</span></td><td data-label=\"Percentage\" class=\"num\"><strong>{}</strong></td><td data-label=\"Guardrails\">{}</td><td data-label=\"Last change\">{}</td></tr>",
                    detail_path(&t.environment, &t.flag),
                    t.flag.as_str(),
                    t.environment.as_str(),
                    status_badge(e.state.status),
                    pause_reason(e),
                    (e.state.step + 1).min(e.def.plan.steps.len()),
                    e.def.plan.steps.len(),
                    hold,
                    e.state.percentage.to_string(),
                    guards,
                    fmt_time(e.updated_at)
                )
            })
            .collect();
        html!(
            "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Flag</th><th scope=\"col\">Environment</th><th scope=\"col\">Status</th><th scope=\"col\">Step</th><th scope=\"col\" class=\"num\">Percentage</th><th scope=\"col\">Guardrails</th><th scope=\"col\">Last change</th></tr></thead><tbody>{}</tbody></table></div>",
            rows
        )
    };
    let body = html!("<h1>Rollouts</h1><section id=\"rollouts-list\" data-live aria-label=\"Rollouts\">{}</section>", list);
    layout::page(&s, "Rollouts", NAV.href, body)
}

async fn render<St: Store>(app: &AppState<St>, s: &Session, env: &str, flag: &str, error: Option<&ApiError>) -> Response {
    let key = rollout_key(env, flag);
    let Some(e) = app.release.rollouts.lock().await.get(&key).cloned() else {
        return layout::not_found().await;
    };
    let protected = is_protected(app, env);
    let latest = app.release.evaluations.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
    let (hist, hist_error) = match history_of(app, &key).await {
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let now = crate::release::now_of(app);
    let t = &e.def.plan.target;
    let rule =
        t.rule.as_deref().map(|r| html!(" <span class=\"muted small\">rule <code>{}</code></span>", r.to_owned())).unwrap_or_default();
    let body = html!(
        "<p class=\"crumbs\"><a href=\"{}\">Rollouts</a></p><h1>Rollout of <a href=\"/ui/flags/{}\">{}</a> in {}{}</h1>{}\
<section class=\"card\" id=\"rollout-summary\" data-live aria-labelledby=\"summary-h\"><h2 id=\"summary-h\">Now {}{}</h2>{}</section>\
<section class=\"card\" id=\"rollout-plan\" data-live aria-labelledby=\"plan-h\"><h2 id=\"plan-h\">Plan</h2>{}<p class=\"hint\">On a failed guardrail: {}. When guardrails stay inconclusive: {}.</p></section>\
<section class=\"card\" id=\"rollout-guardrails\" data-live aria-labelledby=\"guard-h\"><h2 id=\"guard-h\">Guardrails</h2>{}</section>\
<section class=\"card\" id=\"rollout-history\" data-live aria-labelledby=\"hist-h\"><h2 id=\"hist-h\">History</h2>{}{}</section>",
        NAV.href,
        Seg(&t.flag),
        t.flag.as_str(),
        t.environment.as_str(),
        rule,
        error.map(error_box).unwrap_or_default(),
        status_badge(e.state.status),
        pause_reason(&e),
        summary(s, &e, protected, now),
        timeline(&e),
        match e.def.plan.on_failure {
            gantry_release::rollout::FailureAction::RollbackToZero => "roll back to 0 %",
            gantry_release::rollout::FailureAction::BackOneStep => "go back one step and pause",
            gantry_release::rollout::FailureAction::Pause => "pause",
        },
        match e.def.plan.on_inconclusive {
            gantry_release::rollout::InconclusiveAction::Pause => "pause for a person",
            gantry_release::rollout::InconclusiveAction::Fail => "treat as failed",
        },
        guardrails(&e, latest.as_ref()),
        hist_error.as_ref().map(error_box).unwrap_or_default(),
        history(&hist)
    );
    let title = format!("Rollout {key}");
    layout::page_with_status(s, error.map(status_of).unwrap_or(StatusCode::OK), &title, NAV.href, body)
}

async fn get_rollout<St: Store>(State(app): State<AppState<St>>, s: Session, Path((env, flag)): Path<(String, String)>) -> Response {
    render(&app, &s, &env, &flag, None).await
}

fn confirm_page(s: &Session, env: &str, flag: &str, action: &str, f: &Fields, protected: bool) -> Response {
    let hidden: Html =
        f.0.iter()
            .filter(|(k, _)| k == "version" || k == "step")
            .map(|(k, v)| html!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", k.as_str(), v.as_str()))
            .collect();
    let why = match action {
        "abort" => "Aborting stops the rollout and puts the flag back to 0 % at once; Retry starts over from step 1.",
        "promote" => "Promoting moves to the next step now, without waiting for the hold or approval.",
        "pause" => "Pausing stops automatic progress; the percentage stays.",
        "resume" => "Resuming lets the rollout progress again.",
        _ => "Retrying starts over from step 1.",
    };
    let body = html!(
        "<section class=\"card confirm\" aria-labelledby=\"confirm-h\"><h1 id=\"confirm-h\">{} the rollout of {} in {}?</h1><p>{}{}</p>\
<div class=\"actions\"><form method=\"post\" action=\"{}/{}\">{}{}<input type=\"hidden\" name=\"confirm\" value=\"yes\"><button type=\"submit\" class=\"{}\">Yes, {}</button></form><a href=\"{}\">Cancel</a></div></section>",
        command_label(action, Status::Paused),
        flag,
        env,
        when(protected, html!("<strong>{}</strong> is a protected environment. ", env)),
        why,
        detail_path(env, flag),
        action,
        csrf_field(s),
        hidden,
        if action == "abort" { "danger" } else { "primary" },
        action,
        detail_path(env, flag)
    );
    layout::page(s, "Confirm", NAV.href, body)
}

/// Runs one command through the rollout API's handler; Abort and anything
/// in a protected environment ask first.
async fn command_rollout<St: Store>(
    State(app): State<AppState<St>>,
    Path((env, flag, action)): Path<(String, String, String)>,
    p: Posted,
) -> Response {
    if !["promote", "pause", "resume", "abort", "retry"].contains(&action.as_str())
        || !app.release.rollouts.lock().await.contains_key(&rollout_key(&env, &flag))
    {
        return layout::not_found().await;
    }
    let protected = is_protected(&app, &env);
    if (protected || action == "abort") && p.fields.get("confirm") != Some("yes") {
        return confirm_page(&p.session, &env, &flag, &action, &p.fields, protected);
    }
    let headers = if_match(p.fields.get("version"));
    let principal = AdminPrincipal(p.session.principal());
    let path = Path((env.clone(), flag.clone()));
    let st = State(app.clone());
    let r = match action.as_str() {
        "promote" => {
            let step = p.fields.get("step").and_then(|s| s.trim().parse::<usize>().ok());
            let body = serde_json::to_vec(&gantry_api_types::PromoteRequest { full: false, expected_step: step }).unwrap_or_default();
            crate::release::api::promote_rollout(st, principal, path, headers, Bytes::from(body)).await
        }
        "pause" => crate::release::api::pause_rollout(st, principal, path, headers).await,
        "resume" => crate::release::api::resume_rollout(st, principal, path, headers).await,
        "abort" => crate::release::api::abort_rollout(st, principal, path, headers).await,
        _ => crate::release::api::retry_rollout(st, principal, path, headers).await,
    };
    match r {
        Ok(_) => see_other(&format!("{}#rollout-summary", detail_path(&env, &flag).as_str())),
        Err(e) => render(&app, &p.session, &env, &flag, Some(&e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_conditions_read_well() {
        assert_eq!(duration(90_000), "90 s");
        assert_eq!(duration(300_000), "5 min");
        assert_eq!(duration(9_000_000), "2 h 30 min");
        assert_eq!(duration(7_200_000), "2 h");
        assert_eq!(condition(Metric::ErrorRate, &Condition::Threshold { op: Op::Gt, value: 0.05 }), "> 5.00 %");
        assert_eq!(
            condition(Metric::ArmValue, &Condition::RelativeToControl { op: Op::Ge, factor: 2.0, floor: Some(250.0) }),
            "≥ 2 × control and ≥ 250"
        );
    }

    #[test]
    fn commands_follow_the_status() {
        assert_eq!(commands(Status::Progressing), ["promote", "pause", "abort"]);
        assert_eq!(commands(Status::Paused), ["resume", "promote", "abort"]);
        assert_eq!(commands(Status::RolledBack), ["retry"]);
        assert!(commands(Status::Completed).is_empty());
    }
}
