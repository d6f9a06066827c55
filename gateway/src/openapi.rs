//! The OpenAPI document, generated from the handlers' own annotations and
//! types, and the docs pages: `/openapi.json`, `/docs` (Swagger UI, served
//! from the binary, works offline).

use axum::{Json, Router, routing::get};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        Components, Content, Ref, RefOr,
        header::HeaderBuilder,
        path::{HttpMethod, Operation, OperationBuilder, PathItem},
        response::{Response, ResponseBuilder},
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    auth,
    error::{FieldError, PROBLEM_JSON, Problem},
    models,
    routes::{meta, orders, products, webhook},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "E-commerce API",
        description = "Products, orders and payment webhooks.\n\n\
            **Errors** are RFC 9457 problem details (`application/problem+json`: `type`, `title`, `status`, \
            `detail`); 422 adds `errors: [{field, message}]` naming every field that failed.\n\n\
            **Request bodies** are JSON objects. Unknown fields are ignored (as in the original service). A key \
            given twice is refused (422; 400 on the webhook) rather than silently keeping one of the values. \
            Integers out of range are refused (422). Money is accepted as a JSON number or a decimal string and \
            read exactly (never through a binary float); responses write it as a string with two decimals. \
            A request with a `Content-Type` other than JSON is refused (415); with none, the body is read as JSON. \
            Bodies over 64 KiB are refused (413); when the gateway is already reading as many bodies as \
            its budget allows, 503 with `Retry-After`.\n\n\
            **Query strings**: unknown parameters are ignored; a known parameter given twice is refused (422).\n\n\
            **Request ids**: `x-request-id` is taken from the request (or generated), returned on the response, \
            and passed on to the services.\n\n\
            **Backends**: a service that is down answers 503; one that misses its deadline, 504.\n\n\
            **Load**: past its concurrency limit the gateway answers 503 with `Retry-After` at once rather \
            than queueing.\n\n\
            **Access control**: when the gateway is configured with API keys (`API_KEYS`), product writes \
            need a key with the `products` right and order status changes one with the `orders` right, sent \
            as `Authorization: Bearer <key>` (401 without a valid key, 403 for a key lacking the right). \
            Reads, order creation and the payment webhook (signed) are open. Without `API_KEYS` every \
            operation is open.",
    ),
    paths(
        products::create_product,
        products::list_products,
        products::get_product,
        products::update_product,
        products::delete_product,
        orders::create_order,
        orders::list_orders,
        orders::get_order,
        orders::update_order_status,
        webhook::payment_webhook,
        meta::health,
        meta::ready,
        meta::info,
        meta::redoc,
        meta::metrics,
        openapi_json,
    ),
    components(schemas(
        Problem,
        FieldError,
        models::MoneyInput,
        models::MoneyOutput,
        models::ProductCreate,
        models::ProductUpdate,
        models::Product,
        models::ProductPage,
        models::OrderCreate,
        models::OrderLine,
        models::OrderStatusUpdate,
        models::Order,
        models::OrderItem,
        models::OrderPage,
        models::OrderStatus,
        models::PaymentStatus,
        models::PaymentWebhook,
        models::PaymentResult,
        models::WebhookAck,
        models::Health,
        models::Readiness,
        models::ServiceInfo,
    )),
    modifiers(&SharedResponses),
    tags(
        (name = "products", description = "The catalog: products and their stock"),
        (name = "orders", description = "Orders, which take stock all or nothing"),
        (name = "payments", description = "Signed payment results from the payment processor"),
        (name = "service", description = "Health, readiness, info and docs"),
    )
)]
pub struct ApiDoc;

/// Responses every API operation can give, added once here rather than
/// repeated on each handler: 500, 503 and 504 on everything that calls a
/// service; 413 and 415 on everything with a JSON body; the API-key security
/// requirement, 401 and 403 on the operations [`auth::required_right`] protects.
struct SharedResponses;

/// The security scheme's name in the document.
pub const API_KEY_SCHEME: &str = "api_key";

const SHARED: [(&str, &str); 5] = [
    ("413", "Body over the size limit"),
    ("415", "Content-Type is not JSON"),
    (
        "500",
        "Unexpected failure; the cause is logged, never returned",
    ),
    ("503", "A backend service is unavailable"),
    ("504", "A backend service did not answer in time"),
];

fn challenge_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

/// 401 / 403 of an operation that needs an API key.
fn access_responses() -> [(&'static str, Response); 2] {
    let unauthorized = ResponseBuilder::new()
        .description(
            "No API key (`Missing API key`) or not a valid one (`Invalid API key`); only when the \
             gateway runs with API_KEYS",
        )
        .header(
            "WWW-Authenticate",
            challenge_header(
                "`Bearer realm=\"api\"`, with `error=\"invalid_token\"` for a wrong key",
            ),
        )
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name(Problem::name()))),
        )
        .build();
    let forbidden = ResponseBuilder::new()
        .description("The API key does not have the right this operation needs")
        .header(
            "WWW-Authenticate",
            challenge_header(
                "`Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"<right>\"`",
            ),
        )
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name(Problem::name()))),
        )
        .build();
    [("401", unauthorized), ("403", forbidden)]
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name(Problem::name()))),
        )
        .build()
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // `/docs` is served by utoipa-swagger-ui, not by a handler of ours.
        let docs = OperationBuilder::new()
            .tag("service")
            .summary(Some("Swagger UI, served from the binary (works offline)"))
            .operation_id(Some("swagger_ui"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The Swagger UI page")
                    .content(
                        "text/html",
                        Content::new(None::<RefOr<utoipa::openapi::Schema>>),
                    )
                    .build(),
            )
            .build();
        openapi
            .paths
            .paths
            .insert("/docs".to_owned(), PathItem::new(HttpMethod::Get, docs));
        let components = openapi.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            API_KEY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from the gateway's API_KEYS setting, with the right the operation \
                         lists (`products` or `orders`). Required only when API_KEYS is set.",
                    ))
                    .build(),
            ),
        );
        for (code, response) in access_responses() {
            components
                .responses
                .insert(format!("ApiKey{code}"), RefOr::T(response));
        }
        for (code, description) in SHARED {
            components.responses.insert(
                format!("Error{code}"),
                RefOr::T(problem_response(description)),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let is_webhook = path == "/api/payment-webhook";
            let operations: [(axum::http::Method, &mut Option<Operation>); 4] = [
                (axum::http::Method::GET, &mut item.get),
                (axum::http::Method::POST, &mut item.post),
                (axum::http::Method::PUT, &mut item.put),
                (axum::http::Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                if let Some(right) = auth::required_right(&method, path) {
                    operation
                        .security
                        .get_or_insert_with(Vec::new)
                        .push(SecurityRequirement::new(API_KEY_SCHEME, [right.as_str()]));
                    for code in ["401", "403"] {
                        operation.responses.responses.insert(
                            code.to_owned(),
                            RefOr::Ref(Ref::from_response_name(format!("ApiKey{code}"))),
                        );
                    }
                }
                let has_body = operation.request_body.is_some();
                for (code, _) in SHARED {
                    let applies = match code {
                        "413" => has_body,
                        // The webhook trusts its signature, not its Content-Type.
                        "415" => has_body && !is_webhook,
                        _ => true,
                    };
                    if applies {
                        operation
                            .responses
                            .responses
                            .entry(code.to_owned())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::from_response_name(format!("Error{code}")))
                            });
                    }
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// `/openapi.json` and the Swagger UI at `/docs`, whose files are compiled
/// into the binary (utoipa-swagger-ui's `vendored` feature).
pub fn docs_router() -> Router {
    let config = utoipa_swagger_ui::Config::from("/openapi.json")
        // The default sends the document to an online validator: keep it offline.
        .validator_url("none")
        .try_it_out_enabled(true);
    let swagger: Router = SwaggerUi::new("/docs").config(config).into();
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(swagger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_operation_lists_its_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for expected in [
            "/api/products",
            "/api/products/{id}",
            "/api/orders",
            "/api/orders/{id}",
            "/api/orders/{id}/status",
            "/api/payment-webhook",
            "/health",
            "/ready",
            "/",
            "/redoc",
            "/openapi.json",
            "/docs",
            "/metrics",
        ] {
            assert!(paths.contains_key(expected), "{expected} missing");
        }
        for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/api/")) {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                for code in ["500", "503", "504"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
                assert!(
                    responses.keys().any(|c| c.starts_with('4')),
                    "{method} {path} lists no 4xx"
                );
            }
        }
    }

    #[test]
    fn exactly_the_protected_operations_require_an_api_key() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert_eq!(
            doc["components"]["securitySchemes"][API_KEY_SCHEME]["scheme"],
            "bearer"
        );
        let mut protected = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if let Some(security) = operation.get("security") {
                    let right = &security[0][API_KEY_SCHEME][0];
                    protected.push(format!("{method} {path} {}", right.as_str().unwrap()));
                    let responses = operation["responses"].as_object().unwrap();
                    assert!(responses.contains_key("401") && responses.contains_key("403"));
                }
            }
        }
        protected.sort();
        assert_eq!(
            protected,
            [
                "delete /api/products/{id} products",
                "post /api/products products",
                "put /api/orders/{id}/status orders",
                "put /api/products/{id} products",
            ]
        );
    }

    /// Every documented operation that changes something has an access rule
    /// in the one table, so none is closed to everyone by an oversight.
    #[test]
    fn every_documented_write_has_an_access_rule() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method =
                    axum::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                assert_ne!(
                    auth::access(&method, path),
                    auth::Access::Closed,
                    "{method} {path} has no rule in auth::OPERATIONS"
                );
            }
        }
    }

    #[test]
    fn money_is_never_a_plain_float_in_the_schema() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let product = &doc["components"]["schemas"]["Product"]["properties"]["price"];
        assert_eq!(product["$ref"], "#/components/schemas/Money");
    }
}
