//! The Mermaid diagrams of `README.md` and `deploy/docs/*.md` use the code's
//! names (issue 8, acceptance 3; `deploy/docs/check-diagrams.sh` checks that
//! they parse).
//!
//! The names of the code are read from their sources: RPCs, services,
//! messages, fields and enum values from `proto/**/*.proto`; tables, columns
//! and stored states (`CHECK (col IN (...))`) from `migrations/*/*.sql`;
//! settings from the README's configuration table. Then every diagram:
//! - names nothing that does not exist: CamelCase words are RPCs, services or
//!   messages; `snake_case` words tables, columns or fields; `UPPER_SNAKE`
//!   words enum values, gRPC codes or settings; the word after SQL's
//!   `INTO` / `UPDATE` / `FROM` and each `tables:` list are tables; a quoted
//!   `'value'` is a stored state (of that column, after `column = `); a
//!   `deploy/...` path is a file;
//! - shows what it is meant to show: the architecture every RPC, each
//!   database exactly its tables; each flow its RPCs, tables and states; each
//!   state machine exactly the states of its column and exactly the moves the
//!   code makes (`order_service::domain::status::transition`,
//!   `order_service::domain::payment::payment_transition`, the conditional
//!   updates of `catalog-service/src/store.rs`).
//!
//! Every diagram carries an id (`%% diagram: <id>`) naming what it shows; the
//! expectations per id are [`EXPECTED`].

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use order_service::domain::{
    OrderStatus, PaymentStatus, StatusChange, payment::payment_transition, status::transition,
};

/// What each diagram must show, beyond naming only real things.
struct Expected {
    id: &'static str,
    /// Names (RPCs, tables, quoted states, ...) the diagram must mention.
    mentions: &'static [&'static str],
    /// For state machines: the `table.column` whose states are drawn.
    states_of: Option<&'static str>,
}

const EXPECTED: &[Expected] = &[
    Expected {
        id: "architecture",
        // Plus every RPC of every service, and each database's tables.
        mentions: &["OrderService", "CatalogService"],
        states_of: None,
    },
    Expected {
        id: "observability",
        mentions: &[],
        states_of: None,
    },
    Expected {
        id: "order-create",
        mentions: &[
            "CreateOrder",
            "ReserveInventory",
            "ReleaseInventory",
            "orders",
            "idempotency_keys",
            "order_items",
            "reservations",
            "reservation_lines",
            "products",
            "reserving",
            "pending",
            "rejected",
            "held",
            "released",
        ],
        states_of: None,
    },
    Expected {
        id: "order-cancel",
        mentions: &[
            "UpdateOrderStatus",
            "ReleaseInventory",
            "orders",
            "outbox",
            "reservations",
            "products",
            "pending",
            "canceled",
            "release",
            "released",
        ],
        states_of: None,
    },
    Expected {
        id: "order-recovery",
        mentions: &[
            "ReleaseInventory",
            "CommitInventory",
            "orders",
            "outbox",
            "idempotency_keys",
            "reservations",
            "reserving",
            "rejected",
            "release",
            "commit",
            "released",
            "committed",
            "RECONCILE_INTERVAL_SECS",
            "RESERVING_GRACE_SECS",
        ],
        states_of: None,
    },
    Expected {
        id: "order-status",
        mentions: &[
            "CreateOrder",
            "ReserveInventory",
            "ReleaseInventory",
            "UpdateOrderStatus",
            "CommitInventory",
        ],
        states_of: Some("orders.status"),
    },
    Expected {
        id: "payment-status",
        mentions: &[
            "ApplyPayment",
            "PAYMENT_STATUS_PAID",
            "PAYMENT_STATUS_FAILED",
        ],
        states_of: Some("orders.payment_status"),
    },
    Expected {
        id: "reservation-state",
        mentions: &["ReserveInventory", "ReleaseInventory", "CommitInventory"],
        states_of: Some("reservations.state"),
    },
];

/// CamelCase words that are not in the protos but are real all the same:
/// each must occur in the file given (checked too).
const OTHER_REAL_NAMES: &[(&str, &str)] = &[("ErrorInfo", "proto/src/errors.rs")];

/// The canonical gRPC status codes.
const GRPC_CODES: &[&str] = &[
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

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Files under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

// ---- The code's names ------------------------------------------------------

#[derive(Debug, Default)]
struct Model {
    rpcs: BTreeSet<String>,
    /// Services, messages and enums.
    types: BTreeSet<String>,
    fields: BTreeSet<String>,
    enum_values: BTreeSet<String>,
    /// Migration folder (`catalog`, `order`) -> its tables.
    tables_by_database: BTreeMap<String, BTreeSet<String>>,
    columns: BTreeSet<String>,
    /// `table.column` -> the values its CHECK (... IN (...)) allows.
    stored_values: BTreeMap<String, BTreeSet<String>>,
    settings: BTreeSet<String>,
}

impl Model {
    fn load(root: &Path) -> Self {
        let mut model = Self::default();
        for proto in files_with_suffix(&root.join("proto"), ".proto") {
            model.add_proto(&read(&proto));
        }
        for sql in files_with_suffix(&root.join("migrations"), ".sql") {
            let database = sql
                .parent()
                .and_then(Path::file_name)
                .expect("migrations/<database>/<file>.sql")
                .to_string_lossy()
                .into_owned();
            model.add_migration(&database, &read(&sql));
        }
        model.add_settings(&read(&root.join("README.md")));
        model
    }

    fn add_proto(&mut self, text: &str) {
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

    fn add_migration(&mut self, database: &str, text: &str) {
        let text: String = text
            .lines()
            .map(|line| line.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("CREATE TABLE ") {
            rest = &rest[at + "CREATE TABLE ".len()..];
            let name: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
            let open = rest.find('(').expect("CREATE TABLE name (");
            let body = balanced(&rest[open..]);
            self.tables_by_database
                .entry(database.to_owned())
                .or_default()
                .insert(name.clone());
            for line in body.lines() {
                let mut words = line.split_whitespace();
                if let (Some(first), Some(_type)) = (words.next(), words.next())
                    && first.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                {
                    self.columns.insert(first.to_owned());
                }
            }
            let mut checks = body;
            while let Some(at) = checks.find("CHECK (") {
                checks = &checks[at + "CHECK (".len()..];
                let column: String = checks.chars().take_while(|c| is_ident_char(*c)).collect();
                let after = checks[column.len()..].trim_start();
                if let Some(list) = after.strip_prefix("IN (") {
                    let list = &list[..list.find(')').expect("IN (...)")];
                    let values = list
                        .split(',')
                        .map(|v| v.trim().trim_matches('\'').to_owned())
                        .collect();
                    self.stored_values
                        .insert(format!("{name}.{column}"), values);
                }
            }
        }
    }

    /// The README's configuration table: "| `NAME` | ...".
    fn add_settings(&mut self, readme: &str) {
        for line in readme.lines() {
            if let Some(rest) = line.strip_prefix("| `")
                && let Some((name, _)) = rest.split_once('`')
                && is_upper_snake(name)
            {
                self.settings.insert(name.to_owned());
            }
        }
    }

    fn tables(&self) -> BTreeSet<&str> {
        self.tables_by_database
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// The values stored in every column of this name (`status`, `state`, ...).
    fn values_of_column(&self, column: &str) -> Option<BTreeSet<&str>> {
        let values: BTreeSet<&str> = self
            .stored_values
            .iter()
            .filter(|(key, _)| key.rsplit('.').next() == Some(column))
            .flat_map(|(_, values)| values.iter().map(String::as_str))
            .collect();
        (!values.is_empty()).then_some(values)
    }

    fn all_stored_values(&self) -> BTreeSet<&str> {
        self.stored_values
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// The text inside the parenthesis `text` starts with.
fn balanced(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parenthesis in {text:.80}");
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `ReserveInventory`: two or more humps, each an upper-case letter followed
/// by lower-case letters or digits (so `PostgreSQL`, `HTTP` are not).
fn is_camel(word: &str) -> bool {
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

fn is_upper_snake(word: &str) -> bool {
    word.contains('_')
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_lower_snake(word: &str) -> bool {
    word.contains('_')
        && word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

// ---- The diagrams ----------------------------------------------------------

#[derive(Debug, Clone)]
struct Diagram {
    /// Where the block starts: `file:line`.
    file: String,
    /// 1-based line of the block's first line in `file`.
    line: usize,
    id: Option<String>,
    source: String,
}

impl Diagram {
    fn at(&self, offset: usize) -> String {
        format!("{}:{}", self.file, self.line + offset)
    }

    fn name(&self) -> String {
        format!(
            "{} ({})",
            self.id.as_deref().unwrap_or("diagram without id"),
            self.at(0)
        )
    }
}

fn mermaid_blocks(file: &str, text: &str) -> Vec<Diagram> {
    let mut diagrams = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (index, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim() == "```mermaid" => current = Some((index + 2, Vec::new())),
            None => {}
            Some((start, body)) => {
                if line.trim() == "```" {
                    let source = body.join("\n");
                    let id = source.lines().find_map(|l| {
                        l.trim()
                            .strip_prefix("%% diagram:")
                            .map(|id| id.trim().to_owned())
                    });
                    diagrams.push(Diagram {
                        file: file.to_owned(),
                        line: *start,
                        id,
                        source,
                    });
                    current = None;
                } else {
                    body.push(line);
                }
            }
        }
    }
    assert!(current.is_none(), "{file}: a mermaid block is never closed");
    diagrams
}

fn all_diagrams(root: &Path) -> Vec<Diagram> {
    let mut files = vec![root.join("README.md")];
    files.extend(files_with_suffix(&root.join("deploy/docs"), ".md"));
    files
        .iter()
        .filter(|path| !path.components().any(|c| c.as_os_str() == ".tools"))
        .flat_map(|path| {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string();
            mermaid_blocks(&relative, &read(path))
        })
        .collect()
}

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
            if line.starts_with("%%") {
                continue;
            }
            let words: Vec<&str> = line
                .split(|c: char| !is_ident_char(c))
                .filter(|w| !w.is_empty())
                .collect();
            for (i, word) in words.iter().enumerate() {
                names.words.push((offset, (*word).to_owned()));
                if matches!(*word, "INTO" | "UPDATE" | "FROM")
                    && let Some(next) = words.get(i + 1)
                    && next.starts_with(|c: char| c.is_ascii_lowercase())
                {
                    names.sql_tables.push((offset, (*next).to_owned()));
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
                names.table_lists.push((offset, list));
            }
            let mut rest = line;
            while let Some(open) = rest.find('\'') {
                let after = &rest[open + 1..];
                let Some(close) = after.find('\'') else { break };
                let value = &after[..close];
                if !value.is_empty() && value.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    let before = rest[..open].trim_end();
                    let column = before.strip_suffix('=').map(|b| {
                        b.trim_end()
                            .rsplit(|c: char| !is_ident_char(c))
                            .next()
                            .unwrap_or("")
                            .to_owned()
                    });
                    names.quoted.push((offset, column, value.to_owned()));
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
                names
                    .paths
                    .push((offset, path.trim_end_matches('.').to_owned()));
                rest = &rest[at + "deploy/".len()..];
            }
        }
        names
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
            let other = OTHER_REAL_NAMES.iter().find(|(name, _)| *name == word);
            let known = model.rpcs.contains(word)
                || model.types.contains(word)
                || other.is_some_and(|(name, file)| read(&root.join(file)).contains(name));
            if !known {
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
        for table in list {
            if !tables.contains(table.as_str()) {
                error(
                    *offset,
                    format!("`{table}` (in a tables: list) is no table"),
                );
            }
        }
    }
    let all_values = model.all_stored_values();
    for (offset, column, value) in &names.quoted {
        let allowed = column
            .as_deref()
            .and_then(|c| model.values_of_column(c))
            .unwrap_or_else(|| all_values.clone());
        if !allowed.contains(value.as_str()) {
            error(
                *offset,
                format!(
                    "'{value}' is not a stored value{} (allowed: {allowed:?})",
                    column
                        .as_deref()
                        .map(|c| format!(" of `{c}`"))
                        .unwrap_or_default()
                ),
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

/// A state diagram's moves: `(from, to)`, with `[*]` for start and end.
fn transitions(diagram: &Diagram) -> BTreeSet<(String, String)> {
    diagram
        .source
        .lines()
        .filter_map(|line| {
            let (from, rest) = line.split_once("-->")?;
            let to = rest.split(':').next().unwrap_or(rest);
            Some((from.trim().to_owned(), to.trim().to_owned()))
        })
        .collect()
}

/// The states the diagram's notes (`note right of <state>: ...`) attach to.
fn noted_states(diagram: &Diagram) -> BTreeSet<String> {
    diagram
        .source
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("note ")?;
            let rest = rest.split_once(" of ")?.1;
            Some(rest.split(':').next()?.trim().to_owned())
        })
        .collect()
}

/// The code's state machine for `table.column`: its moves, with `[*]` for
/// the states a row is created in.
fn code_machine(table_column: &str, model: &Model, root: &Path) -> BTreeSet<(String, String)> {
    let pair = |from: &str, to: &str| (from.to_owned(), to.to_owned());
    let states = &model.stored_values[table_column];
    let mut moves = BTreeSet::new();
    match table_column {
        "orders.status" => {
            for from in OrderStatus::ALL {
                for to in OrderStatus::ALL {
                    if let Ok(StatusChange::Changed(_)) = transition(from, to) {
                        moves.insert(pair(from.as_str(), to.as_str()));
                    }
                }
            }
            // Where the saga starts an order.
            let store = files_with_suffix(&root.join("order-service/src/store"), ".rs")
                .iter()
                .map(|p| read(p))
                .collect::<String>();
            for literal in string_literals(&store) {
                if literal.contains("INSERT INTO orders ") {
                    for initial in quoted_states(&literal, states) {
                        moves.insert(pair("[*]", &initial));
                    }
                }
            }
        }
        "orders.payment_status" => {
            for from in PaymentStatus::ALL {
                for to in PaymentStatus::ALL {
                    if payment_transition(from, to) == Ok(true) {
                        moves.insert(pair(from.as_str(), to.as_str()));
                    }
                }
            }
            // The column's default is every order's first payment status.
            let migrations = files_with_suffix(&root.join("migrations/order"), ".sql")
                .iter()
                .map(|p| read(p))
                .collect::<String>();
            let default = migrations
                .lines()
                .find(|l| l.trim_start().starts_with("payment_status "))
                .and_then(|l| l.split("DEFAULT '").nth(1))
                .and_then(|l| l.split('\'').next())
                .expect("orders.payment_status has a DEFAULT");
            moves.insert(pair("[*]", default));
        }
        "reservations.state" => {
            // The catalog's statements: a row is created by an INSERT in
            // some state, and moves by "UPDATE ... SET state = 'to' WHERE
            // ... state = 'from'".
            let store = read(&root.join("catalog-service/src/store.rs"));
            for literal in string_literals(&store) {
                if literal.contains("INSERT INTO reservations ") {
                    for initial in quoted_states(&literal, states) {
                        moves.insert(pair("[*]", &initial));
                    }
                }
                if let Some(rest) = literal.split("UPDATE reservations SET state = ").nth(1) {
                    let (set, condition) = rest
                        .split_once("WHERE")
                        .unwrap_or_else(|| panic!("a conditional update: {literal}"));
                    for to in quoted_states(set, states) {
                        for from in quoted_states(condition, states) {
                            moves.insert(pair(&from, &to));
                        }
                    }
                }
            }
        }
        other => panic!("no code state machine known for {other}"),
    }
    assert!(
        moves.len() >= 2,
        "{table_column}: too few moves read: {moves:?}"
    );
    moves
}

/// The `'quoted'` words of `sql` that are among `states`.
fn quoted_states(sql: &str, states: &BTreeSet<String>) -> Vec<String> {
    sql.split('\'')
        .skip(1)
        .step_by(2)
        .filter(|word| states.contains(*word))
        .map(str::to_owned)
        .collect()
}

/// The string literals of a Rust source (`\`-newline continuations joined),
/// outside comments and char literals: where its SQL is.
fn string_literals(source: &str) -> Vec<String> {
    let mut literals = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                // A char literal ('"', '\''), or a lifetime (left alone).
                let mut ahead = chars.clone();
                match (ahead.next(), ahead.next()) {
                    (Some('\\'), _) => {
                        chars.next();
                        chars.next();
                        chars.next();
                    }
                    (Some(_), Some('\'')) => {
                        chars.next();
                        chars.next();
                    }
                    _ => {}
                }
            }
            '"' => {
                let mut literal = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('\n') => {
                                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                                    chars.next();
                                }
                            }
                            Some(escaped) => literal.push(escaped),
                            None => {}
                        },
                        c => literal.push(c),
                    }
                }
                literals.push(literal);
            }
            _ => {}
        }
    }
    literals
}

/// Errors for what `diagram` should show and does not.
fn missing(diagram: &Diagram, expected: &Expected, model: &Model, root: &Path) -> Vec<String> {
    let names = Names::of(diagram);
    let mut errors = Vec::new();
    let name = diagram.name();
    for wanted in expected.mentions {
        if !names.mentions(wanted) {
            errors.push(format!("{name}: does not mention `{wanted}`"));
        }
    }
    if expected.id == "architecture" {
        for rpc in &model.rpcs {
            if !names.mentions(rpc) {
                errors.push(format!("{name}: RPC `{rpc}` is missing"));
            }
        }
        for (database, tables) in &model.tables_by_database {
            let drawn = names.table_lists.iter().any(|(_, list)| {
                list.iter().map(String::as_str).collect::<BTreeSet<_>>()
                    == tables.iter().map(String::as_str).collect()
            });
            if !drawn {
                errors.push(format!(
                    "{name}: no `tables:` list is exactly the {database} database's {tables:?}"
                ));
            }
        }
    }
    if let Some(table_column) = expected.states_of {
        let code_states = &model.stored_values[table_column];
        let drawn = transitions(diagram);
        let drawn_states: BTreeSet<String> = drawn
            .iter()
            .flat_map(|(from, to)| [from, to])
            .filter(|s| *s != "[*]")
            .cloned()
            .collect();
        for state in code_states {
            if !drawn_states.contains(state) {
                errors.push(format!(
                    "{name}: state `{state}` of {table_column} is missing"
                ));
            }
        }
        for state in drawn_states.union(&noted_states(diagram)) {
            if !code_states.contains(state) {
                errors.push(format!(
                    "{name}: `{state}` is no state of {table_column} {code_states:?}"
                ));
            }
        }
        let code_moves = code_machine(table_column, model, root);
        let drawn_moves: BTreeSet<(String, String)> = drawn
            .iter()
            .filter(|(_, to)| to != "[*]")
            .cloned()
            .collect();
        for (from, to) in drawn_moves.difference(&code_moves) {
            errors.push(format!(
                "{name}: draws {from} --> {to}, which the code never does"
            ));
        }
        for (from, to) in code_moves.difference(&drawn_moves) {
            errors.push(format!(
                "{name}: lacks {from} --> {to}, which the code does"
            ));
        }
        // Final: exactly the states the code never leaves.
        let terminal: BTreeSet<&String> = code_states
            .iter()
            .filter(|s| !code_moves.iter().any(|(from, _)| from == *s))
            .collect();
        let drawn_final: BTreeSet<&String> = drawn
            .iter()
            .filter(|(_, to)| to == "[*]")
            .map(|(from, _)| from)
            .collect();
        if terminal != drawn_final {
            errors.push(format!(
                "{name}: final states drawn {drawn_final:?}, the code's are {terminal:?}"
            ));
        }
    }
    errors
}

/// Every check over every diagram; the errors found.
fn check(diagrams: &[Diagram], model: &Model, root: &Path) -> Vec<String> {
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
            errors.push(format!(
                "diagram `{id}` differs between {}",
                found
                    .iter()
                    .map(|d| d.at(0))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
    }
    for expected in EXPECTED {
        match by_id.get(expected.id) {
            Some(found) => errors.extend(missing(found[0], expected, model, root)),
            None => errors.push(format!("no diagram `{}`", expected.id)),
        }
    }
    errors
}

// ---- Tests -----------------------------------------------------------------

#[test]
fn the_code_model_reads_the_protos_and_migrations() {
    let model = Model::load(&root());
    for rpc in [
        "CreateOrder",
        "ApplyPayment",
        "ReserveInventory",
        "ReleaseInventory",
        "CommitInventory",
        "ListProducts",
    ] {
        assert!(model.rpcs.contains(rpc), "{rpc} in {:?}", model.rpcs);
    }
    assert_eq!(model.rpcs.len(), 14, "{:?}", model.rpcs);
    assert!(model.enum_values.contains("ORDER_STATUS_CANCELED"));
    assert!(model.fields.contains("idempotency_key"));
    let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        model.stored_values["orders.status"],
        strings(&["reserving", "pending", "completed", "canceled", "rejected"])
    );
    assert_eq!(
        model.stored_values["orders.payment_status"],
        strings(&["unpaid", "paid", "failed"])
    );
    assert_eq!(
        model.stored_values["reservations.state"],
        strings(&["held", "released", "committed"])
    );
    assert_eq!(
        model.tables_by_database["order"],
        strings(&[
            "orders",
            "order_items",
            "outbox",
            "idempotency_keys",
            "payment_events"
        ])
    );
    assert_eq!(
        model.tables_by_database["catalog"],
        strings(&["products", "reservations", "reservation_lines"])
    );
    assert!(model.columns.contains("price_at_purchase"));
    assert!(model.settings.contains("RECONCILE_INTERVAL_SECS"));
    let reservations = code_machine("reservations.state", &model, &root());
    for (from, to) in [
        ("[*]", "held"),
        ("[*]", "released"),
        ("held", "released"),
        ("held", "committed"),
    ] {
        assert!(
            reservations.contains(&(from.into(), to.into())),
            "{from} -> {to} in {reservations:?}"
        );
    }
}

#[test]
fn every_diagram_uses_the_codes_names_and_shows_what_it_should() {
    let root = root();
    let model = Model::load(&root);
    let diagrams = all_diagrams(&root);
    assert!(
        diagrams.len() >= EXPECTED.len(),
        "found only {} diagrams",
        diagrams.len()
    );
    assert!(
        diagrams
            .iter()
            .any(|d| d.file == "README.md" && d.id.as_deref() == Some("architecture")),
        "README.md shows the architecture diagram"
    );
    let errors = check(&diagrams, &model, &root);
    assert!(
        errors.is_empty(),
        "{} problem(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// The checker itself: wrong names, missing states and wrong arrows are found.
#[test]
fn the_checker_finds_wrong_names_missing_states_and_wrong_moves() {
    let root = root();
    let model = Model::load(&root);
    let mut diagrams = all_diagrams(&root);
    // Changes the first diagram with this id (the README's, for the
    // architecture).
    let edit = |diagrams: &mut Vec<Diagram>, id: &str, from: &str, to: &str| {
        let d = diagrams
            .iter_mut()
            .find(|d| d.id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("a diagram {id}"));
        assert!(d.source.contains(from), "{id} contains {from:?}");
        d.source = d.source.replacen(from, to, 1);
    };
    // An RPC that does not exist, a table that does not, a state that does not.
    edit(
        &mut diagrams,
        "order-create",
        "ReserveInventory(",
        "ReserveStock(",
    );
    edit(
        &mut diagrams,
        "order-cancel",
        "INSERT INTO outbox",
        "INSERT INTO outbox_rows",
    );
    edit(
        &mut diagrams,
        "order-recovery",
        "status = 'rejected'",
        "status = 'failed'",
    );
    // A state machine with a state dropped and a move the code forbids.
    edit(
        &mut diagrams,
        "payment-status",
        "failed --> paid",
        "paid --> failed",
    );
    edit(&mut diagrams, "order-status", "    rejected --> [*]\n", "");
    edit(
        &mut diagrams,
        "order-status",
        "reserving --> rejected",
        "reserving --> shipped",
    );
    // The architecture without one RPC.
    edit(&mut diagrams, "architecture", "ApplyPayment", "Payment");
    let errors = check(&diagrams, &model, &root).join("\n");
    for expected in [
        "`ReserveStock` is no RPC",
        "`outbox_rows` (after INTO/UPDATE/FROM) is no table",
        "'failed' is not a stored value of `status`",
        "draws paid --> failed, which the code never does",
        "lacks failed --> paid, which the code does",
        "`shipped` is no state of orders.status",
        "state `rejected` of orders.status is missing",
        "lacks reserving --> rejected",
        "RPC `ApplyPayment` is missing",
        "diagram `architecture` differs between",
    ] {
        assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
    }
}
