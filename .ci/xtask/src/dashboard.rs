//! The Grafana dashboard (`deploy/grafana/dashboards/platform.json`) is
//! well formed and agrees with what serves it: every panel has a unique id, a
//! place on the 24-column grid, a description, the `${datasource}` variable
//! as its datasource (the provisioned Prometheus is the default one) and at
//! least one query with unique refIds; every query selects a metric, and
//! every selector is scoped by the `job` and `service` variables
//! (`{job=~"$job", service=~"$service"}`), so the dashboard works wherever
//! the targets carry those labels: compose's one job per process, or one
//! Kubernetes pod scrape job. With the variables replaced by the three
//! processes, every query names only jobs Prometheus scrapes. Docker compose
//! mounts what the provisioning files point at and serves the ports
//! Prometheus scrapes; each compose job and the Kubernetes scrape job
//! (`deploy/prometheus/kubernetes.yml`) label their targets with `service`.
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
const KUBERNETES_PROMETHEUS: &str = "deploy/prometheus/kubernetes.yml";
const KUSTOMIZATION: &str = "deploy/k8s/base/kustomization.yaml";
const COMPOSE: &str = "docker-compose.yml";

/// What every panel and query has as its datasource: the variable.
const DATASOURCE_REF: &str = "${datasource}";
/// The label every target carries with its process's name.
const SERVICE_LABEL: &str = "service";
/// The query variables, each the label it selects on: every selector of
/// every query has the matcher `label=~"$label"`.
const SCOPE_VARIABLES: [&str; 2] = ["job", SERVICE_LABEL];

/// The processes Prometheus must scrape, and where compose serves each
/// one's metrics: (job, scrape target, compose setting).
const SCRAPED: [(&str, &str, &str); 3] = [
    ("gateway", "gateway:9100", "ADMIN_ADDR: 0.0.0.0:9100"),
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
    /// The scrape job for the platform on Kubernetes.
    pub kubernetes_prometheus: String,
    pub kustomization: String,
    /// `(process, its deploy/k8s/base/<process>.yaml)` for each process.
    pub manifests: Vec<(String, String)>,
}

impl Files {
    pub fn read(root: &Path) -> Result<Self, String> {
        let file = |relative: &str| read(&root.join(relative));
        let manifests = SCRAPED
            .iter()
            .map(|(process, ..)| {
                let manifest = file(&format!("deploy/k8s/base/{process}.yaml"))?;
                Ok(((*process).to_owned(), manifest))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            dashboard: file(DASHBOARD)?,
            datasource: file(DATASOURCE)?,
            provider: file(PROVIDER)?,
            prometheus: file(PROMETHEUS)?,
            compose: file(COMPOSE)?,
            kubernetes_prometheus: file(KUBERNETES_PROMETHEUS)?,
            kustomization: file(KUSTOMIZATION)?,
            manifests,
        })
    }
}

/// `expr` with the dashboard's query variables (`$job`, `${service}`, ...)
/// replaced by what "All" selects where the processes are scraped as
/// compose does: the three processes. Grafana's own (`$__rate_interval`)
/// stay.
pub fn expand_variables(expr: &str) -> String {
    let all = SCRAPED.map(|(process, ..)| process).join("|");
    SCOPE_VARIABLES
        .iter()
        .fold(expr.to_owned(), |expr, variable| {
            expr.replace(&format!("${{{variable}}}"), &all)
                .replace(&format!("${variable}"), &all)
        })
}

/// The `(job, label value)` pairs of a Prometheus configuration's
/// `labels:` entries named `label`, by the job whose block they are in.
fn job_labels(prometheus: &str, label: &str) -> BTreeSet<(String, String)> {
    let mut job = None;
    let mut found = BTreeSet::new();
    for line in prometheus.lines() {
        if let Some(name) = yaml_value(line, "job_name") {
            job = Some(name);
        } else if let (Some(job), Some(value)) = (&job, yaml_value(line, label)) {
            found.insert((job.clone(), value));
        }
    }
    found
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
    if yaml_value(&files.datasource, "type").as_deref() != Some("prometheus")
        || yaml_value(&files.datasource, "isDefault").as_deref() != Some("true")
    {
        errors.push(format!(
            "{DATASOURCE}: the provisioned datasource must be Prometheus and the default \
             (what the dashboard's datasource variable starts on)"
        ));
    }
    errors.extend(variable_errors(&dashboard));
    let mut error = |message: String| errors.push(format!("{DASHBOARD}: {message}"));
    let datasource = DATASOURCE_REF;
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
        if panel["datasource"]["uid"] != datasource || panel["datasource"]["type"] != "prometheus" {
            error(format!(
                "panel {title:?}: datasource {} is not the variable {datasource:?}",
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
            if target["datasource"]["uid"] != datasource {
                error(format!("panel {title:?}: a query on another datasource"));
            }
            let expr = target["expr"].as_str().unwrap_or_default();
            if let Ok(query) = parse_query(expr) {
                for selector in &query.selectors {
                    for variable in SCOPE_VARIABLES {
                        if !selector.has_matcher(variable, "=~", &format!("${variable}")) {
                            error(format!(
                                "panel {title:?}: `{}` is not scoped by {variable}=~\"${variable}\" in {expr:?}",
                                selector.metric
                            ));
                        }
                    }
                }
            }
            let expr = &expand_variables(expr);
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

/// The datasource variable, and the `job` and `service` variables: each
/// multi-valued with "All", its values the label's on `up`.
fn variable_errors(dashboard: &Value) -> Vec<String> {
    let variables = dashboard["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name);
    let mut errors = Vec::new();
    let datasource_name = DATASOURCE_REF
        .trim_start_matches("${")
        .trim_end_matches('}');
    match variable(datasource_name) {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => errors.push(format!(
            "{DASHBOARD}: no datasource variable {datasource_name:?} of Prometheus datasources"
        )),
    }
    for name in SCOPE_VARIABLES {
        let Some(v) = variable(name) else {
            errors.push(format!("{DASHBOARD}: no variable {name:?}"));
            continue;
        };
        let query = v["query"]["query"].as_str().or(v["query"].as_str());
        let well_formed = v["type"] == "query"
            && v["multi"] == true
            && v["includeAll"] == true
            && v["datasource"]["uid"] == DATASOURCE_REF
            && query.is_some_and(|q| {
                q.starts_with("label_values(up") && q.ends_with(&format!(", {name})"))
            });
        if !well_formed {
            errors.push(format!(
                "{DASHBOARD}: variable {name:?} must be a multi-value query with All, on \
                 {DATASOURCE_REF}, of label_values(up..., {name}): {v}"
            ));
        }
    }
    errors
}

/// Compose mounts what the provisioning files point at and serves the
/// ports Prometheus scrapes; every target, under compose and on Kubernetes,
/// carries the `service` label the dashboard groups by.
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
    let service_labels = job_labels(&files.prometheus, SERVICE_LABEL);
    for (process, target, setting) in SCRAPED {
        if !files.prometheus.contains(target) {
            errors.push(format!("{PROMETHEUS} does not scrape {target}"));
        }
        if !files.compose.contains(setting) {
            errors.push(format!("{COMPOSE} does not serve {setting}"));
        }
        if !service_labels.contains(&(process.to_owned(), process.to_owned())) {
            errors.push(format!(
                "{PROMETHEUS}: job {process} does not label its targets {SERVICE_LABEL}: {process}"
            ));
        }
    }
    // On Kubernetes: `service` comes from the pods' app.kubernetes.io/name,
    // for pods that are part of the platform (which kustomize labels).
    for needed in [
        "job_name: kubernetes-pods",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
        "__meta_kubernetes_pod_label_app_kubernetes_io_part_of, __meta_kubernetes_pod_label_app_kubernetes_io_name]",
        "regex: ecommerce;(.+)",
        &format!("target_label: {SERVICE_LABEL}"),
    ] {
        if !files.kubernetes_prometheus.contains(needed) {
            errors.push(format!("{KUBERNETES_PROMETHEUS} lacks `{needed}`"));
        }
    }
    if !files
        .kustomization
        .contains("app.kubernetes.io/part-of: ecommerce")
    {
        errors.push(format!(
            "{KUSTOMIZATION} does not label the pods app.kubernetes.io/part-of: ecommerce"
        ));
    }
    for (process, manifest) in &files.manifests {
        for needed in [
            "prometheus.io/scrape: \"true\"".to_owned(),
            format!("app.kubernetes.io/name: {process}"),
        ] {
            if !manifest.contains(&needed) {
                errors.push(format!("deploy/k8s/base/{process}.yaml lacks `{needed}`"));
            }
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
        assert_eq!(
            job_labels(&files.prometheus, SERVICE_LABEL),
            ["catalog-service", "gateway", "order-service"]
                .map(|job| (job.to_owned(), job.to_owned()))
                .into()
        );
        assert!(check(&files).is_empty(), "{:?}", check(&files));
    }

    #[test]
    fn query_variables_become_the_three_processes() {
        assert_eq!(
            expand_variables(
                r#"sum by (service) (up{job=~"$job", service=~"${service}"}[$__rate_interval])"#
            ),
            r#"sum by (service) (up{job=~"gateway|catalog-service|order-service", service=~"gateway|catalog-service|order-service"}[$__rate_interval])"#
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
        first["datasource"]["uid"] = "prometheus".into();
        first["gridPos"]["x"] = 20.into();
        first["gridPos"]["w"] = 8.into();
        first["targets"][0]["expr"] = r#"sum(rate(x_total{job="billing"}[5m]))"#.into();
        let variables = dashboard["templating"]["list"].as_array_mut().unwrap();
        variables.retain(|v| v["name"] != "job");
        variables
            .iter_mut()
            .find(|v| v["name"] == "service")
            .unwrap()["multi"] = false.into();
        let broken = Files {
            dashboard: dashboard.to_string(),
            prometheus: files
                .prometheus
                .replace("job_name: gateway", "job_name: api")
                .replace("service: order-service", "service: orders"),
            compose: files
                .compose
                .replace("ADMIN_ADDR: 0.0.0.0:9101", "ADMIN_ADDR: 0.0.0.0:1"),
            kubernetes_prometheus: files
                .kubernetes_prometheus
                .replace("target_label: service", "target_label: app"),
            manifests: vec![("gateway".into(), "kind: Deployment".into())],
            ..files.clone()
        };
        let errors = check(&broken).join("\n");
        assert_reported(
            &errors,
            &[
                "does not say what it shows",
                "is not the variable \"${datasource}\"",
                "is off the grid",
                "`x_total` is not scoped by job=~\"$job\"",
                "`x_total` is not scoped by service=~\"$service\"",
                "job \"billing\" is not scraped",
                "no variable \"job\"",
                "variable \"service\" must be a multi-value query",
                "not the three processes",
                "does not serve ADMIN_ADDR: 0.0.0.0:9101",
                "job order-service does not label its targets service: order-service",
                "lacks `target_label: service`",
                "gateway.yaml lacks `prometheus.io/scrape: \"true\"`",
            ],
        );
        let unparsable = Files {
            dashboard: "{".into(),
            ..files
        };
        assert!(check(&unparsable)[0].contains("is not JSON"));
    }
}
