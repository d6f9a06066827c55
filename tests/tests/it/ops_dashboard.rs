//! The Grafana dashboard cannot silently go blank: every series its queries
//! name is one the processes really expose.
//!
//! The test starts the platform, sends traffic that touches every series the
//! dashboard shows (orders created, refused, canceled, completed, paid; a
//! refused webhook; a stuck order the reconciler releases), reads the three
//! `/metrics` endpoints (the gateway's own port, the services' admin ports),
//! then parses every `expr` of `deploy/grafana/dashboards/platform.json`:
//! each metric name must be a series with samples in some process, each
//! label a matcher or a `by (...)` names must be a label of those series or
//! one Prometheus gives every target (`job`, `instance`, `service`). The
//! process series (CPU, memory, fds) come from the processes themselves.
//! The dashboard's structure and its agreement with the provisioning, the
//! Prometheus jobs and compose are `cargo xtask check`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tests::gateway::{Platform, spawn_observed_platform};
use xtask::{
    dashboard::{self, DASHBOARD},
    promql::{exposed_series, parse_query},
};

/// Series Prometheus writes itself for every target (not in any /metrics).
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// Labels Prometheus attaches to every scraped series: its own, and the
/// process name every scrape config sets (`service`: compose's static
/// labels, the Kubernetes pod job's relabeling; see deploy/prometheus).
const TARGET_LABELS: &[&str] = &["job", "instance", "service"];

#[tokio::test]
async fn every_series_the_dashboard_queries_is_exposed_after_traffic() {
    let observed = spawn_observed_platform().await;
    let p = &observed.platform;
    send_traffic(p, &observed.reconciler).await;

    // Every process's series, and which process exposes each.
    let mut exposed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut exposed_by: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (process, url) in &observed.metrics_urls {
        let response = p.http.get(url).send().await.expect("metrics reachable");
        assert_eq!(response.status(), 200, "{process} {url}");
        let text = response.text().await.expect("metrics text");
        for (name, labels) in exposed_series(&text).expect("a Prometheus text page") {
            exposed.entry(name.clone()).or_default().extend(labels);
            exposed_by.entry(name).or_default().insert(process);
        }
    }

    let mut problems = Vec::new();
    let mut queried = BTreeSet::new();
    let text = std::fs::read_to_string(xtask::workspace_root().join(DASHBOARD)).unwrap();
    let dashboard = dashboard::parse(&text).unwrap();
    for (title, expr) in dashboard::exprs(&dashboard) {
        let query = parse_query(&expr).unwrap_or_else(|e| panic!("{title:?}: {e}"));
        let mut labels_in_query: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        for selector in &query.selectors {
            let metric = selector.metric.as_str();
            queried.insert(metric.to_owned());
            if PROMETHEUS_SERIES.contains(&metric) {
                continue;
            }
            let Some(labels) = exposed.get(metric) else {
                problems.push(format!(
                    "{title:?}: `{metric}` is exposed by no process ({expr})"
                ));
                continue;
            };
            labels_in_query.extend(labels.iter().map(String::as_str));
            for label in &selector.matcher_labels {
                if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                    problems.push(format!(
                        "{title:?}: `{metric}` has no label `{label}` (it has {labels:?})"
                    ));
                }
            }
        }
        for label in &query.grouping_labels {
            if !labels_in_query.contains(label.as_str()) {
                problems.push(format!(
                    "{title:?}: groups by `{label}`, a label of none of its series ({expr})"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\nexposed: {exposed_by:#?}",
        problems.len(),
        problems.join("\n")
    );
    // Each process has a part in the dashboard.
    for process in ["gateway", "catalog-service", "order-service"] {
        assert!(
            queried
                .iter()
                .any(|m| exposed_by.get(m).is_some_and(|by| by.contains(process))),
            "the dashboard shows nothing of {process}"
        );
    }
    let not_shown: Vec<&String> = exposed.keys().filter(|m| !queried.contains(*m)).collect();
    println!("exposed series the dashboard does not query: {not_shown:?}");
}

/// Traffic that gives every series of the dashboard a sample.
async fn send_traffic(p: &Platform, reconciler: &order_service::Reconciler) {
    let product = p.create_product("Dashboard lamp", "25.00", 5).await;
    let product_id = product["id"].as_str().expect("product id");
    p.get("/api/products").await.expect(200);
    p.get(&format!("/api/products/{product_id}"))
        .await
        .expect(200);
    p.get("/api/products/00000000-0000-0000-0000-000000000000")
        .await
        .expect(404);

    let mut orders = Vec::new();
    for _ in 0..3 {
        let reply = p.create_order(1, &[(product_id, 1)]).await;
        reply.expect(201);
        orders.push(reply.json["id"].as_str().expect("order id").to_owned());
    }
    // Refused: more than the stock.
    p.create_order(2, &[(product_id, 100)]).await.expect(400);
    p.get("/api/orders").await.expect(200);
    p.get(&format!("/api/orders/{}", orders[0]))
        .await
        .expect(200);

    // Cancel (outbox -> ReleaseInventory), complete (-> CommitInventory), pay.
    p.put(
        &format!("/api/orders/{}/status", orders[0]),
        &json!({"status": "canceled"}),
    )
    .await
    .expect(200);
    p.put(
        &format!("/api/orders/{}/status", orders[1]),
        &json!({"status": "completed"}),
    )
    .await
    .expect(200);
    p.signed_webhook(&json!({"order_id": orders[2], "payment_status": "paid"}))
        .await
        .expect(200);
    // Refused before the order service: no signature.
    p.webhook(br#"{"order_id": "x", "payment_status": "paid"}"#, None)
        .await
        .expect(401);

    // A saga that crashed mid-way: the reconciler releases and rejects it.
    let mut db = tests::order::orders_database(&p.order).await;
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, created_at) \
         VALUES ($1, 3, 'reserving', now() - interval '1 hour')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut db)
    .await
    .expect("a stuck order inserted");
    let report = reconciler
        .reconcile_once()
        .await
        .expect("a reconciler pass");
    assert_eq!(report.rejected, 1, "{report:?}");
}
