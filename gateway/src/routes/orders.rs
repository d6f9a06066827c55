//! `/api/orders`: the order service over REST.

use axum::{Json, extract::State, http::StatusCode};
use proto::order::v1 as pb;

use crate::{
    http::{
        AppState,
        error::ApiError,
        extract::{IdempotencyKey, PathId, ValidJson, ValidQuery},
    },
    models::{Order, OrderCreate, OrderListQuery, OrderPage, OrderStatusUpdate},
    upstream::{Services, Subject, rpc},
};

/// Create an order: takes the stock of every line, all or nothing.
#[utoipa::path(
    post, path = "/api/orders", tag = "orders",
    request_body = OrderCreate,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$",
         description = "Makes the request safe to retry: the same key with the same body answers the original 201 \
                        and takes no more stock; the same key with another body is refused (422). 1 to 255 visible ASCII \
                        characters; kept for at least 24 hours."),
    ),
    responses(
        (status = 201, description = "The order, pending and unpaid, its stock taken", body = Order),
        (status = 400, description = "`Insufficient stock for product '{name}'. Available: {a}, Requested: {r}`; no stock moved"),
        (status = 404, description = "`Products not found: [...]`, naming every missing id; no stock moved"),
        (status = 422, description = "customer_id <= 0, no products or more than `MAX_ORDER_LINES` (100 by default; the message names the limit), a quantity <= 0, a bad UUID, or an Idempotency-Key reused with another body; no stock moved"),
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    services: Services,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    ValidJson(body): ValidJson<OrderCreate>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let request = pb::CreateOrderRequest {
        customer_id: body.customer_id,
        items: body
            .products
            .iter()
            .map(|line| pb::CreateOrderItem {
                product_id: line.product_id.to_string(),
                quantity: line.quantity,
            })
            .collect(),
        idempotency_key,
    };
    let answer = services
        .call(rpc::CREATE_ORDER, request, Subject::None)
        .await;
    // Whatever the answer (even an unknown outcome), this client reads the
    // products' stock fresh from here on (see `product_cache`).
    state
        .products
        .invalidate(body.products.iter().map(|line| line.product_id));
    let order = answer?;
    Ok((StatusCode::CREATED, Json(Order::try_from(order)?)))
}

/// List orders, newest first.
#[utoipa::path(
    get, path = "/api/orders", tag = "orders",
    params(OrderListQuery),
    responses(
        (status = 200, description = "One page of orders; a page past the end is empty and still carries the total. `total` is exact up to 10,100 matching orders, the database's estimate past that (never below 10,101)", body = OrderPage),
        (status = 422, description = "A parameter is out of range or not one of its values, or the page starts more than 10,000 rows in (`MAX_LIST_OFFSET`; the message names the last page allowed: narrow the filter)"),
    )
)]
pub async fn list_orders(
    services: Services,
    ValidQuery(query): ValidQuery<OrderListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let request = pb::ListOrdersRequest {
        page: query.page,
        page_size: query.page_size,
        status: query.status.map(|s| s.to_wire() as i32),
        payment_status: query.payment_status.map(|s| s.to_wire() as i32),
        customer_id: query.customer_id,
    };
    let response = services
        .call(rpc::LIST_ORDERS, request, Subject::None)
        .await?;
    Ok(Json(OrderPage::from_wire(
        response.orders,
        response.total,
        &query,
    )?))
}

/// Get one order.
#[utoipa::path(
    get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "`Order with id {id} not found`"),
        (status = 422, description = "The id is not a UUID"),
    )
)]
pub async fn get_order(services: Services, PathId(id): PathId) -> Result<Json<Order>, ApiError> {
    let request = pb::GetOrderRequest { id: id.to_string() };
    let order = services
        .call(rpc::GET_ORDER, request, Subject::Order(id))
        .await?;
    Ok(Json(Order::try_from(order)?))
}

/// Change an order's status: pending -> completed (stock stays taken) or
/// pending -> canceled (stock restored exactly once).
#[utoipa::path(
    put, path = "/api/orders/{id}/status", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    request_body = OrderStatusUpdate,
    responses(
        (status = 200, description = "The order after the change (the same status again is a no-op)", body = Order),
        (status = 400, description = "`Cannot transition order status from '{from}' to '{to}'`"),
        (status = 404, description = "`Order with id {id} not found`"),
        (status = 422, description = "Unknown status value, or the id is not a UUID"),
    )
)]
pub async fn update_order_status(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
    ValidJson(body): ValidJson<OrderStatusUpdate>,
) -> Result<Json<Order>, ApiError> {
    let request = pb::UpdateOrderStatusRequest {
        id: id.to_string(),
        status: body.status.to_wire() as i32,
    };
    let order = services
        .call(rpc::UPDATE_ORDER_STATUS, request, Subject::Order(id))
        .await?;
    let order = Order::try_from(order)?;
    // A cancel gives stock back: read fresh from here on.
    state
        .products
        .invalidate(order.order_items.iter().map(|item| item.product_id));
    Ok(Json(order))
}
