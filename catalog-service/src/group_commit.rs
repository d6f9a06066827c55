//! Group commit for reservations.
//!
//! Reservations of one product serialize on its row lock, and a transaction
//! holds that lock until its commit is flushed to disk; one transaction per
//! reservation therefore sells a hot product at most once per WAL flush. So
//! every ReserveInventory call of this process goes through one task that
//! decides reservations in batches: while one batch's transaction is in
//! flight, new calls queue up, and the next transaction takes all of them
//! (no timer: an idle service answers a lone call at once, a busy one batches
//! naturally). [`Store::reserve_batch`] judges each call on its own, all or
//! nothing, so every caller still gets exactly the answer it would have got
//! alone, and idempotency and tombstones work as before.
//!
//! Two calls with the same reservation id never share a batch: the later one
//! waits for the next, where it sees the first one's stored outcome, just as
//! it would have blocked on the first one's claim.

use std::collections::{HashSet, VecDeque};

use platform::server::Caller;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{Instrument, Span};

use crate::{
    domain::reservation::ReservationRequest,
    error::CatalogError,
    metrics::CatalogMetrics,
    store::{Reserved, Store},
};

/// Most reservations one transaction decides. Bounds the statement sizes and
/// how long a batch holds its locks.
pub const MAX_BATCH: usize = 128;

/// Calls that may wait for the worker before callers are slowed down.
const QUEUE: usize = 4096;

type Outcome = Result<Reserved, CatalogError>;

struct Job {
    request: ReservationRequest,
    reply: oneshot::Sender<Outcome>,
    /// The caller's span, so the transaction that decides the call shows in
    /// the caller's trace (as parent of a batch of one, linked otherwise).
    span: Span,
    /// Whether the gRPC caller still waits for the answer.
    caller: Caller,
}

/// The handle every ReserveInventory call uses. Cheap to clone.
#[derive(Clone)]
pub struct Reserver {
    jobs: mpsc::Sender<Job>,
}

impl Reserver {
    /// Starts the worker. It stops once every handle is dropped and the
    /// queued calls are answered.
    pub fn spawn(store: Store, metrics: CatalogMetrics) -> (Self, JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let worker = tokio::spawn(run(store, queue, metrics));
        (Self { jobs }, worker)
    }

    /// Takes stock for `request`, all or nothing, in the next batch, unless
    /// `caller` has left by the time the batch is formed.
    #[tracing::instrument(name = "reserve", skip_all, fields(reservation_id = %request.id, lines = request.lines.len()))]
    pub async fn reserve(&self, request: ReservationRequest, caller: Caller) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let span = Span::current();
        self.jobs
            .send(Job {
                request,
                reply,
                span,
                caller,
            })
            .await
            .map_err(|_| CatalogError::Unavailable("the reservation worker has stopped".into()))?;
        answer.await.map_err(|_| {
            CatalogError::Internal("the reservation worker dropped a call unanswered".into())
        })?
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<Job>, metrics: CatalogMetrics) {
    // Calls received but not decided yet, oldest first.
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        while waiting.len() < 2 * MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        let batch = next_batch(&mut waiting);
        if batch.is_empty() {
            continue;
        }
        metrics.reservation_batch(batch.len());
        decide(&store, batch).await;
    }
}

/// Takes up to [`MAX_BATCH`] calls off `waiting`, oldest first, at most one
/// per reservation id (a later duplicate stays for the next batch). A call
/// whose caller has gone away (its deadline passed) is answered as abandoned
/// and left out: no transaction of it has started, and its caller treats the
/// outcome as unknown and releases the id anyway, so taking stock for it would
/// only be undone.
fn next_batch(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut ids = HashSet::new();
    let mut batch = Vec::new();
    let mut later = VecDeque::new();
    for job in waiting.drain(..) {
        if job.reply.is_closed() || job.caller.has_left() {
            let _ = job.reply.send(Err(CatalogError::Abandoned));
            continue;
        }
        if batch.len() < MAX_BATCH && ids.insert(job.request.id) {
            batch.push(job);
        } else {
            later.push_back(job);
        }
    }
    *waiting = later;
    batch
}

/// Runs one batch and answers its callers. If the transaction fails as a
/// whole for a reason other than the database being unreachable, each call
/// is tried again alone, so that one call cannot fail the others.
async fn decide(store: &Store, batch: Vec<Job>) {
    // A batch of one belongs to its caller's trace; a shared one is its own
    // span, linked to each caller's.
    let span = match &batch[..] {
        [job] => job.span.clone(),
        jobs => {
            let span = tracing::info_span!("group_commit", batch = jobs.len());
            for job in jobs {
                span.follows_from(&job.span);
            }
            span
        }
    };
    let (requests, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.request, job.reply))
        .unzip();
    match store.reserve_batch(&requests).instrument(span).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(error @ CatalogError::Unavailable(_)) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) if requests.len() > 1 => {
            tracing::warn!(%error, batch = requests.len(), "reservation batch failed; deciding its calls one by one");
            for (request, reply) in requests.iter().zip(replies) {
                let _ = reply.send(store.reserve(request).await);
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
