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
