//! The gateway's one error type and the one error format: every error
//! leaves as RFC 9457 problem details (`application/problem+json`: `type`,
//! `title`, `status`, `detail`, plus `errors[]` on 422). Business refusals
//! carry the contract's key phrases (worded from the services' answers in
//! [`crate::upstream::status`]); the unexpected is logged with its cause and
//! answered generically, so no SQL text, address or stack trace ever reaches
//! a client.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use proto::errors::Violation;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` (seconds) on a shed request: long enough for the requests
/// in flight to finish, short enough that a client does not give up.
pub const RETRY_AFTER_SECS: &str = "1";

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field as the client named it: `price`, `products[0].quantity`,
    /// `page_size`, `id` (a path parameter) or `body` (the body as a whole).
    #[schema(example = "price")]
    pub field: String,
    #[schema(example = "must be greater than 0")]
    pub message: String,
}

/// RFC 9457 problem details: the body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "Product with id 7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11 not found"
}))]
pub struct Problem {
    /// Always `about:blank`: the HTTP status says what kind of problem it is.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub problem_type: &'static str,
    /// The HTTP status's reason phrase.
    #[schema(example = "Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    /// Human-readable; carries the contract's key phrase for each error.
    pub detail: String,
    /// Present on 422 only: every field that failed, with what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// Everything a request can end in besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request does not fit the schema.
    #[error("validation failed")]
    Validation(Vec<Violation>),
    /// 400: a business rule refuses, or (webhook) the body is unreadable.
    #[error("{0}")]
    BadRequest(String),
    /// 401: webhook signature missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 401 on an operation that needs an API key: none, or not a known one
    /// (`invalid`). Answered with a `Bearer` challenge.
    #[error("{detail}")]
    ApiKeyRequired { detail: String, invalid: bool },
    /// 403: a known API key without the right the operation needs.
    #[error("{detail}")]
    Forbidden { detail: String, right: &'static str },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: a backend is down or not ready.
    #[error("{0}")]
    Unavailable(String),
    /// 503 + `Retry-After`: this process is at its concurrency limit.
    #[error("too many requests in flight")]
    Overloaded,
    /// 504: a backend did not answer within the deadline.
    #[error("a backend service did not answer in time")]
    Timeout,
    /// 500: logged with its cause, answered generically.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![Violation::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::ApiKeyRequired { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(violations) => format!("Validation failed: {}", listed(violations)),
            Self::PayloadTooLarge => "Request body too large".into(),
            Self::MethodNotAllowed => "Method not allowed for this path".into(),
            Self::Timeout => "A backend service did not answer in time, please retry".into(),
            Self::Overloaded => {
                "The gateway is serving as many requests as it may; retry shortly".into()
            }
            Self::Internal(_) => "Internal server error".into(),
            Self::BadRequest(detail)
            | Self::Unauthorized(detail)
            | Self::NotFound(detail)
            | Self::Conflict(detail)
            | Self::UnsupportedMediaType(detail)
            | Self::Unavailable(detail)
            | Self::ApiKeyRequired { detail, .. }
            | Self::Forbidden { detail, .. } => detail.clone(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        Problem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(violations) => Some(
                    violations
                        .iter()
                        .map(|v| FieldError {
                            field: v.field.clone(),
                            message: v.message.clone(),
                        })
                        .collect(),
                ),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The cause goes to the log only.
            match &self {
                Self::Internal(cause) => tracing::error!(%cause, "request failed"),
                // Shedding is counted in metrics; a line per refusal would
                // flood the log exactly when the process is busiest.
                Self::Overloaded => tracing::debug!("request shed"),
                other => tracing::warn!(error = %other, "request failed"),
            }
        }
        let mut response = problem_response(status, &self.to_problem());
        // RFC 9110: a 401 names how to authenticate; RFC 6750 words the
        // Bearer challenges.
        let challenge = match &self {
            Self::Unauthorized(_) => Some(HeaderValue::from_static(
                "HMAC-SHA256 realm=\"payment-webhook\", header=\"X-Signature\"",
            )),
            Self::ApiKeyRequired { invalid: false, .. } => {
                Some(HeaderValue::from_static("Bearer realm=\"api\""))
            }
            Self::ApiKeyRequired { invalid: true, .. } => Some(HeaderValue::from_static(
                "Bearer realm=\"api\", error=\"invalid_token\"",
            )),
            Self::Forbidden { right, .. } => HeaderValue::from_str(&format!(
                "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"{right}\""
            ))
            .ok(),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if matches!(self, Self::Overloaded) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// Violations as one line: `field: message; field: message`.
pub fn listed(violations: &[Violation]) -> String {
    let listed: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect();
    listed.join("; ")
}

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let mut response = (status, Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_validation_problems_carry_errors() {
        let json = serde_json::to_value(ApiError::NotFound("x".into()).to_problem()).unwrap();
        assert!(json.get("errors").is_none());
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Not Found");
        assert_eq!(json["status"], 404);
    }
}
