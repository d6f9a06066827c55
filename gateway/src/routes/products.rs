//! `/api/products`: the catalog's products over REST.
//!
//! One product's answers (GET, PUT, POST's 201) carry its version as a strong
//! `ETag` (`"<version>"`, see [`crate::http::preconditions`]). `PUT` and
//! `DELETE` honour `If-Match`: the listed version travels to the catalog as
//! `expected_version`, checked there under the row lock in the writing
//! transaction, so a stale tag is refused (412, `VERSION_MISMATCH`) and
//! changes nothing. `GET` honours `If-None-Match` (304 with the ETag and no
//! body), from the product cache too, which holds each body's version.
//! Without these headers the answers are the same as without ETags, but for
//! the header itself.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use proto::{
    catalog::v1 as pb,
    errors::{self, meta, reason},
};
use uuid::Uuid;

use crate::{
    http::{
        AppState,
        error::ApiError,
        extract::{PathId, ValidJson, ValidQuery},
        preconditions::{IfMatch, IfNoneMatch, etag},
    },
    input::json::Patch,
    models::{Product, ProductCreate, ProductListQuery, ProductPage, ProductUpdate},
    upstream::{Rpc, Services, Subject, product_cache::Cached, rpc},
};

/// The catalog's product with its ETag, from a wire product.
fn product_of(product: pb::Product) -> Result<(HeaderValue, Product), ApiError> {
    let tag = etag(product.version);
    Ok((tag, Product::try_from(product)?))
}

fn wire_money(
    amount: rust_decimal::Decimal,
    state: &AppState,
) -> Result<proto::common::v1::Money, ApiError> {
    // Validated amounts are at most 99999999.99, which always fits.
    proto::money::from_decimal(amount, &state.currency)
        .map_err(|error| ApiError::Internal(format!("price does not fit the wire: {error}")))
}

/// Create a product.
#[utoipa::path(
    post, path = "/api/products", tag = "products",
    request_body = ProductCreate,
    responses(
        (status = 201, description = "The product as stored", body = Product,
            headers(("ETag" = String, description = "The product's version, a strong entity tag (`\"3\"`): it changes with every change of the product, stock included"))),
        (status = 422, description = "The body does not fit the schema; `errors` names each field"),
    )
)]
pub async fn create_product(
    State(state): State<AppState>,
    services: Services,
    ValidJson(body): ValidJson<ProductCreate>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, HeaderValue); 1],
        Json<Product>,
    ),
    ApiError,
> {
    let request = pb::CreateProductRequest {
        name: body.name,
        description: body.description,
        price: Some(wire_money(body.price, &state)?),
        quantity: body.quantity,
    };
    let product = services
        .call(rpc::CREATE_PRODUCT, request, Subject::None)
        .await?;
    let (tag, product) = product_of(product)?;
    Ok((StatusCode::CREATED, [(header::ETAG, tag)], Json(product)))
}

/// List products, newest first.
#[utoipa::path(
    get, path = "/api/products", tag = "products",
    params(ProductListQuery),
    responses(
        (status = 200, description = "One page; a page past the end is empty and still carries the total. `total` is exact up to 10,100 matching products, the database's estimate past that (never below 10,101)", body = ProductPage),
        (status = 422, description = "page < 1, page_size outside 1..100, in_stock not a boolean, or a page starting more than 10,000 rows in (`MAX_LIST_OFFSET`; the message names the last page allowed: narrow the filter)"),
    )
)]
pub async fn list_products(
    services: Services,
    ValidQuery(query): ValidQuery<ProductListQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let request = pb::ListProductsRequest {
        page: query.page,
        page_size: query.page_size,
        in_stock: query.in_stock,
    };
    let response = services
        .call(rpc::LIST_PRODUCTS, request, Subject::None)
        .await?;
    Ok(Json(ProductPage::from_wire(
        response.products,
        response.total,
        &query,
    )?))
}

/// Get one product.
#[utoipa::path(
    get, path = "/api/products/{id}", tag = "products",
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("If-None-Match" = Option<String>, Header, description = "Answer 304 (no body) if the \
            product's current ETag is one of these (comma-separated entity tags, weak comparison: \
            `W/\"3\"` matches `\"3\"`) or, with `*`, if the product exists. Malformed: 400"),
    ),
    responses(
        (status = 200, description = "The product", body = Product,
            headers(("ETag" = String, description = "The product's version, a strong entity tag (`\"3\"`): it changes with every change of the product, stock included"))),
        (status = 304, description = "Not Modified: `If-None-Match` matched the product's ETag. \
            No body; the ETag header is sent",
            headers(("ETag" = String, description = "The product's version, a strong entity tag (`\"3\"`): it changes with every change of the product, stock included"))),
        (status = 400, description = "A malformed `If-None-Match` header"),
        (status = 404, description = "`Product with id {id} not found`"),
        (status = 422, description = "The id is not a UUID"),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let if_none_match = IfNoneMatch::from_headers(&headers)?;
    let product = match state.products.get(&id) {
        Some(cached) => cached,
        None => {
            let ticket = state.products.ticket(id);
            let request = pb::GetProductRequest { id: id.to_string() };
            let product = services
                .call(rpc::GET_PRODUCT, request, Subject::Product(id))
                .await?;
            let version = product.version;
            let body = Bytes::from(serde_json::to_vec(&Product::try_from(product)?).map_err(
                |error| ApiError::Internal(format!("product not serialisable: {error}")),
            )?);
            let fetched = Cached::new(body, version);
            state.products.fill(ticket, fetched.clone());
            fetched
        }
    };
    let tag = etag(product.version);
    if if_none_match.is_some_and(|condition| condition.matches(product.version)) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok(json_body(product.body, tag))
}

/// A JSON body already serialised (what `Json` would have sent), with its
/// ETag.
fn json_body(body: Bytes, tag: HeaderValue) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, tag),
        ],
        body,
    )
        .into_response()
}

/// Sends a product write (`request` builds it with the version it is
/// conditioned on) under the request's `If-Match`, if any.
///
/// No header, or `*`: one unconditional call. Entity tags: one call
/// conditioned on the first listed version; the catalog checks it under the
/// row lock as it writes, so nothing can change in between. When several
/// versions are listed and the refusal says the product is at another listed
/// one, the write is sent again conditioned on that one (each attempt just as
/// atomic; at most one per listed version), so a list matches as RFC 9110
/// says without a read-then-write race. Every other failure is the catalog's
/// status, mapped as usual (a stale tag: 412).
async fn write_if_match<Req, Resp>(
    services: &Services,
    rpc: Rpc<Req, Resp>,
    id: Uuid,
    if_match: Option<IfMatch>,
    request: impl Fn(Option<i64>) -> Req,
) -> Result<Resp, ApiError> {
    let Some(candidates) = if_match.as_ref().and_then(IfMatch::candidates) else {
        return services
            .call(rpc, request(None), Subject::Product(id))
            .await;
    };
    let mut tried = Vec::with_capacity(candidates.len());
    let mut expected = candidates[0];
    loop {
        tried.push(expected);
        let status = match services.try_call(rpc, request(Some(expected))).await {
            Ok(done) => return Ok(done),
            Err(status) => status,
        };
        match current_version(&status) {
            Some(current) if candidates.contains(&current) && !tried.contains(&current) => {
                expected = current;
            }
            _ => return Err(ApiError::from_grpc(status, Subject::Product(id))),
        }
    }
}

/// The product's version a VERSION_MISMATCH refusal reports.
fn current_version(status: &tonic::Status) -> Option<i64> {
    let (refusal, metadata) = errors::error_info(status)?;
    if refusal != reason::VERSION_MISMATCH {
        return None;
    }
    metadata.get(meta::CURRENT_VERSION)?.parse().ok()
}

/// Update a product partially.
#[utoipa::path(
    put, path = "/api/products/{id}", tag = "products",
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("If-Match" = Option<String>, Header, description = "Write only if the product's current ETag is one of these (comma-separated entity tags; strong comparison, so weak `W/` tags never match) or, with `*`, if it exists. Otherwise 412 and nothing changes. Malformed: 400"),
    ),
    request_body = ProductUpdate,
    responses(
        (status = 200, description = "The product after the update", body = Product,
            headers(("ETag" = String, description = "The product's version, a strong entity tag (`\"3\"`): it changes with every change of the product, stock included"))),
        (status = 400, description = "A malformed `If-Match` header"),
        (status = 404, description = "`Product with id {id} not found`"),
        (status = 412, description = "Precondition Failed: `If-Match` names no current ETag of \
            the product (it changed since it was read), code `VERSION_MISMATCH`; nothing changed"),
        (status = 422, description = "A field does not fit (also `null` for name, price or quantity), or the id is not a UUID"),
    )
)]
pub async fn update_product(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
    headers: HeaderMap,
    ValidJson(body): ValidJson<ProductUpdate>,
) -> Result<([(header::HeaderName, HeaderValue); 1], Json<Product>), ApiError> {
    let if_match = IfMatch::from_headers(&headers)?;
    let (description, clear_description) = match body.description {
        Patch::Unchanged => (None, false),
        Patch::Clear => (None, true),
        Patch::Set(text) => (Some(text), false),
    };
    let request = pb::UpdateProductRequest {
        id: id.to_string(),
        name: body.name,
        description,
        price: body
            .price
            .map(|price| wire_money(price, &state))
            .transpose()?,
        quantity: body.quantity,
        clear_description,
        expected_version: None,
    };
    let product = write_if_match(
        &services,
        rpc::UPDATE_PRODUCT,
        id,
        if_match,
        |expected_version| pb::UpdateProductRequest {
            expected_version,
            ..request.clone()
        },
    )
    .await;
    // The change feed will say so too; this makes it so before the answer.
    state.products.invalidate([id]);
    let (tag, product) = product_of(product?)?;
    Ok(([(header::ETAG, tag)], Json(product)))
}

/// Delete a product.
#[utoipa::path(
    delete, path = "/api/products/{id}", tag = "products",
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("If-Match" = Option<String>, Header, description = "Write only if the product's current ETag is one of these (comma-separated entity tags; strong comparison, so weak `W/` tags never match) or, with `*`, if it exists. Otherwise 412 and nothing changes. Malformed: 400"),
    ),
    responses(
        (status = 204, description = "Deleted; empty body"),
        (status = 400, description = "`Cannot delete product that is referenced in existing orders`, or a malformed `If-Match` header"),
        (status = 404, description = "`Product with id {id} not found`"),
        (status = 412, description = "Precondition Failed: `If-Match` names no current ETag of \
            the product, code `VERSION_MISMATCH`; nothing was deleted"),
        (status = 422, description = "The id is not a UUID"),
    )
)]
pub async fn delete_product(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let if_match = IfMatch::from_headers(&headers)?;
    let deleted = write_if_match(
        &services,
        rpc::DELETE_PRODUCT,
        id,
        if_match,
        |expected_version| pb::DeleteProductRequest {
            id: id.to_string(),
            expected_version,
        },
    )
    .await;
    state.products.invalidate([id]);
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}
