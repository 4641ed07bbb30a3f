//! What went wrong with an upstream call, as data the router can act on.

use std::fmt;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The provider's id.
    pub provider: String,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A short description for logs and audit records; never holds credentials.
    pub message: String,
}

/// The kinds of [`ProviderError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection could not be made.
    Connect,
    /// No answer, or no stream event, in time.
    Timeout,
    /// The upstream answered with an error status.
    Status {
        /// The HTTP status.
        code: u16,
        /// Seconds the upstream asked us to wait, from `Retry-After`.
        retry_after: Option<u64>,
    },
    /// The reply was not what the protocol promises.
    Malformed,
    /// The request could not be translated or sent (a bug or a bad configuration).
    Config,
    /// The request asks for what this provider cannot honour (`n` above 1 from
    /// Anthropic, say): refused rather than sent without it. The caller's to change.
    Unsupported,
}

impl ProviderError {
    /// A new error.
    pub fn new(provider: &str, kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError { provider: provider.to_string(), kind, message: message.into() }
    }

    /// An error status, summarised: the status and the error's `type` and `code` as the
    /// provider named them. Never its free text: a provider's message can echo the
    /// request, and this message reaches logs, audit records and the caller.
    pub(crate) fn status(provider: &str, code: u16, retry_after: Option<u64>, body: &str) -> ProviderError {
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let names: Vec<String> = ["type", "code"]
            .iter()
            .filter_map(|k| error.and_then(|e| e.get(*k)))
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            // Identifiers only: short, and no spaces.
            .filter(|s| s.len() <= 64 && !s.contains(char::is_whitespace))
            .collect();
        let message =
            if names.is_empty() { format!("HTTP {code}") } else { format!("HTTP {code} ({})", names.join(", ")) };
        ProviderError::new(provider, ErrorKind::Status { code, retry_after }, message)
    }

    pub(crate) fn from_reqwest(provider: &str, e: reqwest::Error) -> ProviderError {
        // reqwest's messages can hold the URL; ours never carry query strings or keys.
        let e = e.without_url();
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_connect() {
            ErrorKind::Connect
        } else if e.is_decode() || e.is_body() {
            ErrorKind::Malformed
        } else {
            ErrorKind::Connect
        };
        ProviderError::new(provider, kind, e.to_string())
    }

    /// Whether another provider (or another try) may succeed where this failed: connect
    /// errors, timeouts, 429, 5xx and malformed replies. Client errors (other 4xx) would
    /// fail the same way anywhere.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Malformed => true,
            ErrorKind::Status { code, .. } => code == 429 || code == 408 || code >= 500,
            ErrorKind::Config | ErrorKind::Unsupported => false,
        }
    }

    /// Whether this failure says something about the provider's health (counts against
    /// its circuit breaker). A 429 means "busy", not "broken", and a 4xx is the caller's.
    pub fn is_provider_fault(&self) -> bool {
        match self.kind {
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Malformed => true,
            ErrorKind::Status { code, .. } => code >= 500,
            ErrorKind::Config | ErrorKind::Unsupported => false,
        }
    }

    /// A short stable name for the kind: `connect`, `timeout`, `status_503`, `malformed`, `config`, `unsupported`.
    pub fn code(&self) -> String {
        match self.kind {
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Status { code, .. } => format!("status_{code}"),
            ErrorKind::Malformed => "malformed".into(),
            ErrorKind::Config => "config".into(),
            ErrorKind::Unsupported => "unsupported".into(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider `{}`: {}", self.provider, self.message)
    }
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_do_not_fall_back() {
        let e = |code| ProviderError::new("p", ErrorKind::Status { code, retry_after: None }, "");
        assert!(!e(400).is_retryable());
        assert!(!e(401).is_retryable());
        assert!(e(429).is_retryable());
        assert!(!e(429).is_provider_fault());
        assert!(e(503).is_retryable());
        assert!(e(503).is_provider_fault());
        assert_eq!(e(503).code(), "status_503");
    }

    #[test]
    fn an_error_status_is_summarised_never_passed_on() {
        let body = r#"{"error": {"message": "your prompt 'mail jane@example.com' is too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}"#;
        let e = ProviderError::status("p", 400, None, body);
        assert_eq!(e.message, "HTTP 400 (invalid_request_error, context_length_exceeded)");
        assert_eq!(ProviderError::status("p", 502, None, "<html>bad gateway</html>").message, "HTTP 502");
    }
}
