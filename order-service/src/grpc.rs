//! `order.v1.OrderService`: wire types to domain calls and back, nothing more.
//! Rules live in `domain`, SQL in `store`, the saga in `saga`.

use proto::{
    errors::Violation,
    order::v1::{self as pb, order_service_server::OrderService},
};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{
        ListFilter, NewOrder, Order, OrderStatus, PageRequest, PaymentStatus, new_order::RawItem,
    },
    error::OrderError,
    outbox::Relay,
    saga::Saga,
    store::Store,
};

/// Longest payment event id accepted.
const MAX_EVENT_ID_CHARS: usize = 255;

#[derive(Clone)]
pub struct OrderApi {
    store: Store,
    saga: Saga,
    relay: Relay,
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
    pub fn new(store: Store, saga: Saga, relay: Relay, currency: impl Into<String>) -> Self {
        Self {
            store,
            saga,
            relay,
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
        .map_err(OrderError::InvalidArgument)?;
        // Runs to its end even if the caller goes away: every call does
        // (platform::server::RunToCompletionLayer).
        let order = self.saga.create_order(order).await?;
        self.reply(&order)
    }

    #[instrument(skip_all, fields(order_id = %request.get_ref().id))]
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let order = self.store.get_order(id).await?;
        self.reply(&order)
    }

    #[instrument(skip_all)]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Vec::new();
        let page =
            PageRequest::parse_within(request.page, request.page_size, self.bounds.max_list_offset)
                .map_err(|mut found| violations.append(&mut found))
                .ok();
        let status = match request.status {
            None => None,
            Some(value) => match status_from_wire(value) {
                Ok(status) => status,
                Err(()) => {
                    violations.push(Violation::new("status", "unknown order status"));
                    None
                }
            },
        };
        let payment_status = match request.payment_status {
            None => None,
            Some(value) => match payment_from_wire(value) {
                Ok(status) => status,
                Err(()) => {
                    violations.push(Violation::new("payment_status", "unknown payment status"));
                    None
                }
            },
        };
        if request.customer_id.is_some_and(|id| id <= 0) {
            violations.push(Violation::new("customer_id", "must be greater than 0"));
        }
        let Some(page) = page.filter(|_| violations.is_empty()) else {
            return Err(OrderError::InvalidArgument(violations).into());
        };
        let filter = ListFilter {
            status,
            payment_status,
            customer_id: request.customer_id,
        };
        let (orders, total) = self.store.list_orders(filter, page).await?;
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
        let id = Uuid::try_parse(&request.id);
        let to = status_from_wire(request.status).ok().flatten();
        let mut violations = Vec::new();
        if id.is_err() {
            violations.push(Violation::new("id", "must be a UUID"));
        }
        if to.is_none() {
            violations.push(Violation::new(
                "status",
                "must be PENDING, COMPLETED or CANCELED",
            ));
        }
        let (Ok(id), Some(to)) = (id, to) else {
            return Err(OrderError::InvalidArgument(violations).into());
        };
        let (order, outbox) = self.store.change_status(id, to).await?;
        // Committed: the status change stands whatever happens next. Try the
        // inventory call now; the reconciler retries what fails.
        if let Some(entry) = outbox
            && let Err(error) = self.relay.deliver(entry.id).await
        {
            tracing::warn!(error = ?error, "outbox delivery failed; the reconciler will retry");
        }
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
        let id = Uuid::try_parse(&request.order_id);
        let to = match pb::PaymentStatus::try_from(request.payment_status) {
            Ok(pb::PaymentStatus::Paid) => Some(PaymentStatus::Paid),
            Ok(pb::PaymentStatus::Failed) => Some(PaymentStatus::Failed),
            _ => None,
        };
        let mut violations = Vec::new();
        if id.is_err() {
            violations.push(Violation::new("order_id", "must be a UUID"));
        }
        if to.is_none() {
            violations.push(Violation::new("payment_status", "must be PAID or FAILED"));
        }
        if let Some(event_id) = &request.event_id {
            let chars = event_id.chars().count();
            if chars == 0 || chars > MAX_EVENT_ID_CHARS {
                violations.push(Violation::new(
                    "event_id",
                    format!("must be 1 to {MAX_EVENT_ID_CHARS} characters"),
                ));
            }
        }
        let (Ok(id), Some(to), true) = (id, to, violations.is_empty()) else {
            return Err(OrderError::InvalidArgument(violations).into());
        };
        let order = self
            .store
            .apply_payment(id, to, request.event_id.as_deref())
            .await?;
        self.reply(&order)
    }
}

fn parse_id(field: &str, value: &str) -> Result<Uuid, OrderError> {
    Uuid::try_parse(value)
        .map_err(|_| OrderError::InvalidArgument(vec![Violation::new(field, "must be a UUID")]))
}

/// A wire status filter or target: `Ok(None)` for UNSPECIFIED, `Err` for a
/// value this version does not know.
fn status_from_wire(value: i32) -> Result<Option<OrderStatus>, ()> {
    match pb::OrderStatus::try_from(value).map_err(|_| ())? {
        pb::OrderStatus::Unspecified => Ok(None),
        pb::OrderStatus::Pending => Ok(Some(OrderStatus::Pending)),
        pb::OrderStatus::Completed => Ok(Some(OrderStatus::Completed)),
        pb::OrderStatus::Canceled => Ok(Some(OrderStatus::Canceled)),
    }
}

fn payment_from_wire(value: i32) -> Result<Option<PaymentStatus>, ()> {
    match pb::PaymentStatus::try_from(value).map_err(|_| ())? {
        pb::PaymentStatus::Unspecified => Ok(None),
        pb::PaymentStatus::Unpaid => Ok(Some(PaymentStatus::Unpaid)),
        pb::PaymentStatus::Paid => Ok(Some(PaymentStatus::Paid)),
        pb::PaymentStatus::Failed => Ok(Some(PaymentStatus::Failed)),
    }
}

fn status_to_wire(status: OrderStatus) -> Result<pb::OrderStatus, OrderError> {
    match status {
        OrderStatus::Pending => Ok(pb::OrderStatus::Pending),
        OrderStatus::Completed => Ok(pb::OrderStatus::Completed),
        OrderStatus::Canceled => Ok(pb::OrderStatus::Canceled),
        // The store never hands these out; if it did, that is a bug, and the
        // internal state must not leak.
        OrderStatus::Reserving | OrderStatus::Rejected => Err(OrderError::internal(
            anyhow::anyhow!("internal status {status} about to be answered"),
        )),
    }
}

fn payment_to_wire(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::Unpaid => pb::PaymentStatus::Unpaid,
        PaymentStatus::Paid => pb::PaymentStatus::Paid,
        PaymentStatus::Failed => pb::PaymentStatus::Failed,
    }
}

fn order_to_wire(order: &Order, currency: &str) -> Result<pb::Order, OrderError> {
    let money = |amount| proto::money::from_decimal(amount, currency).map_err(OrderError::internal);
    Ok(pb::Order {
        id: order.id.to_string(),
        customer_id: order.customer_id,
        total_price: Some(money(order.total_price)?),
        status: status_to_wire(order.status)? as i32,
        payment_status: payment_to_wire(order.payment_status) as i32,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_statuses_map_both_ways() {
        for status in OrderStatus::VISIBLE {
            let wire = status_to_wire(status).unwrap() as i32;
            assert_eq!(status_from_wire(wire), Ok(Some(status)));
        }
        assert_eq!(status_from_wire(0), Ok(None));
        assert_eq!(status_from_wire(99), Err(()));
        assert!(status_to_wire(OrderStatus::Reserving).is_err());
        assert!(status_to_wire(OrderStatus::Rejected).is_err());
        for status in PaymentStatus::ALL {
            assert_eq!(
                payment_from_wire(payment_to_wire(status) as i32),
                Ok(Some(status))
            );
        }
    }
}
