//! The services as real child processes (the binaries cargo built beside the
//! test executable), for what in-process services cannot show: one process
//! per service.name in traces, `kill -9`, SIGTERM, and everything a process
//! writes ([`CapturedOutput`]).

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
};

use crate::TestDatabase;

/// `target/<profile>/<name>`: the test executable lives in
/// `target/<profile>/deps/`, the workspace binaries one level up.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// A free loopback port, chosen by the OS. (Bound, read and released: a tiny
/// window in which another process could take it, acceptable in tests.)
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// `"KEY=value KEY2=value2"` (whitespace-separated) as environment entries.
pub fn env(entries: &'static str) -> Vec<(&'static str, String)> {
    entries
        .split_whitespace()
        .map(|entry| {
            let (key, value) = entry
                .split_once('=')
                .unwrap_or_else(|| panic!("{entry:?} is not KEY=value"));
            (key, value.to_owned())
        })
        .collect()
}

/// A running child service. Killed (SIGKILL) when dropped.
pub struct ChildService {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    /// Tasks copying a captured child's stdout and stderr; they end at its exit.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// What [`Self::restart`] starts it with again: its environment (its
    /// `LISTEN_ADDR` included) and where its output goes.
    env: Vec<(String, String)>,
    output: Option<CapturedOutput>,
}

impl ChildService {
    /// Starts `binary` with `env` (plus `LISTEN_ADDR` = a free port unless
    /// `env` names one, and `ADMIN_ADDR` = another when not given) and waits
    /// until its port accepts connections (at most 30 s). Its output goes
    /// where the test's goes.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        Self::spawn(binary, env, None).await
    }

    /// The gateway binary in front of the two services (the test webhook
    /// secret, [`crate::gateway::WEBHOOK_SECRET`]), with `extra` settings.
    pub async fn start_gateway(
        catalog_url: String,
        order_url: String,
        extra: &[(&str, String)],
    ) -> Self {
        Self::spawn("gateway", &gateway_env(catalog_url, order_url, extra), None).await
    }

    /// As [`Self::start`], with everything the process writes on stdout and
    /// stderr appended to `output` (which may be shared by several processes,
    /// or by one process and its restarts).
    pub async fn start_captured(
        binary: &str,
        env: &[(&str, String)],
        output: &CapturedOutput,
    ) -> Self {
        Self::spawn(binary, env, Some(output)).await
    }

    async fn spawn(binary: &str, env: &[(&str, String)], output: Option<&CapturedOutput>) -> Self {
        // A caller that names the address (e.g. to restart a service where its
        // clients expect it) gets that one, and the readiness wait uses it.
        let addr = match env.iter().find(|(k, _)| *k == "LISTEN_ADDR") {
            Some((_, value)) => value
                .parse()
                .unwrap_or_else(|e| panic!("LISTEN_ADDR {value:?} is not an address: {e}")),
            None => free_addr(),
        };
        let mut command = Command::new(binary_path(binary));
        command
            .env("LISTEN_ADDR", addr.to_string())
            .env(
                "RUST_LOG",
                std::env::var("CHILD_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if !env.iter().any(|(k, _)| *k == "ADMIN_ADDR") {
            command.env("ADMIN_ADDR", "127.0.0.1:0");
        }
        for (key, value) in env {
            command.env(key, value);
        }
        if output.is_some() {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut readers = Vec::new();
        if let Some(output) = output {
            let stdout = child.stdout.take().expect("stdout is piped");
            let stderr = child.stderr.take().expect("stderr is piped");
            readers.push(tokio::spawn(output.clone().copy_from(stdout)));
            readers.push(tokio::spawn(output.clone().copy_from(stderr)));
        }
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        env.push(("LISTEN_ADDR".to_owned(), addr.to_string()));
        let mut service = Self {
            name: binary.to_owned(),
            addr,
            child,
            readers,
            env,
            output: output.cloned(),
        };
        service
            .wait_until_listening(Duration::from_secs(30), output)
            .await;
        service
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the child is running")
    }

    /// Whether the process is still alive (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Fails at once (with its captured output, if any) when the process
    /// exits instead, e.g. on a configuration it refuses.
    async fn wait_until_listening(&mut self, limit: Duration, output: Option<&CapturedOutput>) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_output().await;
                panic!(
                    "{} exited ({status}) before listening on {}; output:\n{}",
                    self.name,
                    self.addr,
                    output.map(CapturedOutput::text).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < limit,
                "{} did not start listening on {}",
                self.name,
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 30 s) until the gRPC health service reports both the
    /// server overall and `grpc_service` (e.g. `catalog.v1.CatalogService`)
    /// SERVING; fails at once if the process exits instead.
    pub async fn wait_until_serving(&mut self, grpc_service: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before it was SERVING", self.name);
            }
            if serving(self.addr, "").await && serving(self.addr, grpc_service).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not SERVING within 30 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, without waiting: the process drains (see
    /// [`Self::wait_for_exit`]).
    pub fn sigterm(&self) {
        signal(self.pid(), "-TERM");
    }

    /// Waits (at most 30 s) for the process to exit; returns whether it
    /// exited with 0. A captured child's output is complete when this
    /// returns.
    pub async fn wait_for_exit(mut self) -> bool {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} still running after 30 s", self.name))
            .expect("wait for the child");
        self.drain_output().await;
        status.success()
    }

    /// SIGTERM, then waits for the exit; returns whether it exited with 0.
    pub async fn terminate(self) -> bool {
        self.sigterm();
        self.wait_for_exit().await
    }

    /// SIGKILL: no drain, no cleanup, like a crashed machine. The process
    /// is gone when this returns; [`Self::restart`] starts it again.
    pub async fn kill9(&mut self) {
        signal(self.pid(), "-KILL");
        let _ = self.child.wait().await;
        self.drain_output().await;
    }

    /// Starts the (exited or killed) process again as it was started: same
    /// environment, same address, its output where it went before.
    pub async fn restart(&mut self) {
        let env: Vec<(&str, String)> = self
            .env
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        *self = Self::spawn(&self.name, &env, self.output.as_ref()).await;
    }

    /// Waits (bounded) until the copy tasks have read the pipes to their end.
    async fn drain_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
    }
}

/// What the gateway child gets: the two services, the test webhook secret,
/// writes opened on purpose unless `extra` configures API keys (not in
/// development mode, as in production), then `extra` (which wins).
fn gateway_env<'a>(
    catalog_url: String,
    order_url: String,
    extra: &[(&'a str, String)],
) -> Vec<(&'a str, String)> {
    let mut env = vec![
        ("CATALOG_URL", catalog_url),
        ("ORDER_URL", order_url),
        ("WEBHOOK_SECRET", crate::gateway::WEBHOOK_SECRET.to_owned()),
    ];
    if !extra.iter().any(|(key, _)| *key == "API_KEYS") {
        env.push(("OPEN_WRITES", "true".to_owned()));
    }
    env.extend_from_slice(extra);
    env
}

/// What [`ChildPlatform::start`] gives the processes beyond the platform's
/// defaults (`Default`: nothing). Later entries win.
#[derive(Default)]
pub struct PlatformEnv<'a> {
    /// `(catalog, order)` database URLs; `None`: fresh [`TestDatabase`]s on
    /// the shared server, held by the platform.
    pub databases: Option<(String, String)>,
    /// For all three processes.
    pub all: Vec<(&'static str, String)>,
    pub catalog: Vec<(&'static str, String)>,
    pub order: Vec<(&'static str, String)>,
    pub gateway: Vec<(&'static str, String)>,
    /// Where everything the three write goes; `None`: the test's output.
    pub output: Option<&'a CapturedOutput>,
}

/// The three real binaries as child processes: a catalog service and an
/// order service on databases of their own, each with an admin port of its
/// own, a small pool (`DB_MAX_CONNECTIONS=4`) and a short drain
/// (`SHUTDOWN_GRACE=5s`, within what [`ChildService::terminate`] waits);
/// the order service calling the catalog; a gateway in front of both.
pub struct ChildPlatform {
    pub catalog: ChildService,
    pub order: ChildService,
    pub gateway: ChildService,
    pub catalog_admin: SocketAddr,
    pub order_admin: SocketAddr,
    /// The gateway's admin port (`/metrics`, `/health`, `/ready`).
    pub gateway_admin: SocketAddr,
    pub catalog_database: String,
    pub order_database: String,
    /// The fresh databases, dropped after the processes (fields drop in
    /// order).
    _databases: Vec<TestDatabase>,
}

impl ChildPlatform {
    /// Starts catalog, order service and gateway, in that order, each once
    /// it listens.
    pub async fn start(settings: PlatformEnv<'_>) -> Self {
        let mut held = Vec::new();
        let (catalog_database, order_database) = settings.databases.unwrap_or_else(|| {
            held = vec![TestDatabase::fresh("catalog"), TestDatabase::fresh("order")];
            (held[0].url(), held[1].url())
        });
        let (catalog_admin, order_admin, gateway_admin) = (free_addr(), free_addr(), free_addr());
        let service = |database: &str, admin: SocketAddr| {
            let mut service_env = vec![
                ("DATABASE_URL", database.to_owned()),
                ("ADMIN_ADDR", admin.to_string()),
            ];
            service_env.extend(env("DB_MAX_CONNECTIONS=4 SHUTDOWN_GRACE=5s"));
            service_env.extend_from_slice(&settings.all);
            service_env
        };
        let output = settings.output;
        let mut catalog_env = service(&catalog_database, catalog_admin);
        catalog_env.extend_from_slice(&settings.catalog);
        let catalog = ChildService::spawn("catalog-service", &catalog_env, output).await;
        let mut order_env = service(&order_database, order_admin);
        order_env.push(("CATALOG_URL", catalog.url()));
        order_env.extend_from_slice(&settings.order);
        let order = ChildService::spawn("order-service", &order_env, output).await;
        let mut extra = env("SHUTDOWN_GRACE=5s");
        extra.push(("ADMIN_ADDR", gateway_admin.to_string()));
        extra.extend_from_slice(&settings.all);
        extra.extend_from_slice(&settings.gateway);
        let gateway_env = gateway_env(catalog.url(), order.url(), &extra);
        let gateway = ChildService::spawn("gateway", &gateway_env, output).await;
        Self {
            catalog,
            order,
            gateway,
            catalog_admin,
            order_admin,
            gateway_admin,
            catalog_database,
            order_database,
            _databases: held,
        }
    }

    /// `http://127.0.0.1:port` of the gateway.
    pub fn gateway_url(&self) -> String {
        self.gateway.url()
    }

    /// See [`crate::gateway::metrics_urls`].
    pub fn metrics_urls(&self) -> [(&'static str, String); 3] {
        crate::gateway::metrics_urls(self.gateway_admin, self.catalog_admin, self.order_admin)
    }

    /// SIGTERM to each, front to back (so everything each had to say is
    /// written); whether each exited with 0.
    pub async fn stop(self) -> [(&'static str, bool); 3] {
        [
            ("gateway", self.gateway.terminate().await),
            ("order-service", self.order.terminate().await),
            ("catalog-service", self.catalog.terminate().await),
        ]
    }

    /// [`Self::stop`], asserting that each exited with 0.
    pub async fn stop_cleanly(self) {
        for (process, exited_cleanly) in self.stop().await {
            assert!(exited_cleanly, "{process} exits with 0 after SIGTERM");
        }
    }
}

/// Whether the gRPC health service at `addr` reports `service` (`""`: the
/// server overall) SERVING.
pub async fn serving(addr: SocketAddr, service: &str) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URL")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let service = service.to_owned();
    HealthClient::new(channel)
        .check(HealthCheckRequest { service })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// Runs `binary args...` with `env` until it exits by itself (at most
/// `limit`, then it is killed and this panics), its stdout and stderr
/// appended to `output`; for a process expected to stop: one refusing its
/// configuration, `--probe`, `--migrate-only`.
pub async fn run_to_exit(
    binary: &str,
    args: &[&str],
    env: &[(&str, String)],
    output: &CapturedOutput,
    limit: Duration,
) -> std::process::ExitStatus {
    let mut command = Command::new(binary_path(binary));
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let stdout = tokio::spawn(
        output
            .clone()
            .copy_from(child.stdout.take().expect("stdout is piped")),
    );
    let stderr = tokio::spawn(
        output
            .clone()
            .copy_from(child.stderr.take().expect("stderr is piped")),
    );
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("{binary} still running after {limit:?}"))
        .expect("wait for the child");
    let _ = stdout.await;
    let _ = stderr.await;
    status
}

/// Everything captured child processes wrote on stdout and stderr, in one
/// buffer (lines of different processes may interleave). Cheap to clone.
#[derive(Clone, Default)]
pub struct CapturedOutput(Arc<Mutex<Vec<u8>>>);

impl CapturedOutput {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("output lock").clone()
    }

    /// The output so far as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Appends whole lines, so lines of processes sharing the buffer never
    /// cut into each other.
    async fn copy_from(self, pipe: impl AsyncRead + Unpin) {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match pipe.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => self.0.lock().expect("output lock").extend_from_slice(&line),
            }
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// `text` without ANSI escape sequences (`ESC [ ... final byte`): what a
/// process's coloured log lines say.
pub fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
