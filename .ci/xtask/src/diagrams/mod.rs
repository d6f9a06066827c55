//! The Mermaid diagrams of `README.md` and `deploy/docs/*.md` use the code's
//! names (`deploy/docs/check-diagrams.sh` checks that they parse).
//!
//! The names are read from the contracts and the schema: RPCs, services,
//! messages, fields and enum values from `proto/**/*.proto`; tables, columns,
//! column defaults and stored states (`CHECK (col IN (...))`) from
//! `migrations/*/*.sql`; settings from the README's configuration table. Then
//! every diagram:
//! - names nothing that does not exist: CamelCase words are RPCs, services or
//!   messages; `snake_case` words tables, columns or fields; `UPPER_SNAKE`
//!   words enum values, gRPC codes or settings; the word after SQL's
//!   `INTO` / `UPDATE` / `FROM` and each `tables:` list are tables; a quoted
//!   `'value'` is a stored state (of that column, after `column = `); a
//!   `deploy/...` path is a file;
//! - shows what it is meant to show: the architecture every RPC, each
//!   database exactly its tables; each flow its RPCs, tables and states; each
//!   state machine exactly the states its column may store, and, where the
//!   column has a default, that default as the state every row starts in.
//!
//! Every diagram carries an id (`%% diagram: <id>`) naming what it shows; the
//! expectations per id are [`EXPECTED`]. The arrows of the state machines are
//! the code's behaviour, not its schema: [`machine_errors`] compares them with
//! a [`Machine`] the integration tests observe from the running code.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use crate::is_ident_char;

mod expected;
mod mermaid;
mod model;

pub use expected::{EXPECTED, Expected};
pub use mermaid::{Diagram, all_diagrams, find, mermaid_blocks};
pub use model::Model;
use model::*;

/// What a diagram's text names, with the line (offset in the block) of each.
#[derive(Debug, Default)]
struct Names {
    words: Vec<(usize, String)>,
    /// Words after SQL's INTO / UPDATE / FROM.
    sql_tables: Vec<(usize, String)>,
    /// Each `tables: a, b, c` list.
    table_lists: Vec<(usize, Vec<String>)>,
    /// `'value'`, with the column named before it (`status = 'pending'`).
    quoted: Vec<(usize, Option<String>, String)>,
    paths: Vec<(usize, String)>,
}

impl Names {
    fn of(diagram: &Diagram) -> Self {
        let mut names = Self::default();
        for (offset, line) in diagram.source.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with("%%") {
                names.add_line(offset, line);
            }
        }
        names
    }

    fn add_line(&mut self, offset: usize, line: &str) {
        let words: Vec<&str> = line
            .split(|c: char| !is_ident_char(c))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, word) in words.iter().enumerate() {
            self.words.push((offset, (*word).to_owned()));
            if matches!(*word, "INTO" | "UPDATE" | "FROM")
                && let Some(next) = words.get(i + 1)
                && next.starts_with(|c: char| c.is_ascii_lowercase())
            {
                self.sql_tables.push((offset, (*next).to_owned()));
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find("tables:") {
            rest = &rest[at + "tables:".len()..];
            let end = rest.find(['"', '<', ')', ']']).unwrap_or(rest.len());
            let list = rest[..end]
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            self.table_lists.push((offset, list));
        }
        let mut rest = line;
        while let Some(open) = rest.find('\'') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('\'') else { break };
            let value = &after[..close];
            if !value.is_empty() && value.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                let column = rest[..open].trim_end().strip_suffix('=').map(|b| {
                    b.trim_end()
                        .rsplit(|c: char| !is_ident_char(c))
                        .next()
                        .unwrap_or("")
                        .to_owned()
                });
                self.quoted.push((offset, column, value.to_owned()));
                rest = &after[close + 1..];
            } else {
                // An apostrophe ("contract's"), not a quote.
                rest = after;
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find("deploy/") {
            let path: String = rest[at..]
                .chars()
                .take_while(|c| is_ident_char(*c) || matches!(c, '/' | '.' | '-'))
                .collect();
            self.paths
                .push((offset, path.trim_end_matches('.').to_owned()));
            rest = &rest[at + "deploy/".len()..];
        }
    }

    fn mentions(&self, name: &str) -> bool {
        self.words.iter().any(|(_, w)| w == name) || self.quoted.iter().any(|(_, _, v)| v == name)
    }
}

/// Errors for every name in `diagram` that the code does not have.
fn unknown_names(diagram: &Diagram, model: &Model, root: &Path) -> Vec<String> {
    let names = Names::of(diagram);
    let tables = model.tables();
    let mut errors = Vec::new();
    let mut error = |offset: usize, message: String| {
        errors.push(format!(
            "{} {}: {message}",
            diagram.at(offset),
            diagram.name()
        ));
    };
    for (offset, word) in &names.words {
        let word = word.as_str();
        if is_camel(word) {
            if !(model.rpcs.contains(word)
                || model.types.contains(word)
                || WELL_KNOWN_MESSAGES.contains(&word))
            {
                error(
                    *offset,
                    format!("`{word}` is no RPC, service or message of the protos"),
                );
            }
        } else if is_upper_snake(word) {
            if !(model.enum_values.contains(word)
                || GRPC_CODES.contains(&word)
                || model.settings.contains(word))
            {
                error(
                    *offset,
                    format!("`{word}` is no proto enum value, gRPC code or README setting"),
                );
            }
        } else if is_lower_snake(word)
            && !(tables.contains(word)
                || model.columns.contains(word)
                || model.fields.contains(word))
        {
            error(
                *offset,
                format!("`{word}` is no table, column or proto field"),
            );
        }
    }
    for (offset, table) in &names.sql_tables {
        if !tables.contains(table.as_str()) {
            error(
                *offset,
                format!("`{table}` (after INTO/UPDATE/FROM) is no table"),
            );
        }
    }
    for (offset, list) in &names.table_lists {
        for table in list.iter().filter(|t| !tables.contains(t.as_str())) {
            error(
                *offset,
                format!("`{table}` (in a tables: list) is no table"),
            );
        }
    }
    let all_values = model.all_stored_values();
    for (offset, column, value) in &names.quoted {
        let allowed = column
            .as_deref()
            .and_then(|c| model.values_of_column(c))
            .unwrap_or_else(|| all_values.clone());
        if !allowed.contains(value.as_str()) {
            let of_column = column
                .as_deref()
                .map(|c| format!(" of `{c}`"))
                .unwrap_or_default();
            error(
                *offset,
                format!("'{value}' is not a stored value{of_column} (allowed: {allowed:?})"),
            );
        }
    }
    for (offset, path) in &names.paths {
        if !root.join(path).exists() {
            error(*offset, format!("`{path}` does not exist"));
        }
    }
    errors
}

/// Errors for what `diagram` should show, by the schema, and does not.
fn missing(diagram: &Diagram, expected: &Expected, model: &Model) -> Vec<String> {
    let names = Names::of(diagram);
    let name = diagram.name();
    let mut errors: Vec<String> = expected
        .mentions
        .iter()
        .filter(|wanted| !names.mentions(wanted))
        .map(|wanted| format!("{name}: does not mention `{wanted}`"))
        .collect();
    if expected.id == "architecture" {
        for rpc in model.rpcs.iter().filter(|rpc| !names.mentions(rpc)) {
            errors.push(format!("{name}: RPC `{rpc}` is missing"));
        }
        for (database, tables) in &model.tables_by_database {
            let drawn = names
                .table_lists
                .iter()
                .any(|(_, list)| list.iter().collect::<BTreeSet<_>>() == tables.iter().collect());
            if !drawn {
                errors.push(format!(
                    "{name}: no `tables:` list is exactly the {database} database's {tables:?}"
                ));
            }
        }
    }
    if let Some(table_column) = expected.states_of {
        errors.extend(state_errors(diagram, table_column, model));
    }
    errors
}

/// A state machine against the schema: exactly the states the column may
/// store, and the column's default (if any) as the only start.
fn state_errors(diagram: &Diagram, table_column: &str, model: &Model) -> Vec<String> {
    let name = diagram.name();
    let Some(stored) = model.stored_values.get(table_column) else {
        return vec![format!(
            "{name}: {table_column} has no CHECK (... IN (...)) list in the migrations"
        )];
    };
    let drawn = diagram.transitions();
    let drawn_states: BTreeSet<String> = drawn
        .iter()
        .flat_map(|(from, to)| [from, to])
        .filter(|s| *s != START_OR_END)
        .cloned()
        .collect();
    let mut errors: Vec<String> = stored
        .difference(&drawn_states)
        .map(|state| format!("{name}: state `{state}` of {table_column} is missing"))
        .collect();
    for state in drawn_states.union(&diagram.noted_states()) {
        if !stored.contains(state) {
            errors.push(format!(
                "{name}: `{state}` is no state of {table_column} {stored:?}"
            ));
        }
    }
    if let Some(default) = model.defaults.get(table_column) {
        let starts = starts(&drawn);
        if starts != BTreeSet::from([default.clone()]) {
            errors.push(format!(
                "{name}: starts in {starts:?}; every row starts in {table_column}'s default '{default}'"
            ));
        }
    }
    errors
}

fn starts(arrows: &BTreeSet<(String, String)>) -> BTreeSet<String> {
    arrows
        .iter()
        .filter(|(from, _)| from == START_OR_END)
        .map(|(_, to)| to.clone())
        .collect()
}

/// What the code does with one column: the states a row is created in, and
/// every move `(from, to)` between two different states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    pub initial: BTreeSet<String>,
    pub moves: BTreeSet<(String, String)>,
}

impl Machine {
    /// The states of `states` the code never leaves.
    pub fn terminal<'a>(&self, states: &'a BTreeSet<String>) -> BTreeSet<&'a String> {
        states
            .iter()
            .filter(|s| !self.moves.iter().any(|(from, _)| from == *s))
            .collect()
    }
}

/// A state diagram against the code's [`Machine`] for its column: every
/// arrow is a move the code makes and every move is drawn, `[*] -->` exactly
/// the states rows are created in, `--> [*]` exactly the states (of
/// `states`) the code never leaves.
pub fn machine_errors(diagram: &Diagram, states: &BTreeSet<String>, code: &Machine) -> Vec<String> {
    let name = diagram.name();
    let drawn = diagram.transitions();
    let drawn_moves: BTreeSet<(String, String)> = drawn
        .iter()
        .filter(|(from, to)| from != START_OR_END && to != START_OR_END)
        .cloned()
        .collect();
    let mut errors = Vec::new();
    for (from, to) in drawn_moves.difference(&code.moves) {
        errors.push(format!(
            "{name}: draws {from} --> {to}, which the code never does"
        ));
    }
    for (from, to) in code.moves.difference(&drawn_moves) {
        errors.push(format!(
            "{name}: lacks {from} --> {to}, which the code does"
        ));
    }
    let drawn_starts = starts(&drawn);
    if drawn_starts != code.initial {
        errors.push(format!(
            "{name}: starts drawn {drawn_starts:?}, the code creates rows in {:?}",
            code.initial
        ));
    }
    let terminal = code.terminal(states);
    let drawn_final: BTreeSet<&String> = drawn
        .iter()
        .filter(|(_, to)| to == START_OR_END)
        .map(|(from, _)| from)
        .collect();
    if terminal != drawn_final {
        errors.push(format!(
            "{name}: final states drawn {drawn_final:?}, the code's are {terminal:?}"
        ));
    }
    errors
}

/// Every check over every diagram; the errors found.
pub fn check(diagrams: &[Diagram], model: &Model, root: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let mut by_id: BTreeMap<&str, Vec<&Diagram>> = BTreeMap::new();
    for diagram in diagrams {
        errors.extend(unknown_names(diagram, model, root));
        match diagram.id.as_deref() {
            Some(id) => by_id.entry(id).or_default().push(diagram),
            None => errors.push(format!(
                "{}: a diagram without `%% diagram: <id>` (cannot tell what it should show)",
                diagram.at(0)
            )),
        }
    }
    for (id, found) in &by_id {
        if !EXPECTED.iter().any(|e| e.id == *id) {
            errors.push(format!("{}: unknown diagram id `{id}`", found[0].at(0)));
        }
        // A diagram shown in two places is the same diagram.
        if found.iter().any(|d| d.source != found[0].source) {
            let places: Vec<String> = found.iter().map(|d| d.at(0)).collect();
            errors.push(format!(
                "diagram `{id}` differs between {}",
                places.join(" and ")
            ));
        }
    }
    for expected in EXPECTED {
        match by_id.get(expected.id) {
            Some(found) => errors.extend(missing(found[0], expected, model)),
            None => errors.push(format!("no diagram `{}`", expected.id)),
        }
    }
    errors
}

/// `cargo xtask check diagrams`: the repository's diagrams against its
/// protos, migrations and README.
pub fn check_repository(root: &Path) -> Result<Vec<String>, String> {
    let model = Model::load(root)?;
    let diagrams = all_diagrams(root)?;
    let mut errors = check(&diagrams, &model, root);
    if !diagrams
        .iter()
        .any(|d| d.file == "README.md" && d.id.as_deref() == Some("architecture"))
    {
        errors.push("README.md does not show the architecture diagram".to_owned());
    }
    Ok(errors)
}

#[cfg(test)]
mod tests;
