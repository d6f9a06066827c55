//! What a PromQL expression names (metrics, matcher labels, grouping labels,
//! jobs), and what a Prometheus / OpenMetrics text page exposes: enough to
//! hold a dashboard's queries against the series processes serve.

use std::collections::{BTreeMap, BTreeSet};

/// A metric a query selects, with the labels its matchers name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub matcher_labels: Vec<String>,
    /// Each matcher whole: (label, operator, value), e.g. `job`, `=~`, `$job`.
    pub matchers: Vec<(String, String, String)>,
}

impl Selector {
    /// Whether a matcher of this selector is exactly `label operator "value"`.
    pub fn has_matcher(&self, label: &str, operator: &str, value: &str) -> bool {
        self.matchers
            .iter()
            .any(|(l, o, v)| l == label && o == operator && v == value)
    }
}

/// What one PromQL expression uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub selectors: Vec<Selector>,
    /// Labels of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`.
    pub grouping_labels: Vec<String>,
    /// Label values a matcher compares `job` with (`job=~"a|b"` gives a, b).
    pub jobs: Vec<String>,
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
    crate::is_ident_char(c) || c == ':'
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// A quoted string starting at `chars` (the opening quote already taken).
fn string(chars: &mut Chars<'_>, quote: char) -> String {
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

fn take_while(chars: &mut Chars<'_>, keep: impl Fn(char) -> bool) -> String {
    let mut taken = String::new();
    while let Some(&c) = chars.peek().filter(|c| keep(**c)) {
        taken.push(c);
        chars.next();
    }
    taken
}

/// A `{...}` block, its `{` already taken.
fn matchers(chars: &mut Chars<'_>, expr: &str) -> Result<Token, String> {
    let mut matchers = Vec::new();
    loop {
        take_while(chars, |c| c.is_whitespace() || c == ',');
        if chars.peek().is_none_or(|c| *c == '}') {
            chars.next();
            return Ok(Token::Matchers(matchers));
        }
        let label = take_while(chars, is_ident_char);
        let operator: String = take_while(chars, |c| matches!(c, '=' | '!' | '~' | ' '))
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        let value = match chars.next() {
            Some(quote @ ('"' | '\'' | '`')) => string(chars, quote),
            other => {
                return Err(format!(
                    "matcher {label}{operator} without a quoted value ({other:?}) in {expr}"
                ));
            }
        };
        if label.is_empty() || !matches!(operator.as_str(), "=" | "!=" | "=~" | "!~") {
            return Err(format!("malformed matcher `{label}{operator}` in {expr}"));
        }
        matchers.push((label, operator, value));
    }
}

fn tokens(expr: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        chars.next();
        let token = match c {
            c if c.is_whitespace() => continue,
            '"' | '\'' | '`' => {
                string(&mut chars, c);
                Token::Other
            }
            '[' => {
                chars.by_ref().find(|c| *c == ']');
                Token::Other
            }
            // A Grafana variable ($__range) or a number (0.99, 1e-9, 0x1f).
            c if c == '$' || c.is_ascii_digit() || c == '.' => {
                let mut previous = c;
                while let Some(&c) = chars.peek() {
                    let exponent_sign = matches!(c, '+' | '-') && matches!(previous, 'e' | 'E');
                    if !(is_ident_char(c) || c == '.' || exponent_sign) {
                        break;
                    }
                    previous = c;
                    chars.next();
                }
                Token::Other
            }
            c if is_ident_start(c) => {
                Token::Ident(format!("{c}{}", take_while(&mut chars, is_ident_char)))
            }
            '{' => matchers(&mut chars, expr)?,
            c => Token::Punct(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// The metrics, matcher labels, grouping labels and jobs of an expression.
pub fn parse_query(expr: &str) -> Result<Query, String> {
    let tokens = tokens(expr)?;
    let mut query = Query::default();
    let mut i = 0;
    while i < tokens.len() {
        let next = tokens.get(i + 1);
        match &tokens[i] {
            // by (a, b): a label list.
            Token::Ident(ident)
                if GROUPING.contains(&ident.as_str()) && next == Some(&Token::Punct('(')) =>
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
                if matches!(next, Some(Token::Punct('(')))
                    || matches!(next, Some(Token::Ident(n)) if n == "by" || n == "without") => {}
            Token::Ident(metric) => {
                let mut selector = Selector {
                    metric: metric.clone(),
                    matcher_labels: Vec::new(),
                    matchers: Vec::new(),
                };
                if let Some(Token::Matchers(matchers)) = next {
                    selector.matchers.clone_from(matchers);
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
            Token::Matchers(_) => return Err(format!("a selector without a metric in {expr}")),
            _ => {}
        }
        i += 1;
    }
    Ok(query)
}

/// Series name -> the label names seen on its samples, from Prometheus /
/// OpenMetrics text.
pub fn exposed_series(text: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut chars = line.chars().peekable();
        let name = take_while(&mut chars, is_ident_char);
        let labels = series.entry(name).or_default();
        if chars.next_if_eq(&'{').is_none() {
            continue;
        }
        loop {
            let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
            let label = label.trim_start_matches(',').trim();
            if label.is_empty() {
                break;
            }
            labels.insert(label.to_owned());
            if chars.next() != Some('"') {
                return Err(format!("label {label} without a quoted value in {line}"));
            }
            string(&mut chars, '"');
            if chars.peek() == Some(&'}') {
                break;
            }
        }
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_matchers_groupings_and_jobs_are_read_from_expressions() {
        let query = parse_query(
            r#"histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket{method="GET", route!~"/health|/ready"}[$__rate_interval])))"#,
        )
        .unwrap();
        assert_eq!(
            query.selectors,
            vec![Selector {
                metric: "http_server_request_duration_seconds_bucket".into(),
                matcher_labels: vec!["method".into(), "route".into()],
                matchers: vec![
                    ("method".into(), "=".into(), "GET".into()),
                    ("route".into(), "!~".into(), "/health|/ready".into()),
                ],
            }]
        );
        assert!(query.selectors[0].has_matcher("route", "!~", "/health|/ready"));
        assert!(!query.selectors[0].has_matcher("route", "=~", "/health|/ready"));
        assert_eq!(query.grouping_labels, ["le", "route"]);

        let query = parse_query(
            r#"sum(rate(a_total{status=~"5.."}[5m])) / clamp_min(sum(rate(a_total[5m])), 1e-9) > bool 0.5 or sum(b) without (instance) and on(job) up{job=~"gateway|order-service"} offset 1m"#,
        )
        .unwrap();
        let metrics: Vec<&str> = query.selectors.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(metrics, ["a_total", "a_total", "b", "up"]);
        assert_eq!(query.grouping_labels, ["instance", "job"]);
        assert_eq!(query.jobs, ["gateway", "order-service"]);
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for expr in [r#"a{job}"#, r#"a{job~"x"}"#, r#"sum({job="x"})"#] {
            assert!(parse_query(expr).is_err(), "{expr}");
        }
    }

    #[test]
    fn exposed_series_and_their_labels_are_read_from_a_metrics_page() {
        let series = exposed_series(
            "# TYPE x counter\nx_total{rpc=\"/a.B/C\",code=\"OK\"} 1\nx_total{rpc=\"q\\\"}\",code=\"X\"} 2\ng 0.0\n# EOF\n",
        )
        .unwrap();
        assert_eq!(series["x_total"], ["code", "rpc"].map(str::to_owned).into());
        assert!(series["g"].is_empty());
        assert!(exposed_series("x{a=1} 1").is_err());
    }
}
