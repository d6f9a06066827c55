//! Mutual TLS between the processes: with certificates configured, the gRPC
//! ports serve only callers presenting a client certificate from the
//! configured CA, and clients accept only servers whose certificate chains to
//! theirs and names the host they asked for.
//!
//! Certificates come from `deploy/tls/make-certs.sh` (what operators run),
//! made afresh per test in a temporary directory; a second run makes
//! "another CA". The services run in-process (their `Config`s) except in the
//! last test, which runs the real binaries with the TLS environment and their
//! `--probe`.

use std::{net::SocketAddr, time::Duration};

use platform::tls::{ClientTlsSettings, ServerTlsSettings};
use proto::{
    catalog::v1::{ListProductsRequest, catalog_service_client::CatalogServiceClient},
    order::v1::{OrderStatus, PaymentStatus, order_service_client::OrderServiceClient},
};
use tests::{
    TestConfig, TestDatabase,
    catalog::{CatalogClient, catalog_config, create_product, product_count, stock_of},
    gateway::{Platform, spawn_gateway},
    order::{OrderClient, create_order, get_order, order_config, pay, start_order},
    process::{CapturedOutput, ChildService, run_to_exit},
    tls::{TestCerts, https_url, plaintext_channel, start_tls_catalog, tls_channel},
};
use tonic::{Code, Status, transport::Channel};

/// A call refused because the connection under it was: the handshake failed
/// (or, for a plaintext caller, never happened), so no RPC ran. Such a
/// status is made by the client from the transport error (its source); one
/// a server wrote has none. Its code depends on when the client hears of the
/// refusal: with TLS 1.3 the client finishes its half of the handshake
/// first, so the server's alert (`CertificateRequired`, ...) or its closing
/// the connection arrives with the first request: UNKNOWN "transport error",
/// or CANCELLED "connection closed"; a server the client itself refuses is
/// UNAVAILABLE.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, who: &str) {
    let status = result.expect_err(&format!("{who}: the call must be refused"));
    let from_transport = std::error::Error::source(&status)
        .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some());
    assert!(from_transport, "{who}: not a transport failure: {status:?}");
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "{who}: {status:?}"
    );
}

/// ApplyPayment over `channel` is refused by the connection, never answered.
async fn assert_payment_refused(channel: Channel, who: &str) {
    let mut client = OrderServiceClient::new(channel);
    let order = uuid::Uuid::new_v4().to_string();
    assert_refused(
        pay(&mut client, &order, PaymentStatus::Paid, None).await,
        who,
    );
}

/// ListProducts over `channel` is refused by the connection.
async fn assert_listing_refused(channel: Channel, who: &str) {
    let request = ListProductsRequest {
        page: 1,
        page_size: 10,
        in_stock: None,
    };
    let listed = CatalogServiceClient::new(channel)
        .list_products(request)
        .await;
    assert_refused(listed, who);
}

/// Clients of the catalog and of the order service at these addresses, over
/// mutual TLS with `client`'s certificate, checking the servers against
/// `localhost`.
fn tls_clients(
    catalog: SocketAddr,
    order: SocketAddr,
    client: &ClientTlsSettings,
) -> (CatalogClient, OrderClient) {
    (
        CatalogServiceClient::new(tls_channel(catalog, "localhost", client)),
        OrderServiceClient::new(tls_channel(order, "localhost", client)),
    )
}

/// Everything a test needs: certificates, a TLS catalog, a TLS order service
/// calling it over mutual TLS (CATALOG_URL `https://localhost:<port>`,
/// balanced: the name resolves to addresses, the certificate is checked
/// against the name).
struct TlsServices {
    certs: TestCerts,
    catalog: tests::RunningService,
    order: tests::RunningService,
}

impl TlsServices {
    async fn start() -> Self {
        let certs = TestCerts::generate();
        let catalog = start_tls_catalog(certs.server_settings("catalog-service")).await;
        let mut config = order_config(&https_url(catalog.addr));
        assert!(
            config.grpc_balance,
            "the balanced channel is what runs in production"
        );
        config.service.tls = certs.server_settings("order-service");
        config.service.grpc_tls = certs.client_settings("order-service");
        let order = start_order(config).await.service;
        Self {
            certs,
            catalog,
            order,
        }
    }

    /// Clients with the certificate of `client`'s process.
    fn clients(&self, client: &ClientTlsSettings) -> (CatalogClient, OrderClient) {
        tls_clients(self.catalog.addr, self.order.addr, client)
    }
}

#[tokio::test]
async fn a_caller_with_a_valid_client_certificate_is_served() {
    let certs = TestCerts::generate();
    let catalog = start_tls_catalog(certs.server_settings("catalog-service")).await;
    let gateway = certs.client_settings("gateway");
    // The certificate names `localhost` and 127.0.0.1: either is checked.
    for name in ["localhost", "127.0.0.1"] {
        let mut client = CatalogServiceClient::new(tls_channel(catalog.addr, name, &gateway));
        let product = create_product(&mut client, "Laptop", "999.99", 5).await;
        assert_eq!(stock_of(&mut client, &product.id).await, 5);
    }
}

#[tokio::test]
async fn an_order_goes_from_order_service_to_the_catalog_over_mutual_tls() {
    let services = TlsServices::start().await;
    let (mut catalog_client, mut order_client) =
        services.clients(&services.certs.client_settings("gateway"));
    let product = create_product(&mut catalog_client, "Laptop", "999.99", 5).await;

    // CreateOrder reserves at the catalog: order-service -> catalog, mTLS.
    let created = create_order(&mut order_client, 7, &[(&product.id, 2)], None)
        .await
        .expect("order created through the TLS catalog channel");
    assert_eq!(stock_of(&mut catalog_client, &product.id).await, 3);
    let paid = pay(&mut order_client, &created.id, PaymentStatus::Paid, None)
        .await
        .expect("payment applied");
    assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
    let read = get_order(&mut order_client, &created.id).await.unwrap();
    assert_eq!(read.status, OrderStatus::Pending as i32);
}

#[tokio::test]
async fn a_caller_without_a_client_certificate_is_refused() {
    let services = TlsServices::start().await;
    let (mut catalog_client, _) = services.clients(&services.certs.ca_only());
    assert_refused(
        catalog_client
            .create_product(proto::catalog::v1::CreateProductRequest {
                name: "Free stuff".into(),
                description: None,
                price: Some(tests::catalog::money("1.00")),
                quantity: 1,
            })
            .await,
        "CreateProduct without a client certificate",
    );
    let anonymous = tls_channel(services.order.addr, "localhost", &services.certs.ca_only());
    assert_payment_refused(anonymous, "ApplyPayment without a client certificate").await;

    // Nothing ran: a caller with a certificate finds no product.
    let (mut client, _) = services.clients(&services.certs.client_settings("gateway"));
    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let services = TlsServices::start().await;
    let other = TestCerts::generate();
    // Trusts the right CA (so the server is accepted), presents a
    // certificate another CA signed.
    let foreign = ClientTlsSettings {
        grpc_tls_ca_file: Some(services.certs.path("ca.pem")),
        grpc_tls_cert_file: Some(other.path("gateway.pem")),
        grpc_tls_key_file: Some(other.path("gateway.key")),
    };
    let catalog = tls_channel(services.catalog.addr, "localhost", &foreign);
    assert_listing_refused(catalog, "ListProducts with another CA's certificate").await;
    let order = tls_channel(services.order.addr, "localhost", &foreign);
    assert_payment_refused(order, "ApplyPayment with another CA's certificate").await;
}

#[tokio::test]
async fn a_plaintext_caller_is_refused() {
    let services = TlsServices::start().await;
    let mut catalog_client = CatalogServiceClient::new(plaintext_channel(services.catalog.addr));
    assert_refused(
        catalog_client
            .get_product(proto::catalog::v1::GetProductRequest {
                id: uuid::Uuid::new_v4().to_string(),
            })
            .await,
        "GetProduct in plaintext",
    );
    let order = plaintext_channel(services.order.addr);
    assert_payment_refused(order, "ApplyPayment in plaintext").await;
}

#[tokio::test]
async fn a_server_from_another_ca_or_for_another_name_is_refused_by_the_client() {
    let certs = TestCerts::generate();
    let catalog = start_tls_catalog(certs.server_settings("catalog-service")).await;
    let other = TestCerts::generate();
    // A client of the other CA does not trust this server.
    let untrusting = tls_channel(catalog.addr, "localhost", &other.client_settings("gateway"));
    assert_listing_refused(untrusting, "server of another CA").await;
    // The catalog's certificate does not name `order-service`: a client
    // expecting the order service there refuses it.
    let gateway = certs.client_settings("gateway");
    let misnamed = tls_channel(catalog.addr, "order-service", &gateway);
    assert_listing_refused(misnamed, "certificate for another name").await;
}

#[tokio::test]
async fn the_gateway_reads_a_product_over_mutual_tls() {
    let TlsServices {
        certs,
        catalog,
        order,
    } = TlsServices::start().await;
    let gateway_tls = certs.client_settings("gateway");
    let (mut catalog_client, _) = tls_clients(catalog.addr, order.addr, &gateway_tls);
    let product = create_product(&mut catalog_client, "Laptop", "999.99", 5).await;

    let (catalog_url, order_url) = (https_url(catalog.addr), https_url(order.addr));
    let gateway = spawn_gateway(&catalog_url, &order_url, |config| {
        config.grpc_tls = gateway_tls;
    })
    .await;
    let p = Platform::new(catalog, order, gateway);
    // Ready: both services answered their health checks over mutual TLS.
    p.get("/ready").await.expect(200);
    let read = p.get(&format!("/api/products/{}", product.id)).await;
    read.expect(200);
    assert_eq!(read.json["name"], "Laptop");
    assert_eq!(read.json["quantity"], 5);
}

/// Why the service `build` refuses to start.
fn refusal<T>(built: anyhow::Result<T>) -> String {
    match built {
        Ok(_) => panic!("the service must refuse these TLS settings"),
        Err(error) => format!("{error:#}"),
    }
}

/// Why the catalog refuses to start with `tls`.
async fn catalog_refusal(tls: ServerTlsSettings) -> String {
    let TestConfig {
        mut config,
        database: _database,
    } = catalog_config();
    config.service.tls = tls;
    refusal(catalog_service::Application::build(config).await)
}

/// Why the order service refuses to start with `grpc_tls` toward the
/// catalog at `catalog_url`.
async fn order_refusal(catalog_url: &str, grpc_tls: ClientTlsSettings) -> String {
    let TestConfig {
        mut config,
        database: _database,
    } = order_config(catalog_url);
    config.service.grpc_tls = grpc_tls;
    refusal(order_service::Application::build(config).await)
}

#[tokio::test]
async fn incomplete_or_mismatched_tls_settings_stop_the_start() {
    let certs = TestCerts::generate();
    let server = || certs.server_settings("catalog-service");

    let error = catalog_refusal(ServerTlsSettings {
        tls_key_file: None,
        ..server()
    })
    .await;
    assert!(error.contains("TLS_KEY_FILE"), "{error}");

    // A key that is not the certificate's.
    let error = catalog_refusal(ServerTlsSettings {
        tls_key_file: Some(certs.path("gateway.key")),
        ..server()
    })
    .await;
    assert!(error.starts_with("TLS_CERT_FILE / TLS_KEY_FILE"), "{error}");

    // A client CA file that holds a key, not a certificate.
    let error = catalog_refusal(ServerTlsSettings {
        tls_client_ca_file: Some(certs.path("gateway.key")),
        ..server()
    })
    .await;
    assert!(error.starts_with("TLS_CLIENT_CA_FILE"), "{error}");
    // Never the key's contents.
    let key = std::fs::read_to_string(certs.path("gateway.key")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!error.contains(key_body), "{error}");

    // The order service's client side: a certificate without its key.
    let client = certs.client_settings("order-service");
    let without_key = ClientTlsSettings {
        grpc_tls_key_file: None,
        ..client.clone()
    };
    let error = order_refusal("https://localhost:1", without_key).await;
    assert!(error.contains("GRPC_TLS_KEY_FILE"), "{error}");

    // TLS configured, but a plaintext catalog URL.
    let error = order_refusal("http://localhost:1", client).await;
    assert!(error.contains("CATALOG_URL"), "{error}");
    assert!(error.contains("use https://"), "{error}");
}

/// Runs `binary args...` with `env` to its exit (10 s at most); returns
/// whether it exited 0, and what it wrote.
async fn run(binary: &str, args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let output = CapturedOutput::new();
    let limit = Duration::from_secs(10);
    let status = run_to_exit(binary, args, env, &output, limit).await;
    (status.success(), output.text())
}

#[tokio::test]
async fn the_binaries_serve_mutual_tls_and_probe_it() {
    let certs = TestCerts::generate();
    let (catalog_db, order_db) = (TestDatabase::fresh("catalog"), TestDatabase::fresh("order"));

    // A half-configured binary refuses to start, naming the setting.
    let untouched = TestDatabase::fresh("catalog");
    let half = [
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", untouched.url()),
        (
            "TLS_CERT_FILE",
            certs.path("catalog-service.pem").display().to_string(),
        ),
    ];
    let (started, said) = run("catalog-service", &[], &half).await;
    assert!(!started);
    assert!(said.contains("TLS_KEY_FILE"), "{said}");

    let mut catalog_env = vec![
        ("DATABASE_URL", catalog_db.url()),
        ("DB_MAX_CONNECTIONS", "4".to_owned()),
    ];
    catalog_env.extend(certs.server_env("catalog-service"));
    // What its `--probe` presents.
    catalog_env.extend(certs.client_env("catalog-service"));
    let catalog = ChildService::start("catalog-service", &catalog_env).await;

    let mut order_env = vec![
        ("DATABASE_URL", order_db.url()),
        ("DB_MAX_CONNECTIONS", "4".to_owned()),
        ("CATALOG_URL", https_url(catalog.addr)),
        ("GRPC_REFRESH_INTERVAL", "100ms".to_owned()),
    ];
    order_env.extend(certs.server_env("order-service"));
    order_env.extend(certs.client_env("order-service"));
    let order = ChildService::start("order-service", &order_env).await;

    // `--probe` with each container's environment: healthy over mutual TLS.
    for (binary, env, addr) in [
        ("catalog-service", &catalog_env, catalog.addr),
        ("order-service", &order_env, order.addr),
    ] {
        let mut env = env.clone();
        env.push(("LISTEN_ADDR", addr.to_string()));
        let mut healthy = false;
        // Health turns SERVING once the database answered a first ping.
        for _ in 0..50 {
            let (ok, said) = run(binary, &["--probe"], &env).await;
            assert!(said.is_empty() || ok, "{binary} --probe said: {said}");
            if ok {
                healthy = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(healthy, "{binary} --probe never exited 0");

        // Without the client settings the probe cannot speak to a TLS
        // server: it says so and exits 1.
        env.retain(|(key, _)| !key.starts_with("GRPC_TLS_"));
        let (ok, said) = run(binary, &["--probe"], &env).await;
        assert!(!ok);
        assert!(said.contains("GRPC_TLS_CA_FILE"), "{said}");
    }

    // A full order through the real binaries: caller -> order-service ->
    // catalog-service, every hop mutual TLS.
    let gateway = certs.client_settings("gateway");
    let (mut catalog_client, mut order_client) = tls_clients(catalog.addr, order.addr, &gateway);
    let product = create_product(&mut catalog_client, "Laptop", "999.99", 5).await;
    create_order(&mut order_client, 7, &[(&product.id, 2)], None)
        .await
        .expect("order created over mutual TLS");
    assert_eq!(stock_of(&mut catalog_client, &product.id).await, 3);
    // And a caller without a certificate is refused by the real binary too.
    let anonymous = tls_channel(order.addr, "localhost", &certs.ca_only());
    assert_payment_refused(
        anonymous,
        "ApplyPayment without a client certificate (binary)",
    )
    .await;

    assert!(order.terminate().await, "order-service exits 0 on SIGTERM");
    assert!(
        catalog.terminate().await,
        "catalog-service exits 0 on SIGTERM"
    );
}
