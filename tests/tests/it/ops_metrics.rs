//! Every process serves Prometheus series an operator needs: the real
//! binaries (one registry each) after a known amount of traffic, with the
//! figures that traffic must have produced.

use std::collections::BTreeMap;

use serde_json::json;
use tests::{
    gateway::Api,
    process::{ChildPlatform, PlatformEnv},
};

/// `name{labels}` -> value, from the Prometheus / OpenMetrics text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the one series whose name and labels are all given (labels
/// in any order, `name{a="1",b="2"}`); `None` when absent.
fn value(series: &BTreeMap<String, f64>, wanted: &str) -> Option<f64> {
    let (name, labels) = wanted.split_once('{').unwrap_or((wanted, "}"));
    let labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    series.iter().find_map(|(key, value)| {
        let (key_name, rest) = key.split_once('{').unwrap_or((key, "}"));
        let matches = key_name == name
            && labels
                .iter()
                .all(|label| label.is_empty() || rest.contains(label));
        matches.then_some(*value)
    })
}

/// Each process's series, by process name.
async fn scrape(
    api: &Api,
    platform: &ChildPlatform,
) -> BTreeMap<&'static str, BTreeMap<String, f64>> {
    let mut scraped = BTreeMap::new();
    for (process, url) in platform.metrics_urls() {
        let page = api.fetch(&url).await;
        page.expect(200);
        scraped.insert(process, parse(&String::from_utf8_lossy(&page.body)));
    }
    scraped
}

#[tokio::test]
async fn each_process_exposes_its_red_business_pool_and_process_series() {
    let platform = ChildPlatform::start(PlatformEnv::default()).await;
    let api = Api::new(platform.gateway_url());

    // Known traffic: 1 product, 2 orders taken, 1 refused for stock, 1 cancel.
    let product = api.create_product("Lamp", "25.50", 3).await;
    let product_id = product["id"].as_str().unwrap();
    let mut order_ids = Vec::new();
    for _ in 0..2 {
        let created = api.create_order(1, &[(product_id, 1)]).await;
        created.expect(201);
        order_ids.push(created.json["id"].as_str().unwrap().to_owned());
    }
    api.create_order(1, &[(product_id, 5)]).await.expect(400);
    let cancel = json!({"status": "canceled"});
    let path = format!("/api/orders/{}/status", order_ids[0]);
    api.put(&path, &cancel).await.expect(200);

    let scraped = scrape(&api, &platform).await;
    // `<process> <series> <value>`: the figures that traffic produced.
    let reserve = r#"rpc="/catalog.v1.CatalogService/ReserveInventory""#;
    let create = r#"rpc="/order.v1.OrderService/CreateOrder""#;
    let route = r#"method="POST",route="/api/orders""#;
    let expected = format!(
        r#"
        catalog-service grpc_server_requests_total{{{reserve},code="OK"}} 2
        catalog-service grpc_server_requests_total{{{reserve},code="FAILED_PRECONDITION"}} 1
        catalog-service grpc_server_request_duration_seconds_count{{{reserve}}} 3
        catalog-service catalog_reservations_total{{outcome="reserved"}} 2
        catalog-service catalog_reservations_total{{outcome="insufficient_stock"}} 1
        catalog-service catalog_units_reserved_total 2
        catalog-service catalog_reservation_releases_total 1
        order-service grpc_server_requests_total{{{create},code="OK"}} 2
        order-service order_creations_total{{outcome="created"}} 2
        order-service order_creations_total{{outcome="refused"}} 1
        order-service order_rejections_total{{reason="insufficient_stock"}} 1
        order-service order_outbox_deliveries_total{{outcome="delivered"}} 1
        order-service order_outbox_backlog 0
        order-service order_outbox_oldest_age_seconds 0
        gateway http_server_requests_total{{{route},status="201"}} 2
        gateway http_server_requests_total{{{route},status="400"}} 1
        gateway http_server_request_duration_seconds_count{{{route}}} 3
        gateway grpc_client_requests_total{{rpc="CreateOrder",code="OK"}} 2
        "#
    );
    for line in expected
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let (process, sample) = line.split_once(' ').unwrap();
        let (series, figure) = sample.rsplit_once(' ').unwrap();
        let figure: f64 = figure.parse().unwrap();
        assert_eq!(value(&scraped[process], series), Some(figure), "{line}");
    }

    let catalog = &scraped["catalog-service"];
    let catalog_pool = value(catalog, "db_pool_connections_idle").unwrap()
        + value(catalog, "db_pool_connections_in_use").unwrap();
    assert!(
        catalog_pool >= 1.0,
        "the catalog holds at least one connection"
    );
    let order = &scraped["order-service"];
    assert!(value(order, "db_pool_connections_idle").is_some());
    assert!(value(order, "db_pool_connections_in_use").is_some());
    let p99_bucket_sum: f64 = scraped["gateway"]
        .iter()
        .filter(|(k, _)| {
            k.starts_with("http_server_request_duration_seconds_bucket")
                && k.contains("le=\"+Inf\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(
        p99_bucket_sum >= 5.0,
        "every request landed in a latency bucket"
    );

    // Every process, from the same platform code: its own CPU, memory and
    // file descriptors (separate binaries here, so separate figures).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (process, series) in &scraped {
        let figure =
            |name: &str| value(series, name).unwrap_or_else(|| panic!("{process}: no {name}"));
        let cpu = figure("process_cpu_seconds_total");
        assert!(cpu > 0.0, "{process}: {cpu} s of CPU");
        let resident = figure("process_resident_memory_bytes");
        assert!(resident > 1e6, "{process}: resident {resident} B");
        assert!(
            figure("process_virtual_memory_bytes") >= resident,
            "{process}"
        );
        let open = figure("process_open_fds");
        assert!(open >= 3.0, "{process}: {open} open fds");
        assert!(figure("process_max_fds") >= open, "{process}");
        assert!(figure("process_threads") >= 1.0, "{process}");
        let started = figure("process_start_time_seconds");
        assert!(
            started > now - 600.0 && started <= now + 1.0,
            "{process} started at {started}, now is {now}"
        );
    }

    platform.stop_cleanly().await;
}
