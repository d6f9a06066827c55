//! The Grafana dashboard (`deploy/grafana/dashboards/platform.json`) is
//! well formed and agrees with what serves it: every panel has a unique id, a
//! place on the 24-column grid, a description, the provisioned Prometheus
//! datasource and at least one query with unique refIds; every query selects
//! a metric and names only jobs Prometheus scrapes (exactly the three
//! processes); docker compose mounts what the provisioning files point at,
//! and serves the ports Prometheus scrapes.
//!
//! Whether each series a query names is really exposed by a process is the
//! running code's behaviour: `tests/tests/it/ops_dashboard.rs` checks it
//! after real traffic, with [`exprs`] and [`crate::promql`].

use std::{collections::BTreeSet, path::Path};

use serde_json::Value;

use crate::{promql::parse_query, read};

pub const DASHBOARD: &str = "deploy/grafana/dashboards/platform.json";
const DATASOURCE: &str = "deploy/grafana/provisioning/datasources/prometheus.yml";
const PROVIDER: &str = "deploy/grafana/provisioning/dashboards/platform.yml";
const PROMETHEUS: &str = "deploy/prometheus/prometheus.yml";
const COMPOSE: &str = "docker-compose.yml";

/// The processes Prometheus must scrape, and where compose serves each
/// one's metrics: (job, scrape target, compose setting).
const SCRAPED: [(&str, &str, &str); 3] = [
    ("gateway", "gateway:8000", "LISTEN_ADDR: 0.0.0.0:8000"),
    (
        "catalog-service",
        "catalog-service:9101",
        "ADMIN_ADDR: 0.0.0.0:9101",
    ),
    (
        "order-service",
        "order-service:9102",
        "ADMIN_ADDR: 0.0.0.0:9102",
    ),
];

/// Fewer queries than this means the dashboard lost its panels.
const LEAST_QUERIES: usize = 20;

/// The files the dashboard check reads, as text.
#[derive(Debug, Clone)]
pub struct Files {
    pub dashboard: String,
    pub datasource: String,
    pub provider: String,
    pub prometheus: String,
    pub compose: String,
}

impl Files {
    pub fn read(root: &Path) -> Result<Self, String> {
        let file = |relative: &str| read(&root.join(relative));
        Ok(Self {
            dashboard: file(DASHBOARD)?,
            datasource: file(DATASOURCE)?,
            provider: file(PROVIDER)?,
            prometheus: file(PROMETHEUS)?,
            compose: file(COMPOSE)?,
        })
    }
}

/// The dashboard's JSON.
pub fn parse(dashboard: &str) -> Result<Value, String> {
    serde_json::from_str(dashboard).map_err(|e| format!("{DASHBOARD} is not JSON: {e}"))
}

/// Every panel, those inside collapsed rows included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// `(panel title, expr)` of every query.
pub fn exprs(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |target| {
                    let expr = target["expr"].as_str().unwrap_or_default().to_owned();
                    (title.clone(), expr)
                })
        })
        .collect()
}

/// The value of the first `key: value` line of a YAML text.
fn yaml_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.trim()
            .trim_start_matches("- ")
            .strip_prefix(key)?
            .strip_prefix(':')
            .map(|value| value.trim().trim_matches('"').to_owned())
    })
}

/// The `job_name`s of the Prometheus configuration.
fn prometheus_jobs(prometheus: &str) -> BTreeSet<String> {
    prometheus
        .lines()
        .filter_map(|line| yaml_value(line, "job_name"))
        .collect()
}

/// Every problem of the dashboard and its provisioning.
pub fn check(files: &Files) -> Vec<String> {
    let dashboard = match parse(&files.dashboard) {
        Ok(dashboard) => dashboard,
        Err(error) => return vec![error],
    };
    let mut errors = Vec::new();
    let mut error = |message: String| errors.push(format!("{DASHBOARD}: {message}"));
    for key in ["uid", "title"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            error(format!("no {key}"));
        }
    }
    if dashboard["schemaVersion"].as_u64().is_none() {
        error("no schemaVersion".into());
    }
    let Some(datasource) = yaml_value(&files.datasource, "uid") else {
        return vec![format!("{DATASOURCE}: the datasource has no uid")];
    };
    let jobs = prometheus_jobs(&files.prometheus);
    let scraped: BTreeSet<String> = SCRAPED.iter().map(|(job, ..)| (*job).to_owned()).collect();
    if jobs != scraped {
        error(format!(
            "{PROMETHEUS} scrapes {jobs:?}, not the three processes {scraped:?}"
        ));
    }
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("(no title)");
        if panel["title"].as_str().is_none() {
            error(format!("a panel without a title: {panel}"));
        }
        if !panel["id"].as_u64().is_some_and(|id| ids.insert(id)) {
            error(format!("panel {title:?}: id missing or not unique"));
        }
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|key| grid[key].as_u64());
        if !matches!((x, y, w, h), (Some(x), Some(_), Some(w), Some(h)) if x + w <= 24 && w > 0 && h > 0)
        {
            error(format!("panel {title:?}: gridPos {grid} is off the grid"));
        }
        if panel["type"] == "row" {
            continue;
        }
        if panel["description"].as_str().is_none_or(str::is_empty) {
            error(format!("panel {title:?} does not say what it shows"));
        }
        if panel["datasource"]["uid"] != datasource.as_str() {
            error(format!(
                "panel {title:?}: datasource {} is not the provisioned {datasource:?}",
                panel["datasource"]
            ));
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            error(format!("panel {title:?} has no query"));
        }
        let ref_ids: BTreeSet<_> = targets.iter().map(|t| t["refId"].as_str()).collect();
        if ref_ids.len() != targets.len() {
            error(format!("panel {title:?}: refIds are not unique"));
        }
        for target in targets {
            queries += 1;
            if target["datasource"]["uid"] != datasource.as_str() {
                error(format!("panel {title:?}: a query on another datasource"));
            }
            let expr = target["expr"].as_str().unwrap_or_default();
            match parse_query(expr) {
                Err(problem) => error(format!("panel {title:?}: {problem}")),
                Ok(query) if query.selectors.is_empty() => {
                    error(format!("panel {title:?}: no metric in {expr:?}"));
                }
                Ok(query) => {
                    for job in query.jobs.iter().filter(|job| !jobs.contains(*job)) {
                        error(format!("panel {title:?}: job {job:?} is not scraped"));
                    }
                }
            }
        }
    }
    if queries < LEAST_QUERIES {
        error(format!("only {queries} queries (at least {LEAST_QUERIES})"));
    }
    errors.extend(deployment_errors(files));
    errors
}

/// Compose mounts what the provisioning files point at and serves the
/// ports Prometheus scrapes.
fn deployment_errors(files: &Files) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(dashboards_path) = yaml_value(&files.provider, "path") else {
        return vec![format!("{PROVIDER}: the dashboard provider has no path")];
    };
    for mount in [
        format!("./deploy/grafana/dashboards:{dashboards_path}"),
        "./deploy/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources".into(),
        "./deploy/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards".into(),
        format!("./{PROMETHEUS}:/etc/prometheus/prometheus.yml"),
    ] {
        if !files.compose.contains(&mount) {
            errors.push(format!("{COMPOSE} does not mount {mount}"));
        }
    }
    for (_, target, setting) in SCRAPED {
        if !files.prometheus.contains(target) {
            errors.push(format!("{PROMETHEUS} does not scrape {target}"));
        }
        if !files.compose.contains(setting) {
            errors.push(format!("{COMPOSE} does not serve {setting}"));
        }
    }
    errors
}

/// `cargo xtask check dashboard`.
pub fn check_repository(root: &Path) -> Result<Vec<String>, String> {
    Ok(check(&Files::read(root)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assert_reported, workspace_root};

    fn repository_files() -> Files {
        Files::read(&workspace_root()).expect("the repository's files read")
    }

    #[test]
    fn the_repository_dashboard_is_read_whole() {
        let files = repository_files();
        let dashboard = parse(&files.dashboard).unwrap();
        assert!(exprs(&dashboard).len() >= LEAST_QUERIES);
        assert_eq!(
            yaml_value(&files.provider, "path").as_deref(),
            Some("/etc/grafana/dashboards")
        );
        assert_eq!(
            prometheus_jobs(&files.prometheus),
            ["catalog-service", "gateway", "order-service"]
                .map(str::to_owned)
                .into()
        );
    }

    /// The repository's files, each broken once: every break is found.
    #[test]
    fn the_checker_finds_a_broken_dashboard_and_provisioning() {
        let files = repository_files();
        let mut dashboard = parse(&files.dashboard).unwrap();
        let first = dashboard["panels"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|p| p["type"] != "row")
            .expect("a panel with queries");
        first["description"] = Value::Null;
        first["datasource"]["uid"] = "somewhere-else".into();
        first["gridPos"]["x"] = 20.into();
        first["gridPos"]["w"] = 8.into();
        first["targets"][0]["expr"] = r#"sum(rate(x_total{job="billing"}[5m]))"#.into();
        let broken = Files {
            dashboard: dashboard.to_string(),
            prometheus: files
                .prometheus
                .replace("job_name: gateway", "job_name: api"),
            compose: files
                .compose
                .replace("ADMIN_ADDR: 0.0.0.0:9101", "ADMIN_ADDR: 0.0.0.0:1"),
            ..files.clone()
        };
        let errors = check(&broken).join("\n");
        assert_reported(
            &errors,
            &[
                "does not say what it shows",
                "is not the provisioned",
                "is off the grid",
                "job \"billing\" is not scraped",
                "not the three processes",
                "does not serve ADMIN_ADDR: 0.0.0.0:9101",
            ],
        );
        let unparsable = Files {
            dashboard: "{".into(),
            ..files
        };
        assert!(check(&unparsable)[0].contains("is not JSON"));
    }
}
