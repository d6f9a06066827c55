//! Orders on the wire.

use chrono::{DateTime, Utc};
use proto::order::v1 as pb;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    common::{MoneyOutput, money_text, page},
    products::timestamp,
};
use crate::{
    http::error::ApiError,
    input::{
        FromBody,
        json::{self, Fields, Violations},
        query::{FromQuery, QueryPairs, read_paging},
    },
};

/// An order's status: `pending -> completed | canceled`; both are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Completed,
    Canceled,
}

impl OrderStatus {
    pub const WORDS: &'static [&'static str] = &["pending", "completed", "canceled"];

    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "pending" => Some(Self::Pending),
            "completed" => Some(Self::Completed),
            "canceled" => Some(Self::Canceled),
            _ => None,
        }
    }

    pub fn to_wire(self) -> pb::OrderStatus {
        match self {
            Self::Pending => pb::OrderStatus::Pending,
            Self::Completed => pb::OrderStatus::Completed,
            Self::Canceled => pb::OrderStatus::Canceled,
        }
    }

    /// An unknown or unspecified wire value is an error, never a default.
    pub fn from_wire(value: i32) -> Option<Self> {
        match pb::OrderStatus::try_from(value).ok()? {
            pb::OrderStatus::Pending => Some(Self::Pending),
            pb::OrderStatus::Completed => Some(Self::Completed),
            pb::OrderStatus::Canceled => Some(Self::Canceled),
            pb::OrderStatus::Unspecified => None,
        }
    }
}

/// An order's payment status: `unpaid -> paid | failed`, `failed -> paid`;
/// `paid` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Failed,
}

impl PaymentStatus {
    pub const WORDS: &'static [&'static str] = &["unpaid", "paid", "failed"];

    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "unpaid" => Some(Self::Unpaid),
            "paid" => Some(Self::Paid),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn to_wire(self) -> pb::PaymentStatus {
        match self {
            Self::Unpaid => pb::PaymentStatus::Unpaid,
            Self::Paid => pb::PaymentStatus::Paid,
            Self::Failed => pb::PaymentStatus::Failed,
        }
    }

    pub fn from_wire(value: i32) -> Option<Self> {
        match pb::PaymentStatus::try_from(value).ok()? {
            pb::PaymentStatus::Unpaid => Some(Self::Unpaid),
            pb::PaymentStatus::Paid => Some(Self::Paid),
            pb::PaymentStatus::Failed => Some(Self::Failed),
            pb::PaymentStatus::Unspecified => None,
        }
    }
}

/// Why an order was canceled: `requested` (a client's `PUT .../status` to
/// `canceled`) or `payment_timeout` (it stayed pending and unpaid past the
/// payment timeout the operator set; a payment for it is refused, to be
/// refunded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    Requested,
    PaymentTimeout,
}

impl CancelReason {
    pub fn from_wire(value: i32) -> Option<Self> {
        match pb::CancelReason::try_from(value).ok()? {
            pb::CancelReason::Requested => Some(Self::Requested),
            pb::CancelReason::PaymentTimeout => Some(Self::PaymentTimeout),
            pb::CancelReason::Unspecified => None,
        }
    }
}

/// One line of `POST /api/orders`.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
pub struct OrderLine {
    pub product_id: Uuid,
    /// Units to buy, 1 to 2147483647.
    #[schema(minimum = 1, maximum = 2147483647, example = 2)]
    pub quantity: i32,
}

/// `POST /api/orders`. Unknown fields are ignored; a key given twice is
/// refused (422). Lines naming the same product are added together.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"customer_id": 12345, "products": [{"product_id": "7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11", "quantity": 2}]}))]
pub struct OrderCreate {
    /// > 0.
    #[schema(minimum = 1, example = 12345)]
    pub customer_id: i64,
    /// At least one line, at most 100 by default (`MAX_ORDER_LINES` of the
    /// order service; more is refused with 422 on `products`, naming the
    /// limit). Lines are counted as sent, before lines of one product are
    /// added together.
    #[schema(min_items = 1)]
    pub products: Vec<OrderLine>,
}

impl FromBody for OrderCreate {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self> {
        let customer_id = fields.required(errors, "customer_id", &json::integer(1, i64::MAX));
        let products = fields.required_objects(errors, "products", |line, errors| {
            let product_id = line.required(errors, "product_id", &json::uuid);
            let quantity =
                line.required(errors, "quantity", &json::integer(1, i64::from(i32::MAX)));
            Some(OrderLine {
                product_id: product_id?,
                quantity: i32::try_from(quantity?).ok()?,
            })
        });
        if products.as_ref().is_some_and(Vec::is_empty) {
            errors.push(fields.path("products"), "must contain at least one item");
            return None;
        }
        Some(Self {
            customer_id: customer_id?,
            products: products?,
        })
    }
}

/// `PUT /api/orders/{id}/status`. Setting the current status again is a
/// harmless no-op (200).
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"status": "completed"}))]
pub struct OrderStatusUpdate {
    pub status: OrderStatus,
}

impl FromBody for OrderStatusUpdate {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self> {
        let status = fields.required(errors, "status", &json::one_of(OrderStatus::WORDS))?;
        Some(Self {
            status: OrderStatus::from_word(status)?,
        })
    }
}

/// Query of `GET /api/orders`. Unknown parameters are ignored; a known one
/// given twice is refused (422).
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// 1-based page number. A page may start at most 10,000 rows in by
    /// default (`MAX_LIST_OFFSET` of the service): (page - 1) x page_size <=
    /// 10000, so page 101 at page_size 100, page 501 at 20. A deeper page is
    /// refused (422 on `page`, naming the last page allowed): narrow the
    /// filter instead.
    #[param(required = false, minimum = 1, default = 1)]
    pub page: u32,
    /// Orders per page.
    #[param(required = false, minimum = 1, maximum = 100, default = 20)]
    pub page_size: u32,
    /// Only orders with this status.
    #[param(inline)]
    pub status: Option<OrderStatus>,
    /// Only orders with this payment status.
    #[param(inline)]
    pub payment_status: Option<PaymentStatus>,
    /// Only this customer's orders.
    #[param(minimum = 1)]
    pub customer_id: Option<i64>,
}

impl FromQuery for OrderListQuery {
    fn read(query: &QueryPairs, errors: &mut Violations) -> Option<Self> {
        let paging = read_paging(query, errors);
        let status = query.one_of(errors, "status", OrderStatus::WORDS);
        let payment_status = query.one_of(errors, "payment_status", PaymentStatus::WORDS);
        let customer_id = match query.get(errors, "customer_id") {
            Some(Some(_)) => query
                .integer(errors, "customer_id", 0, 1, i64::MAX)
                .map(Some),
            Some(None) => Some(None),
            None => None,
        };
        let (page, page_size) = paging?;
        Some(Self {
            page,
            page_size,
            status: status?.and_then(OrderStatus::from_word),
            payment_status: payment_status?.and_then(PaymentStatus::from_word),
            customer_id: customer_id?,
        })
    }
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderItem {
    #[schema(example = 1)]
    pub id: i64,
    pub product_id: Uuid,
    #[schema(example = 2)]
    pub quantity: i32,
    /// The product's price when the order took its stock.
    #[schema(value_type = MoneyOutput)]
    pub price_at_purchase: String,
}

/// An order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    #[schema(example = 12345)]
    pub customer_id: i64,
    /// Exact sum of quantity x price_at_purchase.
    #[schema(value_type = MoneyOutput)]
    pub total_price: String,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    /// Present on canceled orders only (absent on orders canceled before
    /// reasons were recorded): why it was canceled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub order_items: Vec<OrderItem>,
}

impl TryFrom<pb::Order> for Order {
    type Error = ApiError;

    fn try_from(order: pb::Order) -> Result<Self, ApiError> {
        let bad =
            |what: &str| ApiError::Internal(format!("order service sent an order with {what}"));
        let money = |m: Option<&proto::common::v1::Money>| {
            m.and_then(|m| proto::money::to_decimal(m).ok())
                .map(money_text)
        };
        let order_items = order
            .items
            .iter()
            .map(|item| {
                Ok(OrderItem {
                    id: item.id,
                    product_id: Uuid::parse_str(&item.product_id)
                        .map_err(|_| bad("a malformed product id"))?,
                    quantity: item.quantity,
                    price_at_purchase: money(item.price_at_purchase.as_ref())
                        .ok_or_else(|| bad("a malformed price"))?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(Self {
            id: Uuid::parse_str(&order.id).map_err(|_| bad("a malformed id"))?,
            customer_id: order.customer_id,
            total_price: money(order.total_price.as_ref())
                .ok_or_else(|| bad("a malformed total"))?,
            status: OrderStatus::from_wire(order.status).ok_or_else(|| bad("an unknown status"))?,
            payment_status: PaymentStatus::from_wire(order.payment_status)
                .ok_or_else(|| bad("an unknown payment status"))?,
            cancel_reason: order.cancel_reason.and_then(CancelReason::from_wire),
            created_at: timestamp(order.created_at.as_ref())
                .ok_or_else(|| bad("a malformed created_at"))?,
            updated_at: timestamp(order.updated_at.as_ref())
                .ok_or_else(|| bad("a malformed updated_at"))?,
            order_items,
        })
    }
}

page! {
    /// A page of orders, newest first.
    OrderPage of Order for OrderListQuery,
    /// Orders matching the filter, over all pages: exact up to 10,100
    /// (`MAX_LIST_OFFSET` + 100, every row a page can reach); past that, the
    /// database's estimate (from its table statistics), never below 10,101.
    /// Counting a large table exactly on every request would cost more than
    /// the page itself.
}
