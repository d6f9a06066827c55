//! Strict, exact reading of JSON request bodies.
//!
//! Bodies are parsed into objects whose members keep their raw text
//! (`serde_json::value::RawValue`), then read field by field. That gives what
//! serde's derive does not:
//! - numbers read exactly from their characters (see [`super::money`]);
//! - every problem reported at once, each naming its field (`products[1].quantity`);
//! - `null` told apart from an absent field (partial updates);
//! - duplicated keys refused instead of "last one wins".
//!
//! Unknown fields are ignored, so a client that sends back a whole object it
//! read (`id` and timestamps included) is served.

use std::collections::HashSet;

use proto::errors::Violation;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::money::{self, IntegerError};

/// The JSON type of a raw value, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub fn of(raw: &RawValue) -> Self {
        match raw.get().trim_start().as_bytes().first() {
            Some(b'n') => Self::Null,
            Some(b't' | b'f') => Self::Bool,
            Some(b'"') => Self::String,
            Some(b'[') => Self::Array,
            Some(b'{') => Self::Object,
            _ => Self::Number,
        }
    }

    fn article_name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// Why a body could not even be read as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    Empty,
    /// Not JSON: the parser's message (with line and column).
    Syntax(String),
    /// Valid JSON, but not an object.
    NotAnObject(Kind),
}

/// An object's members in document order; duplicates are kept so that the
/// reader can refuse them.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Violations collected while reading one body.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }
}

/// What a field's slot holds.
#[derive(Debug, Clone, Copy)]
pub enum Slot<'a> {
    Absent,
    Null,
    Value(&'a RawValue),
}

/// A value that a partial update may set, clear or leave alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Unchanged,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// The value set, if any: for fields where null and absent both mean
    /// "none".
    pub fn into_option(self) -> Option<T> {
        match self {
            Self::Set(value) => Some(value),
            Self::Clear | Self::Unchanged => None,
        }
    }
}

/// Whether a field may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Absent is refused ("field required").
    Required,
    /// Absent is `None`.
    Optional,
}

/// A parser for one field's raw value: `Err` is the message a client sees.
pub type Parse<'a, T> = &'a dyn Fn(&RawValue) -> Result<T, String>;

/// The members of one JSON object, read by field name.
pub struct Fields<'a> {
    /// `""` at the top, `products[0].` inside a nested object.
    prefix: String,
    members: Vec<(String, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    /// Reads a whole body, which must be one JSON object.
    pub fn from_body(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(BodyError::Empty);
        }
        match serde_json::from_slice::<Members<'a>>(body) {
            Ok(Members(members)) => Ok(Self {
                prefix: String::new(),
                members,
            }),
            Err(error) if error.is_data() => {
                // Well-formed JSON of another type: say which.
                let kind = serde_json::from_slice::<&RawValue>(body)
                    .map(Kind::of)
                    .unwrap_or(Kind::Null);
                Err(BodyError::NotAnObject(kind))
            }
            Err(error) => Err(BodyError::Syntax(error.to_string())),
        }
    }

    /// Reads a nested object; `path` names it in messages (`products[0]`).
    fn nested(raw: &'a RawValue, path: &str) -> Option<Self> {
        serde_json::from_str::<Members<'a>>(raw.get())
            .ok()
            .map(|Members(members)| Self {
                prefix: format!("{path}."),
                members,
            })
    }

    /// The full name of a field, as violations report it.
    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Refuses every key that appears more than once, rather than silently
    /// keeping one of the values.
    pub fn check_duplicates(&self, errors: &mut Violations) {
        let mut seen = HashSet::new();
        let mut reported = HashSet::new();
        for (key, _) in &self.members {
            if !seen.insert(key.as_str()) && reported.insert(key.as_str()) {
                errors.push(
                    self.path(key),
                    "duplicate key: the field is given more than once",
                );
            }
        }
    }

    pub fn slot(&self, name: &str) -> Slot<'a> {
        match self.members.iter().rev().find(|(key, _)| key == name) {
            None => Slot::Absent,
            Some((_, raw)) if Kind::of(raw) == Kind::Null => Slot::Null,
            Some((_, raw)) => Slot::Value(raw),
        }
    }

    /// The raw value of a field that may be absent (`Some(None)`) but not
    /// null. `None` means a violation was recorded.
    fn non_null(&self, errors: &mut Violations, name: &str) -> Option<Option<&'a RawValue>> {
        match self.slot(name) {
            Slot::Absent => Some(None),
            Slot::Null => {
                errors.push(self.path(name), "must not be null");
                None
            }
            Slot::Value(raw) => Some(Some(raw)),
        }
    }

    /// The raw value of a field that must be present and not null.
    fn present(&self, errors: &mut Violations, name: &str) -> Option<&'a RawValue> {
        let raw = self.non_null(errors, name)?;
        if raw.is_none() {
            errors.push(self.path(name), "field required");
        }
        raw
    }

    /// A field that must be present and not null.
    pub fn required<T>(&self, errors: &mut Violations, name: &str, parse: Parse<T>) -> Option<T> {
        self.value(errors, name, Presence::Required, parse)?
    }

    /// A field that must not be null, and must be present if `presence`
    /// says so (`Some(None)` when it may be absent and is). `None` means a
    /// violation was recorded.
    pub fn value<T>(
        &self,
        errors: &mut Violations,
        name: &str,
        presence: Presence,
        parse: Parse<'_, T>,
    ) -> Option<Option<T>> {
        let raw = match presence {
            Presence::Required => Some(self.present(errors, name)?),
            Presence::Optional => self.non_null(errors, name)?,
        };
        match raw {
            None => Some(None),
            Some(raw) => self.parsed(errors, name, raw, parse).map(Some),
        }
    }

    /// A field where absent, null and a value all mean something.
    pub fn patch<T>(
        &self,
        errors: &mut Violations,
        name: &str,
        parse: Parse<'_, T>,
    ) -> Option<Patch<T>> {
        match self.slot(name) {
            Slot::Absent => Some(Patch::Unchanged),
            Slot::Null => Some(Patch::Clear),
            Slot::Value(raw) => self.parsed(errors, name, raw, parse).map(Patch::Set),
        }
    }

    /// A required array of objects, each read by `read` with its own path.
    pub fn required_objects<T>(
        &self,
        errors: &mut Violations,
        name: &str,
        read: impl Fn(&Fields<'a>, &mut Violations) -> Option<T>,
    ) -> Option<Vec<T>> {
        let raw = self.present(errors, name)?;
        let Ok(elements) = serde_json::from_str::<Vec<&'a RawValue>>(raw.get()) else {
            errors.push(
                self.path(name),
                format!("must be an array, not {}", Kind::of(raw).article_name()),
            );
            return None;
        };
        let mut items = Vec::with_capacity(elements.len());
        let mut ok = true;
        for (index, element) in elements.into_iter().enumerate() {
            let path = format!("{}[{index}]", self.path(name));
            let Some(fields) = Fields::nested(element, &path) else {
                errors.push(
                    path,
                    format!(
                        "must be an object, not {}",
                        Kind::of(element).article_name()
                    ),
                );
                ok = false;
                continue;
            };
            fields.check_duplicates(errors);
            match read(&fields, errors) {
                Some(item) => items.push(item),
                None => ok = false,
            }
        }
        ok.then_some(items)
    }

    fn parsed<T>(
        &self,
        errors: &mut Violations,
        name: &str,
        raw: &RawValue,
        parse: Parse<'_, T>,
    ) -> Option<T> {
        match parse(raw) {
            Ok(value) => Some(value),
            Err(message) => {
                errors.push(self.path(name), message);
                None
            }
        }
    }
}

// ---- Parsers for single values. `Err` is the client-facing message. ----

fn wrong_type(expected: &str, raw: &RawValue) -> String {
    format!("must be {expected}, not {}", Kind::of(raw).article_name())
}

/// A JSON string, decoded. NUL characters are refused: no client means them,
/// and PostgreSQL text cannot store them.
pub fn string(raw: &RawValue) -> Result<String, String> {
    if Kind::of(raw) != Kind::String {
        return Err(wrong_type("a string", raw));
    }
    let text: String =
        serde_json::from_str(raw.get()).map_err(|_| "must be a valid string".to_owned())?;
    if text.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(text)
}

/// A string of `min..=max` characters (Unicode scalar values).
pub fn string_of_length(min: usize, max: usize) -> impl Fn(&RawValue) -> Result<String, String> {
    move |raw| {
        let text = string(raw)?;
        let length = text.chars().count();
        if length < min || length > max {
            return Err(format!(
                "must be between {min} and {max} characters long (got {length})"
            ));
        }
        Ok(text)
    }
}

/// An integer in `min..=max`, given as a JSON number.
pub fn integer(min: i64, max: i64) -> impl Fn(&RawValue) -> Result<i64, String> {
    move |raw| {
        let range = || {
            if max == i64::MAX {
                format!("must be an integer >= {min}")
            } else {
                format!("must be an integer between {min} and {max}")
            }
        };
        if Kind::of(raw) != Kind::Number {
            return Err(wrong_type("an integer", raw));
        }
        match money::parse_integer(raw.get()) {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            Ok(_) | Err(IntegerError::OutOfRange) => Err(range()),
            Err(IntegerError::NotAnInteger) => {
                Err("must be an integer (no fractional part)".into())
            }
        }
    }
}

/// A price: a JSON number or a string holding one, read exactly.
pub fn price(raw: &RawValue) -> Result<rust_decimal::Decimal, String> {
    let text = match Kind::of(raw) {
        Kind::Number => raw.get().to_owned(),
        Kind::String => string(raw)?,
        _ => return Err(wrong_type("a number or a decimal string", raw)),
    };
    money::parse_price(&text).map_err(|error| error.to_string())
}

/// A UUID in a string.
pub fn uuid(raw: &RawValue) -> Result<Uuid, String> {
    let text = string(raw).map_err(|_| wrong_type("a UUID string", raw))?;
    Uuid::parse_str(&text).map_err(|_| "must be a valid UUID".to_owned())
}

/// One of the given lowercase words, in a string.
pub fn one_of<'v>(allowed: &'v [&'v str]) -> impl Fn(&RawValue) -> Result<&'v str, String> {
    move |raw| {
        let text = string(raw).map_err(|_| wrong_type("a string", raw))?;
        allowed
            .iter()
            .copied()
            .find(|word| *word == text)
            .ok_or_else(|| format!("must be one of: {}", allowed.join(", ")))
    }
}

#[cfg(test)]
mod tests;
