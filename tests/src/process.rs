//! The services as real child processes (the binaries cargo built beside the
//! test executable), for what in-process services cannot show: one process
//! per service.name in traces, `kill -9`, SIGTERM.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

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

/// A running child service. Killed (SIGKILL) when dropped.
pub struct ChildService {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
}

impl ChildService {
    /// Starts `binary` with `env` (plus `LISTEN_ADDR` = a free port, and
    /// `ADMIN_ADDR` = another when not given) and waits until its port
    /// accepts connections (at most 30 s).
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let addr = free_addr();
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
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let service = Self {
            name: binary.to_owned(),
            addr,
            child,
        };
        service.wait_until_listening(Duration::from_secs(30)).await;
        service
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the child is running")
    }

    async fn wait_until_listening(&self, limit: Duration) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            assert!(
                started.elapsed() < limit,
                "{} did not start listening on {}",
                self.name,
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited with 0.
    pub async fn terminate(mut self) -> bool {
        signal(self.pid(), "-TERM");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the service exits after SIGTERM")
            .expect("wait for the child");
        status.success()
    }

    /// SIGKILL: no drain, no cleanup, like a crashed machine.
    pub async fn kill9(mut self) {
        signal(self.pid(), "-KILL");
        let _ = self.child.wait().await;
    }
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid} failed");
}
