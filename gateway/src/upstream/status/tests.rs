//! Each gRPC status a service can answer, and the HTTP answer it becomes.

use axum::http::StatusCode;

use super::*;
use crate::http::error::Problem;

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

/// Each reason a service sends, and each code a bare status has: the code
/// (and so the `type`) it becomes, with its HTTP status.
#[test]
fn every_reason_and_code_has_its_problem_code() {
    let id = Uuid::nil();
    let cases: Vec<(Status, Subject, &str, StatusCode)> = vec![
        (
            info(Code::FailedPrecondition, reason::INSUFFICIENT_STOCK, &[]),
            Subject::None,
            "INSUFFICIENT_STOCK",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(Code::FailedPrecondition, reason::PRODUCT_REFERENCED, &[]),
            Subject::Product(id),
            "PRODUCT_REFERENCED",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(Code::FailedPrecondition, reason::INVALID_TRANSITION, &[]),
            Subject::Order(id),
            "INVALID_TRANSITION",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(Code::FailedPrecondition, reason::ORDER_NOT_PENDING, &[]),
            Subject::Order(id),
            "NOT_PENDING",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(
                Code::FailedPrecondition,
                reason::INVALID_PAYMENT_TRANSITION,
                &[],
            ),
            Subject::Order(id),
            "PAYMENT_FINAL",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(Code::FailedPrecondition, reason::ORDER_EXPIRED, &[]),
            Subject::Order(id),
            "ORDER_EXPIRED",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(Code::FailedPrecondition, reason::VERSION_MISMATCH, &[]),
            Subject::Product(id),
            "VERSION_MISMATCH",
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            info(Code::FailedPrecondition, "SOMETHING_NEW", &[]),
            Subject::None,
            "BAD_REQUEST",
            StatusCode::BAD_REQUEST,
        ),
        (
            info(Code::NotFound, reason::PRODUCTS_NOT_FOUND, &[]),
            Subject::None,
            "PRODUCTS_NOT_FOUND",
            StatusCode::NOT_FOUND,
        ),
        (
            Status::not_found("gone"),
            Subject::Product(id),
            "PRODUCT_NOT_FOUND",
            StatusCode::NOT_FOUND,
        ),
        (
            Status::not_found("gone"),
            Subject::Order(id),
            "ORDER_NOT_FOUND",
            StatusCode::NOT_FOUND,
        ),
        (
            info(
                Code::NotFound,
                reason::PRODUCT_NOT_FOUND,
                &[(meta::ID, "p-1")],
            ),
            Subject::None,
            "PRODUCT_NOT_FOUND",
            StatusCode::NOT_FOUND,
        ),
        (
            info(
                Code::NotFound,
                reason::ORDER_NOT_FOUND,
                &[(meta::ID, "o-1")],
            ),
            Subject::None,
            "ORDER_NOT_FOUND",
            StatusCode::NOT_FOUND,
        ),
        (
            Status::not_found("x"),
            Subject::None,
            "NOT_FOUND",
            StatusCode::NOT_FOUND,
        ),
        (
            info(Code::AlreadyExists, reason::EVENT_ID_REUSED, &[]),
            Subject::Order(id),
            "EVENT_ID_REUSED",
            StatusCode::CONFLICT,
        ),
        (
            Status::aborted("x"),
            Subject::None,
            "CONFLICT",
            StatusCode::CONFLICT,
        ),
        (
            errors::invalid_argument(&[Violation::new("name", "must not be empty")]),
            Subject::None,
            "VALIDATION_FAILED",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            errors::invalid_argument(&[Violation::new(
                "idempotency_key",
                "was already used with a different request; use a new key for a new order",
            )]),
            Subject::None,
            "IDEMPOTENCY_KEY_REUSED",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Status::unavailable("x"),
            Subject::None,
            "BACKEND_UNAVAILABLE",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            Status::resource_exhausted("x"),
            Subject::None,
            "BACKEND_UNAVAILABLE",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            Status::deadline_exceeded("x"),
            Subject::None,
            "BACKEND_TIMEOUT",
            StatusCode::GATEWAY_TIMEOUT,
        ),
        (
            Status::internal("x"),
            Subject::None,
            "INTERNAL",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ];
    for (status, subject, code, http) in cases {
        let shown = format!("{:?} {:?}", status.code(), errors::error_info(&status));
        let error = ApiError::from_grpc(status, subject);
        let problem = error.to_problem();
        assert_eq!(problem.code, code, "{shown}");
        assert_eq!(error.status(), http, "{shown}");
        assert_eq!(problem.status, http.as_u16(), "{shown}");
        assert_eq!(
            problem.problem_type,
            format!("/problems/{}", code.to_ascii_lowercase().replace('_', "-")),
            "{shown}"
        );
    }
}

#[test]
fn an_expired_order_is_400_worded_for_a_refund() {
    let (code, p) = map(info(
        Code::FailedPrecondition,
        reason::ORDER_EXPIRED,
        &[
            (meta::STATUS, "canceled"),
            (meta::CANCEL_REASON, "payment_timeout"),
        ],
    ));
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(p.code, "ORDER_EXPIRED");
    assert_eq!(
        p.detail,
        "Order expired: it was canceled because it was not paid in time; the payment must be refunded"
    );
}

#[test]
fn a_stale_version_is_412_naming_the_current_one() {
    let (code, p) = map(info(
        Code::FailedPrecondition,
        reason::VERSION_MISMATCH,
        &[(meta::CURRENT_VERSION, "8")],
    ));
    assert_eq!(code, StatusCode::PRECONDITION_FAILED);
    assert_eq!(p.code, "VERSION_MISMATCH");
    assert_eq!(p.title, "Precondition Failed");
    assert_eq!(
        p.detail,
        "The product has changed since it was read (current version: 8); read it again and retry"
    );
}

#[test]
fn products_not_found_lists_the_ids_as_a_member_too() {
    let (_, p) = map(info(
        Code::NotFound,
        reason::PRODUCTS_NOT_FOUND,
        &[(meta::PRODUCT_IDS, "a,b,c")],
    ));
    assert_eq!(p.detail, "Products not found: [a, b, c]");
    assert_eq!(
        p.product_ids,
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    // Other problems do not carry the member.
    let (_, p) = map(Status::not_found("x"));
    assert_eq!(p.product_ids, None);
}

#[test]
fn a_reused_idempotency_key_still_names_the_header() {
    let (code, p) = map(errors::invalid_argument(&[Violation::new(
        "idempotency_key",
        "was already used with a different request; use a new key for a new order",
    )]));
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p.code, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(p.errors.unwrap()[0].field, "Idempotency-Key");
    assert_eq!(
        p.detail,
        "Validation failed: Idempotency-Key: was already used with a different request; use a \
         new key for a new order"
    );
    // With another field beside it, it is an ordinary validation failure.
    let (_, p) = map(errors::invalid_argument(&[
        Violation::new("idempotency_key", "x"),
        Violation::new("customer_id", "must be greater than 0"),
    ]));
    assert_eq!(p.code, "VALIDATION_FAILED");
}
