//! Settings validation, loading and redaction of the TLS types.

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
    let key = TempFile::with(b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n");
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
                config: ServerTlsConfig::new().identity(Identity::from_pem("CERT", "SECRET-KEY")),
                requires_client_certificate: true,
                cert_file: "/c".into(),
            }
        )
        .contains("SECRET")
    );
}
