//! One error type for everything the gateway refuses, in OpenAI's error shape so clients'
//! own error handling works unchanged. The status, the error `type` and the audit
//! outcome are the code's ([`psf_core::code`]): no call site chooses them.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use psf_core::code::{Code, Outcome};
use serde_json::json;

use crate::oversight::OversightError;

/// A defined error state: what the client gets instead of a model answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    /// Only `MS-4.upstream_rejected` passes the upstream's status through.
    upstream_status: Option<StatusCode>,
    message: String,
    retry_after: Option<u64>,
    request_id: Option<String>,
}

impl ApiError {
    /// A refusal under `code`, saying `message` (what, where, how to fix it).
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { code, upstream_status: None, message: message.into(), retry_after: None, request_id: None }
    }

    /// The provider refused the request (`MS-4.upstream_rejected`): its 4xx reaches the
    /// client, as the client's request is what is wrong, except 401 and 403, which are
    /// psf's credentials and not the client's to fix; anything else is a 502.
    pub fn upstream_rejected(upstream_status: Option<u16>, message: impl Into<String>) -> ApiError {
        let passed = upstream_status
            .filter(|s| (400..500).contains(s) && *s != 401 && *s != 403)
            .and_then(|s| StatusCode::from_u16(s).ok());
        ApiError { upstream_status: passed, ..ApiError::new(Code::Ms4UpstreamRejected, message) }
    }

    /// Asks the client to come back after `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// Names the request in the body and the `x-request-id` header.
    pub fn with_request_id(mut self, id: &str) -> ApiError {
        self.request_id = Some(id.to_string());
        self
    }

    /// The HTTP status: the code's, from the one table.
    pub fn status(&self) -> StatusCode {
        self.upstream_status.unwrap_or_else(|| {
            self.code
                .refusal()
                .and_then(|r| StatusCode::from_u16(r.status).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }

    /// What the audit record says of the request.
    pub fn outcome(&self) -> Outcome {
        self.code.refusal().map_or(Outcome::Error, |r| r.outcome)
    }

    /// The stable code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The body as an OpenAI error object (also used as a stream's final error event).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.code.refusal().map_or("psf_error", |r| r.error_type),
            "code": self.code.as_str(),
            "param": null,
            "request_id": self.request_id,
        }})
    }
}

impl From<&psf_store::StoreError> for ApiError {
    fn from(e: &psf_store::StoreError) -> ApiError {
        ApiError::new(Code::StoreUnavailable, e.to_string())
    }
}

impl From<OversightError> for ApiError {
    fn from(e: OversightError) -> ApiError {
        let code = match &e {
            OversightError::Invalid(_) => Code::AdminInvalid,
            OversightError::NotFound(_) => Code::NotFound,
            OversightError::Conflict(_) => Code::AdminConflict,
            OversightError::Store(_) => Code::StoreUnavailable,
        };
        ApiError::new(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        if let Some(id) = self.request_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert("x-request-id", id);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_type_come_from_the_code() {
        let e = ApiError::new(Code::Ig1Injection, "no");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.body()["error"]["type"], "psf_input_refused");
        assert_eq!(e.outcome(), Outcome::Blocked);
        assert_eq!(ApiError::new(Code::Ig4RateLimit, "").status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn an_upstream_4xx_passes_through_but_not_its_auth_errors() {
        assert_eq!(ApiError::upstream_rejected(Some(422), "").status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::upstream_rejected(Some(401), "").status(), StatusCode::BAD_GATEWAY);
        assert_eq!(ApiError::upstream_rejected(None, "").status(), StatusCode::BAD_GATEWAY);
    }
}
