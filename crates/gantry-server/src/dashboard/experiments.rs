//! Experiments: the list, and per experiment the current results from the
//! experiments API (`results_of`): units per variant, a sample-ratio-mismatch
//! warning, per metric the lift with its interval, p-value, chance to win and
//! verdict, and an SVG chart of each lift with its interval.
//!
//! The results API computes the analysis as of now and keeps no history, so
//! the chart shows the current lift and interval per variant, not a line
//! over time; the page says so.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::{Experiment, ExperimentStatus};
use gantry_core::Store;
use gantry_stats::analyze::{Comparison, MetricResult, Status};
use gantry_stats::DifferenceType;

use super::html::{Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Posted, Session};
use super::{error_box, fmt_rfc3339, see_other};
use crate::error::ApiError;
use crate::experiments::api::ResultsResponse;
use crate::extract::AdminPrincipal;
use crate::html;
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/experiments", label: "Experiments" };

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ui/experiments", get(list_experiments::<St>))
        .route("/ui/experiments/{key}", get(get_experiment::<St>))
        .route("/ui/experiments/{key}/start", post(start_experiment::<St>))
        .route("/ui/experiments/{key}/stop", post(stop_experiment::<St>))
}

fn status_badge(s: ExperimentStatus) -> Html {
    match s {
        ExperimentStatus::Draft => html!("<span class=\"badge info\">draft</span>"),
        ExperimentStatus::Running => html!("<span class=\"badge on\">running</span>"),
        ExperimentStatus::Stopped => html!("<span class=\"badge off\">stopped</span>"),
    }
}

async fn list_experiments<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    let v = app.views();
    let rows: Html = v
        .experiments
        .values()
        .map(|x| {
            let e = &x.experiment;
            html!(
                "<tr><th scope=\"row\"><a href=\"/ui/experiments/{}\">{}</a><div class=\"muted small\">{}</div></th><td data-label=\"Flag\"><a href=\"/ui/flags/{}\">{}</a></td><td data-label=\"Environment\">{}</td><td data-label=\"Status\">{}</td><td data-label=\"Started\">{}</td><td data-label=\"Metrics\" class=\"num\">{}</td></tr>",
                Seg(&e.key),
                e.key,
                e.name.clone().unwrap_or_default(),
                Seg(&e.flag),
                e.flag,
                e.environment,
                status_badge(e.status),
                e.started_at.as_deref().map(fmt_rfc3339).unwrap_or_else(|| "—".into()),
                e.metrics.len()
            )
        })
        .collect();
    let table = if v.experiments.is_empty() {
        html!("<p class=\"empty\">No experiments yet. Create one with <code>POST /api/v1/experiments</code>.</p>")
    } else {
        html!(
            "<div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Experiment</th><th scope=\"col\">Flag</th><th scope=\"col\">Environment</th><th scope=\"col\">Status</th><th scope=\"col\">Started</th><th scope=\"col\" class=\"num\">Metrics</th></tr></thead><tbody>{}</tbody></table></div>",
            rows
        )
    };
    layout::page(&s, "Experiments", NAV.href, html!("<h1>Experiments</h1><section id=\"experiments-list\" data-live>{}</section>", table))
}

fn pct(x: f64) -> String {
    format!("{:+.2} %", x * 100.0)
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// The lift as the interval reports it (relative lifts in percent).
fn lift_of(c: &Comparison) -> Option<f64> {
    match c.difference {
        DifferenceType::Relative => c.relative_lift,
        DifferenceType::Absolute => Some(c.absolute_lift),
    }
}

fn fmt_lift(c: &Comparison, x: f64) -> String {
    match c.difference {
        DifferenceType::Relative => pct(x),
        DifferenceType::Absolute => format!("{x:+.4}"),
    }
}

fn status_text(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Wins => ("wins", "on"),
        Status::Loses => ("loses", "off"),
        Status::NoSignificantDifference => ("no significant difference", "info"),
        Status::NotEnoughData => ("not enough data", "warn"),
        Status::SampleRatioMismatch => ("sample ratio mismatch", "warn"),
    }
}

/// A forest plot: one row per treatment, the lift as a dot and its interval as a bar, zero dashed.
pub fn lift_chart(m: &MetricResult) -> Html {
    let rows: Vec<(&str, &Comparison)> = m.variants.iter().filter_map(|v| v.comparison.as_ref().map(|c| (v.variant.as_str(), c))).collect();
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for (_, c) in &rows {
        for x in c.interval.iter().flatten().chain(lift_of(c).iter()) {
            if x.is_finite() {
                lo = lo.min(*x);
                hi = hi.max(*x);
            }
        }
    }
    if hi - lo < 1e-12 {
        lo -= 0.01;
        hi += 0.01;
    }
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let (left, width, row_h, top) = (130.0, 460.0, 34.0, 10.0);
    let x = |v: f64| left + (v - lo) / (hi - lo) * width;
    let height = top + row_h * rows.len().max(1) as f64 + 30.0;
    let fmt = |v: f64| format!("{v:.1}");
    let mut body = Html::new();
    let zero = x(0.0);
    body.push(html!(
        "<line class=\"zero\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"></line>",
        fmt(zero),
        fmt(zero),
        fmt(top - 4.0),
        fmt(height - 26.0)
    ));
    body.push(html!(
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"></line>",
        fmt(left),
        fmt(left + width),
        fmt(height - 26.0),
        fmt(height - 26.0)
    ));
    let first = rows.first().map(|(_, c)| *c);
    for (v, anchor) in [(lo, "start"), (0.0, "middle"), (hi, "end")] {
        // Ends too close to the zero mark would overprint its label.
        if v != 0.0 && (x(v) - zero).abs() < 70.0 {
            continue;
        }
        let label = if v == 0.0 { "0".to_owned() } else { first.map(|c| fmt_lift(c, v)).unwrap_or_default() };
        body.push(html!("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\">{}</text>", fmt(x(v)), fmt(height - 8.0), anchor, label));
    }
    for (i, (name, c)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let class = match c.status {
            Status::Wins => "pos",
            Status::Loses => "neg",
            _ => "flat",
        };
        body.push(html!("<text x=\"4\" y=\"{}\">{}</text>", fmt(y + 4.0), *name));
        if let Some([a, b]) = c.interval {
            body.push(html!(
                "<line class=\"ci {}\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"></line>",
                class,
                fmt(x(a)),
                fmt(x(b)),
                fmt(y),
                fmt(y)
            ));
        }
        if let Some(l) = lift_of(c) {
            body.push(html!("<circle cx=\"{}\" cy=\"{}\" r=\"6\" fill=\"#1b1f24\"></circle>", fmt(x(l)), fmt(y)));
        }
    }
    let desc: String = rows
        .iter()
        .map(|(n, c)| {
            let iv = c.interval.map(|[a, b]| format!(" [{}, {}]", fmt_lift(c, a), fmt_lift(c, b))).unwrap_or_default();
            format!("{n}: {}{iv}; ", lift_of(c).map(|l| fmt_lift(c, l)).unwrap_or_else(|| "no estimate".into()))
        })
        .collect();
    html!(
        "<svg class=\"chart\" viewBox=\"0 0 600 {}\" role=\"img\" aria-label=\"{}\"><title>Lift of {} versus control, with intervals</title>{}</svg>",
        fmt(height),
        format!("Lift of {} versus control: {desc}", m.name),
        m.name,
        body
    )
}

/// Lift over time: per treatment, the cumulative lift (line) and its interval
/// (band) at each point of the results history, zero dashed.
pub fn time_chart(index: usize, name: &str, history: &crate::experiments::api::ResultsHistory) -> Html {
    // (point, treatment) → comparison
    let series: Vec<Vec<Option<&Comparison>>> = history
        .points
        .iter()
        .map(|p| {
            p.analysis.metrics.get(index).map(|m| m.variants.iter().skip(1).map(|v| v.comparison.as_ref()).collect()).unwrap_or_default()
        })
        .collect();
    let treatments: Vec<&str> = history
        .points
        .last()
        .and_then(|p| p.analysis.metrics.get(index))
        .map(|m| m.variants.iter().skip(1).map(|v| v.variant.as_str()).collect())
        .unwrap_or_default();
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for c in series.iter().flatten().flatten() {
        for x in c.interval.iter().flatten().chain(lift_of(c).iter()) {
            if x.is_finite() {
                lo = lo.min(*x);
                hi = hi.max(*x);
            }
        }
    }
    if hi - lo < 1e-12 {
        lo -= 0.01;
        hi += 0.01;
    }
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let (left, width, top, height) = (60.0, 520.0, 10.0, 160.0);
    let n = series.len().max(2);
    let x = |i: usize| left + width * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + (hi - v) / (hi - lo) * height;
    let f = |v: f64| format!("{v:.1}");
    let mut body = Html::new();
    body.push(html!(
        "<line class=\"zero\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"></line>",
        f(left),
        f(left + width),
        f(y(0.0)),
        f(y(0.0))
    ));
    let first = series.iter().flatten().flatten().next().copied();
    for v in [lo, 0.0, hi] {
        let label = if v == 0.0 { "0".to_owned() } else { first.map(|c| fmt_lift(c, v)).unwrap_or_default() };
        body.push(html!("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", f(left - 6.0), f(y(v) + 4.0), label));
    }
    for (t, tname) in treatments.iter().enumerate() {
        let pts: Vec<(usize, &Comparison)> =
            series.iter().enumerate().filter_map(|(i, p)| p.get(t).copied().flatten().map(|c| (i, c))).collect();
        let band: Vec<(usize, [f64; 2])> = pts.iter().filter_map(|(i, c)| c.interval.map(|iv| (*i, iv))).collect();
        if band.len() >= 2 {
            let upper = band.iter().map(|(i, [_, b])| format!("{},{}", f(x(*i)), f(y(*b))));
            let lower = band.iter().rev().map(|(i, [a, _])| format!("{},{}", f(x(*i)), f(y(*a))));
            let poly: Vec<String> = upper.chain(lower).collect();
            body.push(html!("<polygon class=\"band s{}\" points=\"{}\"></polygon>", t % 4, poly.join(" ")));
        }
        let line: Vec<String> = pts.iter().filter_map(|(i, c)| lift_of(c).map(|l| format!("{},{}", f(x(*i)), f(y(l))))).collect();
        if !line.is_empty() {
            body.push(html!("<polyline class=\"trend s{}\" points=\"{}\"></polyline>", t % 4, line.join(" ")));
            body.push(html!(
                "<text x=\"{}\" y=\"{}\" class=\"s{}\">{}</text>",
                f(left + width + 4.0),
                f(top + 12.0 + 14.0 * t as f64),
                t % 4,
                *tname
            ));
        }
    }
    let span = match (history.points.first(), history.points.last()) {
        (Some(a), Some(b)) => format!("from {} to {}", fmt_rfc3339(&a.at), fmt_rfc3339(&b.at)),
        _ => String::new(),
    };
    body.push(html!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", f(left + width / 2.0), f(top + height + 22.0), span));
    html!(
        "<svg class=\"chart\" viewBox=\"0 0 640 {}\" role=\"img\" aria-label=\"{}\"><title>Lift of {} over time, with intervals</title>{}</svg>",
        f(top + height + 30.0),
        format!("Lift of {name} versus control over time ({} points {span})", history.points.len()),
        name,
        body
    )
}

fn metric_section(m: &MetricResult) -> Html {
    let rows: Html = m
        .variants
        .iter()
        .map(|v| match &v.comparison {
            None => html!(
                "<tr><th scope=\"row\">{}</th><td class=\"num\" data-label=\"Units\">{}</td><td class=\"num\" data-label=\"Mean\">{}</td><td data-label=\"Lift\">—</td><td data-label=\"Interval\">—</td><td class=\"num\" data-label=\"p-value\">—</td><td class=\"num\" data-label=\"Chance to win\">—</td><td data-label=\"Verdict\">baseline</td></tr>",
                v.variant,
                v.units,
                num(v.mean)
            ),
            Some(c) => {
                let (st, class) = status_text(c.status);
                html!(
                    "<tr><th scope=\"row\">{}</th><td class=\"num\" data-label=\"Units\">{}</td><td class=\"num\" data-label=\"Mean\">{}</td><td data-label=\"Lift\">{}</td><td data-label=\"Interval\">{}</td><td class=\"num\" data-label=\"p-value\">{}</td><td class=\"num\" data-label=\"Chance to win\">{}</td><td data-label=\"Verdict\"><span class=\"badge {}\">{}</span> <span class=\"small\">{}</span></td></tr>",
                    v.variant,
                    v.units,
                    num(v.mean),
                    lift_of(c).map(|l| fmt_lift(c, l)).unwrap_or_else(|| "—".into()),
                    c.interval.map(|[a, b]| format!("[{}, {}]", fmt_lift(c, a), fmt_lift(c, b))).unwrap_or_else(|| "unbounded".into()),
                    c.adjusted_p_value.or(c.p_value).map(|p| format!("{p:.4}")).unwrap_or_else(|| "—".into()),
                    c.chance_to_win.map(|p| format!("{:.1} %", p * 100.0)).unwrap_or_else(|| "— (Bayesian only)".into()),
                    class,
                    st,
                    c.verdict
                )
            }
        })
        .collect();
    html!(
        "<section class=\"card\" aria-labelledby=\"m-{}\"><h2 id=\"m-{}\">{}</h2><div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Variant</th><th scope=\"col\" class=\"num\">Units</th><th scope=\"col\" class=\"num\">Mean</th><th scope=\"col\">Lift</th><th scope=\"col\">Interval</th><th scope=\"col\" class=\"num\">p-value</th><th scope=\"col\" class=\"num\">Chance to win</th><th scope=\"col\">Verdict</th></tr></thead><tbody>{}</tbody></table></div>{}\
</section>",
        Seg(&m.name),
        Seg(&m.name),
        m.name,
        rows,
        lift_chart(m)
    )
}

fn render(
    s: &Session,
    e: &Experiment,
    results: Result<ResultsResponse, ApiError>,
    history: Option<&crate::experiments::api::ResultsHistory>,
    error: Option<&ApiError>,
) -> Response {
    let actions = match e.status {
        ExperimentStatus::Draft => html!(
            "<form method=\"post\" action=\"/ui/experiments/{}/start\">{}<button type=\"submit\" class=\"turn-on\">Start</button></form>",
            Seg(&e.key),
            super::csrf_field(s)
        ),
        ExperimentStatus::Running => html!(
            "<form method=\"post\" action=\"/ui/experiments/{}/stop\">{}<button type=\"submit\" class=\"turn-off\">Stop</button></form>",
            Seg(&e.key),
            super::csrf_field(s)
        ),
        ExperimentStatus::Stopped => Html::new(),
    };
    let results = match results {
        Ok(r) => {
            let srm = if r.analysis.srm.mismatch {
                html!(
                    "<div class=\"warning\" role=\"alert\" id=\"srm\"><strong>Sample ratio mismatch.</strong> The split of units between variants does not match the weights (χ² = {}, p = {}). The results are not trustworthy until the cause is found.</div>",
                    format!("{:.2}", r.analysis.srm.chi_squared),
                    format!("{:.5}", r.analysis.srm.p_value)
                )
            } else {
                html!(
                    "<p class=\"muted\" id=\"srm\">Traffic split matches the weights (SRM check p = {}).</p>",
                    format!("{:.3}", r.analysis.srm.p_value)
                )
            };
            let units: Html = r.units.iter().map(|(n, u)| html!("<li>{}: {} units</li>", n, *u)).collect();
            let metrics: Html = r
                .analysis
                .metrics
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let mut section = metric_section(m);
                    if let Some(h) = history {
                        section.push(html!(
                            "<section class=\"card\"><h3>{} over time</h3>{}<p class=\"hint\">Cumulative: each point analyses the units first exposed by then.</p></section>",
                            m.name,
                            time_chart(i, &m.name, h)
                        ));
                    }
                    section
                })
                .collect();
            html!("<section id=\"results\" data-live>{}<h2>Exposed units</h2><ul>{}</ul>{}</section>", srm, units, metrics)
        }
        Err(err) => error_box(&err),
    };
    let body = html!(
        "<p><a href=\"/ui/experiments\">← Experiments</a></p><h1>{} {}</h1>{}<p>{}</p><p class=\"muted\">Flag <a href=\"/ui/flags/{}\">{}</a> in {} · started {} · stopped {}</p><div class=\"actions\">{}</div>{}",
        e.key,
        status_badge(e.status),
        error.map(error_box).unwrap_or_default(),
        e.hypothesis.clone().unwrap_or_default(),
        Seg(&e.flag),
        e.flag,
        e.environment,
        e.started_at.as_deref().map(fmt_rfc3339).unwrap_or_else(|| "—".into()),
        e.stopped_at.as_deref().map(fmt_rfc3339).unwrap_or_else(|| "—".into()),
        actions,
        results
    );
    layout::page(s, &e.key, NAV.href, body)
}

async fn get_experiment<St: Store>(State(app): State<AppState<St>>, s: Session, Path(key): Path<String>) -> Response {
    show(&app, &s, &key, None).await
}

async fn show<St: Store>(app: &AppState<St>, s: &Session, key: &str, error: Option<&ApiError>) -> Response {
    let Some(e) = app.views().experiments.get(key).map(|x| x.experiment.clone()) else {
        return layout::not_found().await;
    };
    let results = crate::experiments::api::results_of(app, key.to_owned());
    let history = if e.started_at.is_some() { crate::experiments::api::history_of(app, key.to_owned(), 12).ok() } else { None };
    render(s, &e, results, history.as_ref(), error)
}

async fn start_experiment<St: Store>(State(app): State<AppState<St>>, Path(key): Path<String>, p: Posted) -> Response {
    match crate::experiments::api::start_experiment(State(app.clone()), AdminPrincipal(p.session.principal()), Path(key.clone())).await {
        Ok(_) => see_other(&format!("/ui/experiments/{}", super::html_url_encode(&key))),
        Err(e) => show(&app, &p.session, &key, Some(&e)).await,
    }
}

async fn stop_experiment<St: Store>(State(app): State<AppState<St>>, Path(key): Path<String>, p: Posted) -> Response {
    match crate::experiments::api::stop_experiment(State(app.clone()), AdminPrincipal(p.session.principal()), Path(key.clone())).await {
        Ok(_) => see_other(&format!("/ui/experiments/{}", super::html_url_encode(&key))),
        Err(e) => show(&app, &p.session, &key, Some(&e)).await,
    }
}
