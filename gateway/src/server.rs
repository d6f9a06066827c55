//! The HTTP server loop: axum's router on hyper, with what `axum::serve`
//! does not set: a bound on how long a client may take to send its request
//! headers (slowloris: a connection that sends nothing, or trickles its head,
//! is closed after HEADER_READ_TIMEOUT_SECS), and the same graceful drain.
//!
//! Bodies are bounded by the router's request timeout (408), backend calls by
//! their gRPC deadline, so every phase of a request has a limit.

use std::{future::Future, io, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};

/// Serves `router` on `listener` until `signal` completes, then stops
/// accepting and waits for the open connections to finish their requests
/// (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    // Each connection holds a receiver of `draining`; `closed()` resolves
    // when the last one is gone.
    let (draining_tx, draining_rx) = watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());

    tokio::pin!(signal);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let mut draining = draining_rx.clone();
        tokio::spawn(async move {
            // hyper's header timer starts once it reads a request head, and
            // the HTTP/1-or-2 detection before that waits for bytes without
            // a limit: a connection that sends nothing is dropped here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_read_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        // Clients that go away, or are cut for being too slow.
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                // `draining` only ever changes to true (or its sender goes).
                _ = draining.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(draining);
        });
    }
    drop(listener);
    let _ = draining_tx.send(true);
    drop(draining_rx);
    draining_tx.closed().await;
    Ok(())
}
