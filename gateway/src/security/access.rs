//! Who may call each operation, and the guard that enforces it.
//!
//! The rules are not written here: each route declares its [`Access`] where
//! it is registered (`routes::api`), and that one registration yields the
//! router, the OpenAPI document (whose `security` lists each operation's
//! right) and the [`AccessRules`] the guard reads. So the three cannot drift.
//!
//! Reads (GET, HEAD, OPTIONS) are open unless registered otherwise. A write
//! that reaches the guard without a rule (a route added around the
//! registration) is refused to everyone, even with writes open: a new write
//! route is closed until it declares who may call it.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::api_keys::Right;
use crate::{config::WriteAccess, http::error::ApiError};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (reads; order creation and the signed webhook, as the contract says).
    Public,
    /// A key holding this right (or anyone, when writes are open on purpose).
    Requires(Right),
    /// Nobody: a write with no rule.
    Closed,
}

/// The access of every registered operation, by method and route template
/// (as the router and the OpenAPI document spell it); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    rules: Arc<HashMap<(Method, String), Access>>,
}

impl AccessRules {
    /// Records who may call `method` on `route`.
    pub fn insert(&mut self, method: Method, route: &str, access: Access) {
        Arc::make_mut(&mut self.rules).insert((method, route.to_owned()), access);
    }

    /// Who may call `method` on the route template `route`: its rule, or for
    /// an operation without one, anyone for a read and nobody for a write.
    pub fn access(&self, method: &Method, route: &str) -> Access {
        // HEAD is answered by the GET handler, so it is the GET operation.
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let rule = self.rules.get(&(method.clone(), route.to_owned())).copied();
        match rule {
            Some(access) => access,
            None if matches!(*method, Method::GET | Method::OPTIONS) => Access::Public,
            None => Access::Closed,
        }
    }

    /// Every rule, for tests and the document.
    pub fn iter(&self) -> impl Iterator<Item = (&Method, &str, Access)> {
        self.rules
            .iter()
            .map(|((method, route), access)| (method, route.as_str(), *access))
    }
}

/// What the guard needs: the rules, and who holds which right.
#[derive(Debug, Clone)]
pub struct Guard {
    pub rules: AccessRules,
    pub writes: WriteAccess,
}

/// The access guard, a route layer on every API route: a public operation
/// passes; one that needs a right passes with a key holding it (or when
/// writes are open on purpose), and is otherwise answered 401 / 403 (problem
/// details, `WWW-Authenticate: Bearer`); a closed one never passes. Runs
/// before any extractor, so a refused request never has its body read.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>() else {
        // No route matched: the fallbacks answer 404 / 405.
        return next.run(request).await;
    };
    let right = match guard.rules.access(request.method(), route.as_str()) {
        Access::Public => return next.run(request).await,
        Access::Closed => {
            tracing::error!(
                method = %request.method(),
                route = route.as_str(),
                "a write route without an access rule: refused (register it in routes::api)"
            );
            return ApiError::Forbidden {
                detail: "This operation is not open to any API key".into(),
                right: "none",
            }
            .into_response();
        }
        Access::Requires(right) => right,
    };
    let keys = match &guard.writes {
        WriteAccess::Open => return next.run(request).await,
        WriteAccess::Keys(keys) => keys,
    };
    match keys.authorize(request.headers(), right) {
        Ok(name) => {
            tracing::Span::current().record("api_key", name);
            tracing::debug!(api_key = name, %right, "authorised");
            next.run(request).await
        }
        Err(error) => {
            tracing::warn!(reason = %error, %right, "request refused by access control");
            ApiError::from(error).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::StatusCode, routing::post};
    use tower::ServiceExt;

    use super::*;

    fn rules() -> AccessRules {
        let mut rules = AccessRules::default();
        rules.insert(Method::POST, "/api/orders", Access::Public);
        rules.insert(
            Method::DELETE,
            "/api/products/{id}",
            Access::Requires(Right::Products),
        );
        rules
    }

    #[test]
    fn reads_are_open_and_writes_without_a_rule_are_closed() {
        let rules = rules();
        assert_eq!(rules.access(&Method::GET, "/anything"), Access::Public);
        assert_eq!(rules.access(&Method::HEAD, "/anything"), Access::Public);
        assert_eq!(rules.access(&Method::POST, "/api/orders"), Access::Public);
        assert_eq!(
            rules.access(&Method::DELETE, "/api/products/{id}"),
            Access::Requires(Right::Products)
        );
        assert_eq!(rules.access(&Method::POST, "/api/refunds"), Access::Closed);
        assert_eq!(
            rules.access(&Method::PATCH, "/api/products/{id}"),
            Access::Closed
        );
    }

    #[test]
    fn head_is_held_to_the_rule_of_get() {
        let mut rules = AccessRules::default();
        rules.insert(Method::GET, "/secret", Access::Requires(Right::Orders));
        assert_eq!(
            rules.access(&Method::HEAD, "/secret"),
            Access::Requires(Right::Orders)
        );
    }

    /// A write route added without a rule is refused to everyone, even with
    /// writes open.
    #[tokio::test]
    async fn the_guard_refuses_an_unlisted_write_route_even_with_open_writes() {
        let guard_state = Guard {
            rules: rules(),
            writes: WriteAccess::Open,
        };
        let router = Router::new()
            .route("/api/refunds", post(|| async { "refunded" }))
            .route("/api/orders", post(|| async { "ordered" }))
            .route_layer(axum::middleware::from_fn_with_state(guard_state, guard));
        let call = |path: &'static str| {
            let router = router.clone();
            async move {
                router
                    .oneshot(axum::http::Request::post(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(call("/api/refunds").await, StatusCode::FORBIDDEN);
        assert_eq!(call("/api/orders").await, StatusCode::OK);
    }
}
