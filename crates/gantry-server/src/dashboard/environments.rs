//! Environments: what is on where, protection (which asks before a flag is
//! switched), create and delete through the admin API's handlers.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::Environment;
use gantry_core::Store;

use super::flag::if_match;
use super::html::{Html, Seg};
use super::layout::{self, NavItem};
use super::session::{Posted, Session};
use super::{csrf_field, error_box, see_other, status_of};
use crate::error::ApiError;
use crate::extract::{AdminPrincipal, Json};
use crate::html;
use crate::state::AppState;

/// Navigation entry.
pub const NAV: NavItem = NavItem { href: "/ui/environments", label: "Environments" };

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ui/environments", get(list_environments::<St>).post(create_environment::<St>))
        .route("/ui/environments/{name}", post(update_environment::<St>))
        .route("/ui/environments/{name}/delete", post(delete_environment::<St>))
}

fn render<St: Store>(app: &AppState<St>, s: &Session, error: Option<&ApiError>) -> Response {
    let v = app.views();
    let rows: Html = v
        .environments
        .iter()
        .map(|e| {
            let env = &e.environment;
            let on = v.flags.values().filter(|f| f.flag.environments.get(&env.name).is_some_and(|c| c.enabled)).count();
            let tokens = v.tokens.values().filter(|t| t.revoked_at.is_none() && t.environment.as_deref() == Some(env.name.as_str())).count();
            html!(
                "<tr id=\"environment-{}\"><th scope=\"row\">{} {}</th><td data-label=\"Description\">{}</td><td data-label=\"Flags on\" class=\"num\"><a href=\"/ui/flags?env={}&amp;state=on\">{}</a> of {}</td><td data-label=\"Active tokens\" class=\"num\">{}</td>\
<td data-label=\"Actions\"><div class=\"actions\"><form method=\"post\" action=\"/ui/environments/{}\">{}<input type=\"hidden\" name=\"version\" value=\"{}\"><input type=\"hidden\" name=\"description\" value=\"{}\"><input type=\"hidden\" name=\"protected\" value=\"{}\"><button type=\"submit\">{}</button></form>\
<form method=\"post\" action=\"/ui/environments/{}/delete\">{}<button type=\"submit\" class=\"danger\" aria-label=\"Delete {}\">Delete</button></form></div></td></tr>",
                env.name,
                env.name,
                if env.protected { html!("<span class=\"badge warn\">protected</span>") } else { Html::new() },
                env.description.clone().unwrap_or_default(),
                Seg(&env.name),
                on,
                v.flags.len(),
                tokens,
                Seg(&env.name),
                csrf_field(s),
                e.version,
                env.description.clone().unwrap_or_default(),
                if env.protected { "0" } else { "1" },
                if env.protected { "Unprotect" } else { "Protect" },
                Seg(&env.name),
                csrf_field(s),
                env.name
            )
        })
        .collect();
    let body = html!(
        "<h1>Environments</h1>{}<section id=\"environments-list\" data-live><div class=\"table-wrap\"><table class=\"stack-sm\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Description</th><th scope=\"col\" class=\"num\">Flags on</th><th scope=\"col\" class=\"num\">Active tokens</th><th scope=\"col\">Actions</th></tr></thead><tbody>{}</tbody></table></div>\
<p class=\"hint\">Switching a flag in a protected environment asks for a confirmation first.</p></section>\
<section class=\"card\" aria-labelledby=\"new-env\"><h2 id=\"new-env\">New environment</h2><form method=\"post\" action=\"/ui/environments\" class=\"grid-form\">{}\
<div class=\"field\"><label for=\"env-name\">Name</label><input id=\"env-name\" name=\"name\" required pattern=\"[a-z0-9][a-z0-9_-]*\" maxlength=\"63\"></div>\
<div class=\"field grow\"><label for=\"env-desc\">Description</label><input id=\"env-desc\" name=\"description\"></div>\
<div class=\"field\"><label class=\"inline\"><input type=\"checkbox\" name=\"protected\" value=\"1\"> protected</label></div><div class=\"field\"><button type=\"submit\" class=\"primary\">Create environment</button></div></form></section>",
        error.map(error_box).unwrap_or_default(),
        rows,
        csrf_field(s)
    );
    layout::page_with_status(s, error.map(status_of).unwrap_or(StatusCode::OK), "Environments", NAV.href, body)
}

async fn list_environments<St: Store>(State(app): State<AppState<St>>, s: Session) -> Response {
    render(&app, &s, None)
}

async fn create_environment<St: Store>(State(app): State<AppState<St>>, p: Posted) -> Response {
    let v = app.views();
    let env = Environment {
        name: p.fields.get("name").unwrap_or("").trim().to_owned(),
        description: p.fields.text("description"),
        protected: p.fields.checked("protected"),
        sort_order: v.environments.iter().map(|e| e.environment.sort_order).max().map_or(0, |m| m + 1),
    };
    match crate::admin::create_environment(State(app.clone()), AdminPrincipal(p.session.principal()), Json(env)).await {
        Ok(_) => see_other("/ui/environments"),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}

async fn update_environment<St: Store>(State(app): State<AppState<St>>, Path(name): Path<String>, p: Posted) -> Response {
    let Some(current) = app.views().environments.iter().find(|e| e.environment.name == name).map(|e| e.environment.clone()) else {
        return layout::not_found().await;
    };
    let env = Environment { description: p.fields.text("description"), protected: p.fields.checked("protected"), ..current };
    let r = crate::admin::update_environment(
        State(app.clone()),
        AdminPrincipal(p.session.principal()),
        Path(name),
        if_match(p.fields.get("version")),
        Json(env),
    )
    .await;
    match r {
        Ok(_) => see_other("/ui/environments"),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}

async fn delete_environment<St: Store>(State(app): State<AppState<St>>, Path(name): Path<String>, p: Posted) -> Response {
    if p.fields.get("confirm") != Some("yes") {
        let action = format!("/ui/environments/{}/delete", super::html_url_encode(&name));
        return super::confirm_page(
            &p.session,
            NAV.href,
            &format!("Delete the environment {name}?"),
            "SDKs of this environment stop getting flags. Flags keep their configuration until they are saved again.",
            &action,
            &format!("Yes, delete {name}"),
            NAV.href,
        );
    }
    match crate::admin::delete_environment(State(app.clone()), AdminPrincipal(p.session.principal()), Path(name), HeaderMap::new()).await {
        Ok(_) => see_other("/ui/environments"),
        Err(e) => render(&app, &p.session, Some(&e)),
    }
}
