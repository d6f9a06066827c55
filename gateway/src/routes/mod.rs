//! Every route of the API, registered once, with who may call it: the
//! router, the OpenAPI document and the access rules all come from [`api`].
//! One module per resource holds the handlers, each annotated with its
//! OpenAPI operation.

pub mod meta;
pub mod orders;
pub mod problems;
pub mod products;
pub mod webhook;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::{router::UtoipaMethodRouterExt, routes};

use crate::{
    http::{openapi, registry::Registry},
    security::api_keys::Right,
};

/// The API: each path's handlers, with their access. Reads are public;
/// product writes need the `products` right, order status changes the
/// `orders` right.
pub fn api(webhook_body_limit: usize) -> Registry {
    Registry::default()
        .public(routes!(products::list_products))
        .requires(Right::Products, routes!(products::create_product))
        .public(routes!(products::get_product))
        .requires(
            Right::Products,
            routes!(products::update_product, products::delete_product),
        )
        .public(routes!(orders::list_orders))
        // The contract lets anyone order; stock is never oversold whoever does.
        .public(routes!(orders::create_order))
        .public(routes!(orders::get_order))
        .requires(Right::Orders, routes!(orders::update_order_status))
        // Authenticated by its own signature (`security::webhook`); its own
        // body limit wins over the router-wide one.
        .public(routes!(webhook::payment_webhook).layer(DefaultBodyLimit::max(webhook_body_limit)))
        .public(routes!(meta::health))
        .public(routes!(meta::ready))
        .public(routes!(meta::info))
        .public(routes!(meta::redoc))
        .public(routes!(openapi::openapi_json))
        // Where each error's `type` points: readable by whoever got one.
        .public(routes!(problems::list_problems))
        .public(routes!(problems::get_problem_type))
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;
    use crate::security::access::Access;

    #[test]
    fn only_writes_of_products_and_order_status_need_a_right() {
        let (_, _, rules) = api(1024).split();
        let cases = [
            ("POST", "/api/products", Access::Requires(Right::Products)),
            (
                "PUT",
                "/api/products/{id}",
                Access::Requires(Right::Products),
            ),
            (
                "DELETE",
                "/api/products/{id}",
                Access::Requires(Right::Products),
            ),
            (
                "PUT",
                "/api/orders/{id}/status",
                Access::Requires(Right::Orders),
            ),
            ("GET", "/api/products", Access::Public),
            ("GET", "/api/products/{id}", Access::Public),
            ("GET", "/api/orders", Access::Public),
            ("POST", "/api/orders", Access::Public),
            ("GET", "/api/orders/{id}", Access::Public),
            ("POST", "/api/payment-webhook", Access::Public),
            ("GET", "/health", Access::Public),
            ("GET", "/problems", Access::Public),
            ("GET", "/problems/{slug}", Access::Public),
            ("DELETE", "/api/orders/{id}", Access::Closed),
            ("POST", "/api/refunds", Access::Closed),
        ];
        for (method, route, expected) in cases {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(rules.access(&method, route), expected, "{method} {route}");
        }
    }

    /// Every registered operation has its rule, and the document declares
    /// a key exactly where the rule requires one.
    #[test]
    fn the_document_and_the_access_rules_agree() {
        let (_, document, rules) = api(1024).split();
        let mut registered = 0;
        for (path, mut item) in document.paths.paths {
            for (method, operation) in openapi::operations_mut(&mut item) {
                registered += 1;
                let declared = operation
                    .security
                    .as_ref()
                    .and_then(|security| serde_json::to_value(security).ok())
                    .map(|security| security[0][openapi::API_KEY_SCHEME][0].clone());
                let expected = match rules.access(&method, &path) {
                    Access::Requires(right) => Some(serde_json::json!(right.as_str())),
                    Access::Public => None,
                    Access::Closed => panic!("{method} {path} has no rule"),
                };
                assert_eq!(declared, expected, "{method} {path}");
            }
        }
        assert_eq!(registered, rules.iter().count());
    }
}
