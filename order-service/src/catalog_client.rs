//! The order service's only way to the catalog: one long-lived gRPC channel,
//! built at start, cloned into every caller (never a connection per request).
//! The catalog's wire types stop here: callers get domain types
//! ([`ReservedLine`], [`Refusal`]) and [`CallFailed`].
//!
//! The channel spreads calls over every reachable catalog replica (see
//! `platform::balance`) and the order service starts while the catalog is down;
//! every call carries a deadline (sent to the catalog as `grpc-timeout` and
//! enforced here), so a hung catalog costs a bounded wait, and no reachable
//! catalog at all is UNAVAILABLE at once.
//! Every call is an OpenTelemetry CLIENT span
//! (`catalog.v1.CatalogService/ReserveInventory`, `rpc.*` attributes) whose
//! W3C trace context travels with the call, so the catalog's span is its
//! child. With
//! `GRPC_TLS_*` set, every connection is mutual TLS (`platform::tls`): the
//! catalog's certificate is checked against CATALOG_URL's host, and this
//! service presents its own.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context;
use platform::{
    balance::{ChannelSettings, ServiceChannel},
    telemetry::{self, Peer, PropagateContext, RpcSide},
};
use proto::catalog::v1::{
    CommitInventoryRequest, ReleaseInventoryRequest, ReservationItem, ReserveInventoryRequest,
    catalog_service_client::CatalogServiceClient, catalog_service_server::SERVICE_NAME,
};
use tonic::{Code, Request, Status, service::interceptor::InterceptedService, transport::Channel};
use tracing::{Instrument, instrument};
use uuid::Uuid;

use crate::{
    domain::{InventoryAction, NewOrderItem, Refusal, ReservedLine},
    error::refusal,
};

#[derive(Clone)]
pub struct CatalogClient {
    /// Every call carries the current span's trace context (its CLIENT
    /// span's, see [`Self::call`]), so a request is one trace across the
    /// services.
    client: CatalogServiceClient<InterceptedService<Channel, PropagateContext>>,
    /// The channel under `client`: refuses at once when no catalog address is
    /// reachable, and enforces the deadline.
    channel: ServiceChannel,
    timeout: Duration,
    currency: String,
    /// `server.address` / `server.port` of the calls' spans (CATALOG_URL's).
    peer: Peer,
}

/// What a ReserveInventory call tells the saga.
#[derive(Debug)]
pub enum ReserveOutcome {
    /// Stock taken: one line per product.
    Reserved(Vec<ReservedLine>),
    /// The catalog definitely took nothing (unknown product, no stock, ...),
    /// and why.
    Refused(Refusal),
    /// No way to know whether stock was taken (timeout, connection lost,
    /// unreadable answer): the reservation must be released.
    Unknown(CallFailed),
}

/// A catalog call that did not succeed: its gRPC code's name and message (as
/// logged, and kept with an outbox row), and whether the catalog refused it
/// for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CallFailed {
    pub code: String,
    pub message: String,
    /// A definite refusal: the catalog moved nothing, and the same call
    /// would be refused again.
    pub refused: bool,
}

impl From<Status> for CallFailed {
    fn from(status: Status) -> Self {
        Self {
            code: format!("{:?}", status.code()),
            message: status.message().to_owned(),
            refused: is_definite_refusal(status.code()),
        }
    }
}

/// Codes by which the catalog says "no, and nothing moved". Anything else
/// (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL, ...) leaves the
/// outcome unknown.
pub fn is_definite_refusal(code: Code) -> bool {
    refusal::kind_of(code).is_some()
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
            peer: Peer::from_url(url),
        })
    }

    /// The longest one catalog call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one call (`method` of the catalog service) under the deadline,
    /// in its CLIENT span: the interceptor runs inside it, so the catalog's
    /// span is its child; the outcome (deadline and "no address" included)
    /// is recorded on it.
    async fn call<T>(
        &self,
        method: &str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        let span = telemetry::grpc_client_span(SERVICE_NAME, method, &self.peer);
        let result = self
            .channel
            .call(self.timeout, call)
            .instrument(span.clone())
            .await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        telemetry::record_grpc_status(&span, code, RpcSide::Client);
        result
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
            .call("ReserveInventory", client.reserve_inventory(request))
            .await
        {
            Ok(response) => match self.read_lines(items, response.lines) {
                Ok(lines) => ReserveOutcome::Reserved(lines),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "unreadable reservation");
                    ReserveOutcome::Unknown(Status::internal("unreadable reservation").into())
                }
            },
            // Code, message and details as the catalog wrote them; nothing
            // else of its response (headers) travels on.
            Err(status) => match refusal::from_status(&status) {
                Some(refusal) => ReserveOutcome::Refused(refusal),
                None => ReserveOutcome::Unknown(status.into()),
            },
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

    /// Performs an outbox row's call; `true` if this call changed the
    /// reservation. Release gives its stock back, and is safe for an id the
    /// catalog never saw: it records a tombstone, so a late reserve with that
    /// id takes nothing. Commit makes it final. Both are idempotent, so a row
    /// delivered twice (a retry after a lost answer) does no harm.
    #[instrument(skip(self))]
    pub async fn perform(
        &self,
        action: InventoryAction,
        reservation_id: Uuid,
    ) -> Result<bool, CallFailed> {
        let reservation_id = reservation_id.to_string();
        let mut client = self.client.clone();
        let changed = match action {
            InventoryAction::Release => {
                let request = self.request(ReleaseInventoryRequest { reservation_id });
                let call = client.release_inventory(request);
                self.call("ReleaseInventory", call).await?.released
            }
            InventoryAction::Commit => {
                let request = self.request(CommitInventoryRequest { reservation_id });
                let call = client.commit_inventory(request);
                self.call("CommitInventory", call).await?.committed
            }
        };
        Ok(changed)
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
