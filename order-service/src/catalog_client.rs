//! The order service's only way to the catalog: one long-lived gRPC channel,
//! built at start, cloned into every caller (never a connection per request).
//!
//! The channel spreads calls over every reachable catalog replica (see
//! `platform::balance`) and the order service starts while the catalog is down;
//! every call carries a deadline (sent to the catalog as `grpc-timeout` and
//! enforced here), so a hung catalog costs a bounded wait, and no reachable
//! catalog at all is UNAVAILABLE at once.
//! The caller's W3C trace context travels with every call. With
//! `GRPC_TLS_*` set, every connection is mutual TLS (`platform::tls`): the
//! catalog's certificate is checked against CATALOG_URL's host, and this
//! service presents its own.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context;
use platform::{
    balance::{ChannelSettings, ServiceChannel},
    telemetry::PropagateContext,
};
use proto::catalog::v1::{
    CommitInventoryRequest, ReleaseInventoryRequest, ReservationItem, ReserveInventoryRequest,
    catalog_service_client::CatalogServiceClient,
};
use tonic::{
    Code, Request, Status, codegen::Bytes, service::interceptor::InterceptedService,
    transport::Channel,
};
use tracing::instrument;
use uuid::Uuid;

use crate::domain::{InventoryAction, NewOrderItem, ReservedLine};

#[derive(Clone)]
pub struct CatalogClient {
    /// Every call carries the caller's trace context, so a request is one
    /// trace across the services.
    client: CatalogServiceClient<InterceptedService<Channel, PropagateContext>>,
    /// The channel under `client`: refuses at once when no catalog address is
    /// reachable, and enforces the deadline.
    channel: ServiceChannel,
    timeout: Duration,
    currency: String,
}

/// What a ReserveInventory call tells the saga.
#[derive(Debug)]
pub enum ReserveOutcome {
    /// Stock taken: one line per product.
    Reserved(Vec<ReservedLine>),
    /// The catalog definitely took nothing (unknown product, no stock, ...):
    /// its status, to pass on to the caller unchanged.
    Refused(Status),
    /// No way to know whether stock was taken (timeout, connection lost,
    /// unreadable answer): the reservation must be released.
    Unknown(Status),
}

/// Codes by which the catalog says "no, and nothing moved". Anything else
/// (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL, ...) leaves the
/// outcome unknown.
pub fn is_definite_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::NotFound | Code::FailedPrecondition | Code::InvalidArgument | Code::AlreadyExists
    )
}

impl CatalogClient {
    /// Builds the channel: balanced over every reachable catalog address
    /// (`balance`), or one endpoint connected on first use. Either way the
    /// order service starts while the catalog is down.
    pub async fn new(
        url: &str,
        balance: bool,
        settings: &ChannelSettings,
        timeout: Duration,
        currency: impl Into<String>,
    ) -> anyhow::Result<Self> {
        let channel = ServiceChannel::connect(url, balance, settings)
            .await
            .with_context(|| format!("invalid CATALOG_URL {url:?}"))?;
        Ok(Self {
            client: CatalogServiceClient::with_interceptor(channel.channel(), PropagateContext),
            channel,
            timeout,
            currency: currency.into(),
        })
    }

    /// The longest one catalog call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Saga step 2: takes the stock of every item, all or nothing, under the
    /// order's id as reservation id.
    #[instrument(skip(self, items), fields(items = items.len()))]
    pub async fn reserve(&self, reservation_id: Uuid, items: &[NewOrderItem]) -> ReserveOutcome {
        let request = self.request(ReserveInventoryRequest {
            reservation_id: reservation_id.to_string(),
            items: items
                .iter()
                .map(|item| ReservationItem {
                    product_id: item.product_id.to_string(),
                    quantity: item.quantity,
                })
                .collect(),
        });
        let mut client = self.client.clone();
        match self
            .channel
            .call(self.timeout, client.reserve_inventory(request))
            .await
        {
            Ok(response) => match self.read_lines(items, response.lines) {
                Ok(lines) => ReserveOutcome::Reserved(lines),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "unreadable reservation");
                    ReserveOutcome::Unknown(Status::internal("unreadable reservation"))
                }
            },
            Err(status) if is_definite_refusal(status.code()) => {
                // Code, message and details as the catalog wrote them; nothing
                // else of its response (headers) travels on.
                ReserveOutcome::Refused(Status::with_details(
                    status.code(),
                    status.message(),
                    Bytes::copy_from_slice(status.details()),
                ))
            }
            Err(status) => ReserveOutcome::Unknown(status),
        }
    }

    /// Checks the catalog's answer against what was asked: one line per
    /// requested product with the requested quantity, a price in our currency.
    fn read_lines(
        &self,
        asked: &[NewOrderItem],
        lines: Vec<proto::catalog::v1::ReservedLine>,
    ) -> anyhow::Result<Vec<ReservedLine>> {
        let mut expected: BTreeMap<Uuid, i32> = asked
            .iter()
            .map(|item| (item.product_id, item.quantity))
            .collect();
        let mut read = Vec::with_capacity(lines.len());
        for line in lines {
            let product_id = Uuid::try_parse(&line.product_id).context("line product id")?;
            let price = line.unit_price.context("line without a unit price")?;
            if !price.currency_code.is_empty() && price.currency_code != self.currency {
                anyhow::bail!(
                    "unit price in {:?}, expected {:?}",
                    price.currency_code,
                    self.currency
                );
            }
            let unit_price = proto::money::to_decimal(&price).context("line unit price")?;
            if expected.remove(&product_id) != Some(line.quantity) {
                anyhow::bail!("line for {product_id} does not match the request");
            }
            read.push(ReservedLine {
                product_id,
                quantity: line.quantity,
                unit_price,
            });
        }
        if !expected.is_empty() {
            anyhow::bail!("{} requested products have no line", expected.len());
        }
        Ok(read)
    }

    /// Gives a reservation's stock back; `true` if this call moved it. Safe for
    /// an id the catalog never saw: it records a tombstone, so a late reserve
    /// with that id takes nothing.
    #[instrument(skip(self))]
    pub async fn release(&self, reservation_id: Uuid) -> Result<bool, Status> {
        let request = self.request(ReleaseInventoryRequest {
            reservation_id: reservation_id.to_string(),
        });
        let mut client = self.client.clone();
        let response = self
            .channel
            .call(self.timeout, client.release_inventory(request))
            .await?;
        Ok(response.released)
    }

    /// Makes a reservation final; `true` if this call changed it.
    #[instrument(skip(self))]
    pub async fn commit(&self, reservation_id: Uuid) -> Result<bool, Status> {
        let request = self.request(CommitInventoryRequest {
            reservation_id: reservation_id.to_string(),
        });
        let mut client = self.client.clone();
        let response = self
            .channel
            .call(self.timeout, client.commit_inventory(request))
            .await?;
        Ok(response.committed)
    }

    /// Performs an outbox row's call. Both calls are idempotent, so a row
    /// delivered twice (a retry after a lost answer) does no harm.
    pub async fn perform(
        &self,
        action: InventoryAction,
        reservation_id: Uuid,
    ) -> Result<bool, Status> {
        match action {
            InventoryAction::Release => self.release(reservation_id).await,
            InventoryAction::Commit => self.commit(reservation_id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_moved_nothing_are_definite() {
        for code in [
            Code::NotFound,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::AlreadyExists,
        ] {
            assert!(is_definite_refusal(code), "{code:?}");
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Internal,
            Code::Unknown,
            Code::ResourceExhausted,
            Code::Aborted,
        ] {
            assert!(!is_definite_refusal(code), "{code:?}");
        }
    }
}
