//! Both services reach PostgreSQL over TLS when their `DATABASE_URL` asks for
//! it, as a managed PostgreSQL requires: `sslmode=require` (encrypted),
//! `verify-ca` (the server's certificate must chain to `sslrootcert`) and
//! `verify-full` (and name the host). The local server has `ssl = on` with
//! Debian's snakeoil certificate (`CN=localhost`, self-signed), which serves
//! as its own root here. The server's `pg_stat_ssl` shows whether each of the
//! services' connections is encrypted.

use sqlx::{Connection, PgConnection};
use tests::{
    catalog::{catalog_client, create_product, spawn_catalog_on},
    fresh_database_url,
    order::{create_order, order_client, order_config, start_order},
    postgres_server_url,
};

/// The certificate the local server presents (`SHOW ssl_cert_file`).
async fn server_certificate_file() -> String {
    let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_server_url()))
        .await
        .expect("PostgreSQL reachable");
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

/// `(encrypted, in clear)` counts of the server's connections to `database`.
async fn connections_by_encryption(database_url: &str) -> (i64, i64) {
    let without_query = database_url.split('?').next().unwrap();
    let (_, database) = without_query.rsplit_once('/').unwrap();
    let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_server_url()))
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(database)
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

/// Runs an order through both services with `ssl_parameters` appended to
/// their database URLs, then checks that every connection they hold to their
/// databases is encrypted.
async fn both_services_work_over_tls(host: &str, ssl_parameters: &str) {
    let with_tls = |service: &str| {
        let url = fresh_database_url(service).replace("127.0.0.1", host);
        format!("{url}?{ssl_parameters}")
    };
    let catalog = spawn_catalog_on(with_tls("catalog")).await;
    let mut config = order_config(&catalog.url());
    config.database_url = with_tls("order");
    let orders = start_order(config).await;

    let mut catalog_client = catalog_client(&catalog).await;
    let product = create_product(&mut catalog_client, "Lamp", "12.50", 5).await;
    let mut client = order_client(&orders.service).await;
    create_order(&mut client, 1, &[(&product.id, 2)], None)
        .await
        .expect("an order goes through both services and both databases");

    for url in [&catalog.database_url, &orders.service.database_url] {
        let (encrypted, clear) = connections_by_encryption(url).await;
        assert!(encrypted > 0, "no connection to {url}");
        assert_eq!(clear, 0, "unencrypted connections to {url}");
    }
}

#[tokio::test]
async fn sslmode_require_encrypts_every_connection_of_both_services() {
    server_certificate_file().await;
    both_services_work_over_tls("127.0.0.1", "sslmode=require").await;
}

#[tokio::test]
async fn sslmode_verify_ca_accepts_a_server_certificate_chaining_to_sslrootcert() {
    let root = server_certificate_file().await;
    both_services_work_over_tls(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={root}"),
    )
    .await;
}

#[tokio::test]
async fn sslmode_verify_full_checks_the_host_name_too() {
    let root = server_certificate_file().await;
    // The snakeoil certificate names `localhost`.
    both_services_work_over_tls(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    )
    .await;
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

    let mut config = catalog_service::Config::for_database(
        format!(
            "{}?sslmode=verify-ca&sslrootcert={}",
            fresh_database_url("catalog"),
            other_root.display()
        ),
        tests::any_port(),
    );
    config.db_max_connections = 1;
    let refused = catalog_service::Application::build(config).await;
    let error = format!("{:#}", refused.err().expect("the catalog refuses to start"));
    assert!(error.contains("catalog database"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
