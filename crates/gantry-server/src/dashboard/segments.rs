//! Segments: reusable constraint groups, with the flags that use them;
//! create, edit and delete through the admin API's handlers.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_core::{Store, StoredSegment};
use gantry_engine::model::Segment;

use super::flag::{constraint_row, constraint_text, if_match, parse_constraints};
use super::html::{Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Posted, Session};
use super::{csrf_field, error_box, see_other, status_of};
use crate::error::ApiError;
use crate::extract::{AdminPrincipal, Json};
use crate::html;
use crate::state::{AppState, Views};

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/segments", label: "Segments" };

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ui/segments", get(list_segments::<St>).post(create_segment::<St>))
        .route("/ui/segments/{id}", post(update_segment::<St>))
        .route("/ui/segments/{id}/delete", post(delete_segment::<St>))
}

fn users(v: &Views, id: u32) -> Vec<&str> {
    v.flags
        .values()
        .filter(|f| f.flag.environments.values().any(|e| e.rules.iter().any(|r| r.segments.contains(&id))))
        .map(|f| f.flag.key.as_str())
        .collect()
}

fn editor(s: &Session, seg: Option<&StoredSegment>, next_id: u32) -> Html {
    let (id, action) = match seg {
        Some(x) => (x.segment.id, format!("/ui/segments/{}", x.segment.id)),
        None => (next_id, "/ui/segments".to_owned()),
    };
    let cs = seg.map(|x| x.segment.constraints.as_slice()).unwrap_or_default();
    let rows: Html = cs
        .iter()
        .enumerate()
        .map(|(j, c)| constraint_row(&format!("s{id}-c{j}"), &format!("s.c{j}"), Some(c)))
        .chain(std::iter::once(constraint_row(&format!("s{id}-c{}", cs.len()), &format!("s.c{}", cs.len()), None)))
        .collect();
    html!(
        "<form method=\"post\" action=\"{}\" class=\"stack\">{}<input type=\"hidden\" name=\"version\" value=\"{}\"><div class=\"row\">\
<div class=\"field\"><label for=\"s{}-name\">Name</label><input id=\"s{}-name\" name=\"name\" value=\"{}\" required></div>\
<div class=\"field grow\"><label for=\"s{}-desc\">Description</label><input id=\"s{}-desc\" name=\"description\" value=\"{}\"></div></div>\
<h4>Constraints (all must hold)</h4>{}<button type=\"submit\" class=\"primary\">{}</button></form>",
        action,
        csrf_field(s),
        seg.map_or(0, |x| x.version),
        id,
        id,
        seg.and_then(|x| x.segment.name.clone()).unwrap_or_default(),
        id,
        id,
        seg.and_then(|x| x.segment.description.clone()).unwrap_or_default(),
        rows,
        if seg.is_some() { "Save segment" } else { "Create segment" }
    )
}

fn render<St: Store>(app: &AppState<St>, s: &Session, error: Option<&ApiError>) -> Response {
    let v = app.views();
    let next_id = v.segments.keys().max().map_or(1, |m| m + 1);
    let items: Html = v
        .segments
        .values()
        .map(|x| {
            let used = users(&v, x.segment.id);
            let used_html: Html = if used.is_empty() {
                html!("<span class=\"muted\">no flag</span>")
            } else {
                used.iter().map(|k| html!("<a href=\"/ui/flags/{}\">{}</a> ", Seg(k), *k)).collect()
            };
            let cs: Html = x.segment.constraints.iter().map(|c| html!("<li><code>{}</code></li>", constraint_text(c))).collect();
            html!(
                "<article class=\"card\" id=\"segment-{}\"><h2>{} <span class=\"muted small\">#{}</span></h2><p>{}</p><ul>{}</ul><p>Used by: {}</p>\
<details><summary>Edit</summary>{}</details><form method=\"post\" action=\"/ui/segments/{}/delete\" class=\"actions\">{}<button type=\"submit\" class=\"danger\">Delete segment</button></form></article>",
                x.segment.id,
                x.segment.name.clone().unwrap_or_else(|| format!("segment {}", x.segment.id)),
                x.segment.id,
                x.segment.description.clone().unwrap_or_default(),
                cs,
                used_html,
                editor(s, Some(x), next_id),
                x.segment.id,
                csrf_field(s)
            )
        })
        .collect();
    let list = if v.segments.is_empty() { html!("<p class=\"empty\">No segments yet.</p>") } else { items };
    let body = html!(
        "<h1>Segments</h1>{}<section id=\"segments-list\" data-live>{}</section><section class=\"card\" aria-labelledby=\"new-seg\"><h2 id=\"new-seg\">New segment</h2>{}</section>\
<datalist id=\"context-fields\"><option value=\"userId\"><option value=\"sessionId\"><option value=\"remoteAddress\"><option value=\"appName\"><option value=\"environment\"><option value=\"currentTime\"></datalist>",
        error.map(error_box).unwrap_or_default(),
        list,
        editor(s, None, next_id)
    );
    layout::page_with_status(s, error.map(status_of).unwrap_or(StatusCode::OK), "Segments", NAV.href, body)
}

async fn list_segments<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    render(&app, &s, None)
}

fn segment_from(p: &Posted, id: u32) -> Segment {
    Segment { id, name: p.fields.text("name"), description: p.fields.text("description"), constraints: parse_constraints(&p.fields, "s") }
}

async fn create_segment<St: Store>(State(app): State<AppState<St>>, p: Posted) -> Response {
    let id = app.views().segments.keys().max().map_or(1, |m| m + 1);
    match crate::admin::create_segment(State(app.clone()), AdminPrincipal(p.session.principal()), Json(segment_from(&p, id))).await {
        Ok(_) => see_other(&format!("/ui/segments#segment-{id}")),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}

async fn update_segment<St: Store>(State(app): State<AppState<St>>, Path(id): Path<u32>, p: Posted) -> Response {
    let seg = segment_from(&p, id);
    let r = crate::admin::update_segment(
        State(app.clone()),
        AdminPrincipal(p.session.principal()),
        Path(id.to_string()),
        if_match(p.fields.get("version")),
        Json(seg),
    )
    .await;
    match r {
        Ok(_) => see_other(&format!("/ui/segments#segment-{id}")),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}

async fn delete_segment<St: Store>(State(app): State<AppState<St>>, Path(id): Path<u32>, p: Posted) -> Response {
    if p.fields.get("confirm") != Some("yes") {
        return super::confirm_page(
            &p.session,
            NAV.href,
            &format!("Delete segment {id}?"),
            "A segment that a flag still uses cannot be deleted.",
            &format!("/ui/segments/{id}/delete"),
            "Yes, delete it",
            NAV.href,
        );
    }
    match crate::admin::delete_segment(State(app.clone()), AdminPrincipal(p.session.principal()), Path(id.to_string()), HeaderMap::new())
        .await
    {
        Ok(_) => see_other("/ui/segments"),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}
