//! Group commit: one task per lane takes every request queued while its
//! previous batch was in flight (no timer: a lone request goes at once) and
//! runs them as one batch, so concurrent writers share one transaction (and
//! one WAL flush) instead of queueing for one each.
//!
//! A request whose caller has gone by the time its batch is formed is left
//! out: nothing of it has started, and nobody waits for its answer. A batch
//! that fails is retried request by request, so one bad request fails alone.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Most requests one statement carries.
const MAX_BATCH: usize = 128;
/// Requests that may wait before callers are slowed down.
const QUEUE: usize = 4096;

type Reply<O, E> = oneshot::Sender<Result<O, E>>;

/// The lane's task has stopped (the process is shutting down): the request
/// was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a group-commit worker has stopped")]
pub struct Stopped;

/// A handle to one lane. Cheap to clone.
pub struct Lane<R, O, E> {
    requests: mpsc::Sender<(R, Reply<O, E>)>,
}

impl<R, O, E> Clone for Lane<R, O, E> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<R, O, E> Lane<R, O, E>
where
    R: Clone + Send + 'static,
    O: Send + 'static,
    E: From<Stopped> + std::fmt::Display + Send + 'static,
{
    /// Starts the lane's task; `run` does one batch, answering one outcome
    /// per request in order, or failing the whole batch (nothing written).
    pub fn spawn<F, Fut>(run: F) -> Self
    where
        F: Fn(Vec<R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
    {
        let (requests, queue) = mpsc::channel(QUEUE);
        tokio::spawn(work(run, queue));
        Self { requests }
    }

    /// Runs `request` in the next batch.
    pub async fn submit(&self, request: R) -> Result<O, E> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((request, reply))
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)?
    }
}

async fn work<R, O, E, F, Fut>(run: F, mut queue: mpsc::Receiver<(R, Reply<O, E>)>)
where
    R: Clone,
    E: From<Stopped> + std::fmt::Display,
    F: Fn(Vec<R>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, E>>,
{
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // A caller that went away (its deadline passed) does not proceed
        // with its order: writing for it would only leave work behind.
        batch.retain(|(_, reply)| !reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (requests, replies): (Vec<R>, Vec<Reply<O, E>>) = batch.into_iter().unzip();
        match run(requests.clone()).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) if requests.len() == 1 => {
                let reply = replies.into_iter().next().expect("one reply");
                let _ = reply.send(Err(error));
            }
            Err(error) => {
                // One bad request must not fail the others: each alone.
                tracing::warn!(%error, batch = requests.len(), "group-commit batch failed; retrying one by one");
                for (request, reply) in requests.into_iter().zip(replies) {
                    let outcome = run(vec![request])
                        .await
                        .and_then(|mut one| one.pop().ok_or_else(|| Stopped.into()));
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use tokio::sync::Semaphore;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Stopped,
        Refused(&'static str),
    }

    impl From<Stopped> for TestError {
        fn from(_: Stopped) -> Self {
            Self::Stopped
        }
    }

    impl std::fmt::Display for TestError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    /// A lane that doubles numbers, records its batches, and waits for a
    /// permit before each batch (so a test can hold it while calls queue).
    fn doubling(
        gate: Arc<Semaphore>,
        batches: Arc<Mutex<Vec<Vec<u32>>>>,
    ) -> Lane<u32, u32, TestError> {
        Lane::spawn(move |batch: Vec<u32>| {
            let (gate, batches) = (gate.clone(), batches.clone());
            async move {
                gate.acquire().await.expect("open").forget();
                batches.lock().unwrap().push(batch.clone());
                if batch.len() > 1 && batch.contains(&13) {
                    return Err(TestError::Refused("13 in a batch"));
                }
                if batch == [13] {
                    return Err(TestError::Refused("13 alone"));
                }
                Ok(batch.iter().map(|n| n * 2).collect())
            }
        })
    }

    /// Submits `n` from a task, and waits until the lane has it queued.
    async fn queue(
        lane: &Lane<u32, u32, TestError>,
        n: u32,
    ) -> tokio::task::JoinHandle<Result<u32, TestError>> {
        let lane_ = lane.clone();
        let call = tokio::spawn(async move { lane_.submit(n).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        call
    }

    #[tokio::test]
    async fn calls_queued_during_a_batch_share_the_next_one_each_with_its_own_answer() {
        let (gate, batches) = (Arc::new(Semaphore::new(0)), Arc::default());
        let lane = doubling(gate.clone(), Arc::clone(&batches));
        let first = queue(&lane, 1).await;
        let mut queued = Vec::new();
        for n in 2..=6 {
            queued.push(queue(&lane, n).await);
        }
        gate.add_permits(2);
        assert_eq!(first.await.unwrap().unwrap(), 2);
        for (n, call) in (2..=6).zip(queued) {
            assert_eq!(call.await.unwrap().unwrap(), n * 2);
        }
        assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2, 3, 4, 5, 6]]);
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_call_by_call_so_only_the_bad_call_fails() {
        let (gate, batches) = (Arc::new(Semaphore::new(0)), Arc::default());
        let lane = doubling(gate.clone(), Arc::clone(&batches));
        let first = queue(&lane, 1).await;
        let (a, bad, b) = (
            queue(&lane, 2).await,
            queue(&lane, 13).await,
            queue(&lane, 3).await,
        );
        gate.add_permits(5);
        assert_eq!(first.await.unwrap().unwrap(), 2);
        assert_eq!(a.await.unwrap().unwrap(), 4);
        assert_eq!(bad.await.unwrap(), Err(TestError::Refused("13 alone")));
        assert_eq!(b.await.unwrap().unwrap(), 6);
        assert_eq!(
            *batches.lock().unwrap(),
            vec![vec![1], vec![2, 13, 3], vec![2], vec![13], vec![3]]
        );
    }

    #[tokio::test]
    async fn a_caller_gone_while_queued_is_left_out_of_the_batch() {
        let (gate, batches) = (Arc::new(Semaphore::new(0)), Arc::default());
        let lane = doubling(gate.clone(), Arc::clone(&batches));
        let first = queue(&lane, 1).await;
        let gone = queue(&lane, 7).await;
        gone.abort();
        let _ = gone.await;
        let kept = queue(&lane, 8).await;
        gate.add_permits(2);
        assert_eq!(first.await.unwrap().unwrap(), 2);
        assert_eq!(kept.await.unwrap().unwrap(), 16);
        assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![8]]);
    }
}
