//! Registering a route once: each route is added with who may call it, and
//! that one registration gives the router its handler, the OpenAPI document
//! its operation (with the security requirement of a protected one), and the
//! access guard its rule. None of the three can list a route the others miss.

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use super::{
    AppState,
    openapi::{self, ApiDoc},
};
use crate::security::{
    access::{Access, AccessRules},
    api_keys::Right,
};

/// The API's routes as they are registered.
pub struct Registry {
    router: OpenApiRouter<AppState>,
    rules: AccessRules,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            router: OpenApiRouter::with_openapi(ApiDoc::openapi()),
            rules: AccessRules::default(),
        }
    }
}

impl Registry {
    /// Operations anyone may call (`routes!` of handlers sharing one path).
    pub fn public(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.register(Access::Public, routes)
    }

    /// Operations that need an API key holding `right`, when API keys are
    /// configured.
    pub fn requires(self, right: Right, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.register(Access::Requires(right), routes)
    }

    fn register(mut self, access: Access, routes: UtoipaMethodRouter<AppState>) -> Self {
        let (schemas, mut paths, method_router) = routes;
        for (path, item) in paths.paths.iter_mut() {
            for (method, operation) in openapi::operations_mut(item) {
                self.rules.insert(method, path, access);
                if let Access::Requires(right) = access {
                    openapi::require_api_key(operation, right);
                }
            }
        }
        self.router = self.router.routes((schemas, paths, method_router));
        self
    }

    /// The router (its state still to be given), the document of its
    /// operations (before [`openapi::finish`]) and the access rules.
    pub fn split(self) -> (Router<AppState>, utoipa::openapi::OpenApi, AccessRules) {
        let (router, openapi) = self.router.split_for_parts();
        (router, openapi, self.rules)
    }
}
