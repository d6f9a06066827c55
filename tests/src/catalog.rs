//! Starting a catalog service for a test, and small helpers around its client.

use std::{net::SocketAddr, str::FromStr};

use proto::catalog::v1::{
    CommitInventoryRequest, CreateProductRequest, Product, ReleaseInventoryRequest,
    catalog_service_client::CatalogServiceClient,
};
use rust_decimal::Decimal;
use tonic::{Status, transport::Channel};

use crate::{RunningService, TEST_POOL_SIZE, TestConfig, TestDatabase, any_port};

pub type CatalogClient = CatalogServiceClient<Channel>;

/// The test configuration (small pool, short drain) on `database`.
pub fn catalog_config_on(database: TestDatabase) -> TestConfig<catalog_service::Config> {
    let mut config = catalog_service::Config::for_database(database.url(), any_port());
    config.service.db_max_connections = TEST_POOL_SIZE;
    config.service.shutdown_grace = std::time::Duration::from_secs(5);
    TestConfig { config, database }
}

/// The test configuration on a fresh database; tests adjust fields before
/// [`start_catalog`].
pub fn catalog_config() -> TestConfig<catalog_service::Config> {
    catalog_config_on(TestDatabase::fresh("catalog"))
}

/// Starts a catalog service on a fresh database.
pub async fn spawn_catalog() -> RunningService {
    start_catalog(catalog_config()).await.service
}

/// Starts a catalog service on the given database (e.g. to restart one).
pub async fn spawn_catalog_on(database: TestDatabase) -> RunningService {
    start_catalog(catalog_config_on(database)).await.service
}

/// A running catalog service and its admin address.
pub struct CatalogHarness {
    pub service: RunningService,
    /// The admin HTTP server: `/metrics`, `/health`, `/ready`.
    pub admin_addr: SocketAddr,
}

/// Starts a catalog service with this configuration.
pub async fn start_catalog(config: TestConfig<catalog_service::Config>) -> CatalogHarness {
    let database = config.held(&config.service.database_url);
    let app = catalog_service::Application::build(config.config).await;
    let app = app.expect("catalog service starts");
    let admin_addr = app.admin_addr();
    let service = RunningService::spawn(app.local_addr(), database, |stop| app.run_until(stop));
    CatalogHarness {
        service,
        admin_addr,
    }
}

/// A catalog service on a fresh database (it runs as long as the returned
/// service is kept) and a client of it.
pub async fn catalog() -> (RunningService, CatalogClient) {
    let service = spawn_catalog().await;
    let client = catalog_client(&service).await;
    (service, client)
}

pub async fn catalog_client(service: &RunningService) -> CatalogClient {
    CatalogServiceClient::connect(service.url())
        .await
        .expect("catalog reachable")
}

/// Wire money from a decimal literal, e.g. `money("999.99")`.
pub fn money(amount: &str) -> proto::common::v1::Money {
    proto::money::from_decimal(Decimal::from_str(amount).expect("decimal literal"), "USD")
        .expect("amount fits")
}

/// Creates a product with the given price and stock; returns it.
pub async fn create_product(
    client: &mut CatalogClient,
    name: &str,
    price: &str,
    quantity: i32,
) -> Product {
    client
        .create_product(CreateProductRequest {
            name: name.to_owned(),
            description: None,
            price: Some(money(price)),
            quantity,
        })
        .await
        .expect("product created")
        .into_inner()
}

/// GetProduct.
pub async fn get_product(
    client: &mut CatalogClient,
    id: &str,
) -> Result<proto::catalog::v1::Product, Status> {
    let request = proto::catalog::v1::GetProductRequest { id: id.to_owned() };
    Ok(client.get_product(request).await?.into_inner())
}

/// The product's current stock.
pub async fn stock_of(client: &mut CatalogClient, product_id: &str) -> i32 {
    get_product(client, product_id)
        .await
        .expect("product exists")
        .quantity
}

/// ReserveInventory with `(product id, quantity)` lines, in the given order.
pub async fn reserve(
    client: &mut CatalogClient,
    reservation_id: &str,
    items: &[(&str, i32)],
) -> Result<proto::catalog::v1::ReserveInventoryResponse, Status> {
    client
        .reserve_inventory(proto::catalog::v1::ReserveInventoryRequest {
            reservation_id: reservation_id.to_owned(),
            items: items
                .iter()
                .map(
                    |&(product_id, quantity)| proto::catalog::v1::ReservationItem {
                        product_id: product_id.to_owned(),
                        quantity,
                    },
                )
                .collect(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// ReleaseInventory; `Ok(released)`.
pub async fn release(client: &mut CatalogClient, reservation_id: &str) -> Result<bool, Status> {
    let reservation_id = reservation_id.to_owned();
    let answer = client.release_inventory(ReleaseInventoryRequest { reservation_id });
    Ok(answer.await?.into_inner().released)
}

/// CommitInventory; `Ok(committed)`.
pub async fn commit(client: &mut CatalogClient, reservation_id: &str) -> Result<bool, Status> {
    let reservation_id = reservation_id.to_owned();
    let answer = client.commit_inventory(CommitInventoryRequest { reservation_id });
    Ok(answer.await?.into_inner().committed)
}

/// One page of ListProducts.
pub async fn list_products(
    client: &mut CatalogClient,
    page: u32,
    page_size: u32,
    in_stock: Option<bool>,
) -> Result<proto::catalog::v1::ListProductsResponse, Status> {
    client
        .list_products(proto::catalog::v1::ListProductsRequest {
            page,
            page_size,
            in_stock,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// How many products exist (the unfiltered list's total).
pub async fn product_count(client: &mut CatalogClient) -> u64 {
    list_products(client, 1, 1, None)
        .await
        .expect("products listed")
        .total
}

/// The field names of an `INVALID_ARGUMENT` status's violations, in order.
pub fn violated_fields(status: &Status) -> Vec<String> {
    proto::errors::violations(status)
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// The `ErrorInfo` reason of a status ("" when it carries none).
pub fn reason_of(status: &Status) -> String {
    proto::errors::error_info(status)
        .map(|(reason, _)| reason)
        .unwrap_or_default()
}

/// One `ErrorInfo` metadata value of a status ("" when absent).
pub fn metadata_of(status: &Status, key: &str) -> String {
    proto::errors::error_info(status)
        .and_then(|(_, mut metadata)| metadata.remove(key))
        .unwrap_or_default()
}

/// A direct connection to the service's own database, for what the API
/// cannot arrange (e.g. identical creation times).
pub async fn catalog_database(service: &RunningService) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&service.database_url)
        .await
        .expect("catalog database reachable")
}
