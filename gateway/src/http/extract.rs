//! Extractors whose every refusal is a problem-details answer (never axum's
//! plain-text rejections): JSON bodies, query strings, UUID path ids, raw
//! bodies (the webhook), and the `Idempotency-Key` header. Every body is
//! read through [`RawBody`], so every body is within its route's limit and
//! the process's body budget ([`super::limit::BodyBudget`]).

use axum::{
    RequestExt,
    body::{Bytes, HttpBody},
    extract::{FromRequest, FromRequestParts, Path, Query, Request, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use uuid::Uuid;

use super::{error::ApiError, limit::BodyBudget};
use crate::input::{
    BodyFailure, FromBody,
    json::Violations,
    query::{FromQuery, QueryPairs},
    read_body,
};

/// A JSON body read strictly into `T` (see [`crate::input::json`]).
///
/// - a `Content-Type` other than JSON: 415 (no `Content-Type` at all is read
///   as JSON);
/// - over the body limit: 413;
/// - empty, not JSON, not an object, or not fitting `T`: 422 naming the
///   field (`body` for the body as a whole).
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: FromBody> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_json_content_type(req.headers())?;
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        read_body(&bytes)
            .map(ValidJson)
            .map_err(|failure| match failure {
                BodyFailure::Unreadable(message) => ApiError::validation("body", message),
                BodyFailure::Invalid(violations) => ApiError::Validation(violations),
            })
    }
}

/// `application/json`, or any `application/*+json`, with any parameters.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        ))
    }
}

/// The complete body as bytes, within the route's limit (413 beyond it),
/// read under the process's body budget ([`BodyBudget`], when the router
/// carries one as an extension): charged before the first byte is read, for
/// its `Content-Length` or else the route's limit, and released once read;
/// 503 + `Retry-After` when the budget has no room. A `Content-Length` over
/// the route's limit is refused (413) before anything is read or charged.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared = req.body().size_hint().exact();
        // The route's limit (DefaultBodyLimit) as a body wrapper: its size
        // hint's upper bound is the most this body can make us buffer.
        let req = req.with_limited_body();
        let most = req.body().size_hint().upper();
        if let (Some(declared), Some(most)) = (declared, most)
            && declared > most
        {
            return Err(ApiError::PayloadTooLarge);
        }
        let _charge = match req.extensions().get::<BodyBudget>() {
            Some(budget) => Some(budget.charge(most.unwrap_or(u64::MAX))?),
            None => None,
        };
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| body_rejection(&rejection))
    }
}

fn body_rejection(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        // The client went away or sent a broken stream.
        ApiError::MalformedBody("The request body could not be read".into())
    }
}

/// Query parameters read into `T`; 422 naming the parameter otherwise.
#[derive(Debug)]
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::validation("query", "the query string cannot be decoded"))?;
        let mut errors = Violations::default();
        match T::read(&QueryPairs(pairs), &mut errors) {
            Some(value) if errors.is_empty() => Ok(Self(value)),
            _ => Err(ApiError::Validation(errors.into_vec())),
        }
    }
}

/// The `{id}` path segment as a UUID; 422 (field `id`) when it is not one.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let invalid = || ApiError::validation("id", "must be a valid UUID");
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        Uuid::parse_str(&raw).map(PathId).map_err(|_| invalid())
    }
}

/// Longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all("idempotency-key").iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        let invalid = |message: &str| ApiError::validation("Idempotency-Key", message);
        if values.next().is_some() {
            return Err(invalid("must be given once"));
        }
        let key = value
            .to_str()
            .ok()
            .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| invalid("must be visible ASCII characters"))?;
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX {
            return Err(invalid("must be 1 to 255 characters long"));
        }
        Ok(Self(Some(key.to_owned())))
    }
}
