//! The product change feed behind `WatchProductChanges`: which products
//! changed, for readers that keep copies of them (the gateway's read cache).
//!
//! A trigger announces every statement that updates or deletes products on
//! the PostgreSQL channel [`CHANNEL`] (see the migration
//! `product_change_feed`); PostgreSQL delivers it at commit, in commit order,
//! to every listener. One task per process LISTENs on its own connection and
//! fans each notification out to the subscribers of this replica. So a
//! subscriber hears of every committed change, whichever replica, service or
//! operator made it.
//!
//! Whenever changes may have been missed (the listening connection was lost,
//! a subscriber fell behind), subscribers are told [`Change::All`]; while the
//! feed has no connection, streams end with UNAVAILABLE and new ones are
//! refused, so no subscriber trusts a copy the feed could not vouch for.

use std::{sync::Arc, time::Duration};

use proto::catalog::v1 as pb;
use sqlx::postgres::PgListener;
use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
};
use tonic::Status;

/// The PostgreSQL notification channel the trigger announces changes on.
pub const CHANNEL: &str = "catalog_product_changes";

/// A subscriber hears from the feed at least this often (an empty message
/// when nothing changed), so it can tell a quiet feed from a broken one.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Messages kept for a slow subscriber before it is told [`Change::All`].
const BACKLOG: usize = 1024;

/// Longest wait between two attempts to reconnect the listener.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One announcement, as subscribers receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These products changed or were deleted (canonical UUID text).
    Products(Arc<Vec<String>>),
    /// Any product may have changed.
    All,
}

impl Change {
    /// A notification's payload: comma-separated ids, or `*` (too many for
    /// one notification).
    pub fn from_payload(payload: &str) -> Self {
        if payload == "*" {
            return Self::All;
        }
        Self::Products(Arc::new(
            payload
                .split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }

    fn to_wire(&self) -> pb::ProductChanges {
        match self {
            Self::Products(ids) => pb::ProductChanges {
                product_ids: ids.as_ref().clone(),
                all: false,
            },
            Self::All => pb::ProductChanges {
                product_ids: Vec::new(),
                all: true,
            },
        }
    }
}

/// The process's feed; cheap to clone.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    changes: broadcast::Sender<Change>,
    connected: watch::Receiver<bool>,
    stopping: watch::Receiver<bool>,
}

impl ChangeFeed {
    /// Starts the listening task on its own connection to `database_url`.
    /// The task, and every subscriber stream, ends once `stopping` is true.
    pub fn spawn(database_url: String, stopping: watch::Receiver<bool>) -> (Self, JoinHandle<()>) {
        let (changes, _) = broadcast::channel(BACKLOG);
        let (connected_tx, connected) = watch::channel(false);
        let task = tokio::spawn(listen(
            database_url,
            changes.clone(),
            connected_tx,
            stopping.clone(),
        ));
        (
            Self {
                changes,
                connected,
                stopping,
            },
            task,
        )
    }

    /// A stream of wire messages for one subscriber: `all` first, then
    /// changes and heartbeats. UNAVAILABLE while the feed is not connected.
    pub fn subscribe(&self) -> Result<mpsc::Receiver<Result<pb::ProductChanges, Status>>, Status> {
        // Subscribed before checking the connection: nothing committed after
        // the check can be missed.
        let changes = self.changes.subscribe();
        if !*self.connected.borrow() {
            return Err(Status::unavailable(
                "the product change feed has no database connection; retry later",
            ));
        }
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(forward(
            changes,
            self.connected.clone(),
            self.stopping.clone(),
            tx,
        ));
        Ok(rx)
    }
}

/// Keeps one LISTEN connection, reconnecting with backoff, and broadcasts
/// what it hears. `Change::All` after every (re)connection: what was
/// committed while it was down was not heard.
async fn listen(
    database_url: String,
    changes: broadcast::Sender<Change>,
    connected: watch::Sender<bool>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut listener = PgListener::connect(&database_url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        match outcome {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                let _ = changes.send(Change::All);
                connected.send_replace(true);
                tracing::debug!("product change feed listening");
                loop {
                    let received = tokio::select! {
                        received = listener.try_recv() => received,
                        _ = stopping.wait_for(|stop| *stop) => return,
                    };
                    match received {
                        Ok(Some(notification)) => {
                            let _ = changes.send(Change::from_payload(notification.payload()));
                        }
                        // The connection was lost and has been re-established:
                        // whatever was announced in between was missed.
                        Ok(None) => {
                            let _ = changes.send(Change::All);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "product change feed lost its database connection");
                            break;
                        }
                    }
                }
                connected.send_replace(false);
                let _ = changes.send(Change::All);
            }
            Err(error) => {
                tracing::warn!(%error, "product change feed cannot listen; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscriber's stream: `all` first, then every change, a heartbeat
/// every [`HEARTBEAT`]; ends when the subscriber goes, the process stops, or
/// the feed loses its connection (with UNAVAILABLE).
async fn forward(
    mut changes: broadcast::Receiver<Change>,
    mut connected: watch::Receiver<bool>,
    mut stopping: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<pb::ProductChanges, Status>>,
) {
    if tx.send(Ok(Change::All.to_wire())).await.is_err() {
        return;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.reset();
    loop {
        let message = tokio::select! {
            received = changes.recv() => match received {
                Ok(change) => Ok(change.to_wire()),
                Err(broadcast::error::RecvError::Lagged(_)) => Ok(Change::All.to_wire()),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = connected.wait_for(|up| !*up) => Err(Status::unavailable(
                "the product change feed lost its database connection",
            )),
            _ = stopping.wait_for(|stop| *stop) => return,
            _ = heartbeat.tick() => Ok(pb::ProductChanges::default()),
            () = tx.closed() => return,
        };
        let ends = message.is_err();
        if tx.send(message).await.is_err() || ends {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_products_or_everything() {
        assert_eq!(Change::from_payload("*"), Change::All);
        assert_eq!(
            Change::from_payload("a,b"),
            Change::Products(Arc::new(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            Change::All.to_wire(),
            pb::ProductChanges {
                product_ids: vec![],
                all: true
            }
        );
    }
}
