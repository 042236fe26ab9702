//! One flag: on/off per environment (with a confirmation step in protected
//! environments), the rules editor (rollout slider, constraints, segments),
//! the variants editor (names, weights, payloads) and the evaluation
//! debugger ("what does user X get in environment Y, and why").
//!
//! Writes call the admin API's handlers (`switch_on`/`switch_off`,
//! `update_flag_environment`, `update_flag`) with `If-Match` set to the
//! version the form was rendered from, so a change made elsewhere in the
//! meantime is refused (412) instead of overwritten.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_core::{Store, StoredFlag};
use gantry_engine::model::{
    Condition, Constraint, EnvironmentConfig, Flag, Operator, Payload, Percentage, Rollout, Rule, Serve, Stickiness, Variant,
};
use gantry_engine::{CompileOptions, Context, EvalInputs, FlagSet, Plan};
use serde::Deserialize;

use super::html::{Html, Seg};
use super::layout;
use super::session::{Fields, Posted, Session};
use super::{badge, csrf_field, error_box, fmt_time, html_url_encode, see_other, status_of};
use crate::error::ApiError;
use crate::extract::{AdminPrincipal, Json};
use crate::html;
use crate::state::{AppState, Views};

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ui/flags/{key}", get(get_flag::<St>))
        .route("/ui/flags/{key}/environments/{env}/toggle", post(toggle_flag::<St>))
        .route("/ui/flags/{key}/environments/{env}/rules", post(update_rules::<St>))
        .route("/ui/flags/{key}/variants", post(update_variants::<St>))
}

/// The debugger's question.
#[derive(Debug, Default, Deserialize)]
pub struct DebugParams {
    /// Environment.
    env: Option<String>,
    /// User id.
    user: Option<String>,
    /// More context, one `name=value` per line.
    ctx: Option<String>,
}

const OPERATORS: [&str; 19] = [
    "IN",
    "NOT_IN",
    "STR_CONTAINS",
    "STR_STARTS_WITH",
    "STR_ENDS_WITH",
    "NUM_EQ",
    "NUM_GT",
    "NUM_GTE",
    "NUM_LT",
    "NUM_LTE",
    "DATE_AFTER",
    "DATE_BEFORE",
    "SEMVER_EQ",
    "SEMVER_GT",
    "SEMVER_GTE",
    "SEMVER_LT",
    "SEMVER_LTE",
    "REGEX",
    "IN_CIDR",
];

fn flag_url(key: &str) -> String {
    format!("/ui/flags/{}", html_url_encode(key))
}

pub(crate) fn if_match(version: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = version.and_then(|v| v.trim().parse::<i64>().ok()) {
        if let Ok(val) = HeaderValue::from_str(&format!("\"{v}\"")) {
            h.insert("if-match", val);
        }
    }
    h
}

fn not_found(key: &str) -> ApiError {
    ApiError::new(gantry_api_types::ErrorCode::FlagNotFound, format!("flag `{key}` not found"))
}

// === rendering ===

fn options(current: &str, list: &[(&str, &str)]) -> Html {
    list.iter()
        .map(|(v, l)| {
            if *v == current {
                html!("<option value=\"{}\" selected>{}</option>", *v, *l)
            } else {
                html!("<option value=\"{}\">{}</option>", *v, *l)
            }
        })
        .collect()
}

fn env_cards(v: &Views, s: &Session, f: &StoredFlag) -> Html {
    let cards: Html = v
        .environments
        .iter()
        .map(|e| {
            let name = &e.environment.name;
            let cfg = f.flag.environments.get(name);
            let on = cfg.is_some_and(|c| c.enabled);
            let protected = if e.environment.protected { html!("<span class=\"badge warn\">protected</span>") } else { Html::new() };
            let (label, class, next) = if on { ("Turn off", "turn-off", "false") } else { ("Turn on", "turn-on", "true") };
            html!(
                "<article class=\"env {}\" id=\"env-{}\"><h3>{} {} {}</h3><p class=\"muted\">{}</p>\
<form method=\"post\" action=\"/ui/flags/{}/environments/{}/toggle\">{}<input type=\"hidden\" name=\"on\" value=\"{}\"><button type=\"submit\" class=\"{}\" aria-label=\"{} {} in {}\">{}</button></form></article>",
                if on { "is-on" } else { "is-off" },
                name,
                name,
                html!("<span class=\"badge big {}\">{}</span>", if on { "on" } else { "off" }, if on { "ON" } else { "OFF" }),
                protected,
                super::flags::summary(cfg),
                Seg(&f.flag.key),
                Seg(name),
                csrf_field(s),
                next,
                class,
                label,
                f.flag.key,
                name,
                label
            )
        })
        .collect();
    html!("<section id=\"flag-envs\" data-live aria-labelledby=\"envs-h\"><h2 id=\"envs-h\">Environments</h2><div class=\"envs\">{}</div></section>", cards)
}

pub(crate) fn constraint_row(id: &str, name: &str, c: Option<&Constraint>) -> Html {
    let op = c.map(|c| c.operator.as_str().to_owned()).unwrap_or_else(|| "IN".into());
    let ops: Vec<(&str, &str)> = OPERATORS.iter().map(|o| (*o, *o)).collect();
    let mut op_opts = options(&op, &ops);
    if !OPERATORS.contains(&op.as_str()) {
        op_opts.push(html!("<option value=\"{}\" selected>{}</option>", op, op));
    }
    let values =
        c.map(|c| if c.operator.is_single_value() { c.value.clone().unwrap_or_default() } else { c.values.join(", ") }).unwrap_or_default();
    let checked = |b: bool| if b { html!(" checked") } else { Html::new() };
    html!(
        "<div class=\"constraint\"><div class=\"field\"><label for=\"{}-name\">Context field</label><input id=\"{}-name\" name=\"{}.name\" value=\"{}\" list=\"context-fields\" placeholder=\"{}\"></div>\
<div class=\"field\"><label for=\"{}-op\">Operator</label><select id=\"{}-op\" name=\"{}.op\">{}</select></div>\
<div class=\"field\"><label for=\"{}-values\">Values</label><input id=\"{}-values\" name=\"{}.values\" value=\"{}\" placeholder=\"comma separated\"></div>\
<label class=\"inline\"><input type=\"checkbox\" name=\"{}.inverted\" value=\"1\"{}> not</label><label class=\"inline\"><input type=\"checkbox\" name=\"{}.ci\" value=\"1\"{}> ignore case</label></div>",
        id,
        id,
        name,
        c.map(|c| c.context_name.clone()).unwrap_or_default(),
        if c.is_none() { "add a constraint" } else { "" },
        id,
        id,
        name,
        op_opts,
        id,
        id,
        name,
        values,
        name,
        checked(c.is_some_and(|c| c.inverted)),
        name,
        checked(c.is_some_and(|c| c.case_insensitive))
    )
}

fn rule_fieldset(v: &Views, env: &str, i: usize, rule: Option<&Rule>) -> Html {
    let id = format!("r-{env}-{i}");
    let name = format!("r{i}");
    let (ty, pct, sticky, ids) = match rule.map(|r| &r.condition) {
        None => ("none", Percentage::ZERO, "default".to_owned(), String::new()),
        Some(Condition::All) => ("all", Percentage::FULL, "default".to_owned(), String::new()),
        Some(Condition::Rollout(r)) => ("rollout", r.percentage, r.stickiness.as_str().to_owned(), String::new()),
        Some(Condition::UserIds { ids }) => ("user_ids", Percentage::ZERO, "default".to_owned(), ids.join(", ")),
        Some(_) => ("keep", Percentage::ZERO, "default".to_owned(), String::new()),
    };
    let mut types: Vec<(&str, &str)> = vec![("all", "everyone"), ("rollout", "a percentage (rollout)"), ("user_ids", "these user ids")];
    if rule.is_none() {
        types.insert(0, ("none", "— no new rule —"));
    }
    if ty == "keep" {
        types.insert(0, ("keep", "unchanged (edited through the API)"));
    }
    let whole = pct.basis_points() % 100 == 0;
    let step = if whole { "1" } else { "0.01" };
    let constraints: Html = rule
        .map(|r| r.constraints.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(j, c)| constraint_row(&format!("{id}-c{j}"), &format!("{name}.c{j}"), Some(c)))
        .chain(std::iter::once({
            let j = rule.map_or(0, |r| r.constraints.len());
            constraint_row(&format!("{id}-c{j}"), &format!("{name}.c{j}"), None)
        }))
        .collect();
    let segs: Html = v
        .segments
        .values()
        .map(|sg| {
            let on = rule.is_some_and(|r| r.segments.contains(&sg.segment.id));
            html!(
                "<label class=\"inline\"><input type=\"checkbox\" name=\"{}.seg\" value=\"{}\"{}> {}</label> ",
                name,
                sg.segment.id,
                if on { html!(" checked") } else { Html::new() },
                sg.segment.name.clone().unwrap_or_else(|| format!("segment {}", sg.segment.id))
            )
        })
        .collect();
    let segs = if v.segments.is_empty() { html!("<span class=\"muted\">no segments defined</span>") } else { segs };
    let legend = match rule {
        Some(r) => html!("Rule {}{}", i + 1, r.title.as_deref().map(|t| html!(": {}", t)).unwrap_or_default()),
        None => html!("Add a rule"),
    };
    let remove = if rule.is_some() {
        html!("<label class=\"inline\"><input type=\"checkbox\" name=\"{}.remove\" value=\"1\"> remove this rule</label>", name)
    } else {
        Html::new()
    };
    html!(
        "<fieldset class=\"rule\"><legend>{}</legend><div class=\"row\"><div class=\"field\"><label for=\"{}-type\">Who</label><select id=\"{}-type\" name=\"{}.type\">{}</select></div>\
<div class=\"field\"><label for=\"{}-title\">Title</label><input id=\"{}-title\" name=\"{}.title\" value=\"{}\"></div>\
<div class=\"field\"><label for=\"{}-sticky\">Stickiness</label><input id=\"{}-sticky\" name=\"{}.stickiness\" value=\"{}\" list=\"stickiness\"></div></div>\
<div class=\"field\"><label for=\"{}-pct\">Rollout percentage</label><div class=\"slider\"><input type=\"range\" id=\"{}-pct\" name=\"{}.pct\" min=\"0\" max=\"100\" step=\"{}\" value=\"{}\" data-output=\"{}-out\"><output id=\"{}-out\" for=\"{}-pct\">{} %</output></div></div>\
<div class=\"field\"><label for=\"{}-ids\">User ids</label><input id=\"{}-ids\" name=\"{}.ids\" value=\"{}\" placeholder=\"comma separated\"></div>\
<h4>Constraints (all must hold)</h4>{}<h4>Segments</h4><p>{}</p>{}</fieldset>",
        legend,
        id,
        id,
        name,
        options(ty, &types),
        id,
        id,
        name,
        rule.and_then(|r| r.title.clone()).unwrap_or_default(),
        id,
        id,
        name,
        sticky,
        id,
        id,
        name,
        step,
        pct.to_string(),
        id,
        id,
        id,
        pct.to_string(),
        id,
        id,
        name,
        ids,
        constraints,
        segs,
        remove
    )
}

fn rules_editor(v: &Views, s: &Session, f: &StoredFlag, env: &str) -> Html {
    let cfg = f.flag.environments.get(env);
    let rules = cfg.map(|c| c.rules.as_slice()).unwrap_or_default();
    let fieldsets: Html = rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule_fieldset(v, env, i, Some(r)))
        .chain(std::iter::once(rule_fieldset(v, env, rules.len(), None)))
        .collect();
    let behaviour = if rules.is_empty() {
        "No rules: when on, everyone gets the flag."
    } else {
        "Rules are checked in order; the first that matches decides. Nobody else gets the flag."
    };
    html!(
        "<details class=\"card\" id=\"rules-{}\" data-live{}><summary><h3>Rules in {} <span class=\"muted small\">({})</span></h3></summary><p class=\"hint\">{}</p>\
<form method=\"post\" action=\"/ui/flags/{}/environments/{}/rules\" class=\"stack\">{}<input type=\"hidden\" name=\"version\" value=\"{}\">{}\
<button type=\"submit\" class=\"primary\">Save rules in {}</button></form></details>",
        env,
        if rules.is_empty() { Html::new() } else { html!(" open") },
        env,
        match rules.len() {
            0 => "no rules".to_owned(),
            1 => "1 rule".to_owned(),
            n => format!("{n} rules"),
        },
        behaviour,
        Seg(&f.flag.key),
        Seg(env),
        csrf_field(s),
        f.version,
        fieldsets,
        env
    )
}

fn variants_editor(s: &Session, f: &StoredFlag) -> Html {
    let total: u64 = f.flag.variants.iter().map(|v| u64::from(v.weight)).sum();
    let row = |i: usize, var: Option<&Variant>| -> Html {
        let id = format!("v-{i}");
        let share = match var {
            Some(v) if total > 0 => format!("{:.1} %", 100.0 * f64::from(v.weight) / total as f64),
            _ => String::new(),
        };
        let ptype = var.and_then(|v| v.payload.as_ref()).map(|p| p.kind.clone()).unwrap_or_else(|| "none".into());
        let remove = if var.is_some() {
            html!("<label class=\"inline\"><input type=\"checkbox\" name=\"v{}.remove\" value=\"1\"> remove</label>", i)
        } else {
            html!("<span class=\"muted small\">new</span>")
        };
        html!(
            "<div class=\"variant\"><div class=\"field\"><label for=\"{}-name\">Name</label><input id=\"{}-name\" name=\"v{}.name\" value=\"{}\"></div>\
<div class=\"field\"><label for=\"{}-weight\">Weight {}</label><input id=\"{}-weight\" type=\"number\" min=\"0\" max=\"1000000\" name=\"v{}.weight\" value=\"{}\"></div>\
<div class=\"field\"><label for=\"{}-ptype\">Payload type</label><select id=\"{}-ptype\" name=\"v{}.ptype\">{}</select></div>\
<div class=\"field\"><label for=\"{}-pvalue\">Payload</label><input id=\"{}-pvalue\" name=\"v{}.pvalue\" value=\"{}\"></div>{}</div>",
            id,
            id,
            i,
            var.map(|v| v.name.clone()).unwrap_or_default(),
            id,
            if share.is_empty() { Html::new() } else { html!("<span class=\"muted\">({})</span>", share) },
            id,
            i,
            var.map_or(if f.flag.variants.is_empty() { 1000 } else { 0 }, |v| v.weight),
            id,
            id,
            i,
            options(&ptype, &[("none", "none"), ("string", "string"), ("json", "json"), ("number", "number"), ("csv", "csv")]),
            id,
            id,
            i,
            var.and_then(|v| v.payload.as_ref()).map(|p| p.value.clone()).unwrap_or_default(),
            remove
        )
    };
    let rows: Html =
        f.flag.variants.iter().enumerate().map(|(i, v)| row(i, Some(v))).chain(std::iter::once(row(f.flag.variants.len(), None))).collect();
    html!(
        "<details class=\"card\" id=\"variants\" data-live><summary><h3>Variants and weights ({})</h3></summary><p class=\"hint\">Weights are relative; users are split by them when the flag is on.</p>\
<form method=\"post\" action=\"/ui/flags/{}/variants\" class=\"stack\">{}<input type=\"hidden\" name=\"version\" value=\"{}\">{}<button type=\"submit\" class=\"primary\">Save variants</button></form></details>",
        f.flag.variants.len(),
        Seg(&f.flag.key),
        csrf_field(s),
        f.version,
        rows
    )
}

/// Whether one rule alone matches the context (used to explain a result).
fn probe(flag: &Flag, env: &str, rule: Rule, v: &Views, hostname: Option<&str>, ctx: &Context, inputs: EvalInputs) -> bool {
    let mut f = flag.clone();
    let cfg = EnvironmentConfig { enabled: true, rules: vec![rule], fallthrough: Some(Serve::Off), ..Default::default() };
    f.environments = [(env.to_owned(), cfg)].into();
    let set = FlagSet { flags: vec![f], segments: v.segments.values().map(|s| s.segment.clone()).collect() };
    let plan = Plan::compile(&set, &CompileOptions { environment: env.to_owned(), hostname: hostname.map(str::to_owned) });
    plan.evaluate(&flag.key, ctx, inputs).enabled
}

fn yes_no(b: bool) -> Html {
    if b {
        html!("<span class=\"yes\">✔ yes</span>")
    } else {
        html!("<span class=\"no\">✘ no</span>")
    }
}

fn condition_text(c: &Condition) -> String {
    match c {
        Condition::All => "everyone".into(),
        Condition::Rollout(r) => format!("{} % by {}", r.percentage, r.stickiness.as_str()),
        Condition::UserIds { ids } => format!("user id in [{}]", ids.join(", ")),
        Condition::RemoteAddress { ips } => format!("remote address in [{}]", ips.join(", ")),
        Condition::Hostnames { names } => format!("host name in [{}]", names.join(", ")),
        Condition::Custom { name, .. } => format!("custom strategy `{name}` (never matches here)"),
    }
}

pub(crate) fn constraint_text(c: &Constraint) -> String {
    let vals = if c.operator.is_single_value() { c.value.clone().unwrap_or_default() } else { c.values.join(", ") };
    format!("{}{} {} {}", if c.inverted { "not " } else { "" }, c.context_name, c.operator.as_str(), vals)
}

fn debugger<St: Store>(app: &AppState<St>, v: &Views, f: &StoredFlag, q: &DebugParams) -> Html {
    let envs: Vec<(&str, &str)> = v.environments.iter().map(|e| (e.environment.name.as_str(), e.environment.name.as_str())).collect();
    let env = q.env.as_deref().filter(|e| v.env(e).is_some());
    let form = html!(
        "<form method=\"get\" action=\"/ui/flags/{}#debugger\" class=\"grid-form\"><div class=\"field\"><label for=\"dbg-env\">Environment</label><select id=\"dbg-env\" name=\"env\">{}</select></div>\
<div class=\"field\"><label for=\"dbg-user\">User id</label><input id=\"dbg-user\" name=\"user\" value=\"{}\" autocomplete=\"off\"></div>\
<div class=\"field grow\"><label for=\"dbg-ctx\">More context (<code>name=value</code> per line)</label><textarea id=\"dbg-ctx\" name=\"ctx\" rows=\"2\">{}</textarea></div>\
<div class=\"field\"><button type=\"submit\" class=\"primary\">Evaluate</button></div></form>",
        Seg(&f.flag.key),
        options(env.unwrap_or(envs.last().map_or("", |e| e.0)), &envs),
        q.user.clone().unwrap_or_default(),
        q.ctx.clone().unwrap_or_default()
    );
    let result = match (env, v.env(env.unwrap_or(""))) {
        (Some(env), Some(view)) => {
            let mut ctx = Context::new();
            if let Some(u) = q.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                ctx.set("userId", u.to_owned());
            }
            for line in q.ctx.as_deref().unwrap_or("").lines() {
                if let Some((k, val)) = line.split_once('=') {
                    if !k.trim().is_empty() {
                        ctx.set(k.trim(), val.trim().to_owned());
                    }
                }
            }
            if ctx.environment.is_none() {
                ctx.environment = Some(env.to_owned());
            }
            // Fixed seed: the debugger answers the same way twice (only random stickiness reads it).
            let inputs = EvalInputs::new(app.clock.now_millis(), 0);
            let ev = view.plan.evaluate(&f.flag.key, &ctx, inputs);
            let value = ev.value().map(|x| x.to_json().to_string()).unwrap_or_else(|| "(the caller's default)".into());
            let cfg = f.flag.environments.get(env);
            let mut why = Html::new();
            match cfg {
                None => {
                    why.push(html!("<li>The flag has no configuration in {}: it is off there.</li>", env));
                }
                Some(c) if !c.enabled => {
                    why.push(html!("<li>The flag is switched <strong>off</strong> in {}: everyone gets the off value.</li>", env));
                }
                Some(c) => {
                    why.push(html!("<li>The flag is switched <strong>on</strong> in {}.</li>", env));
                    for p in &c.prerequisites {
                        let parent = view.plan.evaluate(&p.flag, &ctx, inputs);
                        let ok = parent.enabled == p.enabled
                            && (p.variants.is_empty() || parent.variant_name().is_some_and(|n| p.variants.iter().any(|x| x == n)));
                        why.push(html!(
                            "<li>Prerequisite: <code>{}</code> must be {}: {}</li>",
                            p.flag,
                            if p.enabled { "on" } else { "off" },
                            yes_no(ok)
                        ));
                    }
                    let hostname = app.config.hostname.as_deref();
                    for (i, r) in c.rules.iter().enumerate() {
                        let cond = Rule { condition: r.condition.clone(), ..Default::default() };
                        let mut parts = html!(
                            "<li>{}: {}</li>",
                            condition_text(&r.condition),
                            yes_no(probe(&f.flag, env, cond, v, hostname, &ctx, inputs))
                        );
                        for k in &r.constraints {
                            let one = Rule { constraints: vec![k.clone()], ..Default::default() };
                            parts.push(html!(
                                "<li>{}: {}</li>",
                                constraint_text(k),
                                yes_no(probe(&f.flag, env, one, v, hostname, &ctx, inputs))
                            ));
                        }
                        for id in &r.segments {
                            let one = Rule { segments: vec![*id], ..Default::default() };
                            let name = v.segments.get(id).and_then(|s| s.segment.name.clone()).unwrap_or_else(|| format!("segment {id}"));
                            parts.push(html!(
                                "<li>in segment {}: {}</li>",
                                name,
                                yes_no(probe(&f.flag, env, one, v, hostname, &ctx, inputs))
                            ));
                        }
                        let decided = ev.rule_index == Some(i);
                        why.push(html!(
                            "<li{}>Rule {}{}: {}<ul>{}</ul></li>",
                            if decided { html!(" class=\"decided\"") } else { Html::new() },
                            i + 1,
                            r.title.as_deref().map(|t| html!(" ({})", t)).unwrap_or_default(),
                            if decided { html!("<strong>matched: this rule decided</strong>") } else { html!("did not match") },
                            parts
                        ));
                        if decided {
                            break;
                        }
                    }
                    if ev.rule_index.is_none() && !c.rules.is_empty() {
                        why.push(html!("<li>No rule matched: the default is served.</li>"));
                    }
                }
            }
            html!(
                "<div id=\"debug-result\" role=\"region\" aria-label=\"Evaluation result\"><dl class=\"debug-result\"><dt>Result</dt><dd>{}</dd><dt>Value</dt><dd><code>{}</code></dd><dt>Variant</dt><dd>{}</dd><dt>Reason</dt><dd><code>{}</code></dd></dl><h4>Why</h4><ol class=\"why\">{}</ol><p class=\"hint\">Evaluated at {}; the debugger does not count as usage.</p></div>",
                badge(ev.enabled),
                value,
                ev.variant_name().unwrap_or("none"),
                ev.reason.as_str(),
                why,
                fmt_time(app.clock.now())
            )
        }
        _ => Html::new(),
    };
    html!(
        "<section class=\"card\" id=\"debugger\" aria-labelledby=\"dbg-h\"><h2 id=\"dbg-h\">Evaluation debugger</h2><p class=\"hint\">What does a user get in an environment, and why.</p>{}{}</section>",
        form,
        result
    )
}

async fn render<St: Store>(app: &AppState<St>, s: &Session, key: &str, q: &DebugParams, error: Option<&ApiError>) -> Response {
    let v = app.views();
    let Some(f) = v.flags.get(key) else {
        return layout::not_found().await;
    };
    let tags: Html = f.flag.tags.iter().map(|t| html!("<span class=\"tag\">{}</span> ", t)).collect();
    let stale = if f.flag.stale { html!(" <span class=\"badge stale\">stale</span>") } else { Html::new() };
    let rules: Html = v.environments.iter().map(|e| rules_editor(&v, s, f, &e.environment.name)).collect();
    let datalists = html!(
        "<datalist id=\"context-fields\"><option value=\"userId\"><option value=\"sessionId\"><option value=\"remoteAddress\"><option value=\"appName\"><option value=\"environment\"><option value=\"currentTime\"></datalist>\
<datalist id=\"stickiness\"><option value=\"default\"><option value=\"userId\"><option value=\"sessionId\"><option value=\"random\"></datalist>"
    );
    let rollouts: Html = app
        .release
        .rollouts
        .lock()
        .await
        .values()
        .filter(|e| e.def.plan.target.flag == key)
        .map(|e| {
            let env = &e.def.plan.target.environment;
            html!(
                "<a href=\"/ui/rollouts/{}/{}\">Rollout in {}</a> {} {} ",
                super::html::Seg(env),
                super::html::Seg(key),
                env.as_str(),
                super::rollouts::status_badge(e.state.status),
                e.state.percentage.to_string()
            )
        })
        .collect();
    let rollouts = super::html::when(!rollouts.as_str().is_empty(), html!("<p class=\"rollout-links\">{}</p>", rollouts));
    let body = html!(
        "<p><a href=\"/ui/flags\">← Flags</a></p><h1>{}{}</h1><p>{}</p><p class=\"muted\">{} flag · {}version {} · updated {}</p>{}{}{}{}<h2>Rules</h2>{}{}{}",
        f.flag.key,
        stale,
        f.flag.description.clone().unwrap_or_default(),
        serde_json::to_value(f.flag.kind).ok().and_then(|k| k.as_str().map(str::to_owned)).unwrap_or_default(),
        tags,
        f.version,
        fmt_time(f.updated_at),
        rollouts,
        error.map(error_box).unwrap_or_default(),
        env_cards(&v, s, f),
        debugger(app, &v, f, q),
        rules,
        variants_editor(s, f),
        datalists
    );
    let status = error.map(status_of).unwrap_or(StatusCode::OK);
    layout::page_with_status(s, status, &f.flag.key, super::flags::NAV.href, body)
}

/// The flag page.
async fn get_flag<St: Store>(
    State(app): State<AppState<St>>,
    s: Session,
    Path(key): Path<String>,
    q: Result<Query<DebugParams>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    render(&app, &s, &key, &q, None).await
}

fn confirm_page(s: &Session, key: &str, env: &str, on: bool) -> Response {
    let what = if on { "on" } else { "off" };
    let body = html!(
        "<section class=\"card confirm\" aria-labelledby=\"confirm-h\"><h1 id=\"confirm-h\">Turn <code>{}</code> {} in {}?</h1>\
<p><strong>{}</strong> is a protected environment: this changes what real users get, at once.</p>\
<div class=\"actions\"><form method=\"post\" action=\"/ui/flags/{}/environments/{}/toggle\">{}<input type=\"hidden\" name=\"on\" value=\"{}\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
<button type=\"submit\" class=\"{}\">Yes, turn it {} in {}</button></form><a href=\"{}\">Cancel</a></div></section>",
        key,
        what,
        env,
        env,
        Seg(key),
        Seg(env),
        csrf_field(s),
        if on { "true" } else { "false" },
        if on { "turn-on" } else { "turn-off" },
        what,
        env,
        flag_url(key)
    );
    layout::page(s, "Confirm", super::flags::NAV.href, body)
}

/// Switches a flag on or off in one environment (protected ones ask first).
async fn toggle_flag<St: Store>(State(app): State<AppState<St>>, Path((key, env)): Path<(String, String)>, p: Posted) -> Response {
    let on = p.fields.get("on") == Some("true");
    let protected = app.views().environments.iter().any(|e| e.environment.name == env && e.environment.protected);
    if protected && p.fields.get("confirm") != Some("yes") {
        return confirm_page(&p.session, &key, &env, on);
    }
    let admin = AdminPrincipal(p.session.principal());
    let r = if on {
        crate::admin::switch_on(State(app.clone()), admin, Path((key.clone(), env.clone())), HeaderMap::new()).await
    } else {
        crate::admin::switch_off(State(app.clone()), admin, Path((key.clone(), env.clone())), HeaderMap::new()).await
    };
    match r {
        Ok(_) => see_other(&format!("{}#env-{}", flag_url(&key), html_url_encode(&env))),
        Err(e) => render(&app, &p.session, &key, &DebugParams::default(), Some(&e)).await,
    }
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("").split([',', '\n']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

fn invalid(field: String, msg: &str) -> ApiError {
    ApiError::validation(vec![gantry_core::validate::Invalid::new(field, msg)])
}

/// Reads the constraint rows `{prefix}.c0.*`, `{prefix}.c1.*`, ... (rows without a field name are dropped).
pub(crate) fn parse_constraints(f: &Fields, prefix: &str) -> Vec<Constraint> {
    let mut constraints = Vec::new();
    let mut j = 0;
    while let Some(name) = f.get(&format!("{prefix}.c{j}.name")) {
        let name = name.trim();
        if !name.is_empty() {
            let operator = Operator::parse(f.get(&format!("{prefix}.c{j}.op")).unwrap_or("IN"));
            let raw = f.get(&format!("{prefix}.c{j}.values"));
            let (values, value) = if operator.is_single_value() {
                (Vec::new(), raw.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned))
            } else {
                (split_list(raw), None)
            };
            constraints.push(Constraint {
                context_name: name.to_owned(),
                operator,
                values,
                value,
                inverted: f.checked(&format!("{prefix}.c{j}.inverted")),
                case_insensitive: f.checked(&format!("{prefix}.c{j}.ci")),
            });
        }
        j += 1;
    }
    constraints
}

/// Reads the rules form into rules, keeping what the form does not show
/// (rule ids, hash groups, rule variants, conditions edited through the API).
fn parse_rules(f: &Fields, old: &[Rule]) -> Result<Vec<Rule>, ApiError> {
    let mut out = Vec::new();
    for i in 0..=old.len() {
        let p = format!("r{i}");
        let ty = f.get(&format!("{p}.type")).unwrap_or("none");
        if ty == "none" || f.checked(&format!("{p}.remove")) {
            continue;
        }
        let before = old.get(i);
        let mut rule = before.cloned().unwrap_or_default();
        rule.title = f.text(&format!("{p}.title"));
        rule.condition = match ty {
            "all" => Condition::All,
            "rollout" => {
                let pct = f.get(&format!("{p}.pct")).unwrap_or("");
                let percentage = Percentage::parse(pct).ok_or_else(|| {
                    invalid(format!("rules[{i}].condition.percentage"), "a percentage from 0 to 100 with at most two decimals")
                })?;
                let group_id = match before.map(|r| &r.condition) {
                    Some(Condition::Rollout(r)) => r.group_id.clone(),
                    _ => None,
                };
                let stickiness = Stickiness::parse(f.get(&format!("{p}.stickiness")).unwrap_or("default").trim());
                Condition::Rollout(Rollout { percentage, stickiness, group_id })
            }
            "user_ids" => Condition::UserIds { ids: split_list(f.get(&format!("{p}.ids"))) },
            "keep" => before.map(|r| r.condition.clone()).unwrap_or_default(),
            other => return Err(invalid(format!("rules[{i}].condition.type"), &format!("unknown rule type `{other}`"))),
        };
        rule.constraints = parse_constraints(f, &p);
        rule.segments = f.all(&format!("{p}.seg")).filter_map(|s| s.parse().ok()).collect();
        out.push(rule);
    }
    Ok(out)
}

/// Saves one environment's rules through `PUT /api/v1/flags/{key}/environments/{env}`.
async fn update_rules<St: Store>(State(app): State<AppState<St>>, Path((key, env)): Path<(String, String)>, p: Posted) -> Response {
    let result = async {
        let current = app
            .views()
            .flags
            .get(&key)
            .map(|f| f.flag.environments.get(&env).cloned().unwrap_or_default())
            .ok_or_else(|| not_found(&key))?;
        let mut cfg = current.clone();
        cfg.rules = parse_rules(&p.fields, &current.rules)?;
        crate::admin::update_flag_environment(
            State(app.clone()),
            AdminPrincipal(p.session.principal()),
            Path((key.clone(), env.clone())),
            if_match(p.fields.get("version")),
            Json(cfg),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("{}#rules-{}", flag_url(&key), html_url_encode(&env))),
        Err(e) => render(&app, &p.session, &key, &DebugParams::default(), Some(&e)).await,
    }
}

fn parse_variants(f: &Fields, old: &[Variant]) -> Result<Vec<Variant>, ApiError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(name) = f.get(&format!("v{i}.name")) {
        let name = name.trim();
        if name.is_empty() || f.checked(&format!("v{i}.remove")) {
            i += 1;
            continue;
        }
        let weight = f
            .get(&format!("v{i}.weight"))
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| w.parse::<u32>().map_err(|_| invalid(format!("variants[{i}].weight"), "a whole number from 0 to 1,000,000")))
            .transpose()?
            .unwrap_or(0);
        let mut var = old.get(i).cloned().unwrap_or(Variant {
            name: String::new(),
            weight: 0,
            weight_type: None,
            stickiness: None,
            payload: None,
            overrides: Vec::new(),
        });
        var.name = name.to_owned();
        var.weight = weight;
        var.payload = match f.get(&format!("v{i}.ptype")).unwrap_or("none") {
            "none" | "" => None,
            kind => Some(Payload { kind: kind.to_owned(), value: f.get(&format!("v{i}.pvalue")).unwrap_or("").to_owned() }),
        };
        out.push(var);
        i += 1;
    }
    Ok(out)
}

/// Saves the flag's variants through `PUT /api/v1/flags/{key}`.
async fn update_variants<St: Store>(State(app): State<AppState<St>>, Path(key): Path<String>, p: Posted) -> Response {
    let result = async {
        let mut flag = app.views().flags.get(&key).map(|f| f.flag.clone()).ok_or_else(|| not_found(&key))?;
        flag.variants = parse_variants(&p.fields, &flag.variants)?;
        crate::admin::update_flag(
            State(app.clone()),
            AdminPrincipal(p.session.principal()),
            Path(key.clone()),
            if_match(p.fields.get("version")),
            Json(flag),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("{}#variants", flag_url(&key))),
        Err(e) => render(&app, &p.session, &key, &DebugParams::default(), Some(&e)).await,
    }
}
