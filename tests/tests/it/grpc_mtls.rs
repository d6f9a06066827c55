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

use std::{process::Stdio, time::Duration};

use platform::tls::ClientTlsSettings;
use proto::{
    catalog::v1::catalog_service_client::CatalogServiceClient,
    order::v1::{OrderStatus, PaymentStatus, order_service_client::OrderServiceClient},
};
use tests::{
    any_port,
    catalog::{create_product, product_count, stock_of},
    fresh_database_url,
    gateway::{http_client, spawn_gateway},
    order::{create_order, get_order, order_config, pay, start_order},
    process::{ChildService, binary_path},
    tls::{TestCerts, https_url, plaintext_channel, start_tls_catalog, tls_channel},
};
use tonic::{Code, Status};

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

/// Everything a test needs: certificates, a TLS catalog, a TLS order service
/// calling it over mutual TLS (CATALOG_URL `https://localhost:<port>`,
/// balanced: the name resolves to addresses, the certificate is checked
/// against the name).
struct TlsServices {
    certs: TestCerts,
    catalog: tests::RunningService,
    order: tests::RunningService,
}

async fn start_tls_services() -> TlsServices {
    let certs = TestCerts::generate();
    let catalog = start_tls_catalog(certs.server_settings("catalog-service")).await;
    let mut config = order_config(&https_url(catalog.addr));
    assert!(
        config.catalog_balance,
        "the balanced channel is what runs in production"
    );
    config.tls = certs.server_settings("order-service");
    config.grpc_tls = certs.client_settings("order-service");
    let order = start_order(config).await.service;
    TlsServices {
        certs,
        catalog,
        order,
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
    let TlsServices {
        certs,
        catalog,
        order,
    } = start_tls_services().await;
    let gateway = certs.client_settings("gateway");
    let mut catalog_client =
        CatalogServiceClient::new(tls_channel(catalog.addr, "localhost", &gateway));
    let mut order_client = OrderServiceClient::new(tls_channel(order.addr, "localhost", &gateway));
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
    let TlsServices {
        certs,
        catalog,
        order,
    } = start_tls_services().await;
    let no_certificate = certs.ca_only();

    let mut catalog_client =
        CatalogServiceClient::new(tls_channel(catalog.addr, "localhost", &no_certificate));
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
    let mut order_client =
        OrderServiceClient::new(tls_channel(order.addr, "localhost", &no_certificate));
    assert_refused(
        pay(
            &mut order_client,
            &uuid::Uuid::new_v4().to_string(),
            PaymentStatus::Paid,
            None,
        )
        .await,
        "ApplyPayment without a client certificate",
    );

    // Nothing ran: a caller with a certificate finds no product.
    let mut client = CatalogServiceClient::new(tls_channel(
        catalog.addr,
        "localhost",
        &certs.client_settings("gateway"),
    ));
    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let TlsServices {
        certs,
        catalog,
        order,
    } = start_tls_services().await;
    let other = TestCerts::generate();
    // Trusts the right CA (so the server is accepted), presents a
    // certificate another CA signed.
    let foreign = ClientTlsSettings {
        grpc_tls_ca_file: Some(certs.path("ca.pem")),
        grpc_tls_cert_file: Some(other.path("gateway.pem")),
        grpc_tls_key_file: Some(other.path("gateway.key")),
    };
    let mut catalog_client =
        CatalogServiceClient::new(tls_channel(catalog.addr, "localhost", &foreign));
    assert_refused(
        catalog_client
            .list_products(proto::catalog::v1::ListProductsRequest {
                page: 1,
                page_size: 10,
                in_stock: None,
            })
            .await,
        "ListProducts with another CA's certificate",
    );
    let mut order_client = OrderServiceClient::new(tls_channel(order.addr, "localhost", &foreign));
    assert_refused(
        pay(
            &mut order_client,
            &uuid::Uuid::new_v4().to_string(),
            PaymentStatus::Paid,
            None,
        )
        .await,
        "ApplyPayment with another CA's certificate",
    );
}

#[tokio::test]
async fn a_plaintext_caller_is_refused() {
    let TlsServices { catalog, order, .. } = start_tls_services().await;
    let mut catalog_client = CatalogServiceClient::new(plaintext_channel(catalog.addr));
    assert_refused(
        catalog_client
            .get_product(proto::catalog::v1::GetProductRequest {
                id: uuid::Uuid::new_v4().to_string(),
            })
            .await,
        "GetProduct in plaintext",
    );
    let mut order_client = OrderServiceClient::new(plaintext_channel(order.addr));
    assert_refused(
        pay(
            &mut order_client,
            &uuid::Uuid::new_v4().to_string(),
            PaymentStatus::Paid,
            None,
        )
        .await,
        "ApplyPayment in plaintext",
    );
}

#[tokio::test]
async fn a_server_from_another_ca_or_for_another_name_is_refused_by_the_client() {
    let certs = TestCerts::generate();
    let catalog = start_tls_catalog(certs.server_settings("catalog-service")).await;
    let other = TestCerts::generate();
    let request = || proto::catalog::v1::ListProductsRequest {
        page: 1,
        page_size: 10,
        in_stock: None,
    };
    // A client of the other CA does not trust this server.
    let mut client = CatalogServiceClient::new(tls_channel(
        catalog.addr,
        "localhost",
        &other.client_settings("gateway"),
    ));
    assert_refused(
        client.list_products(request()).await,
        "server of another CA",
    );
    // The catalog's certificate does not name `order-service`: a client
    // expecting the order service there refuses it.
    let mut client = CatalogServiceClient::new(tls_channel(
        catalog.addr,
        "order-service",
        &certs.client_settings("gateway"),
    ));
    assert_refused(
        client.list_products(request()).await,
        "certificate for another name",
    );
}

#[tokio::test]
async fn the_gateway_reads_a_product_over_mutual_tls() {
    let TlsServices {
        certs,
        catalog,
        order,
    } = start_tls_services().await;
    let mut catalog_client = CatalogServiceClient::new(tls_channel(
        catalog.addr,
        "localhost",
        &certs.client_settings("gateway"),
    ));
    let product = create_product(&mut catalog_client, "Laptop", "999.99", 5).await;

    let gateway_tls = certs.client_settings("gateway");
    let gateway = spawn_gateway(&https_url(catalog.addr), &https_url(order.addr), |config| {
        config.grpc_tls = gateway_tls;
    })
    .await;
    let http = http_client();
    let base = format!("http://{}", gateway.addr);
    // Ready: both services answered their health checks over mutual TLS.
    let ready = http.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let read = http
        .get(format!("{base}/api/products/{}", product.id))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let body: serde_json::Value = read.json().await.unwrap();
    assert_eq!(body["name"], "Laptop");
    assert_eq!(body["quantity"], 5);
}

#[tokio::test]
async fn incomplete_or_mismatched_tls_settings_stop_the_start() {
    let certs = TestCerts::generate();
    let build = |tls: platform::tls::ServerTlsSettings| {
        let mut config =
            catalog_service::Config::for_database(fresh_database_url("catalog"), any_port());
        config.tls = tls;
        async move {
            match catalog_service::Application::build(config).await {
                Ok(_) => panic!("the catalog must refuse these TLS settings"),
                Err(error) => format!("{error:#}"),
            }
        }
    };

    let mut settings = certs.server_settings("catalog-service");
    settings.tls_key_file = None;
    let error = build(settings).await;
    assert!(error.contains("TLS_KEY_FILE"), "{error}");

    // A key that is not the certificate's.
    let mut settings = certs.server_settings("catalog-service");
    settings.tls_key_file = Some(certs.path("gateway.key"));
    let error = build(settings).await;
    assert!(error.starts_with("TLS_CERT_FILE / TLS_KEY_FILE"), "{error}");

    // A client CA file that holds a key, not a certificate.
    let mut settings = certs.server_settings("catalog-service");
    settings.tls_client_ca_file = Some(certs.path("gateway.key"));
    let error = build(settings).await;
    assert!(error.starts_with("TLS_CLIENT_CA_FILE"), "{error}");
    // Never the key's contents.
    let key = std::fs::read_to_string(certs.path("gateway.key")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!error.contains(key_body), "{error}");

    // The order service's client side: a certificate without its key.
    let mut config = order_config("https://localhost:1");
    config.grpc_tls = certs.client_settings("order-service");
    config.grpc_tls.grpc_tls_key_file = None;
    let error = match order_service::Application::build(config).await {
        Ok(_) => panic!("the order service must refuse these TLS settings"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("GRPC_TLS_KEY_FILE"), "{error}");

    // TLS configured, but a plaintext catalog URL.
    let mut config = order_config("http://localhost:1");
    config.grpc_tls = certs.client_settings("order-service");
    let error = match order_service::Application::build(config).await {
        Ok(_) => panic!("the order service must refuse an http:// URL with TLS on"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("CATALOG_URL"), "{error}");
    assert!(error.contains("use https://"), "{error}");
}

/// Runs `binary --probe` with `env` (its LISTEN_ADDR among them); returns
/// whether it exited 0, and what it wrote.
async fn probe(binary: &str, env: &[(&str, String)]) -> (bool, String) {
    let output = tokio::process::Command::new(binary_path(binary))
        .arg("--probe")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), output)
        .await
        .expect("the probe ends")
        .expect("the probe runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn the_binaries_serve_mutual_tls_and_probe_it() {
    let certs = TestCerts::generate();

    // A half-configured binary refuses to start, naming the setting.
    let refused = tokio::process::Command::new(binary_path("catalog-service"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", fresh_database_url("catalog"))
        .env("TLS_CERT_FILE", certs.path("catalog-service.pem"))
        .stdin(Stdio::null())
        .output();
    let refused = tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("a refused start ends")
        .expect("the binary runs");
    assert!(!refused.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(said.contains("TLS_KEY_FILE"), "{said}");

    let mut catalog_env = vec![
        ("DATABASE_URL", fresh_database_url("catalog")),
        ("DB_MAX_CONNECTIONS", "4".to_owned()),
    ];
    catalog_env.extend(certs.server_env("catalog-service"));
    // What its `--probe` presents.
    catalog_env.extend(certs.client_env("catalog-service"));
    let catalog = ChildService::start("catalog-service", &catalog_env).await;

    let mut order_env = vec![
        ("DATABASE_URL", fresh_database_url("order")),
        ("DB_MAX_CONNECTIONS", "4".to_owned()),
        ("CATALOG_URL", https_url(catalog.addr)),
        ("CATALOG_REFRESH_MS", "100".to_owned()),
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
            let (ok, said) = probe(binary, &env).await;
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
        let (ok, said) = probe(binary, &env).await;
        assert!(!ok);
        assert!(said.contains("GRPC_TLS_CA_FILE"), "{said}");
    }

    // A full order through the real binaries: caller -> order-service ->
    // catalog-service, every hop mutual TLS.
    let gateway = certs.client_settings("gateway");
    let mut catalog_client =
        CatalogServiceClient::new(tls_channel(catalog.addr, "localhost", &gateway));
    let mut order_client = OrderServiceClient::new(tls_channel(order.addr, "localhost", &gateway));
    let product = create_product(&mut catalog_client, "Laptop", "999.99", 5).await;
    create_order(&mut order_client, 7, &[(&product.id, 2)], None)
        .await
        .expect("order created over mutual TLS");
    assert_eq!(stock_of(&mut catalog_client, &product.id).await, 3);
    // And a caller without a certificate is refused by the real binary too.
    let mut anonymous =
        OrderServiceClient::new(tls_channel(order.addr, "localhost", &certs.ca_only()));
    assert_refused(
        pay(
            &mut anonymous,
            &uuid::Uuid::new_v4().to_string(),
            PaymentStatus::Paid,
            None,
        )
        .await,
        "ApplyPayment without a client certificate (binary)",
    );

    assert!(order.terminate().await, "order-service exits 0 on SIGTERM");
    assert!(
        catalog.terminate().await,
        "catalog-service exits 0 on SIGTERM"
    );
}
