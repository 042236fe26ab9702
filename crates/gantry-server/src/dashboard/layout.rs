//! The page frame (head, navigation, sign-out, live-update status), the
//! navigation table, security headers and the embedded assets.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::Html;
use super::session::Session;
use crate::html;

/// One entry of the main navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NavItem {
    /// Link target.
    pub href: &'static str,
    /// Label.
    pub label: &'static str,
}

/// The main navigation, in display order. A new page module adds its
/// `NAV` item here and its `router` in [`super::router`]; nothing else.
pub const NAV: &[NavItem] = &[
    super::flags::NAV,
    super::segments::NAV,
    super::environments::NAV,
    super::experiments::NAV,
    super::rollouts::NAV,
    super::alerts::NAV,
    super::releases::NAV,
    super::maintenance::NAV,
    super::tokens::NAV,
    super::audit::NAV,
];

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    security_headers(r.headers_mut());
    r
}

fn head(title: &str) -> Html {
    html!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Gantry</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/ui/assets/app.css\"><script src=\"/ui/assets/app.js\" defer></script></head>",
        title
    )
}

/// A page without navigation (sign-in, refusals).
pub fn bare(title: &str, body: Html) -> Response {
    let mut page = html!(
        "{}<body class=\"bare\"><header class=\"top\"><span class=\"brand\">Gantry</span></header><main id=\"main\" tabindex=\"-1\">",
        head(title)
    );
    page.push(body);
    page.push(html!("</main></body></html>"));
    html_response(StatusCode::OK, page.into_string())
}

/// A dashboard page: the whole document, or only `main`'s content when the
/// live-update script asked for the fragment.
pub fn page(s: &Session, title: &str, current: &str, body: Html) -> Response {
    page_with_status(s, StatusCode::OK, title, current, body)
}

/// [`page`] with a status (validation errors re-render the form with 422).
pub fn page_with_status(s: &Session, status: StatusCode, title: &str, current: &str, body: Html) -> Response {
    if s.fragment {
        return html_response(status, body.into_string());
    }
    let nav: Html = NAV
        .iter()
        .map(|n| {
            if n.href == current {
                html!("<li><a href=\"{}\" aria-current=\"page\">{}</a></li>", n.href, n.label)
            } else {
                html!("<li><a href=\"{}\">{}</a></li>", n.href, n.label)
            }
        })
        .collect();
    let doc = html!(
        "{}<body data-live=\"/ui/events\"><a class=\"skip\" href=\"#main\">Skip to content</a>\
<header class=\"top\"><a class=\"brand\" href=\"/ui/flags\">Gantry</a><nav aria-label=\"Main\"><ul>{}</ul></nav>\
<span id=\"live-status\" class=\"live\" role=\"status\" aria-live=\"polite\">live updates off</span>\
<form method=\"post\" action=\"/ui/sign-out\" class=\"signout\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form></header>\
<main id=\"main\" tabindex=\"-1\">",
        head(title),
        nav,
        s.csrf
    );
    let mut doc = doc;
    doc.push(body);
    doc.push(html!("</main></body></html>"));
    html_response(status, doc.into_string())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The stylesheet.
pub async fn get_css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// The script.
pub async fn get_js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// An HTML 404 inside the dashboard.
pub async fn not_found() -> Response {
    let mut r =
        bare("Not found", html!("<section class=\"card\"><h1>Not found</h1><p><a href=\"/ui/flags\">Back to the flags</a></p></section>"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
