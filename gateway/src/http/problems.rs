//! The problem types: every kind of error the gateway answers, in one table
//! ([`Kind::entry`]): its stable `code` (SCREAMING_SNAKE), its `type` URI
//! (`/problems/<slug>`, relative, resolved against the gateway), its usual
//! HTTP status, a title and a paragraph saying what it means and what a
//! client should do.
//!
//! The same table builds every problem-details answer ([`super::error`]: the
//! status of an [`super::error::ApiError`] is its kind's), documents the
//! `code` and `type` members in the OpenAPI document ([`super::openapi`]),
//! and is served as documentation at `GET /problems` and
//! `GET /problems/{slug}` ([`crate::routes::problems`]). A code, once
//! published, keeps its meaning: clients match on it (the `detail` text is
//! for people and stays worded as the original contract words it).

use axum::http::StatusCode;
use serde::Serialize;
use strum::VariantArray;
use utoipa::ToSchema;

/// Where the problem types are documented; `type` is this plus the slug.
pub const PROBLEMS_PATH: &str = "/problems";

/// Every kind of problem the gateway answers with.
///
/// Most come from one [`super::error::ApiError`] variant; the services'
/// business refusals are told apart by their `ErrorInfo` reason
/// ([`crate::upstream::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, VariantArray)]
pub enum Kind {
    ValidationFailed,
    IdempotencyKeyReused,
    MalformedBody,
    BadRequest,
    InsufficientStock,
    ProductReferenced,
    InvalidTransition,
    NotPending,
    PaymentFinal,
    OrderExpired,
    SignatureMissing,
    SignatureInvalid,
    ApiKeyRequired,
    ApiKeyInvalid,
    Forbidden,
    ProductNotFound,
    OrderNotFound,
    ProductsNotFound,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    EventIdReused,
    Conflict,
    VersionMismatch,
    PayloadTooLarge,
    UnsupportedMediaType,
    Internal,
    BackendUnavailable,
    Overloaded,
    Draining,
    BackendTimeout,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Stable, SCREAMING_SNAKE: what clients match on.
    pub code: &'static str,
    /// The last segment of the type URI: the code in kebab case.
    pub slug: &'static str,
    /// A short summary of the type, for its documentation.
    pub title: &'static str,
    /// The HTTP status a problem of this kind is answered with.
    pub status: StatusCode,
    /// What it means and what a client should do (plain text; `backticks`
    /// around names).
    pub description: &'static str,
}

impl Kind {
    /// The table: one row per kind, the compiler making sure none is missed.
    pub const fn entry(self) -> Entry {
        use StatusCode as S;
        let (code, slug, title, status, description) = match self {
            Kind::ValidationFailed => (
                "VALIDATION_FAILED",
                "validation-failed",
                "The request does not fit the schema",
                S::UNPROCESSABLE_ENTITY,
                "A field of the body is missing, of the wrong type or out of range, a key is given \
                 twice, a query parameter has a value it cannot take or is given twice, a path id \
                 is not a UUID, or the body is not a JSON object. `errors` lists every field that \
                 failed (`field` as the client named it, and `message`). Nothing was done; fix the \
                 request, since sending it unchanged fails the same way.",
            ),
            Kind::IdempotencyKeyReused => (
                "IDEMPOTENCY_KEY_REUSED",
                "idempotency-key-reused",
                "The Idempotency-Key was used for another request",
                S::UNPROCESSABLE_ENTITY,
                "An order was sent with an `Idempotency-Key` already used (in the last 24 hours) \
                 for an order with a different body. Nothing was created and no stock moved; \
                 `errors` names `Idempotency-Key`. To retry the original order, send exactly its \
                 body with the key; for a new order, use a new key.",
            ),
            Kind::MalformedBody => (
                "MALFORMED_BODY",
                "malformed-body",
                "The request body cannot be used",
                S::BAD_REQUEST,
                "On the payment webhook: an empty body, invalid JSON, or a field missing or of the \
                 wrong type (the webhook answers these with 400, where the other operations answer \
                 422). On any operation: a body whose transfer broke off before it was complete. \
                 Nothing was applied; fix the body, or send it again whole.",
            ),
            Kind::BadRequest => (
                "BAD_REQUEST",
                "bad-request",
                "The request is refused",
                S::BAD_REQUEST,
                "A request refused without a more specific type: a malformed header (such as \
                 `If-Match` or `Webhook-Id`), or a service's refusal the gateway has no type for \
                 (`detail` carries the service's words). Nothing was applied; correct the request \
                 before sending it again.",
            ),
            Kind::InsufficientStock => (
                "INSUFFICIENT_STOCK",
                "insufficient-stock",
                "Not enough stock for the order",
                S::BAD_REQUEST,
                "An order asked for more units of a product than it has in stock; `detail` names \
                 the product, the units available and those requested. Orders take stock all or \
                 nothing: no order was created and no stock moved. Order fewer units, or try again \
                 once the product is restocked.",
            ),
            Kind::ProductReferenced => (
                "PRODUCT_REFERENCED",
                "product-referenced",
                "The product is referenced by orders",
                S::BAD_REQUEST,
                "A product that existing orders reference cannot be deleted, since those orders \
                 keep pointing at it. Nothing was deleted. To stop selling it, keep it and set its \
                 quantity to 0.",
            ),
            Kind::InvalidTransition => (
                "INVALID_TRANSITION",
                "invalid-transition",
                "The order status cannot change this way",
                S::BAD_REQUEST,
                "Only a pending order can be completed or canceled; completed and canceled are \
                 final. `detail` names the current and the requested status. Nothing changed; read \
                 the order to see where it stands.",
            ),
            Kind::NotPending => (
                "NOT_PENDING",
                "not-pending",
                "The order takes no payment update",
                S::BAD_REQUEST,
                "A payment result arrived for an order that is no longer pending (completed, or \
                 canceled); `detail` names its status. The payment was not applied. The payment \
                 processor should not retry this delivery, but settle the payment otherwise (for \
                 example refund it).",
            ),
            Kind::PaymentFinal => (
                "PAYMENT_FINAL",
                "payment-final",
                "The payment status cannot change this way",
                S::BAD_REQUEST,
                "A payment result that would move the payment status backwards: `paid` is final \
                 (a paid order is never told `failed`), and nothing goes back to `unpaid`. \
                 `detail` names both statuses. Nothing changed, and retrying changes nothing \
                 either: the order keeps the payment it recorded.",
            ),
            Kind::OrderExpired => (
                "ORDER_EXPIRED",
                "order-expired",
                "The order expired unpaid",
                S::BAD_REQUEST,
                "A payment result arrived for an order that was canceled because it stayed unpaid \
                 past the payment timeout (its stock was released). The payment was not applied \
                 and will not be: the payment processor must refund it, and should not retry the \
                 delivery.",
            ),
            Kind::SignatureMissing => (
                "SIGNATURE_MISSING",
                "signature-missing",
                "The webhook delivery is not signed",
                S::UNAUTHORIZED,
                "A payment webhook delivery without its signature: no `X-Signature` header, or in \
                 the Standard Webhooks form no `webhook-id` or `webhook-timestamp`; `detail` names \
                 the missing header. Nothing was applied. Sign the raw body with the shared secret \
                 and send the header.",
            ),
            Kind::SignatureInvalid => (
                "SIGNATURE_INVALID",
                "signature-invalid",
                "The webhook signature does not verify",
                S::UNAUTHORIZED,
                "A payment webhook delivery whose signature does not match the body: another \
                 secret, a body changed after signing, a malformed or repeated signature header, \
                 or a timestamp too far from the gateway's clock (WEBHOOK_TOLERANCE, 300 s by \
                 default). Nothing was applied. Check the secret, sign the exact bytes sent, and \
                 send again with a fresh timestamp.",
            ),
            Kind::ApiKeyRequired => (
                "API_KEY_REQUIRED",
                "api-key-required",
                "An API key is required",
                S::UNAUTHORIZED,
                "The operation needs an API key and the request sent none. Send \
                 `Authorization: Bearer <key>` with a key holding the right the operation lists \
                 (`products` or `orders`).",
            ),
            Kind::ApiKeyInvalid => (
                "API_KEY_INVALID",
                "api-key-invalid",
                "The API key is not valid",
                S::UNAUTHORIZED,
                "The `Authorization` header is not `Bearer <key>`, or the key is not one the \
                 gateway knows (mistyped, or revoked). Retrying with the same key fails the same \
                 way; use a valid key.",
            ),
            Kind::Forbidden => (
                "FORBIDDEN",
                "forbidden",
                "The API key lacks the right",
                S::FORBIDDEN,
                "The API key is valid but does not hold the right this operation needs (the \
                 `WWW-Authenticate` header names it as `scope`). Use a key that holds it.",
            ),
            Kind::ProductNotFound => (
                "PRODUCT_NOT_FOUND",
                "product-not-found",
                "No such product",
                S::NOT_FOUND,
                "No product has this id: it never existed, or it was deleted. Check the id; the \
                 product list gives the current ones.",
            ),
            Kind::OrderNotFound => (
                "ORDER_NOT_FOUND",
                "order-not-found",
                "No such order",
                S::NOT_FOUND,
                "No order has this id. Check the id; on the payment webhook, the processor sent a \
                 payment for an order this platform does not know, and nothing was applied.",
            ),
            Kind::ProductsNotFound => (
                "PRODUCTS_NOT_FOUND",
                "products-not-found",
                "Products of the order do not exist",
                S::NOT_FOUND,
                "An order named products that do not exist. `product_ids` lists every missing id \
                 (as `detail` does, in words). No order was created and no stock moved. Remove or \
                 replace those lines and send the order again.",
            ),
            Kind::NotFound => (
                "NOT_FOUND",
                "not-found",
                "Nothing here",
                S::NOT_FOUND,
                "Nothing is served at this path: an unknown route, or an unknown problem type \
                 under `/problems/`. Check the URL against `/openapi.json`.",
            ),
            Kind::MethodNotAllowed => (
                "METHOD_NOT_ALLOWED",
                "method-not-allowed",
                "Method not allowed",
                S::METHOD_NOT_ALLOWED,
                "The path exists, but not with this HTTP method. `/openapi.json` lists the methods \
                 each path takes.",
            ),
            Kind::RequestTimeout => (
                "REQUEST_TIMEOUT",
                "request-timeout",
                "The request took too long",
                S::REQUEST_TIMEOUT,
                "The request was not finished within the gateway's request timeout \
                 (REQUEST_TIMEOUT), typically because its body came too slowly, and was \
                 abandoned. Send it again; if it was a write, read the resource first, or repeat \
                 an order with the same `Idempotency-Key`.",
            ),
            Kind::EventIdReused => (
                "EVENT_ID_REUSED",
                "event-id-reused",
                "The webhook event id was used for another delivery",
                S::CONFLICT,
                "A payment webhook delivery carried an event id already recorded with another \
                 order or another payment status; it was not applied. The same delivery sent \
                 again is accepted (200) and applied once; a new event needs a new id.",
            ),
            Kind::Conflict => (
                "CONFLICT",
                "conflict",
                "The request conflicts with the current state",
                S::CONFLICT,
                "A service found the request in conflict with the current state of what it \
                 touches (`detail` says how). Read the resource again before deciding whether to \
                 retry.",
            ),
            Kind::VersionMismatch => (
                "VERSION_MISMATCH",
                "version-mismatch",
                "The product changed since it was read",
                S::PRECONDITION_FAILED,
                "A conditional write (`If-Match`) named a product version that is no longer the \
                 current one: the product was changed since it was read. `detail` gives the \
                 current version. Nothing was changed. Read the product again, reapply the change \
                 to what it is now, and retry with its new version.",
            ),
            Kind::PayloadTooLarge => (
                "PAYLOAD_TOO_LARGE",
                "payload-too-large",
                "The request body is too large",
                S::PAYLOAD_TOO_LARGE,
                "The body is over the size limit (BODY_LIMIT_BYTES and WEBHOOK_BODY_LIMIT_BYTES, \
                 64 KiB by default); it was not read. Send a smaller body.",
            ),
            Kind::UnsupportedMediaType => (
                "UNSUPPORTED_MEDIA_TYPE",
                "unsupported-media-type",
                "The body is not JSON",
                S::UNSUPPORTED_MEDIA_TYPE,
                "The body's `Content-Type` is neither `application/json` nor `application/*+json` \
                 (`curl -d` alone sends a form). Send the JSON body with \
                 `Content-Type: application/json`.",
            ),
            Kind::Internal => (
                "INTERNAL",
                "internal",
                "Unexpected failure",
                S::INTERNAL_SERVER_ERROR,
                "An unexpected failure in the gateway or a service. The cause is logged (find it \
                 by the response's `x-request-id`) and never returned. A write may or may not have \
                 taken effect: read before repeating it, or repeat an order with the same \
                 `Idempotency-Key`.",
            ),
            Kind::BackendUnavailable => (
                "BACKEND_UNAVAILABLE",
                "backend-unavailable",
                "A service is unavailable",
                S::SERVICE_UNAVAILABLE,
                "A service behind the gateway is down, not ready (its database is unreachable), or \
                 the connection to it was lost mid-call; only the operations that need that \
                 service answer this (`/ready` stays 200 and shows it `down`). Retry after the \
                 `Retry-After` seconds, backing off. A call lost mid-way may have been applied: \
                 repeat an order with the same `Idempotency-Key`.",
            ),
            Kind::Overloaded => (
                "OVERLOADED",
                "overloaded",
                "The gateway is at its limit",
                S::SERVICE_UNAVAILABLE,
                "The gateway is serving as many requests (MAX_CONCURRENT_REQUESTS) or reading as \
                 many request bodies (BODY_BUDGET_BYTES) as it may, and refused this one at once, \
                 before doing anything. Retry after the `Retry-After` seconds.",
            ),
            Kind::Draining => (
                "DRAINING",
                "draining",
                "This gateway instance is shutting down",
                S::SERVICE_UNAVAILABLE,
                "What `/ready` answers once this instance got SIGTERM: load balancers stop \
                 sending it requests, which it still serves normally until its drain delay \
                 (`DRAIN_DELAY`) ends. Only `/ready` answers this; send requests to the \
                 balanced address, not to one instance.",
            ),
            Kind::BackendTimeout => (
                "BACKEND_TIMEOUT",
                "backend-timeout",
                "A service did not answer in time",
                S::GATEWAY_TIMEOUT,
                "A service did not answer within the gateway's deadline (GRPC_TIMEOUT). The \
                 call may still complete: read before repeating a write, or repeat an order with \
                 the same `Idempotency-Key`.",
            ),
        };
        Entry {
            code,
            slug,
            title,
            status,
            description,
        }
    }

    /// Every kind, in the table's order.
    pub fn all() -> &'static [Kind] {
        Self::VARIANTS
    }

    pub const fn code(self) -> &'static str {
        self.entry().code
    }

    pub const fn status(self) -> StatusCode {
        self.entry().status
    }

    /// `/problems/<slug>`.
    pub fn type_uri(self) -> String {
        format!("{PROBLEMS_PATH}/{}", self.entry().slug)
    }

    /// The kind whose slug this is.
    pub fn from_slug(slug: &str) -> Option<Kind> {
        Self::all()
            .iter()
            .copied()
            .find(|kind| kind.entry().slug == slug)
    }

    /// The kind of an error answer some layer or library made without a
    /// problem body (rewritten by the router's safety net): the one its
    /// status means, else the generic kind of its class.
    pub fn for_status(status: StatusCode) -> Kind {
        match status {
            StatusCode::NOT_FOUND => Kind::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Kind::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Kind::RequestTimeout,
            StatusCode::CONFLICT => Kind::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Kind::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Kind::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Kind::ValidationFailed,
            StatusCode::SERVICE_UNAVAILABLE => Kind::BackendUnavailable,
            StatusCode::GATEWAY_TIMEOUT => Kind::BackendTimeout,
            status if status.is_server_error() => Kind::Internal,
            _ => Kind::BadRequest,
        }
    }

    /// The documentation of this kind, as served.
    pub fn doc(self) -> ProblemType {
        let entry = self.entry();
        ProblemType {
            problem_type: self.type_uri(),
            code: entry.code,
            title: entry.title,
            status: entry.status.as_u16(),
            description: entry.description,
        }
    }
}

/// A problem type's documentation (`GET /problems/{slug}` as JSON).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemType {
    /// The type URI, as problems carry it in `type`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/insufficient-stock")]
    pub problem_type: String,
    #[schema(example = "INSUFFICIENT_STOCK")]
    pub code: &'static str,
    #[schema(example = "Not enough stock for the order")]
    pub title: &'static str,
    /// The HTTP status a problem of this type is answered with.
    #[schema(example = 400)]
    pub status: u16,
    /// What it means and what a client should do.
    pub description: &'static str,
}

/// Every problem type (`GET /problems` as JSON).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemTypes {
    pub types: Vec<ProblemType>,
}

impl ProblemTypes {
    pub fn all() -> Self {
        Self {
            types: Kind::all().iter().map(|kind| kind.doc()).collect(),
        }
    }
}

/// Every code, for the OpenAPI enum of `code`.
pub fn codes() -> impl Iterator<Item = &'static str> {
    Kind::all().iter().map(|kind| kind.code())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_and_slugs_are_unique_and_spelled_alike() {
        let mut codes = HashSet::new();
        let mut slugs = HashSet::new();
        for kind in Kind::all() {
            let entry = kind.entry();
            assert!(codes.insert(entry.code), "{} twice", entry.code);
            assert!(slugs.insert(entry.slug), "{} twice", entry.slug);
            assert!(
                entry
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{} is not SCREAMING_SNAKE",
                entry.code
            );
            assert_eq!(
                entry.slug,
                entry.code.to_ascii_lowercase().replace('_', "-"),
                "the slug is the code in kebab case"
            );
            assert_eq!(Kind::from_slug(entry.slug), Some(*kind));
            assert_eq!(kind.type_uri(), format!("/problems/{}", entry.slug));
            assert!(entry.status.is_client_error() || entry.status.is_server_error());
            assert!(!entry.title.is_empty() && entry.description.len() > 40);
        }
        assert_eq!(Kind::from_slug("no-such-type"), None);
    }

    /// The codes the contract promises, each with its status.
    #[test]
    fn the_promised_codes_have_their_status() {
        let promised = [
            ("VALIDATION_FAILED", 422),
            ("IDEMPOTENCY_KEY_REUSED", 422),
            ("MALFORMED_BODY", 400),
            ("BAD_REQUEST", 400),
            ("INSUFFICIENT_STOCK", 400),
            ("PRODUCT_REFERENCED", 400),
            ("INVALID_TRANSITION", 400),
            ("NOT_PENDING", 400),
            ("PAYMENT_FINAL", 400),
            ("ORDER_EXPIRED", 400),
            ("SIGNATURE_MISSING", 401),
            ("SIGNATURE_INVALID", 401),
            ("API_KEY_REQUIRED", 401),
            ("API_KEY_INVALID", 401),
            ("FORBIDDEN", 403),
            ("PRODUCT_NOT_FOUND", 404),
            ("ORDER_NOT_FOUND", 404),
            ("PRODUCTS_NOT_FOUND", 404),
            ("NOT_FOUND", 404),
            ("METHOD_NOT_ALLOWED", 405),
            ("REQUEST_TIMEOUT", 408),
            ("EVENT_ID_REUSED", 409),
            ("CONFLICT", 409),
            ("VERSION_MISMATCH", 412),
            ("PAYLOAD_TOO_LARGE", 413),
            ("UNSUPPORTED_MEDIA_TYPE", 415),
            ("INTERNAL", 500),
            ("BACKEND_UNAVAILABLE", 503),
            ("OVERLOADED", 503),
            ("DRAINING", 503),
            ("BACKEND_TIMEOUT", 504),
        ];
        let table: Vec<(&str, u16)> = Kind::all()
            .iter()
            .map(|kind| (kind.code(), kind.status().as_u16()))
            .collect();
        assert_eq!(table, promised);
    }

    #[test]
    fn a_bare_status_gets_the_kind_it_means() {
        let cases = [
            (StatusCode::NOT_FOUND, Kind::NotFound),
            (StatusCode::METHOD_NOT_ALLOWED, Kind::MethodNotAllowed),
            (StatusCode::REQUEST_TIMEOUT, Kind::RequestTimeout),
            (StatusCode::PAYLOAD_TOO_LARGE, Kind::PayloadTooLarge),
            (StatusCode::SERVICE_UNAVAILABLE, Kind::BackendUnavailable),
            (StatusCode::IM_A_TEAPOT, Kind::BadRequest),
            (StatusCode::BAD_GATEWAY, Kind::Internal),
        ];
        for (status, kind) in cases {
            assert_eq!(Kind::for_status(status), kind, "{status}");
        }
    }
}
