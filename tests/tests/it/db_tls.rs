//! Both services reach PostgreSQL over TLS when their `DATABASE_URL` asks for
//! it, as a managed PostgreSQL requires: `sslmode=require` (encrypted),
//! `verify-ca` (the server's certificate must chain to `sslrootcert`) and
//! `verify-full` (and name the host). The local server has `ssl = on` with
//! Debian's snakeoil certificate (`CN=localhost`, self-signed), which serves
//! as its own root here. The server's `pg_stat_ssl` shows whether each of the
//! services' connections is encrypted.

use tests::{
    RunningService, TestConfig, admin_connection,
    catalog::{catalog_client, catalog_config, create_product, start_catalog},
    order::{create_order, order_client, order_config, start_order},
};

/// The certificate the local server presents (`SHOW ssl_cert_file`).
async fn server_certificate_file() -> String {
    let mut admin = admin_connection().await;
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        ssl, "on",
        "this test needs a PostgreSQL server with ssl = on"
    );
    sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut admin)
        .await
        .unwrap()
}

/// `(encrypted, in clear)` counts of the server's connections to the
/// database `service` runs on.
async fn connections_by_encryption(service: &RunningService) -> (i64, i64) {
    let database = service
        .database
        .as_ref()
        .expect("a service with a database");
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(database.name())
    .fetch_one(&mut admin_connection().await)
    .await
    .unwrap()
}

/// Runs an order through both services with `ssl_parameters` appended to
/// their database URLs (and `host` for the server), then checks that every
/// connection they hold to their databases is encrypted.
async fn both_services_work_over_tls(host: &str, ssl_parameters: &str) {
    let with_tls = |url: &str| format!("{}?{ssl_parameters}", url.replace("127.0.0.1", host));
    let mut config = catalog_config();
    config.service.database_url = with_tls(&config.service.database_url).into();
    let catalog = start_catalog(config).await.service;
    let mut config = order_config(&catalog.url());
    config.service.database_url = with_tls(&config.service.database_url).into();
    let orders = start_order(config).await.service;

    let mut catalog_client = catalog_client(&catalog).await;
    let product = create_product(&mut catalog_client, "Lamp", "12.50", 5).await;
    let mut client = order_client(&orders).await;
    create_order(&mut client, 1, &[(&product.id, 2)], None)
        .await
        .expect("an order goes through both services and both databases");

    for service in [&catalog, &orders] {
        let url = &service.database_url;
        let (encrypted, clear) = connections_by_encryption(service).await;
        assert!(encrypted > 0, "no connection to {url}");
        assert_eq!(clear, 0, "unencrypted connections to {url}");
    }
}

/// [`both_services_work_over_tls`] with `sslmode={mode}`: `require` alone,
/// a verifying mode with the server's own certificate as `sslrootcert`.
async fn sslmode_works(host: &str, mode: &str) {
    let root = server_certificate_file().await;
    let parameters = match mode {
        "require" => "sslmode=require".to_owned(),
        verifying => format!("sslmode={verifying}&sslrootcert={root}"),
    };
    both_services_work_over_tls(host, &parameters).await;
}

#[tokio::test]
async fn sslmode_require_encrypts_every_connection_of_both_services() {
    sslmode_works("127.0.0.1", "require").await;
}

#[tokio::test]
async fn sslmode_verify_ca_accepts_a_server_certificate_chaining_to_sslrootcert() {
    sslmode_works("127.0.0.1", "verify-ca").await;
}

#[tokio::test]
async fn sslmode_verify_full_checks_the_host_name_too() {
    // The snakeoil certificate names `localhost`.
    sslmode_works("localhost", "verify-full").await;
}

#[tokio::test]
async fn a_server_certificate_that_does_not_chain_to_sslrootcert_is_refused_at_start() {
    server_certificate_file().await;
    // A root the server's certificate was not signed with.
    let dir = std::env::temp_dir().join(format!("db-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let other_root = dir.join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Some other CA",
            "-keyout",
        ])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&other_root)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{made:?}");

    let TestConfig {
        mut config,
        database: _database,
    } = catalog_config();
    config.service.database_url = format!(
        "{}?sslmode=verify-ca&sslrootcert={}",
        config.service.database_url.as_str(),
        other_root.display()
    )
    .into();
    config.service.db_max_connections = 1;
    let refused = catalog_service::Application::build(config).await;
    let error = format!("{:#}", refused.err().expect("the catalog refuses to start"));
    assert!(error.contains("catalog database"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
