//! A private PostgreSQL cluster for one test: its own data directory and port,
//! so a test may stop and restart it (a database outage) without touching the
//! machine's shared server, which other tests use in parallel.
//!
//! The server binaries come from `PG_BIN` or the newest
//! `/usr/lib/postgresql/<version>/bin`. PostgreSQL refuses to run as root, so
//! when the test runs as root (CI) every command runs as the `postgres` OS
//! user, who owns the directory. Only 127.0.0.1 and a socket in its own
//! directory listen; the superuser `postgres` is trusted, every other role
//! must give its password (scram-sha-256), so a test can check that a
//! database password really is used and never shown.
//!
//! Dropping a [`PrivatePostgres`] stops the server (immediately) and removes
//! its directory.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::process::free_addr;

/// The OS user the server runs as when the test runs as root.
const SERVER_USER: &str = "postgres";

/// Who may connect, and how (first match wins).
const PG_HBA: &str = "\
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       all                      trust
host    all       postgres  127.0.0.1/32   trust
host    all       all       127.0.0.1/32   scram-sha-256
";

pub struct PrivatePostgres {
    /// Holds `data/` (the cluster), the server's socket and `server.log`.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster in a new directory under the system's temp dir and
    /// starts it; returns once it accepts connections.
    pub async fn start() -> Self {
        let bin = server_binaries();
        let dir = std::env::temp_dir().join(format!("pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("create the cluster directory");
        let as_postgres_user = running_as_root();
        let cluster = Self {
            dir,
            bin,
            port: free_addr().port(),
            as_postgres_user,
            running: false,
        };
        if as_postgres_user {
            cluster.run_checked(
                Command::new("chown").args([
                    &format!("{SERVER_USER}:{SERVER_USER}"),
                    cluster.dir.to_str().expect("UTF-8 temp dir"),
                ]),
                "chown the cluster directory",
            );
        }
        let data = cluster.data_dir();
        let mut initdb = cluster.server_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "-U", "postgres", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"]);
        cluster.run_blocking(initdb, "initdb").await;
        let hba = data.join("pg_hba.conf");
        std::fs::write(&hba, PG_HBA).expect("write pg_hba.conf");
        if as_postgres_user {
            cluster.run_checked(
                Command::new("chown").args([
                    &format!("{SERVER_USER}:{SERVER_USER}"),
                    hba.to_str().expect("UTF-8 temp dir"),
                ]),
                "chown pg_hba.conf",
            );
        }
        let mut cluster = cluster;
        cluster.start_server().await;
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>`: the server, no database named.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the stopped server again (same data, same port).
    pub async fn start_server(&mut self) {
        assert!(!self.running, "the private cluster is already running");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"]);
        self.run_blocking(pg_ctl, "pg_ctl start").await;
        self.running = true;
    }

    /// Stops the server (`-m fast`: open connections are cut, as in an outage)
    /// and waits until it is down.
    pub async fn stop(&mut self) {
        assert!(self.running, "the private cluster is not running");
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        self.run_blocking(pg_ctl, "pg_ctl stop").await;
        self.running = false;
    }

    /// `pg_ctl restart -m fast`: down and up again at once.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_server().await;
    }

    /// The server's log so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command for one of the server binaries, run as the server's user.
    fn server_command(&self, binary: &str) -> Command {
        let path = self.bin.join(binary);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", SERVER_USER, "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// Runs a (short) server command off the async runtime's threads.
    async fn run_blocking(&self, mut command: Command, what: &'static str) {
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the command's thread")
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        self.check(output, what);
    }

    fn run_checked(&self, command: &mut Command, what: &str) {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        self.check(output, what);
    }

    fn check(&self, output: Output, what: &str) {
        assert!(
            output.status.success(),
            "{what} failed ({}):\n{}\n{}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.server_log()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            // Immediate: nothing in the cluster is worth a checkpoint.
            let _ = self
                .server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/<major>/bin` holding `pg_ctl`.
fn server_binaries() -> PathBuf {
    if let Ok(bin) = std::env::var("PG_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries under {}: install postgresql or set PG_BIN",
            root.display()
        ),
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the
/// effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
