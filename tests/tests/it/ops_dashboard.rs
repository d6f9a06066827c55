//! The Grafana dashboard cannot silently go blank (issue 8, acceptance 1):
//! every series its queries name is one the processes really expose.
//!
//! The test starts the platform, sends traffic that touches every series the
//! dashboard shows (orders created, refused, canceled, completed, paid; a
//! refused webhook; a stuck order the reconciler releases), reads the three
//! `/metrics` endpoints (the gateway's own port, the services' admin ports),
//! then parses every `expr` of `deploy/grafana/dashboards/platform.json`:
//! each metric name must be a series with samples in some process, each
//! label a matcher or a `by (...)` names must be a label of those series.
//! The dashboard JSON itself is checked for the structure Grafana needs, and
//! for agreeing with the provisioned datasource and the Prometheus jobs.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde_json::{Value, json};
use tests::gateway::{Platform, spawn_observed_platform};

/// Series Prometheus writes itself for every target (not in any /metrics).
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// Labels Prometheus attaches to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/dashboards/platform.json"))
        .expect("the dashboard is valid JSON")
}

// ---- PromQL ----------------------------------------------------------------

/// A metric a query selects, with the labels its matchers name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    metric: String,
    matcher_labels: Vec<String>,
}

/// What one PromQL expression uses.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    selectors: Vec<Selector>,
    /// Labels of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`.
    grouping_labels: Vec<String>,
    /// Label values a matcher compares `job` with (`job=~"a|b"` gives a, b).
    jobs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    /// A `{...}` block: (label, operator, value) for each matcher.
    Matchers(Vec<(String, String, String)>),
    /// Strings, numbers, ranges `[5m]`, Grafana variables: nothing to check.
    Other,
}

const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A quoted string starting at `chars` (the opening quote already taken).
fn string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) -> String {
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    value.push(escaped);
                }
            }
            c if c == quote => break,
            c => value.push(c),
        }
    }
    value
}

fn tokens(expr: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if matches!(c, '"' | '\'' | '`') {
            chars.next();
            string(&mut chars, c);
            tokens.push(Token::Other);
        } else if c == '[' {
            for c in chars.by_ref() {
                if c == ']' {
                    break;
                }
            }
            tokens.push(Token::Other);
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            // A Grafana variable ($__range) or a number (0.99, 1e-9, 0x1f).
            let mut previous = c;
            chars.next();
            while let Some(&c) = chars.peek() {
                let exponent_sign = matches!(c, '+' | '-') && matches!(previous, 'e' | 'E');
                if !(is_ident_char(c) || c == '.' || exponent_sign) {
                    break;
                }
                previous = c;
                chars.next();
            }
            tokens.push(Token::Other);
        } else if is_ident_start(c) {
            let mut ident = String::new();
            while let Some(&c) = chars.peek().filter(|c| is_ident_char(**c)) {
                ident.push(c);
                chars.next();
            }
            tokens.push(Token::Ident(ident));
        } else if c == '{' {
            chars.next();
            let mut matchers = Vec::new();
            loop {
                while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                    chars.next();
                }
                if chars.peek().is_none_or(|c| *c == '}') {
                    chars.next();
                    break;
                }
                let mut label = String::new();
                while let Some(&c) = chars.peek().filter(|c| is_ident_char(**c)) {
                    label.push(c);
                    chars.next();
                }
                let mut operator = String::new();
                while let Some(&c) = chars.peek().filter(|c| matches!(c, '=' | '!' | '~' | ' ')) {
                    if c != ' ' {
                        operator.push(c);
                    }
                    chars.next();
                }
                let value = match chars.next() {
                    Some(quote @ ('"' | '\'' | '`')) => string(&mut chars, quote),
                    other => panic!(
                        "matcher {label}{operator} without a quoted value ({other:?}) in {expr}"
                    ),
                };
                assert!(
                    !label.is_empty() && matches!(operator.as_str(), "=" | "!=" | "=~" | "!~"),
                    "malformed matcher `{label}{operator}` in {expr}"
                );
                matchers.push((label, operator, value));
            }
            tokens.push(Token::Matchers(matchers));
        } else {
            chars.next();
            tokens.push(Token::Punct(c));
        }
    }
    tokens
}

/// The metrics, matcher labels and grouping labels of a PromQL expression.
fn parse_query(expr: &str) -> Query {
    let tokens = tokens(expr);
    let mut query = Query::default();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            // by (a, b): a label list.
            Token::Ident(ident)
                if GROUPING.contains(&ident.as_str())
                    && tokens.get(i + 1) == Some(&Token::Punct('(')) =>
            {
                i += 2;
                while let Some(token) = tokens.get(i) {
                    match token {
                        Token::Ident(label) => query.grouping_labels.push(label.clone()),
                        Token::Punct(')') => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            // group_left / group_right without a label list, operators.
            Token::Ident(ident)
                if KEYWORDS.contains(&ident.as_str()) || GROUPING.contains(&ident.as_str()) => {}
            // A function call, or an aggregation with its grouping first.
            Token::Ident(_)
                if matches!(tokens.get(i + 1), Some(Token::Punct('(')))
                    || matches!(tokens.get(i + 1), Some(Token::Ident(next)) if matches!(next.as_str(), "by" | "without")) =>
                {}
            Token::Ident(metric) => {
                let mut selector = Selector {
                    metric: metric.clone(),
                    matcher_labels: Vec::new(),
                };
                if let Some(Token::Matchers(matchers)) = tokens.get(i + 1) {
                    for (label, operator, value) in matchers {
                        selector.matcher_labels.push(label.clone());
                        if label == "job" && operator.starts_with('=') {
                            query.jobs.extend(value.split('|').map(str::to_owned));
                        }
                    }
                    i += 1;
                }
                query.selectors.push(selector);
            }
            Token::Matchers(_) => panic!("a selector without a metric name in {expr}"),
            _ => {}
        }
        i += 1;
    }
    query
}

// ---- The dashboard ---------------------------------------------------------

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels[]") {
        all.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner);
        }
    }
    all
}

/// `(panel title, expr)` of every query.
fn exprs(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |target| {
                    let expr = target["expr"]
                        .as_str()
                        .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
                    (title.clone(), expr.to_owned())
                })
        })
        .collect()
}

/// The `uid:` of the provisioned Prometheus datasource.
fn provisioned_datasource_uid() -> String {
    read("deploy/grafana/provisioning/datasources/prometheus.yml")
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("uid:")
                .map(|uid| uid.trim().to_owned())
        })
        .expect("the datasource has a uid")
}

/// The `job_name`s of the Prometheus configuration.
fn prometheus_jobs() -> BTreeSet<String> {
    read("deploy/prometheus/prometheus.yml")
        .lines()
        .filter_map(|line| {
            line.trim()
                .trim_start_matches("- ")
                .strip_prefix("job_name:")
                .map(|job| job.trim().trim_matches('"').to_owned())
        })
        .collect()
}

// ---- The exposition --------------------------------------------------------

/// Series name -> the label names seen on its samples, from Prometheus /
/// OpenMetrics text.
fn exposed_series(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name: String = line.chars().take_while(|c| is_ident_char(*c)).collect();
        let labels = series.entry(name.clone()).or_default();
        let mut chars = line[name.len()..].chars().peekable();
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
                let label = label.trim_start_matches(',').trim();
                if label.is_empty() {
                    break;
                }
                labels.insert(label.to_owned());
                assert_eq!(chars.next(), Some('"'), "label value in {line}");
                string(&mut chars, '"');
                if chars.peek() == Some(&'}') {
                    break;
                }
            }
        }
    }
    series
}

// ---- Tests -----------------------------------------------------------------

#[test]
fn the_dashboard_is_valid_and_agrees_with_its_provisioning() {
    let dashboard = dashboard();
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let datasource = provisioned_datasource_uid();
    let jobs = prometheus_jobs();
    assert_eq!(
        jobs,
        ["catalog-service", "gateway", "order-service"]
            .map(str::to_owned)
            .into(),
        "Prometheus scrapes the three processes"
    );
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("numeric id")),
            "panel id of {title:?} is unique"
        );
        let grid = &panel["gridPos"];
        let (x, w, h) = (grid["x"].as_u64(), grid["w"].as_u64(), grid["h"].as_u64());
        assert!(
            matches!((x, w, h, grid["y"].as_u64()), (Some(x), Some(w), Some(h), Some(_)) if x + w <= 24 && w > 0 && h > 0),
            "panel {title:?}: gridPos {grid}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            panel["description"].as_str().is_some_and(|d| !d.is_empty()),
            "panel {title:?} says what it shows"
        );
        assert_eq!(
            panel["datasource"]["uid"], datasource,
            "panel {title:?} uses the provisioned datasource"
        );
        let targets = panel["targets"].as_array().expect("targets[]");
        assert!(!targets.is_empty(), "panel {title:?} has a query");
        let ref_ids: BTreeSet<_> = targets.iter().map(|t| t["refId"].as_str()).collect();
        assert_eq!(
            ref_ids.len(),
            targets.len(),
            "panel {title:?}: refIds unique"
        );
        for target in targets {
            assert_eq!(target["datasource"]["uid"], datasource, "panel {title:?}");
            let expr = target["expr"].as_str().expect("expr");
            let query = parse_query(expr);
            assert!(
                !query.selectors.is_empty(),
                "{title:?}: no metric in {expr}"
            );
            for job in &query.jobs {
                assert!(jobs.contains(job), "{title:?}: job {job:?} is not scraped");
            }
            queries += 1;
        }
    }
    assert!(queries >= 20, "only {queries} queries");

    // Compose mounts what the provisioning files point at.
    let compose = read("docker-compose.yml");
    let provider = read("deploy/grafana/provisioning/dashboards/platform.yml");
    let dashboards_path = provider
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:").map(|p| p.trim().to_owned()))
        .expect("the dashboard provider has a path");
    for mount in [
        format!("./deploy/grafana/dashboards:{dashboards_path}"),
        "./deploy/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources"
            .to_owned(),
        "./deploy/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards".to_owned(),
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml".to_owned(),
    ] {
        assert!(
            compose.contains(&mount),
            "docker-compose.yml mounts {mount}"
        );
    }
    for target in [
        ("gateway:8000", "LISTEN_ADDR: 0.0.0.0:8000"),
        ("catalog-service:9101", "ADMIN_ADDR: 0.0.0.0:9101"),
        ("order-service:9102", "ADMIN_ADDR: 0.0.0.0:9102"),
    ] {
        assert!(
            read("deploy/prometheus/prometheus.yml").contains(target.0),
            "Prometheus scrapes {}",
            target.0
        );
        assert!(compose.contains(target.1), "compose serves {}", target.1);
    }
}

#[test]
fn promql_names_are_read_from_expressions() {
    let query = parse_query(
        r#"histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket{method="GET", route!~"/health|/ready"}[$__rate_interval])))"#,
    );
    assert_eq!(
        query.selectors,
        vec![Selector {
            metric: "http_server_request_duration_seconds_bucket".into(),
            matcher_labels: vec!["method".into(), "route".into()],
        }]
    );
    assert_eq!(query.grouping_labels, ["le", "route"]);

    let query = parse_query(
        r#"sum(rate(a_total{status=~"5.."}[5m])) / clamp_min(sum(rate(a_total[5m])), 1e-9) > bool 0.5 or sum(b) without (instance) and on(job) up{job=~"gateway|order-service"} offset 1m"#,
    );
    let metrics: Vec<&str> = query.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(metrics, ["a_total", "a_total", "b", "up"]);
    assert_eq!(query.grouping_labels, ["instance", "job"]);
    assert_eq!(query.jobs, ["gateway", "order-service"]);

    let series = exposed_series(
        "# TYPE x counter\nx_total{rpc=\"/a.B/C\",code=\"OK\"} 1\nx_total{rpc=\"q\\\"}\",code=\"X\"} 2\ng 0.0\n# EOF\n",
    );
    assert_eq!(series["x_total"], ["code", "rpc"].map(str::to_owned).into());
    assert!(series["g"].is_empty());
}

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
        for (name, labels) in exposed_series(&text) {
            exposed.entry(name.clone()).or_default().extend(labels);
            exposed_by.entry(name).or_default().insert(process);
        }
    }

    let mut problems = Vec::new();
    let mut queried = BTreeSet::new();
    for (title, expr) in exprs(&dashboard()) {
        let query = parse_query(&expr);
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
