//! Mutual TLS in tests: certificates made by the operators' own script
//! (`deploy/tls/make-certs.sh`, so the tests also check what it makes) in a
//! temporary directory, the settings and environment the processes get from
//! them, a catalog started in-process with TLS on, and raw client channels
//! with or without a client certificate.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use platform::tls::{ClientTlsSettings, ServerTlsSettings};
use tonic::transport::{Channel, Endpoint};

use crate::{
    RunningService,
    catalog::{catalog_config, start_catalog},
};

/// A CA and a certificate per process, in a directory of their own (removed
/// when dropped). Files as the script names them: `ca.pem`, and
/// `<process>.pem` / `<process>.key` for `catalog-service`, `order-service`
/// and `gateway`.
pub struct TestCerts {
    pub dir: PathBuf,
}

impl TestCerts {
    /// A new CA (each call: a different one) and its certificates.
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("mtls-test-{}", uuid::Uuid::new_v4().simple()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tls/make-certs.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("bash runs deploy/tls/make-certs.sh");
        assert!(
            output.status.success(),
            "make-certs.sh failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Self { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A gRPC server's settings: its certificate and key, and client
    /// certificates required (from this CA).
    pub fn server_settings(&self, service: &str) -> ServerTlsSettings {
        ServerTlsSettings {
            tls_cert_file: Some(self.path(&format!("{service}.pem"))),
            tls_key_file: Some(self.path(&format!("{service}.key"))),
            tls_client_ca_file: Some(self.path("ca.pem")),
        }
    }

    /// A gRPC client's settings: this CA, and `process`'s certificate.
    pub fn client_settings(&self, process: &str) -> ClientTlsSettings {
        ClientTlsSettings {
            grpc_tls_ca_file: Some(self.path("ca.pem")),
            grpc_tls_cert_file: Some(self.path(&format!("{process}.pem"))),
            grpc_tls_key_file: Some(self.path(&format!("{process}.key"))),
        }
    }

    /// A client that checks servers against this CA but has no certificate.
    pub fn ca_only(&self) -> ClientTlsSettings {
        ClientTlsSettings {
            grpc_tls_ca_file: Some(self.path("ca.pem")),
            ..Default::default()
        }
    }

    /// [`Self::server_settings`] as environment variables, for child processes.
    pub fn server_env(&self, service: &str) -> Vec<(&'static str, String)> {
        let settings = self.server_settings(service);
        env_of([
            ("TLS_CERT_FILE", settings.tls_cert_file),
            ("TLS_KEY_FILE", settings.tls_key_file),
            ("TLS_CLIENT_CA_FILE", settings.tls_client_ca_file),
        ])
    }

    /// [`Self::client_settings`] as environment variables, for child processes.
    pub fn client_env(&self, process: &str) -> Vec<(&'static str, String)> {
        let ClientTlsSettings {
            grpc_tls_ca_file,
            grpc_tls_cert_file,
            grpc_tls_key_file,
        } = self.client_settings(process);
        env_of([
            ("GRPC_TLS_CA_FILE", grpc_tls_ca_file),
            ("GRPC_TLS_CERT_FILE", grpc_tls_cert_file),
            ("GRPC_TLS_KEY_FILE", grpc_tls_key_file),
        ])
    }
}

/// Settings' files as environment variables.
fn env_of(files: [(&'static str, Option<PathBuf>); 3]) -> Vec<(&'static str, String)> {
    files
        .into_iter()
        .map(|(key, path)| (key, path.expect("set").display().to_string()))
        .collect()
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `https://localhost:<port>`: the URL a TLS client is configured with; the
/// certificate is checked against `localhost` (a name, as in production,
/// resolved to the loopback address the service listens on).
pub fn https_url(addr: SocketAddr) -> String {
    format!("https://localhost:{}", addr.port())
}

/// Starts a catalog service on a fresh database with `tls` on its gRPC port.
pub async fn start_tls_catalog(tls: ServerTlsSettings) -> RunningService {
    let mut config = catalog_config();
    config.service.tls = tls;
    start_catalog(config).await.service
}

/// A channel to `addr` over TLS with `client`'s CA and certificate, checking
/// the server's certificate against `server_name`. Connected on first use,
/// so a refused handshake shows as the first call's status.
pub fn tls_channel(addr: SocketAddr, server_name: &str, client: &ClientTlsSettings) -> Channel {
    let tls = client
        .load()
        .expect("client TLS settings load")
        .expect("client TLS settings are set");
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("valid URI")
        .tls_config(tls.config_for(server_name))
        .expect("TLS configuration builds")
        .connect_lazy()
}

/// A plaintext channel to `addr`, connected on first use.
pub fn plaintext_channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect_lazy()
}
