//! Client-side load balancing for gRPC.
//!
//! gRPC runs over long-lived HTTP/2 connections, which an L4 load balancer
//! (a Kubernetes ClusterIP Service) does not spread: every call of a client
//! would go to the one replica its connection landed on. So clients balance
//! themselves: [`ServiceChannel::balanced`] resolves every target (a comma-separated
//! list of `http://host:port`; in Kubernetes one headless Service name that
//! resolves to every ready pod) into all its addresses, keeps the reachable
//! ones in a tonic balanced [`Channel`] (power of two choices), and re-resolves
//! on an interval, so new replicas get traffic and removed or dead ones stop
//! getting it.
//!
//! "Reachable" means *ready*: each address that accepts a TCP connection is
//! also asked `grpc.health.v1` (overall `""`) on a connection kept for that
//! ([`Prober`]). One that answers NOT_SERVING (its database is down, or it is
//! draining after SIGTERM) leaves the balancer at once; one that stops
//! answering at all (a hung process: the kernel still completes the
//! handshake) leaves it after [`SLOW_LIMIT`] probes in a row time out. A
//! server without the health service (UNIMPLEMENTED) counts as ready, as it
//! did when only TCP was probed. With no ready address left, calls are
//! refused at once (UNAVAILABLE: 503 through the gateway) instead of each
//! waiting for its deadline on a replica that will not answer.
//!
//! With [`ChannelSettings::tls`] set, every connection is TLS (targets are
//! then `https://host:port`, and `http://` is refused, as is `https://`
//! without it): the server's certificate must chain to the configured CA and
//! name the target's *host*, even though balanced connections go to the
//! resolved IP addresses (one headless Service name, many pod IPs, one
//! certificate name).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::TcpStream,
    sync::{Notify, mpsc::Sender, watch},
};
use tonic::transport::{Channel, Endpoint, channel::Change};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::tls::ClientTls;

/// How a client channel behaves.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Bound on establishing one connection, TLS handshake included (and on
    /// one TCP probe).
    pub connect_timeout: Duration,
    /// How often targets are re-resolved and probed (balanced channels).
    pub refresh_interval: Duration,
    /// TLS for every connection (`https://` targets); `None`: plaintext.
    pub tls: Option<ClientTls>,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            refresh_interval: Duration::from_secs(5),
            tls: None,
        }
    }
}

/// The settings every connection to a service gets.
pub fn configure(endpoint: Endpoint, settings: &ChannelSettings) -> Endpoint {
    endpoint
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        // Notice a dead connection (e.g. a replica gone) between calls.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
}

/// One connection's endpoint: `authority` (`host:port` or `ip:port`) is
/// where it connects; with TLS, `server_name` is what the certificate must
/// name (the target's host, also when `authority` is one of its addresses).
fn endpoint(
    authority: &str,
    server_name: &str,
    settings: &ChannelSettings,
) -> Result<Endpoint, String> {
    let endpoint = match &settings.tls {
        None => Endpoint::from_shared(format!("http://{authority}")).map_err(|e| e.to_string())?,
        Some(tls) => Endpoint::from_shared(format!("https://{authority}"))
            .map_err(|e| e.to_string())?
            .tls_config(
                tls.config_for(server_name)
                    .timeout(settings.connect_timeout),
            )
            .map_err(|error| {
                // tonic says "transport error"; the reason is the source.
                std::error::Error::source(&error)
                    .map_or_else(|| error.to_string(), ToString::to_string)
            })?,
    };
    Ok(configure(endpoint, settings))
}

/// A long-lived channel to one service, built once at start and cloned into
/// every caller (never a connection per request).
#[derive(Debug, Clone)]
pub struct ServiceChannel {
    channel: Channel,
    /// Balanced channels: how many addresses are reachable now.
    reachable: Option<watch::Receiver<usize>>,
    /// Balanced channels: asks the resolver for a pass now.
    probe_now: Option<Arc<Notify>>,
    /// How long one pass may take (a TCP probe and a health check).
    pass_limit: Duration,
}

impl ServiceChannel {
    /// `balance`: spread calls over every reachable address of `targets`
    /// (see [`Self::balanced`]); otherwise one lazily connected endpoint.
    pub async fn connect(
        targets: &str,
        balance: bool,
        settings: &ChannelSettings,
    ) -> Result<Self, TargetError> {
        if balance {
            Self::balanced(targets, settings).await
        } else {
            Self::lazy(targets, settings)
        }
    }

    /// One endpoint, connected on first use (so a process starts while the
    /// service is down).
    pub fn lazy(url: &str, settings: &ChannelSettings) -> Result<Self, TargetError> {
        let targets = parse_targets_for(url, settings)?;
        let [target] = &targets[..] else {
            return Err(TargetError::SeveralWithoutBalancing(url.to_owned()));
        };
        let authority = format!("{}:{}", bracket(&target.host), target.port);
        let endpoint = endpoint(&authority, &target.host, settings).map_err(|reason| {
            TargetError::Unusable {
                target: url.to_owned(),
                reason,
            }
        })?;
        Ok(Self {
            channel: endpoint.connect_lazy(),
            reachable: None,
            probe_now: None,
            pass_limit: Duration::ZERO,
        })
    }

    /// Every reachable address of every target, re-resolved and probed every
    /// `refresh_interval` in a background task (which ends when the last
    /// clone of the channel is dropped). Returns after the first pass (bounded
    /// by twice the connect timeout), so the first call finds addresses.
    pub async fn balanced(targets: &str, settings: &ChannelSettings) -> Result<Self, TargetError> {
        let targets = parse_targets_for(targets, settings)?;
        // Every target's endpoint is built once here, so that a host the TLS
        // configuration cannot check a certificate against stops the start
        // rather than every later connection.
        for target in &targets {
            let authority = format!("{}:{}", bracket(&target.host), target.port);
            endpoint(&authority, &target.host, settings).map_err(|reason| {
                TargetError::Unusable {
                    target: format!("{}:{}", target.host, target.port),
                    reason,
                }
            })?;
        }
        let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
        let (count_tx, count_rx) = watch::channel(0);
        let probe_now = Arc::new(Notify::new());
        let resolver = Resolver {
            targets,
            settings: settings.clone(),
            changes,
            count: count_tx,
            current: BTreeMap::new(),
            probers: BTreeMap::new(),
            probe_now: probe_now.clone(),
        };
        let mut first_pass = count_rx.clone();
        tokio::spawn(resolver.run());
        // A pass is a TCP probe and a health check, each bounded.
        let first_pass_limit = settings.connect_timeout + probe_timeout(settings);
        let _ = tokio::time::timeout(first_pass_limit, first_pass.changed()).await;
        Ok(Self {
            channel,
            reachable: Some(count_rx),
            probe_now: Some(probe_now),
            pass_limit: first_pass_limit,
        })
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A balanced channel whose last probe found no ready address (none
    /// reachable, or every one NOT_SERVING or hung): a call would wait for
    /// one until its deadline, so callers answer UNAVAILABLE at once.
    pub fn has_no_reachable_address(&self) -> bool {
        self.reachable
            .as_ref()
            .is_some_and(|count| *count.borrow() == 0)
    }

    /// Whether a call can go out now: an unbalanced channel always; a
    /// balanced one when its last pass found a ready address or, if none,
    /// when a pass asked for now finds one. That pass is bounded (a TCP probe
    /// and a health check), so a service that came back is used at once
    /// rather than after the next `refresh_interval`, and one still down is
    /// refused in that bound rather than after a call's deadline. Concurrent
    /// callers share the pass.
    pub async fn ready_or_probe(&self) -> bool {
        let (Some(reachable), Some(probe_now)) = (&self.reachable, &self.probe_now) else {
            return true;
        };
        if *reachable.borrow() > 0 {
            return true;
        }
        let mut pass = reachable.clone();
        pass.mark_unchanged();
        probe_now.notify_one();
        // The next pass to end says. (One that was already under way may
        // have begun before the service came back: that caller gets one 503
        // more, and the pass asked for runs right after it for the next.)
        match tokio::time::timeout(self.pass_limit, pass.changed()).await {
            Ok(Ok(())) => *pass.borrow_and_update() > 0,
            _ => false,
        }
    }

    /// Runs one call under `deadline`: UNAVAILABLE when no address is ready
    /// (see [`Self::ready_or_probe`]), DEADLINE_EXCEEDED when the call
    /// outlives the deadline (whatever the transport does).
    pub async fn call<T>(
        &self,
        deadline: Duration,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        if !self.ready_or_probe().await {
            return Err(tonic::Status::unavailable("no ready address"));
        }
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::deadline_exceeded("deadline exceeded")),
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no target given")]
    Empty,
    #[error("target {0:?} is not of the form http://host:port or https://host:port")]
    Malformed(String),
    #[error("{0:?} names several targets: that needs balancing turned on")]
    SeveralWithoutBalancing(String),
    #[error(
        "target {0:?} is https:// but this client has no TLS configured: \
         set GRPC_TLS_CA_FILE (or use http:// for plaintext)"
    )]
    HttpsWithoutTls(String),
    #[error(
        "target {0:?} is http:// but this client has TLS configured (GRPC_TLS_CA_FILE): \
         use https://"
    )]
    HttpWithTls(String),
    #[error("target {target:?} cannot be used with the TLS configuration: {reason}")]
    Unusable { target: String, reason: String },
}

/// One `http://host:port` or `https://host:port` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// `https://`: TLS, the certificate checked against `host`.
    pub https: bool,
}

/// [`parse_targets`], and every target's scheme matching the settings:
/// `https://` exactly when TLS is configured, so that a URL never silently
/// means something other than what it says.
fn parse_targets_for(
    targets: &str,
    settings: &ChannelSettings,
) -> Result<Vec<Target>, TargetError> {
    let parsed = parse_targets(targets)?;
    let tls = settings.tls.is_some();
    if let Some(wrong) = parsed.iter().find(|target| target.https != tls) {
        let shown = format!(
            "{}://{}:{}",
            if wrong.https { "https" } else { "http" },
            bracket(&wrong.host),
            wrong.port
        );
        return Err(if wrong.https {
            TargetError::HttpsWithoutTls(shown)
        } else {
            TargetError::HttpWithTls(shown)
        });
    }
    Ok(parsed)
}

/// Parses `http://a:1,https://b:2` (spaces allowed after commas).
pub fn parse_targets(targets: &str) -> Result<Vec<Target>, TargetError> {
    let parsed = targets
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let uri: http::Uri = t
                .parse()
                .map_err(|_| TargetError::Malformed(t.to_owned()))?;
            let https = match uri.scheme_str() {
                Some("http") => false,
                Some("https") => true,
                _ => return Err(TargetError::Malformed(t.to_owned())),
            };
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
            Ok(Target { host, port, https })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(parsed)
}

/// Health probes of one address that time out in a row before it leaves the
/// balancer (a hung process). One slow answer on a loaded machine must not
/// take a replica out; a process that stopped answering must not keep
/// getting calls that each wait for their deadline.
pub const SLOW_LIMIT: u32 = 3;

/// How long one health probe may take: the connect timeout, at least 1 s (a
/// busy replica answers health late rather than never).
fn probe_timeout(settings: &ChannelSettings) -> Duration {
    settings.connect_timeout.max(Duration::from_secs(1))
}

/// What one probe of an address found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// SERVING (or no health service: reachable is all one can know).
    Ready,
    /// Refused the TCP connection, or answered anything but SERVING.
    NotReady,
    /// Accepted the connection, but did not answer health in time.
    Slow,
}

/// The health-check connection to one address, kept across passes (a probe
/// costs one small RPC, not a connection and a handshake), and how many of
/// its probes in a row timed out.
struct Prober {
    health: HealthClient<Channel>,
    slow: u32,
}

impl Prober {
    fn new(endpoint: Endpoint) -> Self {
        Self {
            health: HealthClient::new(endpoint.connect_lazy()),
            slow: 0,
        }
    }

    async fn probe(&mut self, address: SocketAddr, settings: &ChannelSettings) -> Probe {
        let connected =
            tokio::time::timeout(settings.connect_timeout, TcpStream::connect(address)).await;
        if !matches!(connected, Ok(Ok(_))) {
            return Probe::NotReady;
        }
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let answer = tokio::time::timeout(probe_timeout(settings), self.health.check(request));
        match answer.await {
            Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
                Probe::Ready
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => Probe::Ready,
            Ok(_) => Probe::NotReady,
            Err(_) => Probe::Slow,
        }
    }
}

/// Keeps a balanced channel's endpoints equal to the ready addresses of its
/// targets.
struct Resolver {
    targets: Vec<Target>,
    settings: ChannelSettings,
    changes: Sender<Change<SocketAddr, Endpoint>>,
    count: watch::Sender<usize>,
    /// The addresses in the channel, each with the host it was resolved from.
    current: BTreeMap<SocketAddr, String>,
    /// A health prober per resolved address (dropped when it no longer
    /// resolves or refuses connections).
    probers: BTreeMap<SocketAddr, Prober>,
    /// A caller found no ready address: run a pass now.
    probe_now: Arc<Notify>,
}

impl Resolver {
    async fn run(mut self) {
        loop {
            if self.sync().await.is_err() {
                return; // every clone of the channel was dropped
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.refresh_interval) => {}
                () = self.probe_now.notified() => {}
                () = self.changes.closed() => return,
            }
        }
    }

    /// One pass; `Err` when the channel is gone.
    async fn sync(&mut self) -> Result<(), ()> {
        let reachable = self.ready_addresses().await;
        let gone: Vec<SocketAddr> = self
            .current
            .keys()
            .filter(|address| !reachable.contains_key(address))
            .copied()
            .collect();
        for address in gone {
            tracing::info!(%address, "address removed from the balancer (unreachable or not ready)");
            self.changes
                .send(Change::Remove(address))
                .await
                .map_err(drop)?;
            self.current.remove(&address);
        }
        for (address, host) in &reachable {
            if self.current.contains_key(address) {
                continue;
            }
            // Checked at start for every target's host; cannot fail here.
            let endpoint = match endpoint(&address.to_string(), host, &self.settings) {
                Ok(endpoint) => endpoint,
                Err(error) => {
                    tracing::error!(%address, %host, %error, "cannot build an endpoint");
                    continue;
                }
            };
            tracing::info!(%address, %host, "address added to the balancer");
            self.changes
                .send(Change::Insert(*address, endpoint))
                .await
                .map_err(drop)?;
            self.current.insert(*address, host.clone());
        }
        self.count.send_replace(self.current.len());
        Ok(())
    }

    /// Every resolved address that is ready now (see the module header),
    /// each with the host it was resolved from; probed concurrently.
    async fn ready_addresses(&mut self) -> BTreeMap<SocketAddr, String> {
        let candidates = resolve(&self.targets).await;
        self.probers
            .retain(|address, _| candidates.contains_key(address));
        for (address, host) in &candidates {
            if !self.probers.contains_key(address) {
                match endpoint(&address.to_string(), host, &self.settings) {
                    Ok(endpoint) => {
                        self.probers.insert(*address, Prober::new(endpoint));
                    }
                    // Checked at start for every target's host; cannot fail here.
                    Err(error) => {
                        tracing::error!(%address, %host, %error, "cannot build an endpoint")
                    }
                }
            }
        }
        let settings = &self.settings;
        let probes = self.probers.iter_mut().map(|(address, prober)| async move {
            let probe = prober.probe(*address, settings).await;
            prober.slow = if probe == Probe::Slow {
                prober.slow + 1
            } else {
                0
            };
            if probe == Probe::Slow {
                tracing::warn!(%address, in_a_row = prober.slow, "health probe timed out");
            }
            let ready = match probe {
                Probe::Ready => true,
                Probe::NotReady => false,
                Probe::Slow => prober.slow < SLOW_LIMIT,
            };
            ready.then_some(*address)
        });
        let ready: Vec<SocketAddr> = futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        candidates
            .into_iter()
            .filter(|(address, _)| ready.contains(address))
            .collect()
    }
}

/// Every address the targets resolve to, each with the host it was resolved
/// from (the name its certificate is checked against; the first target's,
/// when two resolve to one address).
async fn resolve(targets: &[Target]) -> BTreeMap<SocketAddr, String> {
    let mut candidates = BTreeMap::new();
    for target in targets {
        match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
            Ok(addrs) => {
                for addr in addrs {
                    candidates
                        .entry(addr)
                        .or_insert_with(|| target.host.clone());
                }
            }
            Err(error) => tracing::warn!(host = %target.host, %error, "cannot resolve"),
        }
    }
    candidates
}

/// Every address the targets resolve to that accepts a TCP connection now,
/// each with the host it was resolved from (the name its certificate is
/// checked against; the first target's, when two resolve to one address).
pub async fn reachable_addresses(
    targets: &[Target],
    connect_timeout: Duration,
) -> BTreeMap<SocketAddr, String> {
    let candidates = resolve(targets).await;
    let probes = candidates.into_iter().map(|(addr, host)| async move {
        let connected = tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await;
        matches!(connected, Ok(Ok(_))).then_some((addr, host))
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
            parse_targets("http://catalog:50051, https://[::1]:7").unwrap(),
            vec![
                Target {
                    host: "catalog".into(),
                    port: 50051,
                    https: false,
                },
                Target {
                    host: "::1".into(),
                    port: 7,
                    https: true,
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
            parse_targets("ftp://catalog:1"),
            Err(TargetError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn the_scheme_must_match_the_tls_configuration() {
        // Without TLS configured, an https:// target is refused (it would
        // otherwise be spoken to in plaintext), lazy or balanced.
        let settings = ChannelSettings::default();
        let error = ServiceChannel::lazy("https://catalog:50051", &settings).unwrap_err();
        assert!(matches!(error, TargetError::HttpsWithoutTls(_)), "{error}");
        assert!(error.to_string().contains("GRPC_TLS_CA_FILE"), "{error}");
        let error = ServiceChannel::balanced("http://127.0.0.1:1,https://127.0.0.1:2", &settings)
            .await
            .unwrap_err();
        assert!(matches!(error, TargetError::HttpsWithoutTls(_)), "{error}");
    }

    #[tokio::test]
    async fn a_lazy_channel_takes_exactly_one_target() {
        let settings = ChannelSettings::default();
        assert!(ServiceChannel::lazy("http://127.0.0.1:1", &settings).is_ok());
        assert!(matches!(
            ServiceChannel::lazy("http://127.0.0.1:1,http://127.0.0.1:2", &settings),
            Err(TargetError::SeveralWithoutBalancing(_))
        ));
    }

    #[tokio::test]
    async fn a_balanced_channel_with_nothing_reachable_refuses_calls_at_once() {
        let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = down.local_addr().unwrap();
        drop(down);
        let settings = ChannelSettings {
            connect_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let channel = ServiceChannel::balanced(&format!("http://{addr}"), &settings)
            .await
            .unwrap();
        assert!(channel.has_no_reachable_address());
        assert_refused_at_once(&channel).await;
    }

    /// A call that would never end is refused UNAVAILABLE well before its 5 s
    /// deadline.
    async fn assert_refused_at_once(channel: &ServiceChannel) {
        let started = std::time::Instant::now();
        let result: Result<(), _> = channel
            .call(
                Duration::from_secs(5),
                std::future::pending::<Result<tonic::Response<()>, tonic::Status>>(),
            )
            .await;
        assert_eq!(result.unwrap_err().code(), tonic::Code::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A replica that answers NOT_SERVING (database down, draining) leaves
    /// the balancer, and calls are refused at once; back to SERVING, it is
    /// used again from the next pass.
    #[tokio::test]
    async fn a_replica_that_is_not_serving_leaves_the_balancer() {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let settings = ChannelSettings {
            connect_timeout: Duration::from_millis(500),
            refresh_interval: Duration::from_millis(100),
            tls: None,
        };
        let channel = ServiceChannel::balanced(&format!("http://{addr}"), &settings)
            .await
            .unwrap();
        assert!(
            channel.has_no_reachable_address(),
            "NOT_SERVING is not ready"
        );
        assert_refused_at_once(&channel).await;

        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while channel.has_no_reachable_address() {
            assert!(std::time::Instant::now() < deadline, "never ready again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.abort();
    }

    #[tokio::test]
    async fn keeps_only_addresses_that_accept_connections() {
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (up_addr, down_addr) = (up.local_addr().unwrap(), down.local_addr().unwrap());
        drop(down);
        let targets = parse_targets(&format!("http://{up_addr},http://{down_addr}")).unwrap();
        let reachable = reachable_addresses(&targets, Duration::from_millis(500)).await;
        assert_eq!(
            reachable,
            BTreeMap::from([(up_addr, "127.0.0.1".to_owned())])
        );
    }
}
