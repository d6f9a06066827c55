//! The one way a handler calls a service: [`Services::call`], under the
//! deadline, with the request's id and trace context, counted, and failing as
//! an [`ApiError`] already mapped from the gRPC status ([`super::status`]).

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use super::{Backends, Rpc, Subject};
use crate::http::error::ApiError;

/// Headers carried from the HTTP request onto every gRPC call it makes;
/// nothing else (credentials above all) travels on.
const FORWARDED_HEADERS: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

/// What a handler's gRPC calls inherit from its HTTP request.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    headers: Vec<(&'static str, AsciiMetadataValue)>,
}

impl CallContext {
    /// The forwarded headers of a request. A value that is not valid metadata
    /// is dropped, not fatal.
    pub fn of(parts: &Parts) -> Self {
        let headers = FORWARDED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(*name)?.to_str().ok()?;
                Some((*name, AsciiMetadataValue::try_from(value).ok()?))
            })
            .collect();
        Self { headers }
    }

    pub(super) fn apply(&self, metadata: &mut MetadataMap) {
        for (name, value) in &self.headers {
            metadata.insert(*name, value.clone());
        }
    }
}

/// The services, as one request's handler calls them (an extractor).
#[derive(Debug, Clone)]
pub struct Services {
    backends: Backends,
    context: CallContext,
}

impl<S> FromRequestParts<S> for Services
where
    Backends: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            backends: Backends::from_ref(state),
            context: CallContext::of(parts),
        })
    }
}

impl Services {
    /// Calls `rpc` with `message`. A failure is the service's status mapped
    /// to an answer; `subject` words a NOT_FOUND ("Product with id ... not
    /// found").
    pub async fn call<Req, Resp>(
        &self,
        rpc: Rpc<Req, Resp>,
        message: Req,
        subject: Subject,
    ) -> Result<Resp, ApiError> {
        let request = self.backends.request(message, &self.context);
        self.backends
            .send(rpc, request)
            .await
            .map_err(|status| ApiError::from_grpc(status, subject))
    }

    /// As [`Self::call`], failing with the service's status itself, for a
    /// handler that acts on a refusal's details before it becomes an answer
    /// (it then maps the status with `ApiError::from_grpc`, the one mapping).
    pub async fn try_call<Req, Resp>(
        &self,
        rpc: Rpc<Req, Resp>,
        message: Req,
    ) -> Result<Resp, tonic::Status> {
        let request = self.backends.request(message, &self.context);
        self.backends.send(rpc, request).await
    }
}
