//! The gateway's one error type and the one error format: every error
//! leaves as RFC 9457 problem details (`application/problem+json`: `type`,
//! `title`, `status`, `detail`, `code`, plus `errors[]` on 422 and
//! `product_ids` when an order names missing products). `type` and `code`
//! say which kind of problem it is, from the one table in
//! [`super::problems`]; `detail` stays worded as the original contract words
//! it. Business refusals carry the contract's key phrases (worded from the
//! services' answers in [`crate::upstream::status`]); the unexpected is
//! logged with its cause and answered generically, so no SQL text, address
//! or stack trace ever reaches a client.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use proto::errors::Violation;
use serde::Serialize;
use utoipa::{
    ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{ObjectBuilder, SchemaFormat, Type},
    },
};

use super::problems::{self, Kind};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` (seconds) on every 503 (a shed request, a backend down or
/// not ready): long enough for the requests in flight to finish or a
/// restarted service to be noticed (balanced channels refresh within a
/// second), short enough that a client does not give up. Refusing is cheap,
/// so an early retry costs little.
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
    "type": "/problems/insufficient-stock",
    "title": "Bad Request",
    "status": 400,
    "detail": "Insufficient stock for product 'Laptop'. Available: 48, Requested: 1000",
    "code": "INSUFFICIENT_STOCK"
}))]
pub struct Problem {
    /// The problem type: `/problems/<slug>`, a URI relative to the gateway
    /// (`GET` it for the type's documentation; `GET /problems` lists them
    /// all). One per `code`.
    #[serde(rename = "type")]
    #[schema(schema_with = type_schema)]
    pub problem_type: String,
    /// The HTTP status's reason phrase.
    #[schema(example = "Bad Request")]
    pub title: String,
    #[schema(example = 400)]
    pub status: u16,
    /// Human-readable; carries the contract's key phrase for each error.
    /// Match on `code`, not on this text.
    pub detail: String,
    /// What kind of problem this is, stable: what clients match on.
    #[schema(schema_with = code_schema)]
    pub code: &'static str,
    /// Present on 422 only: every field that failed, with what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Present on `PRODUCTS_NOT_FOUND` only: every product id of the order
    /// that does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11"]))]
    pub product_ids: Option<Vec<String>>,
}

impl Problem {
    /// A problem of `kind`, answered with `status` (the kind's own, except
    /// for a bare error answer rewritten by the router's safety net).
    pub fn new(kind: Kind, status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: kind.type_uri(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: kind.code(),
            errors: None,
            product_ids: None,
        }
    }
}

/// `type` in the document: a relative URI under `/problems/`, each value
/// listed with its code.
fn type_schema() -> impl Into<RefOr<Schema>> {
    let listed: Vec<String> = Kind::all()
        .iter()
        .map(|kind| format!("`{}` ({})", kind.type_uri(), kind.code()))
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri-reference".into())))
        .pattern(Some("^/problems/[a-z0-9-]+$"))
        .description(Some(format!(
            "The problem type, a URI relative to the gateway: `GET` it for its documentation              (`GET /problems` lists every type). One per `code`: {}.",
            listed.join(", ")
        )))
        .examples([serde_json::json!("/problems/insufficient-stock")])
}

/// `code` in the document: the enum of every code.
fn code_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(problems::codes()))
        .description(Some(
            "What kind of problem this is (stable; match on it, not on `detail`).              `GET /problems/<code in kebab case>` documents each.",
        ))
        .examples([serde_json::json!("INSUFFICIENT_STOCK")])
}

/// Everything a request can end in besides success. Each variant is one
/// [`Kind`] of problem (or, for [`ApiError::Refused`], carries it), whose
/// table entry gives the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request does not fit the schema.
    #[error("validation failed")]
    Validation(Vec<Violation>),
    /// 422: an order's `Idempotency-Key` already used for another body;
    /// answered as a validation failure naming `Idempotency-Key`.
    #[error("idempotency key reused")]
    IdempotencyKeyReused(Vec<Violation>),
    /// 400 without a more specific kind: a malformed header, or a service's
    /// refusal with a reason this gateway does not know.
    #[error("{0}")]
    BadRequest(String),
    /// 400: a body that cannot be used (the webhook's payload problems, a
    /// body stream that broke off).
    #[error("{0}")]
    MalformedBody(String),
    /// A service's refusal whose reason this gateway knows (insufficient
    /// stock, an invalid transition, a missing order...): the kind gives
    /// the status. `product_ids` for `PRODUCTS_NOT_FOUND`.
    #[error("{detail}")]
    Refused {
        kind: Kind,
        detail: String,
        product_ids: Option<Vec<String>>,
    },
    /// 401: webhook signature header missing.
    #[error("{0}")]
    SignatureMissing(String),
    /// 401: webhook signature wrong (or malformed, or expired).
    #[error("{0}")]
    SignatureInvalid(String),
    /// 401 on an operation that needs an API key: none, or not a known one
    /// (`invalid`). Answered with a `Bearer` challenge.
    #[error("{detail}")]
    ApiKeyRequired { detail: String, invalid: bool },
    /// 403: a known API key without the right the operation needs.
    #[error("{detail}")]
    Forbidden { detail: String, right: &'static str },
    /// 404 of no particular resource (an unknown route).
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 of no particular kind.
    #[error("{0}")]
    Conflict(String),
    /// 412: a conditional write whose expected version is stale.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503 + `Retry-After`: a backend is down or not ready.
    #[error("{0}")]
    Unavailable(String),
    /// 503 + `Retry-After`: this process is at its concurrency limit.
    #[error("too many requests in flight")]
    Overloaded,
    /// 503 + `Retry-After` from `/ready`: this process got SIGTERM and is
    /// draining (see `platform::drain`).
    #[error("draining")]
    Draining,
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

    /// A refusal of `kind` with the contract's words.
    pub fn refused(kind: Kind, detail: impl Into<String>) -> Self {
        Self::Refused {
            kind,
            detail: detail.into(),
            product_ids: None,
        }
    }

    /// Which kind of problem this is.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Validation(_) => Kind::ValidationFailed,
            Self::IdempotencyKeyReused(_) => Kind::IdempotencyKeyReused,
            Self::BadRequest(_) => Kind::BadRequest,
            Self::MalformedBody(_) => Kind::MalformedBody,
            Self::Refused { kind, .. } => *kind,
            Self::SignatureMissing(_) => Kind::SignatureMissing,
            Self::SignatureInvalid(_) => Kind::SignatureInvalid,
            Self::ApiKeyRequired { invalid: false, .. } => Kind::ApiKeyRequired,
            Self::ApiKeyRequired { invalid: true, .. } => Kind::ApiKeyInvalid,
            Self::Forbidden { .. } => Kind::Forbidden,
            Self::NotFound(_) => Kind::NotFound,
            Self::MethodNotAllowed => Kind::MethodNotAllowed,
            Self::Conflict(_) => Kind::Conflict,
            Self::PreconditionFailed(_) => Kind::VersionMismatch,
            Self::PayloadTooLarge => Kind::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => Kind::UnsupportedMediaType,
            Self::Unavailable(_) => Kind::BackendUnavailable,
            Self::Overloaded => Kind::Overloaded,
            Self::Draining => Kind::Draining,
            Self::Timeout => Kind::BackendTimeout,
            Self::Internal(_) => Kind::Internal,
        }
    }

    /// The HTTP status: the kind's, from the table.
    pub fn status(&self) -> StatusCode {
        self.kind().status()
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(violations) | Self::IdempotencyKeyReused(violations) => {
                format!("Validation failed: {}", listed(violations))
            }
            Self::PayloadTooLarge => "Request body too large".into(),
            Self::MethodNotAllowed => "Method not allowed for this path".into(),
            Self::Timeout => "A backend service did not answer in time, please retry".into(),
            Self::Overloaded => {
                "The gateway is serving as many requests as it may; retry shortly".into()
            }
            Self::Draining => "Not ready: this gateway instance is shutting down (draining)".into(),
            Self::Internal(_) => "Internal server error".into(),
            Self::BadRequest(detail)
            | Self::MalformedBody(detail)
            | Self::SignatureMissing(detail)
            | Self::SignatureInvalid(detail)
            | Self::NotFound(detail)
            | Self::Conflict(detail)
            | Self::PreconditionFailed(detail)
            | Self::UnsupportedMediaType(detail)
            | Self::Unavailable(detail)
            | Self::Refused { detail, .. }
            | Self::ApiKeyRequired { detail, .. }
            | Self::Forbidden { detail, .. } => detail.clone(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let mut problem = Problem::new(self.kind(), self.status(), self.detail());
        match self {
            Self::Validation(violations) | Self::IdempotencyKeyReused(violations) => {
                problem.errors = Some(
                    violations
                        .iter()
                        .map(|v| FieldError {
                            field: v.field.clone(),
                            message: v.message.clone(),
                        })
                        .collect(),
                );
            }
            Self::Refused { product_ids, .. } => problem.product_ids = product_ids.clone(),
            _ => {}
        }
        problem
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
                // Every `/ready` poll while draining: expected, not a failure.
                Self::Draining => tracing::debug!("not ready: draining"),
                other => tracing::warn!(error = %other, "request failed"),
            }
        }
        let mut response = problem_response(status, &self.to_problem());
        // RFC 9110: a 401 names how to authenticate; RFC 6750 words the
        // Bearer challenges.
        let challenge = match &self {
            Self::SignatureMissing(_) | Self::SignatureInvalid(_) => {
                Some(HeaderValue::from_static(
                    "HMAC-SHA256 realm=\"payment-webhook\", header=\"X-Signature\"",
                ))
            }
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

/// Every problem answer is made here, so every 503 the gateway sends
/// (a backend down or not ready, a shed request, a full body budget, a
/// library's bare 503 rewritten by the router) says when to come back:
/// see [`with_retry_after`].
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let mut response = (status, Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    with_retry_after(response)
}

/// `Retry-After` on a 503 or 429 that has none ([`RETRY_AFTER_SECS`]); one
/// already set (by whoever knows better) is kept.
pub fn with_retry_after(mut response: Response) -> Response {
    let status = response.status();
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use serde_json::Value;

    use super::*;

    #[test]
    fn only_validation_problems_carry_errors() {
        let json = serde_json::to_value(ApiError::NotFound("x".into()).to_problem()).unwrap();
        assert!(json.get("errors").is_none());
        assert!(json.get("product_ids").is_none());
        assert_eq!(json["type"], "/problems/not-found");
        assert_eq!(json["code"], "NOT_FOUND");
        assert_eq!(json["title"], "Not Found");
        assert_eq!(json["status"], 404);
    }

    /// One error of each variant: its code, status and the members it
    /// carries; `detail` and `title` as before the types existed.
    #[test]
    fn every_variant_has_its_code() {
        let violation = || vec![Violation::new("price", "must be greater than 0")];
        let cases: Vec<(ApiError, &str, u16)> = vec![
            (ApiError::Validation(violation()), "VALIDATION_FAILED", 422),
            (
                ApiError::IdempotencyKeyReused(vec![Violation::new("Idempotency-Key", "reused")]),
                "IDEMPOTENCY_KEY_REUSED",
                422,
            ),
            (ApiError::BadRequest("x".into()), "BAD_REQUEST", 400),
            (ApiError::MalformedBody("x".into()), "MALFORMED_BODY", 400),
            (
                ApiError::refused(Kind::InsufficientStock, "x"),
                "INSUFFICIENT_STOCK",
                400,
            ),
            (
                ApiError::refused(Kind::OrderNotFound, "x"),
                "ORDER_NOT_FOUND",
                404,
            ),
            (
                ApiError::SignatureMissing("x".into()),
                "SIGNATURE_MISSING",
                401,
            ),
            (
                ApiError::SignatureInvalid("x".into()),
                "SIGNATURE_INVALID",
                401,
            ),
            (
                ApiError::ApiKeyRequired {
                    detail: "x".into(),
                    invalid: false,
                },
                "API_KEY_REQUIRED",
                401,
            ),
            (
                ApiError::ApiKeyRequired {
                    detail: "x".into(),
                    invalid: true,
                },
                "API_KEY_INVALID",
                401,
            ),
            (
                ApiError::Forbidden {
                    detail: "x".into(),
                    right: "products",
                },
                "FORBIDDEN",
                403,
            ),
            (ApiError::NotFound("x".into()), "NOT_FOUND", 404),
            (ApiError::MethodNotAllowed, "METHOD_NOT_ALLOWED", 405),
            (ApiError::Conflict("x".into()), "CONFLICT", 409),
            (
                ApiError::PreconditionFailed("x".into()),
                "VERSION_MISMATCH",
                412,
            ),
            (ApiError::PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
            (
                ApiError::UnsupportedMediaType("x".into()),
                "UNSUPPORTED_MEDIA_TYPE",
                415,
            ),
            (ApiError::Internal("secret cause".into()), "INTERNAL", 500),
            (
                ApiError::Unavailable("x".into()),
                "BACKEND_UNAVAILABLE",
                503,
            ),
            (ApiError::Overloaded, "OVERLOADED", 503),
            (ApiError::Draining, "DRAINING", 503),
            (ApiError::Timeout, "BACKEND_TIMEOUT", 504),
        ];
        for (error, code, status) in cases {
            let problem = error.to_problem();
            assert_eq!(problem.code, code, "{error:?}");
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(problem.status, status, "{error:?}");
            let slug = code.to_ascii_lowercase().replace('_', "-");
            assert_eq!(problem.problem_type, format!("/problems/{slug}"));
            assert_eq!(
                problem.title,
                error.status().canonical_reason().unwrap(),
                "the title stays the status's reason phrase"
            );
            assert_eq!(
                problem.errors.is_some(),
                status == 422,
                "errors[] on 422 only"
            );
            assert!(!problem.detail.contains("secret cause"));
        }
    }

    #[test]
    fn products_not_found_carries_the_ids() {
        let error = ApiError::Refused {
            kind: Kind::ProductsNotFound,
            detail: "Products not found: [a, b]".into(),
            product_ids: Some(vec!["a".into(), "b".into()]),
        };
        let json = serde_json::to_value(error.to_problem()).unwrap();
        assert_eq!(json["product_ids"], serde_json::json!(["a", "b"]));
        assert_eq!(json["code"], "PRODUCTS_NOT_FOUND");
        assert_eq!(json["detail"], "Products not found: [a, b]");
    }

    #[tokio::test]
    async fn every_503_says_when_to_retry() {
        for error in [
            ApiError::Unavailable("A backend service is unavailable, please retry later".into()),
            ApiError::Overloaded,
            ApiError::Draining,
        ] {
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let json: Value = serde_json::from_slice(&body).unwrap();
            assert!(json["code"].is_string());
        }
        let response = ApiError::NotFound("x".into()).into_response();
        assert!(!response.headers().contains_key(header::RETRY_AFTER));
        // One already set is kept.
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(
            with_retry_after(response).headers()[header::RETRY_AFTER],
            "30"
        );
    }
}
