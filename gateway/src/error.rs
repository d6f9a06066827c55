//! The gateway's one error type, and the one place where a gRPC status becomes
//! an HTTP answer.
//!
//! Every error leaves as RFC 9457 problem details
//! (`application/problem+json`: `type`, `title`, `status`, `detail`, plus
//! `errors[]` on 422). Business refusals keep the original service's key
//! phrases; the unexpected is logged with its cause and answered generically,
//! so no SQL text, address or stack trace ever reaches a client.

use std::collections::HashMap;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use proto::errors::{self, Violation, meta, reason};
use serde::Serialize;
use tonic::{Code, Status};
use utoipa::ToSchema;
use uuid::Uuid;

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

/// What a handler was asking for, so a bare NOT_FOUND can be worded as the
/// contract words it ("Product with id {id} not found").
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Product(Uuid),
    Order(Uuid),
    None,
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

    /// Maps a gRPC status from a backend, in the one place that does so.
    pub fn from_grpc(status: Status, subject: Subject) -> Self {
        let info = errors::error_info(&status);
        let (reason, metadata) = match &info {
            Some((reason, metadata)) => (reason.as_str(), Some(metadata)),
            None => ("", None),
        };
        let get = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .map(String::as_str)
                .unwrap_or("?")
        };
        match status.code() {
            Code::NotFound => Self::NotFound(not_found_detail(&status, reason, metadata, subject)),
            Code::InvalidArgument => {
                let mut violations = errors::violations(&status);
                for violation in &mut violations {
                    // Name each field as the client sent it: the key travels
                    // in a header, and an order's lines are `products` in
                    // the REST body (`items` on gRPC).
                    if violation.field == "idempotency_key" {
                        violation.field = "Idempotency-Key".into();
                    } else if let Some(rest) = violation.field.strip_prefix("items") {
                        violation.field = format!("products{rest}");
                    }
                }
                if violations.is_empty() {
                    violations.push(Violation::new("request", status.message()));
                }
                Self::Validation(violations)
            }
            Code::FailedPrecondition => Self::BadRequest(match reason {
                reason::INSUFFICIENT_STOCK => format!(
                    "Insufficient stock for product '{}'. Available: {}, Requested: {}",
                    get(meta::PRODUCT_NAME),
                    get(meta::AVAILABLE),
                    get(meta::REQUESTED)
                ),
                reason::PRODUCT_REFERENCED => {
                    "Cannot delete product that is referenced in existing orders".into()
                }
                reason::INVALID_TRANSITION => format!(
                    "Cannot transition order status from '{}' to '{}'",
                    get(meta::FROM),
                    get(meta::TO)
                ),
                reason::ORDER_NOT_PENDING => format!(
                    "Payment status can only be updated for pending orders (order status is '{}')",
                    get(meta::STATUS)
                ),
                reason::INVALID_PAYMENT_TRANSITION => format!(
                    "Cannot change payment status from '{}' to '{}'",
                    get(meta::FROM),
                    get(meta::TO)
                ),
                // The services word their refusals for clients; an unknown
                // reason still says what the service said.
                _ => status.message().to_owned(),
            }),
            Code::AlreadyExists | Code::Aborted => Self::Conflict(status.message().to_owned()),
            Code::Unavailable | Code::ResourceExhausted => {
                tracing::warn!(code = ?status.code(), message = status.message(), "backend unavailable");
                Self::Unavailable("A backend service is unavailable, please retry later".into())
            }
            Code::DeadlineExceeded => Self::Timeout,
            // tonic reports its own client-side timeout as CANCELLED.
            Code::Cancelled if status.message().contains("Timeout expired") => Self::Timeout,
            // A connection lost mid-call (the service died, or the network
            // cut it) is reported by tonic itself, as UNKNOWN "transport
            // error" or as CANCELLED "connection closed", with the transport
            // error as its source. A status decoded from a service's answer
            // never has a source, so a real UNKNOWN from a service still
            // means 500.
            Code::Unknown | Code::Cancelled if std::error::Error::source(&status).is_some() => {
                tracing::warn!(
                    message = status.message(),
                    "connection to a backend lost mid-call"
                );
                Self::Unavailable("A backend service is unavailable, please retry later".into())
            }
            code => Self::Internal(format!("backend answered {code:?}: {}", status.message())),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(violations) => {
                let listed: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.message))
                    .collect();
                format!("Validation failed: {}", listed.join("; "))
            }
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

fn not_found_detail(
    status: &Status,
    reason: &str,
    metadata: Option<&HashMap<String, String>>,
    subject: Subject,
) -> String {
    if reason == reason::PRODUCTS_NOT_FOUND {
        let ids = metadata
            .and_then(|m| m.get(meta::PRODUCT_IDS))
            .map(|ids| ids.split(',').collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        return format!("Products not found: [{ids}]");
    }
    match subject {
        Subject::Product(id) => format!("Product with id {id} not found"),
        Subject::Order(id) => format!("Order with id {id} not found"),
        Subject::None => match (reason, metadata.and_then(|m| m.get(meta::ID))) {
            (reason::PRODUCT_NOT_FOUND, Some(id)) => format!("Product with id {id} not found"),
            (reason::ORDER_NOT_FOUND, Some(id)) => format!("Order with id {id} not found"),
            _ if status.message().contains("not found") => status.message().to_owned(),
            _ => "Resource not found".into(),
        },
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

    fn info(code: Code, reason: &str, metadata: &[(&'static str, &str)]) -> Status {
        errors::with_info(
            code,
            "service message",
            reason,
            metadata.iter().map(|(k, v)| (*k, (*v).to_owned())),
        )
    }

    fn map(status: Status) -> (StatusCode, Problem) {
        let error = ApiError::from_grpc(status, Subject::None);
        (error.status(), error.to_problem())
    }

    #[test]
    fn maps_codes_to_http() {
        let cases = [
            (Status::not_found("x"), StatusCode::NOT_FOUND),
            (
                Status::invalid_argument("x"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (Status::failed_precondition("x"), StatusCode::BAD_REQUEST),
            (Status::unavailable("x"), StatusCode::SERVICE_UNAVAILABLE),
            (Status::deadline_exceeded("x"), StatusCode::GATEWAY_TIMEOUT),
            (
                Status::cancelled("Timeout expired"),
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (Status::already_exists("x"), StatusCode::CONFLICT),
            (Status::internal("x"), StatusCode::INTERNAL_SERVER_ERROR),
            (Status::unknown("x"), StatusCode::INTERNAL_SERVER_ERROR),
            (Status::data_loss("x"), StatusCode::INTERNAL_SERVER_ERROR),
            (
                Status::unauthenticated("x"),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (status, expected) in cases {
            let code = status.code();
            assert_eq!(map(status).0, expected, "{code:?}");
        }
    }

    #[test]
    fn a_connection_lost_mid_call_is_503_but_a_service_answering_unknown_is_500() {
        let lost = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert_eq!(lost.code(), Code::Unknown);
        assert_eq!(map(lost).0, StatusCode::SERVICE_UNAVAILABLE);
        // hyper's "connection closed" while the call waited (a proxy or the
        // network cut it) comes as CANCELLED with the transport error.
        let mut closed = Status::cancelled("operation was canceled");
        closed.set_source(std::sync::Arc::new(std::io::Error::other(
            "connection closed",
        )));
        assert_eq!(map(closed).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            map(Status::cancelled("operation was canceled")).0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            map(Status::unknown("x")).0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn internals_never_reach_the_client() {
        let (status, problem) = map(Status::internal(
            "relation \"products\" does not exist at 10.0.0.5:5432",
        ));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem.detail, "Internal server error");
        let (_, problem) = map(Status::unavailable("tcp connect error 10.0.0.5:50051"));
        assert!(!problem.detail.contains("10.0.0.5"));
    }

    #[test]
    fn insufficient_stock_is_worded_from_the_details() {
        let status = info(
            Code::FailedPrecondition,
            reason::INSUFFICIENT_STOCK,
            &[
                (meta::PRODUCT_NAME, "Laptop"),
                (meta::AVAILABLE, "2"),
                (meta::REQUESTED, "5"),
            ],
        );
        let (code, problem) = map(status);
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(
            problem.detail,
            "Insufficient stock for product 'Laptop'. Available: 2, Requested: 5"
        );
    }

    #[test]
    fn business_refusals_keep_the_key_phrases() {
        let (_, p) = map(info(
            Code::FailedPrecondition,
            reason::PRODUCT_REFERENCED,
            &[],
        ));
        assert_eq!(
            p.detail,
            "Cannot delete product that is referenced in existing orders"
        );
        let (_, p) = map(info(
            Code::FailedPrecondition,
            reason::INVALID_TRANSITION,
            &[(meta::FROM, "completed"), (meta::TO, "pending")],
        ));
        assert_eq!(
            p.detail,
            "Cannot transition order status from 'completed' to 'pending'"
        );
        let (_, p) = map(info(
            Code::FailedPrecondition,
            reason::ORDER_NOT_PENDING,
            &[(meta::STATUS, "canceled")],
        ));
        assert!(p.detail.contains("pending"));
        let (code, p) = map(info(
            Code::FailedPrecondition,
            reason::INVALID_PAYMENT_TRANSITION,
            &[(meta::FROM, "paid"), (meta::TO, "failed")],
        ));
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(p.detail.contains("'paid'") && p.detail.contains("'failed'"));
    }

    #[test]
    fn products_not_found_names_every_id() {
        let (code, p) = map(info(
            Code::NotFound,
            reason::PRODUCTS_NOT_FOUND,
            &[(meta::PRODUCT_IDS, "a,b,c")],
        ));
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(p.detail, "Products not found: [a, b, c]");
    }

    #[test]
    fn not_found_names_the_subject() {
        let id = Uuid::nil();
        let error = ApiError::from_grpc(Status::not_found("gone"), Subject::Product(id));
        assert_eq!(
            error.to_problem().detail,
            format!("Product with id {id} not found")
        );
        let error = ApiError::from_grpc(Status::not_found("gone"), Subject::Order(id));
        assert_eq!(
            error.to_problem().detail,
            format!("Order with id {id} not found")
        );
    }

    #[test]
    fn invalid_argument_lists_violations() {
        let status = errors::invalid_argument(&[
            Violation::new("name", "must not be empty"),
            Violation::new("idempotency_key", "already used with a different request"),
            Violation::new("items[3].quantity", "the total quantity is too large"),
        ]);
        let (code, p) = map(status);
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        let errors = p.errors.unwrap();
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[1].field, "Idempotency-Key");
        assert_eq!(errors[2].field, "products[3].quantity");
        assert!(p.detail.contains("name"));
    }

    #[test]
    fn only_validation_problems_carry_errors() {
        let json = serde_json::to_value(ApiError::NotFound("x".into()).to_problem()).unwrap();
        assert!(json.get("errors").is_none());
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Not Found");
        assert_eq!(json["status"], 404);
    }
}
