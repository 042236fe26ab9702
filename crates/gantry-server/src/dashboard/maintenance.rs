//! Maintenance mode per environment: whether it is on (and in force), its
//! message, allowlist (user ids, segments) and end; a form to switch it on
//! (or change it while on) and off. Protected environments ask first, like
//! the flag switch.
//!
//! Writes call the admin API's `update_maintenance` handler with `If-Match`
//! set to the version the form was rendered from, so a change made
//! elsewhere in the meantime is refused (412) instead of overwritten.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::Maintenance;
use gantry_core::Store;

use super::flag::if_match;
use super::html::{when, Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Fields, Posted, Session};
use super::{badge, csrf_field, error_box, fmt_rfc3339, fmt_time, html_url_encode, see_other, status_of};
use crate::error::ApiError;
use crate::extract::{AdminPrincipal, Json};
use crate::html;
use crate::state::{AppState, Views};

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/maintenance", label: "Maintenance" };

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new().route("/ui/maintenance", get(list_maintenance::<St>)).route("/ui/maintenance/{env}", post(update_maintenance::<St>))
}

fn segment_name(v: &Views, id: u32) -> String {
    v.segments.get(&id).and_then(|s| s.segment.name.clone()).unwrap_or_else(|| format!("segment {id}"))
}

fn card(v: &Views, s: &Session, env: &str, protected: bool, now_ms: i64) -> Html {
    let stored = v.maintenance.get(env);
    let m = stored.map(|x| x.maintenance.clone()).unwrap_or_default();
    let version = stored.map_or(0, |x| x.version);
    let active = crate::maintenance::state_of(&m).active_at(now_ms);
    let state = match (m.enabled, active) {
        (true, true) => badge(true),
        (true, false) => html!("<span class=\"badge warn\">ENDED</span>"),
        _ => badge(false),
    };
    let users = if m.allow_users.is_empty() {
        html!("<span class=\"muted\">none</span>")
    } else {
        m.allow_users.iter().map(|u| html!("<span class=\"tag\">{}</span> ", u)).collect()
    };
    let segs = if m.allow_segments.is_empty() {
        html!("<span class=\"muted\">none</span>")
    } else {
        m.allow_segments.iter().map(|id| html!("<span class=\"tag\">{}</span> ", segment_name(v, *id))).collect()
    };
    let seg_boxes: Html = v
        .segments
        .values()
        .map(|x| {
            let id = x.segment.id;
            html!(
                "<label class=\"inline\"><input type=\"checkbox\" name=\"allow_segments\" value=\"{}\"{}> {}</label> ",
                id.to_string(),
                when(m.allow_segments.contains(&id), html!(" checked")),
                segment_name(v, id)
            )
        })
        .collect();
    let seg_field = if v.segments.is_empty() {
        html!("<p class=\"hint\">No segments yet: allow users by id, or create a segment first.</p>")
    } else {
        html!("<fieldset><legend>Allowed segments</legend>{}</fieldset>", seg_boxes)
    };
    let id = format!("m-{env}");
    let off_form = when(
        m.enabled,
        html!(
            "<form method=\"post\" action=\"/ui/maintenance/{}\">{}<input type=\"hidden\" name=\"version\" value=\"{}\"><input type=\"hidden\" name=\"on\" value=\"false\"><button type=\"submit\" class=\"turn-off\" aria-label=\"Turn maintenance off in {}\">Turn off</button></form>",
            Seg(env),
            csrf_field(s),
            version,
            env
        ),
    );
    let (submit, class, aria) = if m.enabled {
        ("Save and keep on", "primary", "Save maintenance settings in")
    } else {
        ("Turn on", "turn-on", "Turn on maintenance in")
    };
    html!(
        "<article class=\"env {}\" id=\"maintenance-{}\"><h2>{} {} {}</h2>\
<dl class=\"debug-result\"><dt>Message</dt><dd>{}</dd><dt>Allowed users</dt><dd>{}</dd><dt>Allowed segments</dt><dd>{}</dd><dt>Ends</dt><dd>{}</dd><dt>Last change</dt><dd>{}</dd></dl>{}\
<details{}><summary>{}</summary><form method=\"post\" action=\"/ui/maintenance/{}\" class=\"stack\">{}<input type=\"hidden\" name=\"version\" value=\"{}\"><input type=\"hidden\" name=\"on\" value=\"true\">\
<div class=\"field\"><label for=\"{}-msg\">Message for users</label><textarea id=\"{}-msg\" name=\"message\" maxlength=\"1000\">{}</textarea></div>\
<div class=\"field\"><label for=\"{}-users\">Allowed user ids (comma or line separated)</label><input id=\"{}-users\" name=\"allow_users\" value=\"{}\"></div>{}\
<div class=\"field\"><label for=\"{}-end\">Ends at (UTC, e.g. 2030-01-01T12:00:00Z; empty: until switched off)</label><input id=\"{}-end\" name=\"ends_at\" value=\"{}\" placeholder=\"2030-01-01T12:00:00Z\"></div>\
<button type=\"submit\" class=\"{}\" aria-label=\"{} {}\">{}</button></form></details></article>",
        if active { "is-on" } else { "is-off" },
        env,
        env,
        state,
        when(protected, html!("<span class=\"badge warn\">protected</span>")),
        m.message.clone().unwrap_or_else(|| "—".into()),
        users,
        segs,
        m.ends_at.as_deref().map(fmt_rfc3339).unwrap_or_else(|| "when switched off".into()),
        stored.map(|x| fmt_time(x.updated_at)).unwrap_or_else(|| "never set".into()),
        off_form,
        when(!m.enabled, html!(" open")),
        if m.enabled { "Change the message, allowlist or end" } else { "Turn maintenance on" },
        Seg(env),
        csrf_field(s),
        version,
        id,
        id,
        m.message.clone().unwrap_or_default(),
        id,
        id,
        m.allow_users.join(", "),
        seg_field,
        id,
        id,
        m.ends_at.clone().unwrap_or_default(),
        class,
        aria,
        env,
        submit
    )
}

fn render<St: Store>(app: &AppState<St>, s: &Session, error: Option<&ApiError>) -> Response {
    let v = app.views();
    let now = app.clock.now_millis();
    let cards: Html = v.environments.iter().map(|e| card(&v, s, &e.environment.name, e.environment.protected, now)).collect();
    let body = html!(
        "<h1>Maintenance mode</h1>{}<p class=\"hint\">While maintenance is on, users not on the allowlist get the flag <code>gantry.maintenance</code> (with the message) and SDKs report maintenance. The public status is at <a href=\"/api/v1/status\">/api/v1/status</a>.</p>\
<section id=\"maintenance-envs\" data-live aria-label=\"Maintenance per environment\"><div class=\"envs wide\">{}</div></section>",
        error.map(error_box).unwrap_or_default(),
        cards
    );
    layout::page_with_status(s, error.map(status_of).unwrap_or(StatusCode::OK), "Maintenance", NAV.href, body)
}

async fn list_maintenance<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    render(&app, &s, None)
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("").split([',', '\n']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

/// `2030-01-01T12:00` or `2030-01-01 12:00` (as a browser's date-time field
/// or a person types it) is taken as UTC; anything else goes to the API as
/// it is, whose validation answers.
fn end_time(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&raw, fmt) {
            return Some(t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
    Some(raw)
}

/// The settings a form asks for: switching on takes the form's message,
/// allowlist and end; switching off keeps them and only clears `enabled`.
fn settings(f: &Fields, current: Option<&Maintenance>) -> Result<Maintenance, ApiError> {
    if f.get("on") != Some("true") {
        return Ok(Maintenance { enabled: false, ..current.cloned().unwrap_or_default() });
    }
    let mut allow_segments = Vec::new();
    for (i, raw) in f.all("allow_segments").enumerate() {
        let id = raw.trim().parse::<u32>().map_err(|_| {
            ApiError::validation(vec![gantry_core::validate::Invalid::new(format!("allow_segments[{i}]"), "a segment id is a number")])
        })?;
        allow_segments.push(id);
    }
    Ok(Maintenance {
        enabled: true,
        message: f.text("message"),
        allow_users: split_list(f.get("allow_users")),
        allow_segments,
        ends_at: end_time(f.text("ends_at")),
    })
}

/// The confirmation for a protected environment: the same form again, as
/// hidden fields, with `confirm=yes`.
fn confirm_page(s: &Session, env: &str, f: &Fields) -> Response {
    let on = f.get("on") == Some("true");
    let hidden: Html =
        f.0.iter()
            .filter(|(k, _)| k != "_csrf" && k != "confirm")
            .map(|(k, v)| html!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", k.as_str(), v.as_str()))
            .collect();
    let what = if on { "on" } else { "off" };
    let body = html!(
        "<section class=\"card confirm\" aria-labelledby=\"confirm-h\"><h1 id=\"confirm-h\">Turn maintenance {} in {}?</h1>\
<p><strong>{}</strong> is a protected environment: {}</p>\
<div class=\"actions\"><form method=\"post\" action=\"/ui/maintenance/{}\">{}{}<input type=\"hidden\" name=\"confirm\" value=\"yes\">\
<button type=\"submit\" class=\"{}\">Yes, turn maintenance {} in {}</button></form><a href=\"{}\">Cancel</a></div></section>",
        what,
        env,
        env,
        if on { "users not on the allowlist get the maintenance notice at once." } else { "everyone gets full service again at once." },
        Seg(env),
        csrf_field(s),
        hidden,
        if on { "turn-on" } else { "turn-off" },
        what,
        env,
        NAV.href
    );
    layout::page(s, "Confirm", NAV.href, body)
}

/// Switches maintenance on (or changes it while on) or off in one
/// environment through the admin API's handler; protected environments ask first.
async fn update_maintenance<St: Store>(State(app): State<AppState<St>>, Path(env): Path<String>, p: Posted) -> Response {
    let (protected, current) = {
        let v = app.views();
        let Some(e) = v.environments.iter().find(|e| e.environment.name == env) else {
            return layout::not_found().await;
        };
        (e.environment.protected, v.maintenance.get(&env).map(|m| m.maintenance.clone()))
    };
    let body = match settings(&p.fields, current.as_ref()) {
        Ok(b) => b,
        Err(e) => return render(&app, &p.session, Some(&e)),
    };
    if protected && p.fields.get("confirm") != Some("yes") {
        return confirm_page(&p.session, &env, &p.fields);
    }
    let r = crate::maintenance::update_maintenance(
        State(app.clone()),
        AdminPrincipal(p.session.principal()),
        Path(env.clone()),
        if_match(p.fields.get("version")),
        Json(body),
    )
    .await;
    match r {
        Ok(_) => see_other(&format!("{}#maintenance-{}", NAV.href, html_url_encode(&env))),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_end_times_are_utc() {
        assert_eq!(end_time(Some("2030-01-01T12:00".into())).as_deref(), Some("2030-01-01T12:00:00Z"));
        assert_eq!(end_time(Some("2030-01-01 12:00".into())).as_deref(), Some("2030-01-01T12:00:00Z"));
        assert_eq!(end_time(Some("2030-01-01T12:00:00+02:00".into())).as_deref(), Some("2030-01-01T12:00:00+02:00"));
        assert_eq!(end_time(Some("soon".into())).as_deref(), Some("soon"));
        assert_eq!(end_time(None), None);
    }

    #[test]
    fn switching_off_keeps_the_settings() {
        let current =
            Maintenance { enabled: true, message: Some("back soon".into()), allow_users: vec!["ops".into()], ..Default::default() };
        let off = settings(&Fields(vec![("on".into(), "false".into())]), Some(&current)).expect("off");
        assert_eq!(off, Maintenance { enabled: false, ..current });
        let on = settings(
            &Fields(vec![
                ("on".into(), "true".into()),
                ("message".into(), " Back at 14:00 ".into()),
                ("allow_users".into(), "alice, bob\ncarol".into()),
                ("allow_segments".into(), "3".into()),
            ]),
            None,
        )
        .expect("on");
        assert_eq!(on.message.as_deref(), Some("Back at 14:00"));
        assert_eq!(on.allow_users, ["alice", "bob", "carol"]);
        assert_eq!(on.allow_segments, [3]);
        assert!(settings(&Fields(vec![("on".into(), "true".into()), ("allow_segments".into(), "x".into())]), None).is_err());
    }
}
