//! `cargo xtask check [diagrams] [dashboard] [links]`: the repository checks (all of
//! them when none is named). Exits 1 and lists every problem when one fails.
//! See the library's documentation for what each check verifies.

use std::{path::Path, process::ExitCode};

use xtask::{dashboard, diagrams, links, workspace_root};

type Check = fn(&Path) -> Result<Vec<String>, String>;

/// Each check: its name, what it holds against what, and the function.
const CHECKS: &[(&str, &str, Check)] = &[
    (
        "diagrams",
        "the Mermaid diagrams against the protos, the migrations and the README",
        diagrams::check_repository,
    ),
    (
        "dashboard",
        "the Grafana dashboard against its provisioning, Prometheus and compose",
        dashboard::check_repository,
    ),
    (
        "links",
        "every relative link of the Markdown files resolves inside the repository; nothing points outside",
        links::check_repository,
    ),
];

const USAGE: &str = "usage: cargo xtask check [diagrams] [dashboard] [links]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, names)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    if command != "check" {
        eprintln!("unknown command {command:?}\n{USAGE}");
        return ExitCode::FAILURE;
    }
    if let Some(unknown) = names
        .iter()
        .find(|name| !CHECKS.iter().any(|(check, ..)| check == name))
    {
        eprintln!("unknown check {unknown:?}\n{USAGE}");
        return ExitCode::FAILURE;
    }
    let root = workspace_root();
    let mut failed = false;
    for (name, what, check) in CHECKS {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
        match check(&root) {
            Ok(errors) if errors.is_empty() => println!("{name}: ok ({what})"),
            Ok(errors) => {
                failed = true;
                eprintln!("{name}: {} problem(s) ({what}):", errors.len());
                for error in errors {
                    eprintln!("  {error}");
                }
            }
            Err(error) => {
                failed = true;
                eprintln!("{name}: cannot check: {error}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
