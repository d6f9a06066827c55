//! Client-side load balancing for gRPC.
//!
//! gRPC runs over long-lived HTTP/2 connections, which an L4 load balancer
//! (a Kubernetes ClusterIP Service) does not spread: every call of a client
//! would go to the one replica its connection landed on. So clients balance
//! themselves: [`balanced_channel`] resolves every target (a comma-separated
//! list of `http://host:port`; in Kubernetes one headless Service name that
//! resolves to every ready pod) into all its addresses, keeps the reachable
//! ones in a tonic balanced [`Channel`] (power of two choices), and re-resolves
//! on an interval, so new replicas get traffic and removed or dead ones stop
//! getting it.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use tokio::{net::TcpStream, sync::mpsc::Sender};
use tonic::transport::{Channel, Endpoint, channel::Change};

/// How a client channel behaves.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Deadline of every call made on the channel.
    pub request_timeout: Duration,
    /// How often targets are re-resolved and probed.
    pub refresh_interval: Duration,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no target given")]
    Empty,
    #[error("target {0:?} is not of the form http://host:port")]
    Malformed(String),
}

/// One `http://host:port` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

/// Parses `http://a:1,http://b:2` (spaces allowed after commas).
pub fn parse_targets(targets: &str) -> Result<Vec<Target>, TargetError> {
    let parsed = targets
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let uri: http::Uri = t
                .parse()
                .map_err(|_| TargetError::Malformed(t.to_owned()))?;
            if uri.scheme_str() != Some("http") {
                return Err(TargetError::Malformed(t.to_owned()));
            }
            let host = uri
                .host()
                .ok_or_else(|| TargetError::Malformed(t.to_owned()))?;
            let port = uri
                .port_u16()
                .ok_or_else(|| TargetError::Malformed(t.to_owned()))?;
            // `[::1]` -> `::1` for the resolver.
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            Ok(Target { host, port })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(parsed)
}

/// A channel that spreads calls over every reachable address of `targets`.
/// Must be called inside a tokio runtime: it spawns the resolver task, which
/// ends by itself once every clone of the channel is dropped.
pub fn balanced_channel(targets: &str, settings: ChannelSettings) -> Result<Channel, TargetError> {
    let targets = parse_targets(targets)?;
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(keep_resolving(targets, settings, changes));
    Ok(channel)
}

async fn keep_resolving(
    targets: Vec<Target>,
    settings: ChannelSettings,
    changes: Sender<Change<SocketAddr, Endpoint>>,
) {
    let mut current: BTreeSet<SocketAddr> = BTreeSet::new();
    loop {
        let reachable = reachable_addresses(&targets, settings.connect_timeout).await;
        for gone in current.difference(&reachable) {
            tracing::info!(address = %gone, "endpoint removed from the balancer");
            if changes.send(Change::Remove(*gone)).await.is_err() {
                return; // every channel clone was dropped
            }
        }
        for new in reachable.difference(&current) {
            let endpoint = Endpoint::from_shared(format!("http://{new}"))
                .expect("an http URI built from a socket address is valid")
                .connect_timeout(settings.connect_timeout)
                .timeout(settings.request_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true);
            tracing::info!(address = %new, "endpoint added to the balancer");
            if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                return;
            }
        }
        current = reachable;
        tokio::select! {
            () = tokio::time::sleep(settings.refresh_interval) => {}
            () = changes.closed() => return,
        }
    }
}

/// Every address the targets resolve to that accepts a TCP connection now.
pub async fn reachable_addresses(
    targets: &[Target],
    connect_timeout: Duration,
) -> BTreeSet<SocketAddr> {
    let mut candidates = BTreeSet::new();
    for target in targets {
        match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
            Ok(addrs) => candidates.extend(addrs),
            Err(error) => tracing::warn!(host = %target.host, %error, "cannot resolve"),
        }
    }
    let probes = candidates.into_iter().map(|addr| async move {
        let connected = tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await;
        matches!(connected, Ok(Ok(_))).then_some(addr)
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_of_targets() {
        assert_eq!(
            parse_targets("http://catalog:50051, http://[::1]:7").unwrap(),
            vec![
                Target {
                    host: "catalog".into(),
                    port: 50051
                },
                Target {
                    host: "::1".into(),
                    port: 7
                }
            ]
        );
        assert!(matches!(parse_targets(""), Err(TargetError::Empty)));
        assert!(matches!(
            parse_targets("catalog:50051"),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            parse_targets("http://catalog"),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            parse_targets("https://catalog:1"),
            Err(TargetError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn keeps_only_addresses_that_accept_connections() {
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (up_addr, down_addr) = (up.local_addr().unwrap(), down.local_addr().unwrap());
        drop(down);
        let targets = parse_targets(&format!("http://{up_addr},http://{down_addr}")).unwrap();
        let reachable = reachable_addresses(&targets, Duration::from_millis(500)).await;
        assert_eq!(reachable, BTreeSet::from([up_addr]));
    }
}
