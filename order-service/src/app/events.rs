//! WatchOrderEvents: every change of a visible order, in commit order, to
//! internal services (shipping, invoicing, e-mail), resumable from the last
//! sequence a consumer processed.
//!
//! Each change writes its event in its own transaction (see
//! [`crate::store::Tx::record_event`]); the event is numbered after it
//! commits, by the sequencer ([`EventLog::run_sequencer`]), which every
//! replica runs: rounds take one row lock in the database, so they number
//! events one round at a time, and a reader always sees a gap-free prefix
//! of the log. A transaction that wrote its event early but committed late
//! simply gets a later number. A watcher reads numbered events after its
//! cursor from the database, and when it has read them all waits for this
//! replica's sequencer to see a higher number, so events numbered by any
//! replica reach watchers on every replica within about [`SEQUENCER_TICK`].

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, watch};

use crate::{
    error::OrderError,
    metrics::OrderMetrics,
    store::{OrderEvent, Store},
};

/// How often each replica's sequencer looks for committed events to number
/// (and for numbers other replicas gave): the latency of the stream.
pub const SEQUENCER_TICK: Duration = Duration::from_millis(100);

/// Events numbered per round; a full round runs the next at once.
const SEQUENCE_BATCH: i64 = 1_000;

/// Events read per query by a watcher.
const READ_BATCH: i64 = 500;

/// Events buffered per watcher before its reader waits for the consumer.
const WATCHER_BUFFER: usize = 256;

/// The order event log of this replica: its sequencer and its watchers.
/// Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    store: Store,
    /// The highest sequence this replica knows is numbered.
    numbered: Arc<watch::Sender<i64>>,
    /// Turns true when the service starts shutting down: watchers end, so
    /// the drain does not wait on streams that never finish.
    stopping: Arc<watch::Sender<bool>>,
    metrics: OrderMetrics,
}

impl EventLog {
    pub fn new(store: Store, metrics: OrderMetrics) -> Self {
        Self {
            store,
            numbered: Arc::new(watch::channel(0).0),
            stopping: Arc::new(watch::channel(false).0),
            metrics,
        }
    }

    /// Ends every watcher's stream, and the sequencer after its round.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Numbers committed events every [`SEQUENCER_TICK`] until [`stop`](Self::stop).
    /// A failed round (the database is down) is logged and tried again.
    pub async fn run_sequencer(self) {
        let mut stopping = self.stopping.subscribe();
        loop {
            match self.store.sequence_events(SEQUENCE_BATCH).await {
                Ok((last, numbered)) => {
                    self.metrics.events_sequenced.inc_by(numbered);
                    self.numbered.send_if_modified(|known| {
                        let newer = last > *known;
                        *known = (*known).max(last);
                        newer
                    });
                    if numbered as i64 == SEQUENCE_BATCH {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = ?error, "order event sequencer round failed; retrying")
                }
            }
            tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => break,
                _ = tokio::time::sleep(SEQUENCER_TICK) => {}
            }
        }
        tracing::info!("order event sequencer stopped");
    }

    /// The events after sequence `after`, then every later one as it is
    /// numbered, until the receiver is dropped or the service stops. Refused
    /// (OUT_OF_RANGE) when the log cannot continue from `after`: events past
    /// it were pruned by the retention, or `after` was never given.
    pub async fn watch(
        &self,
        after: i64,
    ) -> Result<mpsc::Receiver<Result<OrderEvent, OrderError>>, OrderError> {
        let bounds = self.store.event_log_bounds().await?;
        if after < bounds.pruned_through {
            return Err(OrderError::EventsOutOfRange(format!(
                "events up to sequence {} were deleted by the retention \
                 (ORDER_EVENT_RETENTION); resume from {} or later, and re-read what was \
                 missed with ListOrders",
                bounds.pruned_through, bounds.pruned_through
            )));
        }
        if after > bounds.last_sequence || after < 0 {
            return Err(OrderError::EventsOutOfRange(format!(
                "after_sequence {after} is not a sequence this log gave (the last is {}); \
                 resume from the last sequence processed, or 0 for the whole log",
                bounds.last_sequence
            )));
        }
        let (sender, receiver) = mpsc::channel(WATCHER_BUFFER);
        let watcher = Watcher {
            store: self.store.clone(),
            numbered: self.numbered.subscribe(),
            stopping: self.stopping.subscribe(),
            sender,
            cursor: after,
        };
        let metrics = self.metrics.clone();
        metrics.event_watchers.inc();
        tokio::spawn(async move {
            watcher.run().await;
            metrics.event_watchers.dec();
        });
        Ok(receiver)
    }
}

/// One consumer's stream: a cursor on the log.
struct Watcher {
    store: Store,
    numbered: watch::Receiver<i64>,
    stopping: watch::Receiver<bool>,
    sender: mpsc::Sender<Result<OrderEvent, OrderError>>,
    /// The last sequence sent.
    cursor: i64,
}

impl Watcher {
    async fn run(mut self) {
        loop {
            let events = match self.store.events_after(self.cursor, READ_BATCH).await {
                Ok(events) => events,
                Err(error) => {
                    // The consumer resumes from its last sequence elsewhere.
                    let _ = self.sender.send(Err(error)).await;
                    return;
                }
            };
            let full = events.len() as i64 == READ_BATCH;
            if let Some(first) = events.first()
                && first.sequence != self.cursor + 1
            {
                // The retention deleted events this consumer had not read.
                let gap = OrderError::EventsOutOfRange(format!(
                    "events after sequence {} were deleted by the retention before they were \
                     sent; re-read what was missed with ListOrders and resume from {}",
                    self.cursor,
                    first.sequence - 1
                ));
                let _ = self.sender.send(Err(gap)).await;
                return;
            }
            let empty = events.is_empty();
            for event in events {
                let sequence = event.sequence;
                tokio::select! {
                    sent = self.sender.send(Ok(event)) => if sent.is_err() { return },
                    _ = self.stopping.wait_for(|stop| *stop) => return,
                }
                self.cursor = sequence;
            }
            if full {
                continue;
            }
            let cursor = self.cursor;
            if empty && *self.numbered.borrow() > cursor {
                // Known numbered but not read yet (another connection's
                // snapshot): do not spin, look again in a moment.
                tokio::time::sleep(SEQUENCER_TICK).await;
                continue;
            }
            tokio::select! {
                _ = self.numbered.wait_for(|numbered| *numbered > cursor) => {}
                _ = self.stopping.wait_for(|stop| *stop) => return,
                _ = self.sender.closed() => return,
            }
        }
    }
}
