//! One error type for everything the gateway refuses, mapped to HTTP in one place, in
//! OpenAI's error shape so clients' own error handling works unchanged.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A defined error state: what the client gets instead of a model answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: String,
    message: String,
    retry_after: Option<u64>,
    request_id: Option<String>,
}

impl ApiError {
    /// A new error. `kind` is the OpenAI-style `type`; `code` the stable psf code
    /// (a competency-scoped code like `IG-1.injection`, or a gateway code).
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError { status, kind, code: code.into(), message: message.into(), retry_after: None, request_id: None }
    }

    /// The request was refused by an input control (400).
    pub fn refused(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "psf_input_refused", code, message)
    }

    /// The model's output was refused by an output control (422).
    pub fn output(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "psf_output_refused", code, message)
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

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The body as an OpenAI error object (also used as a stream's final error event).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "param": null,
            "request_id": self.request_id,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
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
