//! Group commit: one task per lane takes every request queued while its
//! previous batch was in flight (no timer: a lone request goes at once) and
//! runs them as one batch, so concurrent writers share one transaction (and
//! one WAL flush, one hold of a hot row's lock) instead of queueing for one
//! each.
//!
//! What every lane guarantees:
//! - each request gets its own outcome, as the batch function decided it;
//! - a request whose submitter has gone, or whose gRPC [`Caller`] has left,
//!   by the time its batch is formed is left out: nothing of it has started,
//!   and nobody waits for its answer ([`Lane::submit_for`] answers
//!   [`Abandoned`]);
//! - a batch that fails is retried request by request, so one bad request
//!   fails alone (unless [`Policy::fail_together_when`] says the failure is
//!   everyone's, such as the database being out of reach);
//! - a batch of one runs in its submitter's tracing span; a shared batch runs
//!   in a `group_commit` span linked to every submitter's.
//!
//! [`Policy::distinct_by`] keeps two requests with the same key out of one
//! batch: the later one waits for the next batch, where it sees what the
//! first one stored, as it would have had it run after it alone.

use std::{
    collections::{HashSet, VecDeque},
    future::Future,
    hash::Hash,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{Instrument, Span};

use crate::server::Caller;

/// Most requests one batch carries: bounds the statements' sizes and how
/// long a batch holds its locks.
pub const MAX_BATCH: usize = 128;
/// Requests that may wait before submitters are slowed down.
const QUEUE: usize = 4096;

type Reply<O, E> = oneshot::Sender<Result<O, E>>;
/// Where a request's outcome goes, and the span its retry alone runs in.
type Answer<O, E> = (Reply<O, E>, Span);

/// The lane's task has stopped (the process is shutting down): the request
/// was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a group-commit worker has stopped")]
pub struct Stopped;

/// The gRPC caller left (it hung up, or its deadline passed) before the
/// request's batch was formed: the request was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the caller went away before its request was run")]
pub struct Abandoned;

/// One queued request and what answering it needs.
struct Job<R, O, E> {
    request: R,
    reply: Reply<O, E>,
    /// The submitter's span: a batch of one runs in it, a shared one links it.
    span: Span,
    /// The gRPC caller the request is for, if any.
    caller: Option<Caller>,
}

impl<R, O, E> Job<R, O, E> {
    /// Nobody waits for this job's answer any more.
    fn abandoned(&self) -> bool {
        self.reply.is_closed() || self.caller.as_ref().is_some_and(Caller::has_left)
    }
}

/// How a lane forms and reports its batches. [`Lane::spawn`] uses the
/// default: no keys, every failed batch retried one by one, no hook.
pub struct Policy<R, E, K = ()> {
    /// Two requests with the same key never share a batch.
    key: Option<fn(&R) -> K>,
    /// Failures answered to the whole batch instead of retried one by one.
    fail_together: Option<SharedFailure<E>>,
    /// Told the size of every batch formed (retries alone are not batches).
    on_batch: Option<Box<dyn Fn(usize) + Send + Sync>>,
}

/// A failure `shared` accepts is everyone's: each request of the batch gets
/// a `copy` of it.
struct SharedFailure<E> {
    shared: fn(&E) -> bool,
    copy: fn(&E) -> E,
}

impl<R, E> Default for Policy<R, E> {
    fn default() -> Self {
        Self {
            key: None,
            fail_together: None,
            on_batch: None,
        }
    }
}

impl<R, E, K> Policy<R, E, K> {
    /// Requests with equal `key`s go in separate batches, oldest first.
    pub fn distinct_by<K2: Hash + Eq>(self, key: fn(&R) -> K2) -> Policy<R, E, K2> {
        Policy {
            key: Some(key),
            fail_together: self.fail_together,
            on_batch: self.on_batch,
        }
    }

    /// A batch failing with an error `shared` accepts is not retried: every
    /// request of it gets a copy of that error.
    pub fn fail_together_when(mut self, shared: fn(&E) -> bool) -> Self
    where
        E: Clone,
    {
        self.fail_together = Some(SharedFailure {
            shared,
            copy: E::clone,
        });
        self
    }

    /// Calls `observe` with the size of every batch formed (a metrics hook).
    pub fn on_batch(mut self, observe: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_batch = Some(Box::new(observe));
        self
    }
}

/// A handle to one lane. Cheap to clone; the lane's task ends once every
/// handle is dropped and what was queued is answered.
pub struct Lane<R, O, E> {
    requests: mpsc::Sender<Job<R, O, E>>,
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
    /// Starts the lane's task with the default [`Policy`]; `run` does one
    /// batch, answering one outcome per request in order, or failing the
    /// whole batch (nothing written).
    pub fn spawn<F, Fut>(run: F) -> Self
    where
        F: Fn(Vec<R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
    {
        Self::spawn_with(Policy::default(), run).0
    }

    /// Starts the lane's task with `policy`; returns the task too, for a
    /// shutdown that waits until what was queued is answered.
    pub fn spawn_with<K, F, Fut>(policy: Policy<R, E, K>, run: F) -> (Self, JoinHandle<()>)
    where
        K: Hash + Eq + Send + 'static,
        F: Fn(Vec<R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
    {
        let (requests, queue) = mpsc::channel(QUEUE);
        let task = tokio::spawn(work(policy, run, queue));
        (Self { requests }, task)
    }

    /// Runs `request` in the next batch.
    pub async fn submit(&self, request: R) -> Result<O, E> {
        let answer = self.enqueue(request, None).await?;
        answer.await.map_err(|_| Stopped)?
    }

    /// Runs `request` in the next batch, unless `caller` has left by the time
    /// the batch is formed: then it is not run, and the answer is
    /// [`Abandoned`].
    pub async fn submit_for(&self, request: R, caller: &Caller) -> Result<O, E>
    where
        E: From<Abandoned>,
    {
        let answer = self.enqueue(request, Some(caller.clone())).await?;
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) if caller.has_left() => Err(Abandoned.into()),
            Err(_) => Err(Stopped.into()),
        }
    }

    async fn enqueue(
        &self,
        request: R,
        caller: Option<Caller>,
    ) -> Result<oneshot::Receiver<Result<O, E>>, Stopped> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            reply,
            span: Span::current(),
            caller,
        };
        self.requests.send(job).await.map_err(|_| Stopped)?;
        Ok(answer)
    }
}

async fn work<R, O, E, K, F, Fut>(
    policy: Policy<R, E, K>,
    run: F,
    mut queue: mpsc::Receiver<Job<R, O, E>>,
) where
    R: Clone,
    E: From<Stopped> + std::fmt::Display,
    K: Hash + Eq,
    F: Fn(Vec<R>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, E>>,
{
    // Received but not run yet, oldest first (deferred duplicates included).
    let mut waiting = VecDeque::new();
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
        let batch = policy.next_batch(&mut waiting);
        if batch.is_empty() {
            continue;
        }
        if let Some(observe) = &policy.on_batch {
            observe(batch.len());
        }
        policy.run_batch(&run, batch).await;
    }
}

impl<R, E, K: Hash + Eq> Policy<R, E, K> {
    /// Takes up to [`MAX_BATCH`] jobs off `waiting`, oldest first, at most one
    /// per key (a later one stays for the next batch). An abandoned job is
    /// dropped: dropping its reply tells a submitter still waiting.
    fn next_batch<O>(&self, waiting: &mut VecDeque<Job<R, O, E>>) -> Vec<Job<R, O, E>> {
        let mut keys = HashSet::new();
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        for job in waiting.drain(..) {
            if job.abandoned() {
                continue;
            }
            if batch.len() < MAX_BATCH && self.key.is_none_or(|key| keys.insert(key(&job.request)))
            {
                batch.push(job);
            } else {
                later.push_back(job);
            }
        }
        *waiting = later;
        batch
    }

    /// Runs one batch and answers its submitters (see the module header for
    /// what happens when it fails).
    async fn run_batch<O, F, Fut>(&self, run: &F, batch: Vec<Job<R, O, E>>)
    where
        R: Clone,
        E: From<Stopped> + std::fmt::Display,
        F: Fn(Vec<R>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, E>>,
    {
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
        let (requests, answers): (Vec<R>, Vec<Answer<O, E>>) = batch
            .into_iter()
            .map(|job| (job.request, (job.reply, job.span)))
            .unzip();
        let error = match run(requests.clone()).instrument(span).await {
            Ok(outcomes) => {
                for ((reply, _), outcome) in answers.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                return;
            }
            Err(error) => error,
        };
        match &self.fail_together {
            _ if answers.len() == 1 => {
                let (reply, _) = answers.into_iter().next().expect("one answer");
                let _ = reply.send(Err(error));
            }
            Some(failure) if (failure.shared)(&error) => {
                for (reply, _) in answers {
                    let _ = reply.send(Err((failure.copy)(&error)));
                }
            }
            _ => {
                tracing::warn!(%error, batch = requests.len(), "group-commit batch failed; retrying one by one");
                for (request, (reply, span)) in requests.into_iter().zip(answers) {
                    let outcome = run(vec![request])
                        .instrument(span)
                        .await
                        .and_then(|mut one| one.pop().ok_or_else(|| Stopped.into()));
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
