//! The REST contract's page (`deploy/docs/api.md`) documents what the
//! running gateway serves: every operation of its `/openapi.json` has a
//! heading `` ### `METHOD /path` `` there and every such heading is an
//! operation of the document; every problem type `GET /problems` serves has
//! a row `` | `CODE` | status | `` in the page's table, with its status, and
//! the table names no other code.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::header;
use serde_json::Value;
use tests::gateway::{Reply, spawn_platform};

const API_MD: &str = "deploy/docs/api.md";

const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

/// `(METHOD, /path)` of a heading `` ### `METHOD /path` ``.
fn endpoint_heading(line: &str) -> Option<(String, String)> {
    let inner = line.trim_end().strip_prefix("### `")?.strip_suffix('`')?;
    let (method, path) = inner.split_once(' ')?;
    (METHODS.contains(&method) && path.starts_with('/') && !path.contains(' '))
        .then(|| (method.to_owned(), path.to_owned()))
}

/// Every endpoint heading of the page, each once.
fn documented_endpoints(page: &str) -> BTreeSet<(String, String)> {
    let mut endpoints = BTreeSet::new();
    for heading in page.lines().filter_map(endpoint_heading) {
        assert!(
            endpoints.insert(heading.clone()),
            "{API_MD} documents {heading:?} twice"
        );
    }
    endpoints
}

/// `code -> status` of the rows `` | `CODE` | 400 | ... `` of the page.
fn documented_problems(page: &str) -> BTreeMap<String, u16> {
    let mut codes = BTreeMap::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, code, status, ..] = cells.as_slice() else {
            continue;
        };
        let Some(code) = code.strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            continue;
        }
        assert!(
            codes.insert(code.to_owned(), status).is_none(),
            "{API_MD} lists {code} twice"
        );
    }
    codes
}

/// `(METHOD, /path)` of every operation of an OpenAPI document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for method in item.keys() {
            let upper = method.to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                operations.insert((upper, path.clone()));
            }
        }
    }
    operations
}

fn listed(set: &BTreeSet<(String, String)>) -> String {
    set.iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn the_page_is_read_as_written() {
    let page = "# T\n### `GET /api/products/{id}`\n### `PUT /api/orders/{id}/status`  \n\
                ### Not an endpoint\n### `FETCH /x`\n## `GET /not-level-3`\n\
                | `INSUFFICIENT_STOCK` | 400 | words |\n| `api_key` | 401 | no |\n\
                | code | status | when |\n| `OVERLOADED` | 503 | x |\n";
    assert_eq!(
        documented_endpoints(page),
        [
            ("GET", "/api/products/{id}"),
            ("PUT", "/api/orders/{id}/status"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .into()
    );
    assert_eq!(
        documented_problems(page),
        [("INSUFFICIENT_STOCK", 400), ("OVERLOADED", 503)]
            .map(|(c, s)| (c.to_owned(), s))
            .into()
    );
}

#[tokio::test]
async fn every_endpoint_and_problem_code_is_documented() {
    let page = std::fs::read_to_string(xtask::workspace_root().join(API_MD))
        .unwrap_or_else(|e| panic!("{API_MD}: {e}"));
    let p = spawn_platform().await;

    let document = p.get("/openapi.json").await;
    document.expect(200);
    let served = operations(&document.json);
    assert!(
        served.len() >= 15,
        "too few operations: {}",
        listed(&served)
    );
    let documented = documented_endpoints(&page);
    let undocumented: BTreeSet<_> = served.difference(&documented).cloned().collect();
    assert!(
        undocumented.is_empty(),
        "operations of /openapi.json without a heading in {API_MD} (add `### `METHOD /path``): {}",
        listed(&undocumented)
    );
    let gone: BTreeSet<_> = documented.difference(&served).cloned().collect();
    assert!(
        gone.is_empty(),
        "{API_MD} documents operations /openapi.json does not have: {}",
        listed(&gone)
    );

    let sent = p
        .http
        .get(p.url("/problems"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .expect("gateway reachable");
    let problems = Reply::read(sent).await;
    problems.expect(200);
    let types = problems.json["types"]
        .as_array()
        .expect("/problems lists `types`");
    let served: BTreeMap<String, u16> = types
        .iter()
        .map(|t| {
            let code = t["code"].as_str().expect("a type has a code");
            let status = t["status"].as_u64().expect("a type has a status");
            (code.to_owned(), u16::try_from(status).unwrap())
        })
        .collect();
    assert!(served.len() >= 20, "too few problem types: {served:?}");
    let documented = documented_problems(&page);
    for (code, status) in &served {
        assert!(
            page.contains(&format!("`{code}`")),
            "{API_MD} does not mention the problem code {code}"
        );
        assert_eq!(
            documented.get(code),
            Some(status),
            "{API_MD}'s problem table: {code} should be a row `| `{code}` | {status} | ... |`"
        );
    }
    let unknown: Vec<&String> = documented
        .keys()
        .filter(|code| !served.contains_key(*code))
        .collect();
    assert!(
        unknown.is_empty(),
        "{API_MD} lists problem codes GET /problems does not serve: {unknown:?}"
    );
}
