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

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

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

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// At least one `CERTIFICATE` block (other blocks are ignored).
    Certificates,
    /// Exactly one unencrypted private key block.
    PrivateKey,
}

/// Reads `path` and checks that it holds what `expect` says, in well-formed
/// PEM: each block's base64 decodes to one complete DER structure. tonic
/// itself would skip a CA certificate it cannot parse and then fail every
/// handshake, so the shape is checked here, at start. Returns the file's bytes.
fn read_pem(setting: &str, path: &Path, expect: Expect) -> Result<Vec<u8>, TlsSettingsError> {
    let failed =
        |why: String| TlsSettingsError::new(format!("{setting} ({}): {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|error| failed(format!("cannot read: {error}")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| failed("is not PEM text (a DER file? convert it to PEM)".into()))?;
    let blocks = pem_blocks(text).map_err(failed)?;
    match expect {
        Expect::Certificates => {
            if !blocks.iter().any(|label| label == "CERTIFICATE") {
                return Err(failed(
                    "holds no PEM certificate (BEGIN CERTIFICATE)".into(),
                ));
            }
        }
        Expect::PrivateKey => {
            if blocks.iter().any(|label| label == "ENCRYPTED PRIVATE KEY") {
                return Err(failed(
                    "holds an encrypted private key: give the key unencrypted and protect the \
                     file instead"
                        .into(),
                ));
            }
            let keys = blocks
                .iter()
                .filter(|label| {
                    matches!(
                        label.as_str(),
                        "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY"
                    )
                })
                .count();
            if keys != 1 {
                return Err(failed(format!(
                    "holds {keys} PEM private keys (BEGIN PRIVATE KEY), expected exactly one"
                )));
            }
        }
    }
    Ok(bytes)
}

/// The labels (`CERTIFICATE`, `PRIVATE KEY`, ...) of every
/// `-----BEGIN X----- ... -----END X-----` block of `text`, each checked to
/// hold base64 of one DER structure; text outside blocks (the comments
/// `openssl` writes, e.g.) is ignored. An error says what is wrong without
/// quoting the file.
fn pem_blocks(text: &str) -> Result<Vec<String>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut ended = false;
        for line in lines.by_ref() {
            if line == end {
                ended = true;
                break;
            }
            if line.contains(':') {
                // `Proc-Type: 4,ENCRYPTED` and the like: legacy encrypted PEM.
                return Err(format!(
                    "the {label} block has PEM headers (an encrypted key?): give it unencrypted"
                ));
            }
            body.push_str(line);
        }
        if !ended {
            return Err(format!(
                "the {label} block has no END line (truncated file?)"
            ));
        }
        if !base64_decode(&body).is_some_and(|der| is_one_der_structure(&der)) {
            return Err(format!(
                "the {label} block is damaged (not base64 of one DER structure)"
            ));
        }
        blocks.push(label.to_owned());
    }
    Ok(blocks)
}

/// Standard base64 with optional padding; `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits, mut padding) = (0u32, 0u32, 0usize);
    for c in text.bytes() {
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None; // data after padding
        }
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (padding <= 2).then_some(out)
}

/// Whether `der` is exactly one DER SEQUENCE (what certificates and keys
/// are): tag 0x30, a length, and exactly that many bytes after it.
fn is_one_der_structure(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (length, content) = if *first < 0x80 {
        (usize::from(*first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return false;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    content.len() == length
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> ServerTlsSettings {
        ServerTlsSettings {
            tls_cert_file: cert.map(PathBuf::from),
            tls_key_file: key.map(PathBuf::from),
            tls_client_ca_file: ca.map(PathBuf::from),
        }
    }

    fn client(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> ClientTlsSettings {
        ClientTlsSettings {
            grpc_tls_ca_file: ca.map(PathBuf::from),
            grpc_tls_cert_file: cert.map(PathBuf::from),
            grpc_tls_key_file: key.map(PathBuf::from),
        }
    }

    fn server_error(settings: ServerTlsSettings) -> String {
        settings.load().unwrap_err().to_string()
    }

    fn client_error(settings: ClientTlsSettings) -> String {
        settings.load().unwrap_err().to_string()
    }

    /// A file in the temp directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(contents: &[u8]) -> Self {
            let path =
                std::env::temp_dir().join(format!("proto-tls-test-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn nothing_set_is_plaintext() {
        assert!(ServerTlsSettings::default().load().unwrap().is_none());
        assert!(ClientTlsSettings::default().load().unwrap().is_none());
        assert!(
            probe_tls(&ServerTlsSettings::default(), &ClientTlsSettings::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn half_configured_servers_are_refused_naming_the_setting() {
        let error = server_error(server(Some("/c.pem"), None, None));
        assert!(
            error.starts_with("TLS_CERT_FILE is set but TLS_KEY_FILE"),
            "{error}"
        );
        let error = server_error(server(None, Some("/k.pem"), None));
        assert!(
            error.starts_with("TLS_KEY_FILE is set but TLS_CERT_FILE"),
            "{error}"
        );
        let error = server_error(server(None, None, Some("/ca.pem")));
        assert!(error.starts_with("TLS_CLIENT_CA_FILE is set"), "{error}");
    }

    #[test]
    fn half_configured_clients_are_refused_naming_the_setting() {
        let error = client_error(client(None, Some("/c.pem"), None));
        assert!(
            error.starts_with("GRPC_TLS_CERT_FILE is set but GRPC_TLS_KEY_FILE"),
            "{error}"
        );
        let error = client_error(client(None, None, Some("/k.pem")));
        assert!(
            error.starts_with("GRPC_TLS_KEY_FILE is set but GRPC_TLS_CERT_FILE"),
            "{error}"
        );
        let error = client_error(client(None, Some("/c.pem"), Some("/k.pem")));
        assert!(error.contains("GRPC_TLS_CA_FILE is not"), "{error}");
    }

    #[test]
    fn missing_and_unparsable_files_are_refused_naming_the_setting() {
        let error = client_error(client(Some("/nonexistent/ca.pem"), None, None));
        assert!(
            error.starts_with("GRPC_TLS_CA_FILE (/nonexistent/ca.pem): cannot read"),
            "{error}"
        );

        let garbage = TempFile::with(b"not a certificate at all\n");
        let error = client_error(client(Some(garbage.path()), None, None));
        assert!(error.starts_with("GRPC_TLS_CA_FILE ("), "{error}");
        assert!(error.contains("no PEM certificate"), "{error}");

        let damaged = TempFile::with(
            b"-----BEGIN CERTIFICATE-----\nMIIBzzCCAXWgAwIBAgIU\n-----END CERTIFICATE-----\n",
        );
        let error = server_error(server(Some(damaged.path()), Some(damaged.path()), None));
        assert!(error.starts_with("TLS_CERT_FILE ("), "{error}");
        assert!(error.contains("damaged"), "{error}");

        let truncated = TempFile::with(b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n");
        let error = client_error(client(Some(truncated.path()), None, None));
        assert!(error.contains("no END line"), "{error}");

        let binary = TempFile::with(&[0x30, 0x82, 0xff, 0xfe, 0x00]);
        let error = client_error(client(Some(binary.path()), None, None));
        assert!(error.contains("is not PEM text"), "{error}");
    }

    #[test]
    fn a_key_file_must_hold_one_unencrypted_key() {
        // A well-formed (if meaningless) DER SEQUENCE, as a certificate.
        let cert =
            TempFile::with(b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n");
        let encrypted = TempFile::with(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let error = server_error(server(Some(cert.path()), Some(encrypted.path()), None));
        assert!(error.starts_with("TLS_KEY_FILE ("), "{error}");
        assert!(error.contains("encrypted"), "{error}");

        let error = server_error(server(Some(cert.path()), Some(cert.path()), None));
        assert!(error.starts_with("TLS_KEY_FILE ("), "{error}");
        assert!(error.contains("0 PEM private keys"), "{error}");

        // Well-formed PEM, but not a real certificate and key: tonic refuses
        // them when the configuration is built, at start.
        let key =
            TempFile::with(b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n");
        let error = server_error(server(Some(cert.path()), Some(key.path()), None));
        assert!(
            error.starts_with("TLS_CERT_FILE / TLS_KEY_FILE ("),
            "{error}"
        );
        assert!(!error.contains("MAMCAQA"), "{error}");
    }

    #[test]
    fn the_probe_speaks_tls_exactly_when_the_server_does() {
        // Server plaintext: the probe too, whatever the client settings.
        let ca_only = client(Some("/nonexistent/ca.pem"), None, None);
        assert!(
            probe_tls(&ServerTlsSettings::default(), &ca_only)
                .unwrap()
                .is_none()
        );
        // Server TLS without client settings: the probe cannot speak to it.
        let error = probe_tls(
            &server(Some("/c"), Some("/k"), None),
            &ClientTlsSettings::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("GRPC_TLS_CA_FILE"), "{error}");
    }

    #[test]
    fn pem_parsing() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("TQ==TQ").is_none());
        assert!(base64_decode("T!==").is_none());
        assert!(is_one_der_structure(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(!is_one_der_structure(&[0x30, 0x04, 0x02, 0x01, 0x00]));
        assert!(!is_one_der_structure(&[0x04, 0x01, 0x00]));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(0u8, 0x80));
        assert!(is_one_der_structure(&long));
        let blocks = pem_blocks(
            "subject=CN = x\n-----BEGIN CERTIFICATE-----\nMAMC\nAQA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(blocks, ["CERTIFICATE"]);
    }

    #[test]
    fn debug_shows_paths_never_contents() {
        let settings = client(
            Some("/etc/tls/ca.pem"),
            Some("/etc/tls/cert.pem"),
            Some("/etc/tls/key.pem"),
        );
        let shown = format!("{settings:?}");
        assert!(shown.contains("/etc/tls/key.pem"), "{shown}");
        let tls = ClientTls {
            ca: Certificate::from_pem("CA-BYTES"),
            identity: Some(Identity::from_pem("CERT-BYTES", "SECRET-KEY-BYTES")),
            ca_file: "/etc/tls/ca.pem".into(),
            cert_file: Some("/etc/tls/cert.pem".into()),
        };
        let shown = format!("{tls:?}");
        // tonic's derived `Debug` would print the key as a list of bytes.
        let key_bytes = format!("{:?}", b"SECRET".as_slice());
        let key_bytes = key_bytes.trim_end_matches(']');
        assert!(format!("{:?}", Identity::from_pem("", "SECRET")).contains(key_bytes));
        assert!(!shown.contains(key_bytes), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            !format!(
                "{:?}",
                ServerTls {
                    config: ServerTlsConfig::new()
                        .identity(Identity::from_pem("CERT", "SECRET-KEY")),
                    requires_client_certificate: true,
                    cert_file: "/c".into(),
                }
            )
            .contains("SECRET")
        );
    }
}
