//! `order.v1.OrderService`: wire types to domain values, a call to the
//! application layer ([`crate::app`]), and its answer back to wire types;
//! nothing more (WatchOrderEvents: the application's event stream, each event
//! mapped as it passes). Errors become `tonic::Status` in [`crate::error`].

use proto::{
    errors::Violation,
    order::v1::{self as pb, order_service_server::OrderService},
    paging::PageRequest,
};
use std::pin::Pin;

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    app::Orders,
    domain::{
        CancelReason, ListFilter, NewOrder, Order, OrderEventKind, OrderStatus, PaymentStatus,
        new_order::RawItem, payment,
    },
    error::OrderError,
    store::OrderEvent,
};

#[derive(Clone)]
pub struct OrderApi {
    orders: Orders,
    currency: String,
    bounds: Bounds,
}

/// Resource bounds of the API (`MAX_ORDER_LINES`, `MAX_LIST_OFFSET`).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_order_lines: usize,
    pub max_list_offset: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_order_lines: crate::domain::new_order::DEFAULT_MAX_ORDER_LINES,
            max_list_offset: proto::paging::DEFAULT_MAX_LIST_OFFSET,
        }
    }
}

impl OrderApi {
    pub fn new(orders: Orders, currency: impl Into<String>) -> Self {
        Self {
            orders,
            currency: currency.into(),
            bounds: Bounds::default(),
        }
    }

    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = bounds;
        self
    }

    fn reply(&self, order: &Order) -> Result<Response<pb::Order>, Status> {
        Ok(Response::new(order_to_wire(order, &self.currency)?))
    }
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    #[instrument(skip_all, fields(customer_id = request.get_ref().customer_id))]
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let request = request.into_inner();
        let items: Vec<RawItem> = request
            .items
            .into_iter()
            .map(|item| RawItem {
                product_id: item.product_id,
                quantity: item.quantity,
            })
            .collect();
        let order = NewOrder::parse(
            request.customer_id,
            &items,
            request.idempotency_key,
            self.bounds.max_order_lines,
        )
        .map_err(OrderError::invalid)?;
        let order = self.orders.create(order).await?;
        self.reply(&order)
    }

    #[instrument(skip_all, fields(order_id = %request.get_ref().id))]
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let mut checks = Checks::default();
        let id = checks.uuid("id", &request.get_ref().id);
        let order = self.orders.get(checks.done(id)?).await?;
        self.reply(&order)
    }

    #[instrument(skip_all)]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let mut checks = Checks::default();
        let page = checks.take(PageRequest::parse_within(
            request.page,
            request.page_size,
            self.bounds.max_list_offset,
        ));
        let status = checks.filter(ORDER_STATUSES, request.status, "status", "order status");
        let payment_status = checks.filter(
            PAYMENT_STATUSES,
            request.payment_status,
            "payment_status",
            "payment status",
        );
        checks.check(
            request.customer_id.is_none_or(|id| id > 0),
            "customer_id",
            "must be greater than 0",
        );
        let page = checks.done(page)?;
        let filter = ListFilter {
            status,
            payment_status,
            customer_id: request.customer_id,
        };
        let (orders, total) = self.orders.list(filter, page).await?;
        let orders = orders
            .iter()
            .map(|order| order_to_wire(order, &self.currency))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::ListOrdersResponse { orders, total }))
    }

    #[instrument(skip_all, fields(order_id = %request.get_ref().id, status = request.get_ref().status))]
    async fn update_order_status(
        &self,
        request: Request<pb::UpdateOrderStatusRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let request = request.into_inner();
        let mut checks = Checks::default();
        let id = checks.uuid("id", &request.id);
        let to = checks.require(
            from_wire(ORDER_STATUSES, request.status).ok().flatten(),
            "status",
            "must be PENDING, COMPLETED or CANCELED",
        );
        let (id, to) = checks.done(id.zip(to))?;
        let order = self.orders.update_status(id, to).await?;
        self.reply(&order)
    }

    #[instrument(
        skip_all,
        fields(order_id = %request.get_ref().order_id, payment_status = request.get_ref().payment_status)
    )]
    async fn apply_payment(
        &self,
        request: Request<pb::ApplyPaymentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let request = request.into_inner();
        let mut checks = Checks::default();
        let id = checks.uuid("order_id", &request.order_id);
        // A payment update reports an outcome: paid or failed, never unpaid.
        let to = from_wire(PAYMENT_STATUSES, request.payment_status)
            .ok()
            .flatten()
            .filter(|to| *to != PaymentStatus::Unpaid);
        let to = checks.require(to, "payment_status", "must be PAID or FAILED");
        if let Some(event_id) = &request.event_id {
            checks.check(
                payment::is_valid_event_id(event_id),
                "event_id",
                format!("must be 1 to {} characters", payment::MAX_EVENT_ID_CHARS),
            );
        }
        let (id, to) = checks.done(id.zip(to))?;
        let order = self
            .orders
            .apply_payment(id, to, request.event_id.as_deref())
            .await?;
        self.reply(&order)
    }

    type WatchOrderEventsStream =
        Pin<Box<dyn Stream<Item = Result<pb::OrderEvent, Status>> + Send + 'static>>;

    #[instrument(skip_all, fields(after_sequence = request.get_ref().after_sequence))]
    async fn watch_order_events(
        &self,
        request: Request<pb::WatchOrderEventsRequest>,
    ) -> Result<Response<Self::WatchOrderEventsStream>, Status> {
        let after = request.into_inner().after_sequence;
        let events = self.orders.watch_events(after).await?;
        let currency = self.currency.clone();
        let stream = ReceiverStream::new(events).map(move |event| {
            event
                .and_then(|event| event_to_wire(&event, &currency))
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Every problem of a request's wire fields, collected before answering so
/// that the caller learns them all at once.
#[derive(Default)]
struct Checks(Vec<Violation>);

impl Checks {
    fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(Violation::new(field, message));
        }
    }

    fn require<T>(&mut self, value: Option<T>, field: &str, message: &str) -> Option<T> {
        self.check(value.is_some(), field, message);
        value
    }

    fn uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        self.require(Uuid::try_parse(value).ok(), field, "must be a UUID")
    }

    fn take<T>(&mut self, checked: Result<T, Vec<Violation>>) -> Option<T> {
        checked.map_err(|mut found| self.0.append(&mut found)).ok()
    }

    /// A list filter by `table`: absent or UNSPECIFIED is no filter; a value
    /// this version does not know is an "unknown `what`" on `field`.
    fn filter<W: Copy + Into<i32>, D: Copy>(
        &mut self,
        table: &[(W, D)],
        value: Option<i32>,
        field: &str,
        what: &str,
    ) -> Option<D> {
        from_wire(table, value?).unwrap_or_else(|()| {
            self.0
                .push(Violation::new(field, format!("unknown {what}")));
            None
        })
    }

    /// The checked values when every check passed; INVALID_ARGUMENT with
    /// every violation otherwise.
    fn done<T>(self, values: Option<T>) -> Result<T, OrderError> {
        match values {
            Some(values) if self.0.is_empty() => Ok(values),
            _ => Err(OrderError::InvalidArgument(self.0)),
        }
    }
}

/// The order statuses the API shows, as the wire spells them.
const ORDER_STATUSES: &[(pb::OrderStatus, OrderStatus)] = &[
    (pb::OrderStatus::Pending, OrderStatus::Pending),
    (pb::OrderStatus::Completed, OrderStatus::Completed),
    (pb::OrderStatus::Canceled, OrderStatus::Canceled),
];

const PAYMENT_STATUSES: &[(pb::PaymentStatus, PaymentStatus)] = &[
    (pb::PaymentStatus::Unpaid, PaymentStatus::Unpaid),
    (pb::PaymentStatus::Paid, PaymentStatus::Paid),
    (pb::PaymentStatus::Failed, PaymentStatus::Failed),
];

/// A wire enum value by `table`: `Ok(None)` for UNSPECIFIED (0), `Err` for a
/// value this version does not know.
fn from_wire<W: Copy + Into<i32>, D: Copy>(table: &[(W, D)], value: i32) -> Result<Option<D>, ()> {
    if value == 0 {
        return Ok(None);
    }
    let found = table.iter().find(|(wire, _)| (*wire).into() == value);
    found.map(|(_, domain)| Some(*domain)).ok_or(())
}

/// A domain value's wire spelling by `table`. A value the table lacks (the
/// saga's internal order states) is a bug if it is ever about to be
/// answered, and must not leak.
fn to_wire<W: Copy + Into<i32>, D: Copy + PartialEq + std::fmt::Display>(
    table: &[(W, D)],
    value: D,
) -> Result<i32, OrderError> {
    let found = table.iter().find(|(_, domain)| *domain == value);
    found.map(|(wire, _)| (*wire).into()).ok_or_else(|| {
        OrderError::internal(anyhow::anyhow!(
            "internal status {value} about to be answered"
        ))
    })
}

fn order_to_wire(order: &Order, currency: &str) -> Result<pb::Order, OrderError> {
    let money = |amount| proto::money::from_decimal(amount, currency).map_err(OrderError::internal);
    Ok(pb::Order {
        id: order.id.to_string(),
        customer_id: order.customer_id,
        total_price: Some(money(order.total_price)?),
        status: to_wire(ORDER_STATUSES, order.status)?,
        payment_status: to_wire(PAYMENT_STATUSES, order.payment_status)?,
        items: order
            .items
            .iter()
            .map(|item| {
                Ok(pb::OrderItem {
                    id: item.id,
                    product_id: item.product_id.to_string(),
                    quantity: item.quantity,
                    price_at_purchase: Some(money(item.price_at_purchase)?),
                })
            })
            .collect::<Result<_, OrderError>>()?,
        created_at: Some(proto::time::to_timestamp(order.created_at)),
        updated_at: Some(proto::time::to_timestamp(order.updated_at)),
        cancel_reason: order.cancel_reason.map(cancel_reason_to_wire),
    })
}

fn cancel_reason_to_wire(reason: CancelReason) -> i32 {
    match reason {
        CancelReason::Requested => pb::CancelReason::Requested,
        CancelReason::PaymentTimeout => pb::CancelReason::PaymentTimeout,
    }
    .into()
}

fn event_to_wire(event: &OrderEvent, currency: &str) -> Result<pb::OrderEvent, OrderError> {
    let kind = match event.kind {
        OrderEventKind::Created => pb::OrderEventType::Created,
        OrderEventKind::Paid => pb::OrderEventType::Paid,
        OrderEventKind::PaymentFailed => pb::OrderEventType::PaymentFailed,
        OrderEventKind::Completed => pb::OrderEventType::Completed,
        OrderEventKind::Canceled => pb::OrderEventType::Canceled,
    };
    Ok(pb::OrderEvent {
        sequence: event.sequence,
        r#type: kind.into(),
        order_id: event.order_id.to_string(),
        status: to_wire(ORDER_STATUSES, event.status)?,
        payment_status: to_wire(PAYMENT_STATUSES, event.payment_status)?,
        cancel_reason: event.cancel_reason.map(cancel_reason_to_wire),
        customer_id: event.customer_id,
        total_price: Some(
            proto::money::from_decimal(event.total_price, currency)
                .map_err(OrderError::internal)?,
        ),
        occurred_at: Some(proto::time::to_timestamp(event.occurred_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_statuses_map_both_ways() {
        for status in OrderStatus::VISIBLE {
            let wire = to_wire(ORDER_STATUSES, status).unwrap();
            assert_eq!(from_wire(ORDER_STATUSES, wire), Ok(Some(status)));
        }
        assert_eq!(from_wire(ORDER_STATUSES, 0), Ok(None));
        assert_eq!(from_wire(ORDER_STATUSES, 99), Err(()));
        assert!(to_wire(ORDER_STATUSES, OrderStatus::Reserving).is_err());
        assert!(to_wire(ORDER_STATUSES, OrderStatus::Rejected).is_err());
        for status in PaymentStatus::ALL {
            let wire = to_wire(PAYMENT_STATUSES, status).unwrap();
            assert_eq!(from_wire(PAYMENT_STATUSES, wire), Ok(Some(status)));
        }
        assert_eq!(from_wire(PAYMENT_STATUSES, 0), Ok(None));
        assert_eq!(from_wire(PAYMENT_STATUSES, -1), Err(()));
    }
}
