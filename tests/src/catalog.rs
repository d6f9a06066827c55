//! Starting a catalog service for a test, and small helpers around its client.

use std::str::FromStr;

use proto::catalog::v1::{
    CreateProductRequest, Product, catalog_service_client::CatalogServiceClient,
};
use rust_decimal::Decimal;
use tonic::transport::Channel;

use crate::{RunningService, TEST_POOL_SIZE, any_port, fresh_database_url};

pub type CatalogClient = CatalogServiceClient<Channel>;

/// Starts a catalog service on a fresh database.
pub async fn spawn_catalog() -> RunningService {
    spawn_catalog_on(fresh_database_url("catalog")).await
}

/// Starts a catalog service on the given database (e.g. to restart one).
pub async fn spawn_catalog_on(database_url: String) -> RunningService {
    let mut config = catalog_service::Config::for_database(database_url.clone(), any_port());
    config.db_max_connections = TEST_POOL_SIZE;
    config.shutdown_grace_secs = 5;
    let app = catalog_service::Application::build(config)
        .await
        .expect("catalog service starts");
    let addr = app.local_addr();
    RunningService::spawn(addr, database_url, |rx| async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
    })
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

/// The product's current stock.
pub async fn stock_of(client: &mut CatalogClient, product_id: &str) -> i32 {
    client
        .get_product(proto::catalog::v1::GetProductRequest {
            id: product_id.to_owned(),
        })
        .await
        .expect("product exists")
        .into_inner()
        .quantity
}
