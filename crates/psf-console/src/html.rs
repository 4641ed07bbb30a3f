//! The console's page frame and the small pieces every page is built from. Everything a
//! page shows from the store or the manifest goes through [`esc`].

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::{Role, Session};

pub(crate) use psf_assess::report::xml_escape as esc;

/// The console's sections: path, label, and who sees the link.
const NAV: [(&str, &str, Option<Role>); 10] = [
    ("/console", "Overview", None),
    ("/console/reviews", "Reviews", None),
    ("/console/incidents", "Incidents", None),
    ("/console/audit", "Audit log", None),
    ("/console/data", "Data", None),
    ("/console/keys", "Keys", Some(Role::Operator)),
    ("/console/scorecard", "Scorecard", None),
    ("/console/workflow", "Workflow", None),
    ("/console/studio", "Studio", None),
    ("/console/exam", "Knowledge check", None),
];

/// A whole HTML document around `body`.
pub(crate) fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} · psf console</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\" href=\"/console/assets/console.css\">\n\
         <script src=\"/console/assets/console.js\" defer></script>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">Skip to the content</a>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

/// A console page: the navigation with `active` marked, who is signed in, and `body`.
pub(crate) fn page(session: &Session, active: &str, title: &str, body: &str) -> Response {
    let mut nav = String::from("<nav aria-label=\"Console\"><ul>");
    for (href, label, role) in NAV {
        if role.is_some_and(|r| r != session.role) {
            continue;
        }
        let current = if href == active { " aria-current=\"page\"" } else { "" };
        nav.push_str(&format!("<li><a href=\"{href}\"{current}>{label}</a></li>"));
    }
    nav.push_str("</ul></nav>");
    let header = format!(
        "<header class=\"top\"><span class=\"brand\">psf console</span>{nav}\
         <form method=\"post\" action=\"/console/logout\" class=\"who\">{}\
         <span>{} · <strong>{}</strong></span> <button type=\"submit\" class=\"link\">Sign out</button></form></header>\n",
        csrf_field(session),
        esc(&session.user.name),
        session.role.as_str()
    );
    let body = format!("{header}<main id=\"main\">\n<h1>{}</h1>\n{body}</main>\n", esc(title));
    Html(document(title, &body)).into_response()
}

/// The hidden field every form of a session carries.
pub(crate) fn csrf_field(session: &Session) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&session.csrf))
}

/// A page that says what went wrong and what to do.
pub(crate) fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<main id=\"main\">\n<h1>{}</h1>\n<p role=\"alert\">{}</p>\n<p><a href=\"/console\">Back to the console</a></p>\n</main>\n",
        esc(title),
        esc(message)
    );
    (status, Html(document(title, &body))).into_response()
}

pub(crate) fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "Not found", message)
}

pub(crate) fn store_error(e: &psf_store::StoreError) -> Response {
    tracing::error!(error = %e, "the console could not read or write the store");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Store unavailable",
        &format!("The store could not be used: {e}. Try again."),
    )
}

/// A refused operation: the message the operation gave, on the page it came from.
pub(crate) fn refused(e: &psf_gateway::oversight::OversightError) -> Response {
    use psf_gateway::oversight::OversightError as E;
    let status = match e {
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Conflict(_) => StatusCode::CONFLICT,
        E::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, "Not done", &e.to_string())
}

/// A time for people: `2026-11-30 05:13 UTC`.
pub(crate) fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| "?".into(), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A short status line shown after an action (`?done=…`).
pub(crate) fn flash(done: Option<&str>) -> String {
    done.map(|d| format!("<p class=\"flash\" role=\"status\">{}</p>\n", esc(d))).unwrap_or_default()
}

/// A `<select>` with its label.
pub(crate) fn select(name: &str, label: &str, options: &[(String, String)], selected: &str) -> String {
    let mut out = format!("<label for=\"{name}\">{}</label><select id=\"{name}\" name=\"{name}\">", esc(label));
    for (value, text) in options {
        let sel = if value == selected { " selected" } else { "" };
        out.push_str(&format!("<option value=\"{}\"{sel}>{}</option>", esc(value), esc(text)));
    }
    out.push_str("</select>");
    out
}

/// A manifest value's name as the YAML writes it (`supervised`, `customers`).
pub(crate) fn name<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
