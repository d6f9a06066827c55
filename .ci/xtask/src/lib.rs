//! # Repository checks
//!
//! `cargo xtask check` (the binary, `src/main.rs`) verifies what no compiler
//! sees and no service runs: that the documentation and the operations files
//! agree with the contracts and the schema the code is built from.
//!
//! - [`diagrams`]: every Mermaid diagram of `README.md` and `deploy/docs/*.md`
//!   names only RPCs, messages, fields and enum values of `proto/**/*.proto`,
//!   tables, columns and stored states of `migrations/**/*.sql`, settings of
//!   the README's configuration table and files that exist; and shows what
//!   its id says it shows.
//! - [`dashboard`]: the Grafana dashboard is well formed and agrees with its
//!   provisioning, the Prometheus jobs and the compose file.
//! - [`links`]: every relative link and image of the Markdown files resolves
//!   inside the repository (anchors to headings included), and no text
//!   points outside it.
//!
//! The checks read those files as text, never Rust source: rewording a SQL
//! statement or renaming a function cannot break them. What only the running
//! code can tell (the moves a state machine really makes, the series the
//! processes really expose) is checked by the integration tests in `tests/`,
//! which reuse the parsers of this library.

pub mod dashboard;
pub mod diagrams;
pub mod links;
pub mod promql;

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The workspace's root: this crate lives in `.ci/xtask`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect(".ci/xtask is two levels below the workspace root")
        .to_path_buf()
}

/// The text of `path`, or an error naming it.
pub fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Files under `dir` (recursively) whose name ends with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `a_b`, `A1`, `x:y`: the characters of names in SQL, proto and PromQL.
pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Asserts that every `expected` message is among the `errors` reported.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_reported(errors: &str, expected: &[&str]) {
    for expected in expected {
        assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
    }
}
