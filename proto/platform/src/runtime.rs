//! What every binary does the same way at stop (waiting for SIGTERM /
//! Ctrl-C), for its container health check (`--probe`), and to keep work
//! from being cut half-way ([`run_to_completion`]). Tracing setup is in
//! [`crate::telemetry`].

/// Completes on SIGTERM (what orchestrators send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// `GET path` over plain HTTP/1.0 at `addr`; true when the answer's status is
/// 200 within `timeout`. What an HTTP service's `--probe` runs (container
/// health checks need no curl in the image).
pub async fn http_probe(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        // "HTTP/1.x 200"
        Some(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
}

/// Starts `work` at once in a task of its own and returns a future for its
/// outcome: dropping that future no longer drops `work`, which runs to its end
/// whatever becomes of the caller. For every step that holds a transaction, a
/// lock or a half-done saga (gRPC calls get it from
/// [`crate::server::RunToCompletionLayer`]; background loops and admin
/// requests call it). A panic in `work` is passed on to the caller.
pub fn run_to_completion<F>(work: F) -> impl Future<Output = F::Output> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument;
    let task = tokio::spawn(work.in_current_span());
    async move {
        match task.await {
            Ok(done) => done,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Only a runtime shutting down cancels the task: nobody awaits this then.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Waits for `work` at most `limit`; past it, logs that `what` did not finish
/// and gives up on it. For the last steps of a shutdown (a worker draining, a
/// pool closing): past the grace period, a call stuck in the database must not
/// keep the process alive for ever.
pub async fn wait_at_most(limit: std::time::Duration, what: &str, work: impl Future) {
    if tokio::time::timeout(limit, work).await.is_err() {
        tracing::warn!(what, "did not finish in time; going on without it");
    }
}
