//! The web dashboard, served by `gantry serve` at `/` and `/ui/...`:
//! server-rendered HTML over the same [`AppState`] as the admin API.
//!
//! Design decisions:
//! - Every write calls the admin API's own handler functions (with the
//!   session's principal), so validation, audit entries and stream events are
//!   exactly those of the API; the dashboard holds no business rule.
//! - Pages are plain HTML with forms that work without JavaScript; the small
//!   script in `assets/app.js` only adds live refresh (it re-fetches the
//!   page's `main` as a fragment when the change broadcast fires, see
//!   [`live`]) and the rollout slider's read-out.
//! - One module per page; a page registers its navigation entry in
//!   [`layout::NAV`] and its routes in [`router`].

pub mod alerts;
pub mod audit;
pub mod environments;
pub mod experiments;
pub mod flag;
pub mod flags;
pub mod html;
pub mod layout;
pub mod live;
pub mod maintenance;
pub mod releases;
pub mod rollouts;
pub mod segments;
pub mod session;
pub mod tokens;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use gantry_core::Store;

use self::html::Html;
use self::session::Session;
use crate::error::ApiError;
use crate::state::AppState;

pub use session::Sessions;

/// Routes of the dashboard.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/flags") }))
        .route("/ui", get(|| async { Redirect::to("/ui/flags") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/flags") }))
        .route("/ui/sign-in", get(session::get_sign_in::<St>).post(session::post_sign_in::<St>))
        .route("/ui/sign-out", post(session::post_sign_out::<St>))
        .route("/ui/assets/app.css", get(layout::get_css))
        .route("/ui/assets/app.js", get(layout::get_js))
        .route("/ui/events", get(live::get_events::<St>))
        .merge(flags::router::<St>())
        .merge(flag::router::<St>())
        .merge(segments::router::<St>())
        .merge(environments::router::<St>())
        .merge(experiments::router::<St>())
        .merge(tokens::router::<St>())
        .merge(maintenance::router::<St>())
        .merge(releases::router::<St>())
        .merge(rollouts::router::<St>())
        .merge(alerts::router::<St>())
        .merge(audit::router::<St>())
        .route("/ui/{*rest}", get(layout::not_found))
}

/// Percent-encodes a query value.
pub fn html_url_encode(s: &str) -> String {
    let mut out = String::new();
    html::Render::render(&html::Seg(s), &mut out);
    out
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(s: &Session) -> Html {
    crate::html!("<input type=\"hidden\" name=\"_csrf\" value=\"{}\">", s.csrf)
}

/// An error from the admin API, shown above the form that caused it.
pub fn error_box(e: &ApiError) -> Html {
    let fields: Html = e.fields.iter().map(|f| crate::html!("<li><code>{}</code>: {}</li>", f.field, f.message)).collect();
    let list = if e.fields.len() > 1 { crate::html!("<ul>{}</ul>", fields) } else { Html::new() };
    crate::html!(
        "<div class=\"error\" role=\"alert\"><strong>Not saved:</strong> {} <span class=\"code\">({})</span>{}</div>",
        e.message,
        e.code.as_str(),
        list
    )
}

/// The HTTP status of an admin API error (for re-rendered forms).
pub fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The on/off badge.
pub fn badge(on: bool) -> Html {
    if on {
        crate::html!("<span class=\"badge on\">ON</span>")
    } else {
        crate::html!("<span class=\"badge off\">OFF</span>")
    }
}

/// `2023-11-14 22:13 UTC`.
pub fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time given as RFC 3339 text, shortened.
pub fn fmt_rfc3339(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| fmt_time(t.with_timezone(&chrono::Utc))).unwrap_or_else(|_| s.to_owned())
}

/// See-other to a dashboard path.
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A confirmation step for a destructive action: the same POST again with
/// `confirm=yes`, or back to `cancel`.
pub fn confirm_page(s: &Session, current: &str, question: &str, why: &str, action: &str, button: &str, cancel: &str) -> Response {
    let body = crate::html!(
        "<section class=\"card confirm\" aria-labelledby=\"confirm-h\"><h1 id=\"confirm-h\">{}</h1><p>{}</p><div class=\"actions\"><form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"confirm\" value=\"yes\"><button type=\"submit\" class=\"danger\">{}</button></form><a href=\"{}\">Cancel</a></div></section>",
        question,
        why,
        action,
        csrf_field(s),
        button,
        cancel
    );
    layout::page(s, "Confirm", current, body)
}
