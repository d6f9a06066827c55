//! The OpenAPI document and the docs pages: `/openapi.json`, `/docs`
//! (Swagger UI, served from the binary, works offline).
//!
//! The document is generated from the handlers' own annotations and types,
//! collected where each route is registered ([`super::registry`]), which
//! also writes each protected operation's security requirement; [`finish`]
//! then adds what every operation shares (the 5xx answers, 413 / 415 on
//! bodies, 401 / 403 where a key is required) and the `/docs` page.

use axum::{
    Extension, Router,
    body::Bytes,
    http::{HeaderValue, Method, header},
    response::{IntoResponse, Response as HttpResponse},
};
use utoipa::{
    OpenApi, ToSchema,
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

use super::{
    error::{FieldError, PROBLEM_JSON, Problem, RETRY_AFTER_SECS},
    problems::{ProblemType, ProblemTypes},
};
use crate::{models, security::api_keys::Right};

/// What the document says besides its operations (which come from the
/// registration): the API's description, the shared schemas and the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "E-commerce API",
        description = "Products, orders and payment webhooks.\n\n\
            **Errors** are RFC 9457 problem details (`application/problem+json`: `type`, `title`, `status`, \
            `detail`, `code`); 422 adds `errors: [{field, message}]` naming every field that failed, and an \
            order naming missing products adds `product_ids`. `code` (e.g. `INSUFFICIENT_STOCK`) is stable: \
            match on it, not on `detail`, which is worded for people. `type` is `/problems/<code in kebab \
            case>`, relative to the gateway: `GET /problems` documents every type (HTML, or JSON with \
            `Accept: application/json`), `GET /problems/{slug}` one. Every 503 carries `Retry-After`.\n\n\
            **Request bodies** are JSON objects. Unknown fields are ignored. A key \
            given twice is refused (422; 400 on the webhook) rather than silently keeping one of the values. \
            Integers out of range are refused (422). Money is accepted as a JSON number or a decimal string and \
            read exactly (never through a binary float); responses write it as a string with two decimals. \
            A request with a `Content-Type` other than JSON is refused (415); with none, the body is read as JSON. \
            Bodies over 64 KiB are refused (413); when the gateway is already reading as many bodies as \
            its budget allows, 503 with `Retry-After`.\n\n\
            **Query strings**: unknown parameters are ignored; a known parameter given twice is refused (422).\n\n\
            **Request ids**: `x-request-id` is taken from the request (or generated), returned on the response, \
            and passed on to the services.\n\n\
            **Backends**: a service that is down answers 503 (`BACKEND_UNAVAILABLE`, with `Retry-After`); \
            one that misses its deadline, 504 (`BACKEND_TIMEOUT`).\n\n\
            **Load**: past its concurrency limit the gateway answers 503 (`OVERLOADED`) with `Retry-After` \
            at once rather than queueing.\n\n\
            **Access control**: when the gateway is configured with API keys (`API_KEYS`), product writes \
            need a key with the `products` right and order status changes one with the `orders` right, sent \
            as `Authorization: Bearer <key>` (401 without a valid key, 403 for a key lacking the right). \
            Reads, order creation and the payment webhook (signed) are open. Without `API_KEYS` every \
            operation is open.",
    ),
    components(schemas(
        Problem,
        FieldError,
        ProblemType,
        ProblemTypes,
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
        models::CancelReason,
        models::PaymentWebhook,
        models::PaymentResult,
        models::WebhookAck,
        models::Health,
        models::Readiness,
        models::BackendState,
        models::ServiceInfo,
    )),
    tags(
        (name = "products", description = "The catalog: products and their stock"),
        (name = "orders", description = "Orders, which take stock all or nothing"),
        (name = "payments", description = "Signed payment results from the payment processor"),
        (name = "service", description = "Health, readiness, info and docs"),
    )
)]
pub struct ApiDoc;

/// The security scheme's name in the document.
pub const API_KEY_SCHEME: &str = "api_key";

const SHARED: [(&str, &str); 5] = [
    ("413", "Body over the size limit (`PAYLOAD_TOO_LARGE`)"),
    ("415", "Content-Type is not JSON (`UNSUPPORTED_MEDIA_TYPE`)"),
    (
        "500",
        "Unexpected failure (`INTERNAL`); the cause is logged, never returned",
    ),
    (
        "503",
        "A backend service is unavailable (`BACKEND_UNAVAILABLE`), or the gateway is at its limit \
         (`OVERLOADED`); `Retry-After` says when to retry",
    ),
    (
        "504",
        "A backend service did not answer in time (`BACKEND_TIMEOUT`)",
    ),
];

fn challenge_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

/// `Retry-After` of every 503.
fn retry_after_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(format!(
            "Seconds to wait before retrying (`{RETRY_AFTER_SECS}`)"
        )))
        .build()
}

/// 401 / 403 of an operation that needs an API key.
fn access_responses() -> [(&'static str, Response); 2] {
    let challenged = |description: &str, challenge: &str| {
        problem_response(description)
            .header("WWW-Authenticate", challenge_header(challenge))
            .build()
    };
    let unauthorized = challenged(
        "No API key (`Missing API key`) or not a valid one (`Invalid API key`); only when the \
         gateway runs with API_KEYS",
        "`Bearer realm=\"api\"`, with `error=\"invalid_token\"` for a wrong key",
    );
    let forbidden = challenged(
        "The API key does not have the right this operation needs",
        "`Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"<right>\"`",
    );
    [("401", unauthorized), ("403", forbidden)]
}

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name(Problem::name())))
}

/// An error answer: problem details.
fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, problem_content())
}

/// Every operation of a path, with its method.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

/// Declares that `operation` needs an API key holding `right`.
pub fn require_api_key(operation: &mut Operation, right: Right) {
    operation
        .security
        .get_or_insert_with(Vec::new)
        .push(SecurityRequirement::new(API_KEY_SCHEME, [right.as_str()]));
}

/// The registered operations made the served document. What every operation
/// shares is said once here rather than on each handler: every error answer
/// is problem details (as the router makes sure at run time); 500, 503 and
/// 504 on every `/api/` operation; 413 and 415 on those with a JSON body;
/// 401 and 403 on those that need an API key. Also the security scheme and
/// the `/docs` page.
pub fn finish(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
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
        let mut response = problem_response(description);
        if code == "503" {
            response = response.header("Retry-After", retry_after_header());
        }
        components
            .responses
            .insert(format!("Error{code}"), RefOr::T(response.build()));
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        let is_api = path.starts_with("/api/");
        let is_webhook = path == "/api/payment-webhook";
        for (_, operation) in operations_mut(item) {
            let responses = &mut operation.responses.responses;
            for (code, response) in responses.iter_mut() {
                if let RefOr::T(response) = response
                    && (code.starts_with('4') || code.starts_with('5'))
                {
                    if response.content.is_empty() {
                        response
                            .content
                            .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem_content()));
                    }
                    // Every 503 says when to retry (`/ready`'s too).
                    if code == "503" {
                        response
                            .headers
                            .entry("Retry-After".to_owned())
                            .or_insert_with(|| RefOr::T(retry_after_header()));
                    }
                }
            }
            if operation.security.is_some() {
                for code in ["401", "403"] {
                    responses.insert(
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
                if is_api && applies {
                    responses.entry(code.to_owned()).or_insert_with(|| {
                        RefOr::Ref(Ref::from_response_name(format!("Error{code}")))
                    });
                }
            }
        }
    }
    openapi
}

/// The served document, serialised once; cheap to clone.
#[derive(Debug, Clone)]
pub struct Document(Bytes);

impl Document {
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        Self(Bytes::from(
            serde_json::to_vec(openapi).expect("the OpenAPI document serialises"),
        ))
    }
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn openapi_json(Extension(document): Extension<Document>) -> HttpResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0,
    )
        .into_response()
}

/// The Swagger UI at `/docs`, reading `/openapi.json`; its files are
/// compiled into the binary (utoipa-swagger-ui's `vendored` feature).
pub fn docs_router() -> Router {
    let config = utoipa_swagger_ui::Config::from("/openapi.json")
        // The default sends the document to an online validator: keep it offline.
        .validator_url("none")
        .try_it_out_enabled(true);
    SwaggerUi::new("/docs").config(config).into()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The document as served.
    fn document() -> Value {
        let (_, openapi, _) = crate::routes::api(64 * 1024).split();
        serde_json::to_value(finish(openapi)).unwrap()
    }

    #[test]
    fn every_api_operation_lists_its_errors() {
        let doc = document();
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
            "/problems",
            "/problems/{slug}",
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
        let doc = document();
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

    /// `code` lists every code of the table, `type` describes its URIs,
    /// and `product_ids` is documented.
    #[test]
    fn the_problem_schema_documents_codes_and_types() {
        let doc = document();
        let problem = &doc["components"]["schemas"]["Problem"];
        let properties = &problem["properties"];
        let codes: Vec<&str> = properties["code"]["enum"]
            .as_array()
            .expect("code is an enum")
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
        let table: Vec<&str> = crate::http::problems::codes().collect();
        assert_eq!(codes, table);
        assert_eq!(properties["type"]["format"], "uri-reference");
        let described = properties["type"]["description"].as_str().unwrap();
        for kind in crate::http::problems::Kind::all() {
            assert!(described.contains(&kind.type_uri()), "{}", kind.code());
        }
        assert_eq!(properties["product_ids"]["items"]["type"], "string");
        let required = problem["required"].as_array().unwrap();
        for member in ["type", "title", "status", "detail", "code"] {
            assert!(required.contains(&serde_json::json!(member)), "{member}");
        }
        // Every documented 503 names its Retry-After.
        let shared = &doc["components"]["responses"]["Error503"];
        assert!(shared["headers"]["Retry-After"].is_object());
        assert!(
            doc["paths"]["/ready"]["get"]["responses"]["503"]["headers"]["Retry-After"].is_object()
        );
    }

    #[test]
    fn money_is_never_a_plain_float_in_the_schema() {
        let doc = document();
        let product = &doc["components"]["schemas"]["Product"]["properties"]["price"];
        assert_eq!(product["$ref"], "#/components/schemas/Money");
    }
}
