//! The lane's guarantees, on a lane that doubles numbers: batching of what
//! queued meanwhile, retry one by one, failures shared by a batch, keys that
//! never share a batch, and callers that left.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::FutureExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::*;
use crate::server::RunToCompletionLayer;

#[derive(Debug, Clone, PartialEq)]
enum TestError {
    Stopped,
    Abandoned,
    Refused(&'static str),
    Down,
}

impl From<Stopped> for TestError {
    fn from(_: Stopped) -> Self {
        Self::Stopped
    }
}

impl From<Abandoned> for TestError {
    fn from(_: Abandoned) -> Self {
        Self::Abandoned
    }
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

type Batches = Arc<Mutex<Vec<Vec<u32>>>>;
type TestLane = Lane<u32, u32, TestError>;

/// A lane that doubles numbers, records its batches, and waits for a permit
/// before each batch (so a test can hold it while calls queue). 13 fails any
/// batch it is in; 99 fails its batch as if the database were down.
fn doubling<K>(
    policy: Policy<u32, TestError, K>,
    gate: Arc<Semaphore>,
    batches: Batches,
) -> TestLane
where
    K: Hash + Eq + Send + 'static,
{
    let (lane, _task) = Lane::spawn_with(policy, move |batch: Vec<u32>| {
        let (gate, batches) = (gate.clone(), batches.clone());
        async move {
            gate.acquire().await.expect("open").forget();
            batches.lock().unwrap().push(batch.clone());
            if batch.contains(&99) {
                return Err(TestError::Down);
            }
            if batch.len() > 1 && batch.contains(&13) {
                return Err(TestError::Refused("13 in a batch"));
            }
            if batch == [13] {
                return Err(TestError::Refused("13 alone"));
            }
            Ok(batch.iter().map(|n| n * 2).collect())
        }
    });
    lane
}

fn held() -> (Arc<Semaphore>, Batches) {
    (Arc::new(Semaphore::new(0)), Arc::default())
}

/// Submits `n` from a task, and waits until the lane has it queued.
async fn queue(lane: &TestLane, n: u32) -> tokio::task::JoinHandle<Result<u32, TestError>> {
    let lane_ = lane.clone();
    let call = tokio::spawn(async move { lane_.submit(n).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    call
}

/// A gRPC caller that has left: the call it came with was dropped after its
/// handler started.
fn caller_who_left() -> Caller {
    let (seen, caller) = std::sync::mpsc::channel();
    let mut service =
        RunToCompletionLayer.layer(tower::service_fn(move |request: http::Request<()>| {
            let caller: &Caller = request.extensions().get().expect("a caller");
            seen.send(caller.clone()).unwrap();
            std::future::pending::<Result<(), Infallible>>()
        }));
    let mut call = service.call(http::Request::new(()));
    assert!(
        (&mut call).now_or_never().is_none(),
        "the handler never ends"
    );
    drop(call);
    let caller = caller.recv().unwrap();
    assert!(caller.has_left());
    caller
}

/// Holds the lane in a batch of `1`, queues `calls` meanwhile, then lets
/// every batch run; the answers to `calls`, in order.
async fn queued_behind_one(
    lane: &TestLane,
    gate: &Semaphore,
    calls: &[u32],
) -> Vec<Result<u32, TestError>> {
    let first = queue(lane, 1).await;
    let mut queued = Vec::new();
    for &n in calls {
        queued.push(queue(lane, n).await);
    }
    gate.add_permits(100);
    assert_eq!(first.await.unwrap(), Ok(2));
    let mut answers = Vec::new();
    for call in queued {
        answers.push(call.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn calls_queued_during_a_batch_share_the_next_one_each_with_its_own_answer() {
    let (gate, batches) = held();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let policy = Policy::default().on_batch({
        let sizes = sizes.clone();
        move |size| sizes.lock().unwrap().push(size)
    });
    let lane = doubling(policy, gate.clone(), batches.clone());
    let answers = queued_behind_one(&lane, &gate, &[2, 3, 4, 5, 6]).await;
    assert_eq!(answers, [4, 6, 8, 10, 12].map(Ok));
    assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2, 3, 4, 5, 6]]);
    assert_eq!(*sizes.lock().unwrap(), vec![1, 5]);
}

#[tokio::test]
async fn a_failed_batch_is_retried_call_by_call_so_only_the_bad_call_fails() {
    let (gate, batches) = held();
    let lane = doubling(Policy::default(), gate.clone(), batches.clone());
    let answers = queued_behind_one(&lane, &gate, &[2, 13, 3]).await;
    assert_eq!(answers, [Ok(4), Err(TestError::Refused("13 alone")), Ok(6)]);
    assert_eq!(
        *batches.lock().unwrap(),
        vec![vec![1], vec![2, 13, 3], vec![2], vec![13], vec![3]]
    );
}

#[tokio::test]
async fn a_failure_shared_by_the_batch_is_every_calls_answer_without_a_retry() {
    let (gate, batches) = held();
    let policy = Policy::default().fail_together_when(|e| *e == TestError::Down);
    let lane = doubling(policy, gate.clone(), batches.clone());
    let answers = queued_behind_one(&lane, &gate, &[2, 99, 3]).await;
    assert_eq!(answers, vec![Err(TestError::Down); 3]);
    assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2, 99, 3]]);
}

#[tokio::test]
async fn calls_with_the_same_key_never_share_a_batch() {
    let (gate, batches) = held();
    // The key is the last digit: 12, 22 and 32 wait for separate batches.
    let policy = Policy::default().distinct_by(|n: &u32| n % 10);
    let lane = doubling(policy, gate.clone(), batches.clone());
    let answers = queued_behind_one(&lane, &gate, &[12, 22, 3, 32]).await;
    assert_eq!(answers, [24, 44, 6, 64].map(Ok));
    assert_eq!(
        *batches.lock().unwrap(),
        vec![vec![1], vec![12, 3], vec![22], vec![32]]
    );
}

#[tokio::test]
async fn a_caller_gone_while_queued_is_left_out_of_the_batch() {
    let (gate, batches) = held();
    let lane = doubling(Policy::default(), gate.clone(), batches.clone());
    let first = queue(&lane, 1).await;
    let gone = queue(&lane, 7).await;
    gone.abort();
    let _ = gone.await;
    let left = tokio::spawn({
        let (lane, caller) = (lane.clone(), caller_who_left());
        async move { lane.submit_for(5, &caller).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let kept = queue(&lane, 8).await;
    gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap(), 2);
    assert_eq!(left.await.unwrap(), Err(TestError::Abandoned));
    assert_eq!(kept.await.unwrap().unwrap(), 16);
    assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![8]]);
}

#[tokio::test]
async fn a_caller_still_waiting_is_served_through_submit_for() {
    let (gate, batches) = held();
    let lane = doubling(Policy::default(), gate.clone(), batches);
    gate.add_permits(1);
    assert_eq!(lane.submit_for(4, &Caller::default()).await, Ok(8));
}
