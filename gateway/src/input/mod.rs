//! Reading what clients send, strictly and exactly: request bodies
//! ([`json`]: every violation named, duplicate keys refused), numbers and
//! money ([`money`]: read from their characters, never through a binary
//! float) and query strings ([`query`]). A body or query that does not fit
//! its type is refused with every violation at once; nothing here talks
//! HTTP (the extractors in [`crate::http::extract`] do).

pub mod json;
pub mod money;
pub mod query;

use json::{BodyError, Fields, Violations};
use proto::errors::Violation;

/// A request body type: read from a JSON object, recording every violation.
/// `None` means at least one violation was recorded.
pub trait FromBody: Sized {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self>;
}

/// Why a body could not become a `T`.
#[derive(Debug)]
pub enum BodyFailure {
    /// Empty, not JSON, or not an object.
    Unreadable(String),
    /// Fields that do not fit.
    Invalid(Vec<Violation>),
}

/// Reads `T` from a complete body.
pub fn read_body<T: FromBody>(bytes: &[u8]) -> Result<T, BodyFailure> {
    let fields = Fields::from_body(bytes).map_err(|error| {
        BodyFailure::Unreadable(match error {
            BodyError::Empty => "a JSON object is required; the body is empty".to_owned(),
            BodyError::Syntax(message) => format!("invalid JSON: {message}"),
            BodyError::NotAnObject(_) => "must be a JSON object".to_owned(),
        })
    })?;
    let mut errors = Violations::default();
    fields.check_duplicates(&mut errors);
    match T::read(&fields, &mut errors) {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(BodyFailure::Invalid(errors.into_vec())),
    }
}
