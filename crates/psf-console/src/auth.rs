//! Who may use the console, and how they prove it.
//!
//! - Passwords are kept as argon2id PHC strings; hashing and checking run off the async
//!   runtime. An unknown email is checked against a dummy hash, so it takes as long as a
//!   wrong password and does not tell which emails exist.
//! - A session is a random 256-bit cookie (`psf_session`: HttpOnly, SameSite=Strict,
//!   Path=/console, Secure behind TLS) kept in the store as its SHA-256, for 12 hours.
//! - Every form carries the session's CSRF token, compared in constant time, and a
//!   request whose `Origin` or `Sec-Fetch-Site` says it came from another site is
//!   refused. The sign-in form, before any session, uses a double-submitted token.
//! - Sign-in is rate limited: five failures for one email, or twenty from one address,
//!   within fifteen minutes lock further tries until the oldest failure ages out.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use psf_store::{ConsoleUser, Event};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::Console;
use crate::html::{self, esc};

/// The session cookie.
const SESSION_COOKIE: &str = "psf_session";
/// The sign-in form's double-submitted token.
const LOGIN_COOKIE: &str = "psf_login";
/// How long a session lasts.
const SESSION_MS: i64 = 12 * 3600 * 1000;
/// Failed sign-ins that lock an email, and an address, within [`FAILURE_WINDOW_MS`].
const MAX_FAILURES_PER_EMAIL: usize = 5;
const MAX_FAILURES_PER_ADDRESS: usize = 20;
const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Bounds on what a sign-in form may hold.
const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_BYTES: usize = 1024;

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Incidents and the kill switch, API keys, erasures.
    Operator,
    /// The review queue.
    Reviewer,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    /// The role named `s` (`operator`, `reviewer`, `auditor`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "reviewer" => Some(Role::Reviewer),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
        }
    }
}

/// Hashes a new password (argon2id, a random salt). Refuses one shorter than 12
/// characters; the message says so.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("a console password needs at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("a console password may be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` is the one `phc` was made from.
fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of a password nobody has: checked when the email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no console user has this password").unwrap_or_default())
}

/// Failed sign-ins by email and by address, newest last.
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl LoginLimiter {
    fn limit(key: &str) -> usize {
        if key.starts_with("ip:") { MAX_FAILURES_PER_ADDRESS } else { MAX_FAILURES_PER_EMAIL }
    }

    /// Seconds until another try is allowed, when one of `keys` is locked.
    fn locked(&self, keys: &[String], now: i64) -> Option<i64> {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter()
            .filter_map(|k| {
                let list = map.get_mut(k)?;
                while list.front().is_some_and(|t| now - t >= FAILURE_WINDOW_MS) {
                    list.pop_front();
                }
                (list.len() >= Self::limit(k))
                    .then(|| list.front().map_or(1, |t| (t + FAILURE_WINDOW_MS - now) / 1000 + 1))
            })
            .max()
    }

    fn failed(&self, keys: &[String], now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget keys idle for a window, so a spray of emails cannot grow the map forever.
        if map.len() > 10_000 {
            map.retain(|_, l| l.back().is_some_and(|t| now - t < FAILURE_WINDOW_MS));
        }
        for k in keys {
            let list = map.entry(k.clone()).or_default();
            list.push_back(now);
            while list.len() > Self::limit(k) {
                list.pop_front();
            }
        }
    }

    fn succeeded(&self, email_key: &str) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).remove(email_key);
    }
}

/// A signed-in person, for a request.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub user: ConsoleUser,
    pub role: Role,
    pub csrf: String,
    token: String,
}

impl Session {
    /// Refuses, with a page that says why, unless the person has `role`.
    pub fn require(&self, role: Role) -> Result<(), Response> {
        if self.role == role {
            return Ok(());
        }
        Err(html::error(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!(
                "This needs the {} role; you are signed in as {} ({}). Ask an operator if you need it.",
                role.as_str(),
                self.user.email,
                self.role.as_str()
            ),
        ))
    }

    /// An operator's form that changes what users get must carry its ticked confirmation
    /// (`confirm=yes`); without it nothing is done and the page says so.
    pub fn confirmed_operator(&self, confirm: Option<&str>, what: &str) -> Result<(), Response> {
        self.require(Role::Operator)?;
        if confirm != Some("yes") {
            return Err(html::error(
                StatusCode::BAD_REQUEST,
                "Not confirmed",
                &format!("Tick the confirmation to {what}; nothing was changed."),
            ));
        }
        Ok(())
    }

    /// Who did it, as events and reviews record it.
    pub fn actor(&self) -> String {
        format!("{} <{}>", self.user.name, self.user.email)
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        // A cookie header longer than any psf sets is not read at all.
        .filter(|v| v.len() <= 4096)
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .ok()
}

fn secure(console: &Console, headers: &HeaderMap) -> bool {
    console.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn random_token() -> Result<String, Response> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| {
        html::error(StatusCode::SERVICE_UNAVAILABLE, "Try again", &format!("No randomness for a token: {e}"))
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Refuses a form posted from another site: the browser says where a request came from
/// in `Sec-Fetch-Site` and `Origin`; either, when present, must be this console.
fn same_origin(headers: &HeaderMap) -> Result<(), Response> {
    let refused = || {
        html::error(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was sent from another site. Open the console directly and submit it there.",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let origin = origin.to_str().unwrap_or_default();
        let ok = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host);
        if !ok || host.is_empty() {
            return Err(refused());
        }
    }
    Ok(())
}

impl FromRequestParts<Arc<Console>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Response> {
        let found = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => match console.gw.store().console_session(token).await {
                Ok(s) => s.map(|s| (s, token.to_string())),
                Err(e) => return Err(html::store_error(&e)),
            },
            None => None,
        };
        let Some((s, token)) = found else {
            // A page asks to sign in and comes back; a form or a script is told plainly.
            if parts.method == Method::GET && parts.uri.path() != "/console/overview/live" {
                let next = parts.uri.path_and_query().map_or("/console", |p| p.as_str());
                let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                return Err(Redirect::to(&format!("/console/login?{query}")).into_response());
            }
            return Err(html::error(StatusCode::UNAUTHORIZED, "Signed out", "Your session has ended; sign in again."));
        };
        let Some(role) = Role::parse(&s.user.role) else {
            return Err(html::error(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!("The role `{}` is not one the console knows.", s.user.role),
            ));
        };
        Ok(Session { user: s.user, role, csrf: s.csrf, token })
    }
}

/// A form posted by a signed-in person, checked for its origin and CSRF token, parsed
/// into `T` only after those checks.
pub(crate) struct Posted<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Arc<Console>> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Arc<Console>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, console).await?;
        same_origin(&parts.headers)?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), console).await.map_err(|e| {
            html::error(StatusCode::PAYLOAD_TOO_LARGE, "Too large", &format!("The form could not be read: {e}"))
        })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|e| bad_form(&e))?;
        let token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
        if !same(token, &session.csrf) {
            return Err(html::error(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is from an earlier session or another site. Reload the page and submit it again.",
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| bad_form(&e))?;
        Ok(Posted { session, form })
    }
}

fn bad_form(e: &dyn std::fmt::Display) -> Response {
    html::error(
        StatusCode::BAD_REQUEST,
        "Form not understood",
        &format!("The form's fields are not what this page takes: {e}"),
    )
}

/// Records a console action as a `console.action` event naming the person.
pub(crate) async fn record(console: &Console, session: &Session, action: &str, target: &str, detail: Value) {
    let event = Event {
        ts_ms: psf_store::now_ms(),
        kind: "console.action".into(),
        severity: "info".into(),
        app: None,
        key_id: None,
        summary: format!("{} ({}) {action} {target}", session.actor(), session.role.as_str()),
        detail: json!({"actor": session.user.email, "name": session.user.name, "role": session.role.as_str(),
                       "action": action, "target": target, "detail": detail}),
    };
    if let Err(e) = console.gw.store().insert_event(&event).await {
        tracing::error!(error = %e, action, "could not record a console action");
    }
}

async fn record_sign_in(console: &Console, kind: &str, account: &str, summary: String, detail: Value) {
    let event = Event {
        ts_ms: psf_store::now_ms(),
        kind: kind.into(),
        severity: if kind == "console.sign_in_failed" { "warning" } else { "info" }.into(),
        app: None,
        key_id: None,
        summary,
        detail: json!({"account": account, "detail": detail}),
    };
    if let Err(e) = console.gw.store().insert_event(&event).await {
        tracing::error!(error = %e, "could not record a console sign-in");
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a console page, never another site.
fn next_page(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with("/console") && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']))
        .unwrap_or("/console")
}

fn login_page(status: StatusCode, token: &str, next: &str, email: &str, message: Option<&str>) -> Response {
    let alert = message.map(|m| format!("<p class=\"flash error\" role=\"alert\">{}</p>", esc(m))).unwrap_or_default();
    let body = format!(
        "<main id=\"main\" class=\"login\">\n<h1>psf console</h1>\n{alert}\
         <form method=\"post\" action=\"/console/login\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\n<input type=\"hidden\" name=\"next\" value=\"{}\">\n\
         <label for=\"email\">Email</label>\n<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{}\" autofocus>\n\
         <label for=\"password\">Password</label>\n<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n\
         <p class=\"note\">Accounts are made with <code>psf users create</code>.</p>\n</main>\n",
        esc(next),
        esc(email)
    );
    (status, axum::response::Html(html::document("Sign in", &body))).into_response()
}

/// `GET /console/login`.
pub(crate) async fn login_form(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut response = login_page(StatusCode::OK, &token, next_page(q.next.as_deref()), "", None);
    if let Some(c) = set_cookie(LOGIN_COOKIE, &token, 3600, secure(&console, &headers)) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /console/login`.
pub(crate) async fn login(State(console): State<Arc<Console>>, req: Request) -> Response {
    let addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (parts, body) = req.into_parts();
    let headers = parts.headers.clone();
    if let Err(r) = same_origin(&headers) {
        return r;
    }
    let Ok(bytes) = Bytes::from_request(Request::from_parts(parts, body), &console).await else {
        return html::error(StatusCode::PAYLOAD_TOO_LARGE, "Too large", "The sign-in form could not be read.");
    };
    let form: LoginForm = match serde_urlencoded::from_bytes(&bytes) {
        Ok(f) => f,
        Err(e) => return bad_form(&e),
    };
    let next = next_page(form.next.as_deref()).to_string();
    let again = |status, message: &str| {
        let token = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
        login_page(status, token, &next, &form.email, Some(message))
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, expected) {
        return login_form_again(&console, &headers, &next);
    }
    let email = form.email.trim().to_lowercase();
    if email.is_empty() || form.password.is_empty() || form.password.len() > MAX_PASSWORD_BYTES {
        return again(StatusCode::BAD_REQUEST, "Enter your email and password.");
    }
    let now = psf_store::now_ms();
    let mut keys = vec![format!("email:{email}")];
    keys.extend(addr.map(|a| format!("ip:{a}")));
    let user = match console.gw.store().console_user(&email).await {
        Ok(u) => u.filter(|u| u.disabled_ms.is_none()),
        Err(e) => return html::store_error(&e),
    };
    // What a failure records: the account when there is one; otherwise only a digest of
    // what was typed, which may be anything (a password typed into the email field).
    let who = match &user {
        Some(u) => u.email.clone(),
        None => format!("an unknown account ({})", psf_store::key_digest(&email).get(..12).unwrap_or_default()),
    };
    if let Some(wait) = console.logins.locked(&keys, now) {
        record_sign_in(
            &console,
            "console.sign_in_failed",
            &who,
            format!("sign-in for {who} refused: too many failures"),
            json!({"locked_s": wait}),
        )
        .await;
        let mut r = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins for this account or address. Try again in {} minutes.",
                (wait + 59) / 60
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let phc = user.as_ref().map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let password = form.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&phc, &password)).await.unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        console.logins.failed(&keys, now);
        record_sign_in(&console, "console.sign_in_failed", &who, format!("failed sign-in for {who}"), json!({})).await;
        return again(StatusCode::UNAUTHORIZED, "The email or password is wrong.");
    };
    console.logins.succeeded(&keys[0]);
    let (token, csrf) = match (random_token(), random_token()) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if let Err(e) = console.gw.store().create_console_session(&token, &user.id, &csrf, now + SESSION_MS).await {
        return html::store_error(&e);
    }
    record_sign_in(
        &console,
        "console.sign_in",
        &email,
        format!("{} <{email}> ({}) signed in", user.name, user.role),
        json!({}),
    )
    .await;
    let mut r = Redirect::to(&next).into_response();
    let secure = secure(&console, &headers);
    for c in [set_cookie(SESSION_COOKIE, &token, SESSION_MS / 1000, secure), set_cookie(LOGIN_COOKIE, "", 0, secure)]
        .into_iter()
        .flatten()
    {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// A sign-in whose form token is missing or stale: a fresh form, saying why.
fn login_form_again(console: &Console, headers: &HeaderMap, next: &str) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut r = login_page(
        StatusCode::FORBIDDEN,
        &token,
        next,
        "",
        Some("The sign-in form had expired or came from another site; sign in again."),
    );
    if let Some(c) = set_cookie(LOGIN_COOKIE, &token, 3600, secure(console, headers)) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

/// `POST /console/logout`.
pub(crate) async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap, posted: Posted<Empty>) -> Response {
    let s = posted.session;
    if let Err(e) = console.gw.store().end_console_session(&s.token).await {
        return html::store_error(&e);
    }
    record_sign_in(&console, "console.sign_out", &s.user.email, format!("{} signed out", s.actor()), json!({})).await;
    let mut r = Redirect::to("/console/login").into_response();
    if let Some(c) = set_cookie(SESSION_COOKIE, "", 0, secure(&console, &headers)) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse battery!"));
        assert!(!verify_password("not a phc string", "x"));
        assert!(hash_password("short").unwrap_err().contains("12 characters"));
        assert_ne!(hash_password("correct horse battery").unwrap(), phc, "salts differ");
    }

    #[test]
    fn the_limiter_locks_an_email_after_five_failures_within_the_window() {
        let l = LoginLimiter::default();
        let keys = vec!["email:a@x".to_string(), "ip:127.0.0.1".to_string()];
        for i in 0..5 {
            assert_eq!(l.locked(&keys, 1000 + i), None);
            l.failed(&keys, 1000 + i);
        }
        let wait = l.locked(&keys, 2000).unwrap();
        assert!((899..=901).contains(&wait), "{wait}");
        // Another email from the same address is not locked until twenty failures.
        assert_eq!(l.locked(&["email:b@x".into(), "ip:127.0.0.1".into()], 2000), None);
        // After the window the oldest failure ages out.
        assert_eq!(l.locked(&keys, 1000 + FAILURE_WINDOW_MS), None);
        l.succeeded("email:a@x");
        assert_eq!(l.locked(&keys[..1], 2000), None);
    }

    #[test]
    fn next_pages_stay_in_the_console() {
        assert_eq!(next_page(Some("/console/reviews?status=pending")), "/console/reviews?status=pending");
        for bad in ["https://evil.example", "//evil.example", "/v1/models", "/console\\@evil"] {
            assert_eq!(next_page(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(next_page(None), "/console");
    }

    #[test]
    fn cross_site_forms_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok(), "no Origin: a form from curl or an old browser");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(same_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&h).is_err());
    }
}
