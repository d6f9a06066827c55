//! Reservations: the only way stock leaves the catalog for an order, and
//! comes back. Idempotent by reservation id, so a retried or late call never
//! moves stock twice.
//!
//! Reservations of one product serialize on its row lock, and a transaction
//! holds that lock until its commit is flushed to disk; one transaction per
//! reservation would sell a hot product at most once per WAL flush. So every
//! ReserveInventory call of this process goes through one group-commit lane
//! (`platform::group_commit`): while one batch's transaction is in flight,
//! new calls queue up, and the next transaction ([`reserve_batch`]) decides
//! all of them, each on its own, so every caller gets exactly the answer it
//! would have got alone.

use platform::{
    group_commit::{self, Policy},
    server::Caller,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Catalog;
use crate::{
    domain::{
        Refusal,
        reservation::{self, ReservationRequest, ReservationState, Reserved, StockLedger},
    },
    error::CatalogError,
    metrics::CatalogMetrics,
    store::Store,
};

/// One reservation's outcome in a batch: taken (or replayed), or refused.
pub type Outcome = Result<Reserved, Refusal>;

/// The lane every ReserveInventory call of this process goes through.
pub(super) type Lane = group_commit::Lane<ReservationRequest, Outcome, CatalogError>;

pub(super) fn spawn_lane(store: Store, metrics: CatalogMetrics) -> (Lane, JoinHandle<()>) {
    let policy = Policy::default()
        // The later of two calls with one id waits for the next batch, where
        // it sees the first one's stored outcome, just as it would have
        // blocked on the first one's claim.
        .distinct_by(|request: &ReservationRequest| request.id)
        // A database out of reach fails every call alike: no retry one by one.
        .fail_together_when(|error: &CatalogError| matches!(error, CatalogError::Unavailable(_)))
        .on_batch(move |size| metrics.reservation_batch(size));
    Lane::spawn_with(policy, move |batch: Vec<ReservationRequest>| {
        let store = store.clone();
        async move { reserve_batch(&store, &batch).await }
    })
}

impl Catalog {
    /// Takes stock for every line of `request` or for none. The same request
    /// again replays the stored lines; a released (or tombstoned) id, or the
    /// id of a reservation of other items, is refused.
    ///
    /// Decided in the next group-commit batch, unless `caller` has left by
    /// then ([`CatalogError::Abandoned`]): nothing is taken for it, since its
    /// caller treats the outcome as unknown and releases the id anyway.
    #[tracing::instrument(name = "reserve", skip_all, fields(reservation_id = %request.id, lines = request.lines.len()))]
    pub async fn reserve(
        &self,
        request: ReservationRequest,
        caller: &Caller,
    ) -> Result<Reserved, CatalogError> {
        let reserved = match self.reservations.submit_for(request, caller).await {
            Ok(outcome) => outcome.map_err(CatalogError::from),
            Err(error) => Err(error),
        };
        self.metrics.reserved(&reserved);
        reserved
    }

    /// Gives back the stock of a held reservation, exactly once; `true` when
    /// this call moved stock. An unknown id leaves a tombstone, so that a
    /// reserve arriving after its release never takes stock.
    #[tracing::instrument(skip(self))]
    pub async fn release(&self, id: Uuid) -> Result<bool, CatalogError> {
        let mut tx = self.store.begin().await?;
        if tx.tombstone(id).await? {
            tx.commit().await?;
            tracing::info!(reservation_id = %id, "released an unknown reservation: tombstone recorded");
            return Ok(false);
        }
        if !tx.mark_released(id).await? {
            return match tx.reservation_state(id).await? {
                Some(ReservationState::Committed) => Err(Refusal::ReservationCommitted(id).into()),
                // Released by an earlier call: nothing more to give back.
                Some(_) => Ok(false),
                None => Err(vanished(id)),
            };
        }
        tx.restock(id).await?;
        tx.commit().await?;
        self.metrics.releases.inc();
        tracing::info!(reservation_id = %id, "reservation released, stock restored");
        Ok(true)
    }

    /// Makes a held reservation final; `true` when this call changed it, and
    /// `false` for one committed already.
    #[tracing::instrument(skip(self))]
    pub async fn commit(&self, id: Uuid) -> Result<bool, CatalogError> {
        if self.store.mark_committed(id).await? {
            self.metrics.commits.inc();
            return Ok(true);
        }
        let refusal = match self.store.reservation_state(id).await? {
            Some(ReservationState::Committed) => return Ok(false),
            Some(ReservationState::Released) => Refusal::ReservationReleased(id),
            None => Refusal::ReservationNotFound(id),
            Some(ReservationState::Held) => {
                return Err(CatalogError::Internal(format!(
                    "reservation {id} is held but could not be committed"
                )));
            }
        };
        Err(refusal.into())
    }
}

/// Decides a batch of reservations in one transaction, so one commit (one
/// WAL flush, one hold of a hot product's row lock) serves them all. Each
/// request is still all or nothing on its own, judged in the given order on
/// the stock the ones before it left (a [`StockLedger`]), exactly as if they
/// had run one after the other; a known id replays its stored outcome or is
/// refused ([`reservation::replay`]).
///
/// Ids must be distinct (the lane defers a duplicate to the next batch).
/// Returns one outcome per request, in order; `Err` only when the
/// transaction itself failed, and then nothing was taken for anyone.
///
/// Five statements whatever the batch size: claim every id, lock every
/// product, [drop the claims of refused requests,] take the stock, store the
/// lines (and one more to read the ids seen before, if any).
#[tracing::instrument(skip_all, fields(batch = requests.len()))]
pub async fn reserve_batch(
    store: &Store,
    requests: &[ReservationRequest],
) -> Result<Vec<Outcome>, CatalogError> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; requests.len()];
    let mut tx = store.begin().await?;
    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let claimed = tx.claim(&ids).await?;

    // Ids seen before: the stored outcome when it is the same request again,
    // a refusal otherwise (released, tombstoned, other items).
    let known: Vec<Uuid> = ids.into_iter().filter(|id| !claimed.contains(id)).collect();
    if !known.is_empty() {
        let mut stored = tx.reservations(&known).await?;
        for (request, outcome) in requests.iter().zip(&mut outcomes) {
            if claimed.contains(&request.id) {
                continue;
            }
            let (state, lines) = stored
                .remove(&request.id)
                .ok_or_else(|| vanished(request.id))?;
            let replayed = reservation::replay(request, state, lines);
            *outcome = Some(replayed.map(|lines| Reserved {
                lines,
                replayed: true,
            }));
        }
    }

    if !claimed.is_empty() {
        let products: Vec<Uuid> = requests
            .iter()
            .filter(|r| claimed.contains(&r.id))
            .flat_map(|r| r.lines.iter().map(|line| line.product_id))
            .collect();
        let mut ledger = StockLedger::new(tx.lock_stock(&products).await?);
        let mut refused = Vec::new();
        let mut lines = Vec::new();
        for (request, outcome) in requests.iter().zip(&mut outcomes) {
            if !claimed.contains(&request.id) {
                continue;
            }
            let judged = ledger.take(request);
            match &judged {
                Ok(taken) => lines.extend(taken.iter().map(|line| (request.id, line.clone()))),
                Err(_) => refused.push(request.id),
            }
            *outcome = Some(judged.map(|lines| Reserved {
                lines,
                replayed: false,
            }));
        }
        // A refused request leaves no trace: its id stays free, as if its
        // own transaction had rolled back.
        if !refused.is_empty() {
            tx.drop_claims(&refused).await?;
        }
        let taken: Vec<(Uuid, i64)> = ledger.taken().collect();
        if !taken.is_empty() {
            tx.take_stock(&taken).await?;
            tx.insert_lines(&lines).await?;
        }
    }
    tx.commit().await?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every request was decided"))
        .collect())
}

/// A reservation row that disappeared inside the transaction reading it.
fn vanished(id: Uuid) -> CatalogError {
    CatalogError::Internal(format!("reservation {id} vanished while read"))
}
