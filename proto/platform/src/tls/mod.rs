//! Mutual TLS between the platform's processes, from PEM files named in the
//! settings.
//!
//! Without it, anything that reaches a service's gRPC port can call every RPC:
//! apply a payment without the webhook signature the gateway checks, change
//! products, move stock. With it, each gRPC server presents a certificate and
//! accepts only callers presenting one that chains to the CA it is given;
//! each client checks the server's certificate against its own CA and the
//! name in the service URL.
//!
//! - [`ServerTlsSettings`] (`TLS_CERT_FILE`, `TLS_KEY_FILE`,
//!   `TLS_CLIENT_CA_FILE`): a gRPC server's side, loaded into a
//!   [`ServerTls`] that `crate::server` serves with.
//! - [`ClientTlsSettings`] (`GRPC_TLS_CA_FILE`, `GRPC_TLS_CERT_FILE`,
//!   `GRPC_TLS_KEY_FILE`): a gRPC client's side, loaded into a [`ClientTls`]
//!   that `crate::balance` builds every connection with (and `--probe`).
//!
//! Both are clap argument groups that each service's `Config` flattens. All
//! unset means plaintext, as on a developer machine. Anything in between
//! (a certificate without its key, a client CA on a plaintext server, a file
//! that is missing or is not PEM, a key that does not match its certificate)
//! is an error naming the setting, so a process refuses to start rather than
//! silently talk in the clear or fail every handshake later. Files are read
//! once, at start; their contents never reach a log line or a `Debug`
//! output (tonic's own `Identity` and `ClientTlsConfig` would print the key
//! bytes, so they stay inside the redacting types here).

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

mod pem;

use pem::{Expect, read_pem};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// The name `--probe` checks the local server's certificate against: the
/// probe connects to LISTEN_ADDR (often `0.0.0.0`), which names no host, so
/// server certificates carry `localhost` among their names
/// (`deploy/tls/make-certs.sh` puts it there).
pub const PROBE_SERVER_NAME: &str = "localhost";

/// A server whose peer says nothing for this long during the handshake is
/// dropped (handshakes run concurrently; this bounds what a silent client holds).
const SERVER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A gRPC server's TLS: its own certificate and key, and the CA its callers'
/// certificates must chain to.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "gRPC server TLS")]
pub struct ServerTlsSettings {
    /// PEM certificate (chain, leaf first) this gRPC server presents. With
    /// TLS_KEY_FILE it turns TLS on; unset (with the other TLS_* settings):
    /// plaintext, for development only.
    #[arg(long, env = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key (PKCS#8, SEC1 or PKCS#1, unencrypted) of TLS_CERT_FILE.
    #[arg(long, env = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA certificate(s) that callers' client certificates must chain to:
    /// a caller without one is refused at the handshake. Unset with TLS on:
    /// any caller is accepted (encrypted, not authenticated).
    #[arg(long, env = "TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
}

/// A gRPC client's TLS: the CA the services' certificates must chain to, and
/// the client certificate it presents to them.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "gRPC client TLS")]
pub struct ClientTlsSettings {
    /// PEM CA certificate(s) the services' certificates must chain to. Turns
    /// TLS on for every outgoing gRPC channel (service URLs then use
    /// https://); the name checked against a server's certificate is its
    /// URL's host. Unset (with GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE):
    /// plaintext, for development only.
    #[arg(long, env = "GRPC_TLS_CA_FILE")]
    pub grpc_tls_ca_file: Option<PathBuf>,

    /// PEM client certificate presented to the services (needs
    /// GRPC_TLS_KEY_FILE and GRPC_TLS_CA_FILE).
    #[arg(long, env = "GRPC_TLS_CERT_FILE")]
    pub grpc_tls_cert_file: Option<PathBuf>,

    /// PEM private key (unencrypted) of GRPC_TLS_CERT_FILE.
    #[arg(long, env = "GRPC_TLS_KEY_FILE")]
    pub grpc_tls_key_file: Option<PathBuf>,
}

/// Why TLS settings cannot be used; the message names the setting (and the
/// file), never a file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsSettingsError(String);

impl TlsSettingsError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A loaded server TLS configuration, ready for [`Server::tls_config`].
#[derive(Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
    requires_client_certificate: bool,
    cert_file: PathBuf,
}

impl ServerTls {
    /// The tonic configuration: identity, and the client CA when configured.
    pub fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }

    /// Whether callers without a certificate from the client CA are refused.
    pub fn requires_client_certificate(&self) -> bool {
        self.requires_client_certificate
    }
}

// Paths only: the configuration holds the private key.
impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_file", &self.cert_file)
            .field(
                "requires_client_certificate",
                &self.requires_client_certificate,
            )
            .finish()
    }
}

/// A loaded client TLS configuration; [`Self::config_for`] makes the tonic
/// configuration for one server name.
#[derive(Clone)]
pub struct ClientTls {
    ca: Certificate,
    identity: Option<Identity>,
    ca_file: PathBuf,
    cert_file: Option<PathBuf>,
}

impl ClientTls {
    /// The configuration for connections to `server_name`: its certificate
    /// must chain to the CA and name it. Set explicitly rather than taken
    /// from the URI, because balanced channels connect to resolved IP
    /// addresses while the certificate names the service.
    pub fn config_for(&self, server_name: &str) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .domain_name(server_name);
        match &self.identity {
            Some(identity) => config.identity(identity.clone()),
            None => config,
        }
    }

    /// Whether a client certificate is presented.
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }
}

// Paths only: tonic's `Identity` prints the key bytes in its `Debug`.
impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .finish()
    }
}

impl ServerTlsSettings {
    /// Whether any of the settings is given.
    pub fn is_set(&self) -> bool {
        self.tls_cert_file.is_some()
            || self.tls_key_file.is_some()
            || self.tls_client_ca_file.is_some()
    }

    /// Reads and checks the files: `None` when nothing is set (plaintext),
    /// an error naming the setting when the settings are incomplete or a
    /// file cannot be used.
    pub fn load(&self) -> Result<Option<ServerTls>, TlsSettingsError> {
        let (cert_file, key_file) = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => {
                if self.tls_client_ca_file.is_some() {
                    return Err(TlsSettingsError::new(
                        "TLS_CLIENT_CA_FILE is set but TLS_CERT_FILE and TLS_KEY_FILE are not: \
                         client certificates are only checked by a TLS server; set all three \
                         (or none, for plaintext)",
                    ));
                }
                return Ok(None);
            }
            (Some(_), None) => {
                return Err(TlsSettingsError::new(
                    "TLS_CERT_FILE is set but TLS_KEY_FILE is not: set both (or none, for plaintext)",
                ));
            }
            (None, Some(_)) => {
                return Err(TlsSettingsError::new(
                    "TLS_KEY_FILE is set but TLS_CERT_FILE is not: set both (or none, for plaintext)",
                ));
            }
            (Some(cert), Some(key)) => (cert, key),
        };
        let cert = read_pem("TLS_CERT_FILE", cert_file, Expect::Certificates)?;
        let key = read_pem("TLS_KEY_FILE", key_file, Expect::PrivateKey)?;
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .timeout(SERVER_HANDSHAKE_TIMEOUT);
        // Built here once, so that a key that does not match its certificate
        // stops the start instead of failing the server later.
        Server::builder()
            .tls_config(config.clone())
            .map_err(|error| {
                TlsSettingsError::new(format!(
                    "TLS_CERT_FILE / TLS_KEY_FILE ({}, {}) cannot be used together: {}",
                    cert_file.display(),
                    key_file.display(),
                    chain(&error)
                ))
            })?;
        let config = match &self.tls_client_ca_file {
            Some(ca_file) => {
                let ca = read_pem("TLS_CLIENT_CA_FILE", ca_file, Expect::Certificates)?;
                let config = config.client_ca_root(Certificate::from_pem(ca));
                Server::builder()
                    .tls_config(config.clone())
                    .map_err(|error| {
                        TlsSettingsError::new(format!(
                            "TLS_CLIENT_CA_FILE ({}) cannot be used: {}",
                            ca_file.display(),
                            chain(&error)
                        ))
                    })?;
                config
            }
            None => config,
        };
        Ok(Some(ServerTls {
            config,
            requires_client_certificate: self.tls_client_ca_file.is_some(),
            cert_file: cert_file.clone(),
        }))
    }
}

impl ClientTlsSettings {
    /// Whether any of the settings is given.
    pub fn is_set(&self) -> bool {
        self.grpc_tls_ca_file.is_some()
            || self.grpc_tls_cert_file.is_some()
            || self.grpc_tls_key_file.is_some()
    }

    /// Reads and checks the files: `None` when nothing is set (plaintext),
    /// an error naming the setting when the settings are incomplete or a
    /// file cannot be used.
    pub fn load(&self) -> Result<Option<ClientTls>, TlsSettingsError> {
        let identity_files = match (&self.grpc_tls_cert_file, &self.grpc_tls_key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsSettingsError::new(
                    "GRPC_TLS_CERT_FILE is set but GRPC_TLS_KEY_FILE is not: set both (or neither)",
                ));
            }
            (None, Some(_)) => {
                return Err(TlsSettingsError::new(
                    "GRPC_TLS_KEY_FILE is set but GRPC_TLS_CERT_FILE is not: set both (or neither)",
                ));
            }
            (Some(cert), Some(key)) => Some((cert, key)),
        };
        let Some(ca_file) = &self.grpc_tls_ca_file else {
            if identity_files.is_some() {
                return Err(TlsSettingsError::new(
                    "GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE are set but GRPC_TLS_CA_FILE is not: \
                     TLS to the services needs the CA their certificates chain to",
                ));
            }
            return Ok(None);
        };
        let ca =
            Certificate::from_pem(read_pem("GRPC_TLS_CA_FILE", ca_file, Expect::Certificates)?);
        let identity = match identity_files {
            Some((cert_file, key_file)) => {
                let cert = read_pem("GRPC_TLS_CERT_FILE", cert_file, Expect::Certificates)?;
                let key = read_pem("GRPC_TLS_KEY_FILE", key_file, Expect::PrivateKey)?;
                Some(Identity::from_pem(cert, key))
            }
            None => None,
        };
        let tls = ClientTls {
            ca,
            identity,
            ca_file: ca_file.clone(),
            cert_file: self.grpc_tls_cert_file.clone(),
        };
        // Builds the client configuration once, so that a key that does not
        // match its certificate stops the start.
        Endpoint::from_static("https://localhost")
            .tls_config(tls.config_for("localhost"))
            .map_err(|error| {
                TlsSettingsError::new(format!(
                    "GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE cannot be used together: {}",
                    chain(&error)
                ))
            })?;
        Ok(Some(tls))
    }
}

/// What `--probe` connects with: the local server speaks TLS exactly when
/// `server` is set, and then the probe needs `client` (a CA, and a client
/// certificate when the server asks for one). `None`: plaintext.
pub fn probe_tls(
    server: &ServerTlsSettings,
    client: &ClientTlsSettings,
) -> Result<Option<ClientTls>, TlsSettingsError> {
    if !server.is_set() {
        return Ok(None);
    }
    let Some(tls) = client.load()? else {
        return Err(TlsSettingsError::new(
            "--probe: TLS_CERT_FILE is set, so the service speaks TLS and the probe needs \
             GRPC_TLS_CA_FILE (and GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE when \
             TLS_CLIENT_CA_FILE is set)",
        ));
    };
    if server.tls_client_ca_file.is_some() && !tls.has_client_certificate() {
        return Err(TlsSettingsError::new(
            "--probe: TLS_CLIENT_CA_FILE is set, so the service wants a client certificate: \
             set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE",
        ));
    }
    Ok(Some(tls))
}

/// [`crate::grpc::probe`] over TLS when `tls` is given (the server's
/// certificate checked against [`PROBE_SERVER_NAME`]).
pub async fn probe(addr: SocketAddr, timeout: Duration, tls: Option<&ClientTls>) -> bool {
    crate::grpc::probe(
        addr,
        timeout,
        tls.map(|tls| tls.config_for(PROBE_SERVER_NAME)),
    )
    .await
}

/// Why tonic refused a TLS configuration: its error says only "transport
/// error"; the reason is in its sources, `: `-separated.
fn chain(error: &tonic::transport::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests;
