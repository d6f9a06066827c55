//! The drain on SIGTERM, the same in every process: turn unready at once,
//! keep serving normally for a *drain delay*, then stop accepting and let
//! in-flight requests finish (for at most the shutdown grace).
//!
//! Why the delay: whoever sends traffic (a load balancer polling `/ready`,
//! kube-proxy and ingress controllers following the endpoints, a gRPC client
//! re-resolving a headless Service and probing health) learns that an
//! instance is going only some time after it is told to go. An instance that
//! stopped accepting at once would refuse the requests sent to it in that
//! window; one that keeps serving while it reports itself unready answers
//! them, and by the end of the delay nobody sends it new ones.
//!
//! The delay is `DRAIN_DELAY` (a duration, `5s`, read by
//! [`crate::settings::parse_duration`]); `DRAIN_DELAY_SECS` (a number of
//! seconds, the spelling of the settings before durations carried their
//! unit) is read as it, with a warning (see [`crate::renamed`]).
//! The binaries default to none (0): on a developer machine and in tests a
//! process is stopped often and nothing balances over it, so waiting would
//! only slow every stop; the deployment manifests, where a balancer does
//! exist, set `5s`.

use std::{future::Future, time::Duration};

use tokio::sync::watch;

/// `DRAIN_DELAY`, a clap argument group every process's configuration
/// flattens.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DrainSettings {
    /// After SIGTERM, how long to keep serving while reporting not ready
    /// (`/ready` 503, gRPC health NOT_SERVING), so balancers stop sending
    /// first; then the process stops accepting and drains. A duration with
    /// its unit (`5s`, `500ms`). Unset: 0.
    #[arg(long, env = "DRAIN_DELAY", value_parser = crate::settings::parse_duration)]
    pub drain_delay: Option<Duration>,
}

impl DrainSettings {
    /// The drain delay, 0 when unset.
    pub fn delay(&self) -> Duration {
        self.drain_delay.unwrap_or(Duration::ZERO)
    }
}

/// Whether this process is draining, readable anywhere (readiness handlers,
/// admin hooks); cheap to clone. Turns true once and stays so.
#[derive(Clone, Debug)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    /// A flag that is never raised (tests, tools).
    pub fn never() -> Self {
        Self(watch::channel(false).1)
    }

    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once draining has started (never, if it cannot start any
    /// more).
    pub async fn started(mut self) {
        if self.0.wait_for(|draining| *draining).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Raises the [`Draining`] flag its [`Drain::flag`] hands out.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<bool>,
    delay: Duration,
}

impl Drain {
    pub fn new(delay: Duration) -> Self {
        Self {
            tx: watch::channel(false).0,
            delay,
        }
    }

    /// The flag, for whoever reports readiness.
    pub fn flag(&self) -> Draining {
        Draining(self.tx.subscribe())
    }

    /// Waits for `shutdown`, raises the flag (so readiness fails at once),
    /// runs `on_start` (e.g. turn gRPC health NOT_SERVING), keeps serving for
    /// the delay, and completes: the moment to stop accepting.
    pub async fn after(
        self,
        shutdown: impl Future<Output = ()>,
        on_start: impl Future<Output = ()>,
    ) {
        shutdown.await;
        self.tx.send_replace(true);
        on_start.await;
        if self.delay.is_zero() {
            return;
        }
        tracing::info!(
            delay = ?self.delay,
            "draining: reporting not ready, still serving until the drain delay ends"
        );
        tokio::time::sleep(self.delay).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        drain: DrainSettings,
    }

    #[test]
    fn the_delay_is_a_duration_with_its_unit_and_zero_when_unset() {
        let parse =
            |args: &[&str]| Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()));
        assert_eq!(parse(&[]).unwrap().drain.delay(), Duration::ZERO);
        assert_eq!(
            parse(&["--drain-delay", "2s"]).unwrap().drain.delay(),
            Duration::from_secs(2)
        );
        assert_eq!(
            parse(&["--drain-delay", "500ms"]).unwrap().drain.delay(),
            Duration::from_millis(500)
        );
        // A bare number has no unit: refused (DRAIN_DELAY_SECS=7 is read as
        // --drain-delay=7s, see `crate::renamed`).
        assert!(parse(&["--drain-delay", "5"]).is_err());
    }

    #[tokio::test]
    async fn the_flag_rises_at_once_and_the_drain_ends_after_the_delay() {
        let delay = Duration::from_millis(300);
        let drain = Drain::new(delay);
        let flag = drain.flag();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(drain.after(async move { drop(rx.await) }, async {}));
        tokio::task::yield_now().await;
        assert!(!flag.is_draining());
        tx.send(()).unwrap();
        flag.clone().started().await;
        assert!(flag.is_draining());
        assert!(!task.is_finished(), "still serving during the delay");
        task.await.unwrap();
        assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    }
}
