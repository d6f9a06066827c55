//! What the diagrams may name: read from the protos, the migrations and the
//! README's configuration table.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use crate::{files_with_suffix, is_ident_char, read};

/// Messages that are real without being in this repository's protos: the
/// `google.rpc` error details (`google/rpc/error_details.proto`) that
/// statuses carry.
pub(crate) const WELL_KNOWN_MESSAGES: &[&str] = &[
    "ErrorInfo",
    "RetryInfo",
    "DebugInfo",
    "QuotaFailure",
    "PreconditionFailure",
    "BadRequest",
    "RequestInfo",
    "ResourceInfo",
    "LocalizedMessage",
];

/// The canonical gRPC status codes.
pub(crate) const GRPC_CODES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The start and end of a state diagram.
pub const START_OR_END: &str = "[*]";

// ---- The code's names ------------------------------------------------------

/// The names the contracts and the schema define.
#[derive(Debug, Default)]
pub struct Model {
    pub rpcs: BTreeSet<String>,
    /// Services, messages and enums.
    pub types: BTreeSet<String>,
    pub fields: BTreeSet<String>,
    pub enum_values: BTreeSet<String>,
    /// Migration folder (`catalog`, `order`) -> its tables.
    pub tables_by_database: BTreeMap<String, BTreeSet<String>>,
    pub columns: BTreeSet<String>,
    /// `table.column` -> the values its `CHECK (... IN (...))` allows.
    pub stored_values: BTreeMap<String, BTreeSet<String>>,
    /// `table.column` -> its `DEFAULT '...'` literal.
    pub defaults: BTreeMap<String, String>,
    pub settings: BTreeSet<String>,
}

impl Model {
    /// Reads `proto/**/*.proto`, `migrations/<database>/*.sql` and the
    /// README's configuration table under `root`.
    pub fn load(root: &Path) -> Result<Self, String> {
        let mut model = Self::default();
        for proto in files_with_suffix(&root.join("proto"), ".proto")? {
            model.add_proto(&read(&proto)?);
        }
        for sql in files_with_suffix(&root.join("migrations"), ".sql")? {
            let database = sql
                .parent()
                .and_then(Path::file_name)
                .ok_or_else(|| format!("{}: not migrations/<database>/", sql.display()))?
                .to_string_lossy()
                .into_owned();
            model
                .add_migration(&database, &read(&sql)?)
                .map_err(|e| format!("{}: {e}", sql.display()))?;
        }
        model.add_settings(&read(&root.join("README.md"))?);
        Ok(model)
    }

    pub fn add_proto(&mut self, text: &str) {
        // Which kind of block each open brace belongs to.
        let mut blocks: Vec<&str> = Vec::new();
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("").trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [kind @ ("service" | "message" | "enum"), name, ..] if line.ends_with('{') => {
                    self.types.insert((*name).to_owned());
                    blocks.push(kind);
                    continue;
                }
                // An empty message: `message DeleteProductResponse {}`.
                ["service" | "message" | "enum", name, ..] if line.ends_with("{}") => {
                    self.types.insert((*name).to_owned());
                    continue;
                }
                ["rpc", signature, ..] => {
                    let name = signature.split('(').next().unwrap_or(signature);
                    self.rpcs.insert(name.to_owned());
                }
                _ => {}
            }
            if line.starts_with('}') {
                blocks.pop();
            } else if line.ends_with(';')
                && let Some((left, _)) = line.split_once('=')
                && let Some(name) = left.split_whitespace().last()
            {
                match blocks.last() {
                    Some(&"enum") => self.enum_values.insert(name.to_owned()),
                    Some(&"message") => self.fields.insert(name.to_owned()),
                    _ => false,
                };
            }
        }
    }

    /// Tables, their columns, defaults and CHECK lists, from `CREATE TABLE`
    /// and `ALTER TABLE ... ADD COLUMN / ADD CONSTRAINT ... CHECK`.
    pub fn add_migration(&mut self, database: &str, text: &str) -> Result<(), String> {
        let text: String = text
            .lines()
            .map(|line| line.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in text.split(';') {
            let statement = statement.trim();
            if let Some(rest) = statement.strip_prefix("CREATE TABLE ") {
                let table = ident_at(rest);
                let open = rest
                    .find('(')
                    .ok_or_else(|| format!("CREATE TABLE {table} without ("))?;
                let body = balanced(&rest[open..])?;
                self.tables_by_database
                    .entry(database.to_owned())
                    .or_default()
                    .insert(table.clone());
                for line in body.lines() {
                    self.add_column(&table, line);
                }
                self.add_checks(&table, body)?;
            } else if let Some(rest) = statement.strip_prefix("ALTER TABLE ") {
                let table = ident_at(rest);
                let rest = rest[table.len()..].trim_start();
                if let Some(column) = rest.strip_prefix("ADD COLUMN ") {
                    self.add_column(&table, column);
                }
                self.add_checks(&table, rest)?;
            }
        }
        Ok(())
    }

    /// A column definition, `name type ... [DEFAULT 'value'] ...`.
    pub(crate) fn add_column(&mut self, table: &str, definition: &str) {
        let mut words = definition.split_whitespace();
        if let (Some(name), Some(_type)) = (words.next(), words.next())
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            self.columns.insert(name.to_owned());
            if let Some(default) = definition
                .split("DEFAULT '")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
            {
                self.defaults
                    .insert(format!("{table}.{name}"), default.to_owned());
            }
        }
    }

    /// Every `CHECK (column IN ('a', 'b'))` of `text`.
    pub(crate) fn add_checks(&mut self, table: &str, mut text: &str) -> Result<(), String> {
        while let Some(at) = text.find("CHECK (") {
            text = &text[at + "CHECK (".len()..];
            let column = ident_at(text);
            let after = text[column.len()..].trim_start();
            if let Some(list) = after.strip_prefix("IN (") {
                let end = list
                    .find(')')
                    .ok_or_else(|| format!("{table}.{column}: IN ( without )"))?;
                let values = list[..end]
                    .split(',')
                    .map(|v| v.trim().trim_matches('\'').to_owned())
                    .collect();
                self.stored_values
                    .insert(format!("{table}.{column}"), values);
            }
        }
        Ok(())
    }

    /// The README's configuration table: "| `NAME` | ...".
    pub fn add_settings(&mut self, readme: &str) {
        for line in readme.lines() {
            if let Some(rest) = line.strip_prefix("| `")
                && let Some((name, _)) = rest.split_once('`')
                && is_upper_snake(name)
            {
                self.settings.insert(name.to_owned());
            }
        }
    }

    pub fn tables(&self) -> BTreeSet<&str> {
        self.tables_by_database
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// The values stored in every column of this name (`status`, `state`, ...).
    pub(crate) fn values_of_column(&self, column: &str) -> Option<BTreeSet<&str>> {
        let values: BTreeSet<&str> = self
            .stored_values
            .iter()
            .filter(|(key, _)| key.rsplit('.').next() == Some(column))
            .flat_map(|(_, values)| values.iter().map(String::as_str))
            .collect();
        (!values.is_empty()).then_some(values)
    }

    pub(crate) fn all_stored_values(&self) -> BTreeSet<&str> {
        self.stored_values
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// The identifier `text` starts with.
pub(crate) fn ident_at(text: &str) -> String {
    text.chars().take_while(|c| is_ident_char(*c)).collect()
}

/// The text inside the parenthesis `text` starts with.
pub(crate) fn balanced(text: &str) -> Result<&str, String> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(&text[1..i]);
                }
            }
            _ => {}
        }
    }
    Err(format!("unbalanced parenthesis in {text:.80}"))
}

/// `ReserveInventory`: two or more humps, each an upper-case letter followed
/// by lower-case letters or digits (so `PostgreSQL`, `HTTP` are not).
pub(crate) fn is_camel(word: &str) -> bool {
    let mut humps = 0;
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_uppercase() {
            return false;
        }
        let mut lower = 0;
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            chars.next();
            lower += 1;
        }
        if lower == 0 {
            return false;
        }
        humps += 1;
    }
    humps >= 2
}

/// `UPPER_SNAKE` (`upper`) or `lower_snake`: a letter of that case first,
/// then such letters, digits and underscores, at least one underscore.
pub(crate) fn is_snake(word: &str, upper: bool) -> bool {
    let letter = |c: char| {
        if upper {
            c.is_ascii_uppercase()
        } else {
            c.is_ascii_lowercase()
        }
    };
    word.contains('_')
        && word.starts_with(letter)
        && word
            .chars()
            .all(|c| letter(c) || c.is_ascii_digit() || c == '_')
}

pub(crate) fn is_upper_snake(word: &str) -> bool {
    is_snake(word, true)
}

pub(crate) fn is_lower_snake(word: &str) -> bool {
    is_snake(word, false)
}
