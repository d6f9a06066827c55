//! `/api/products`: the catalog's products over REST.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use proto::catalog::v1 as pb;

use crate::{
    http::{
        AppState,
        error::ApiError,
        extract::{PathId, ValidJson, ValidQuery},
    },
    input::json::Patch,
    models::{Product, ProductCreate, ProductListQuery, ProductPage, ProductUpdate},
    upstream::{Services, Subject, rpc},
};

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
        (status = 201, description = "The product as stored", body = Product),
        (status = 422, description = "The body does not fit the schema; `errors` names each field"),
    )
)]
pub async fn create_product(
    State(state): State<AppState>,
    services: Services,
    ValidJson(body): ValidJson<ProductCreate>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    let request = pb::CreateProductRequest {
        name: body.name,
        description: body.description,
        price: Some(wire_money(body.price, &state)?),
        quantity: body.quantity,
    };
    let product = services
        .call(rpc::CREATE_PRODUCT, request, Subject::None)
        .await?;
    Ok((StatusCode::CREATED, Json(Product::try_from(product)?)))
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
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, description = "`Product with id {id} not found`"),
        (status = 422, description = "The id is not a UUID"),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    if let Some(body) = state.products.get(&id) {
        return Ok(json_body(body));
    }
    let ticket = state.products.ticket(id);
    let request = pb::GetProductRequest { id: id.to_string() };
    let product = services
        .call(rpc::GET_PRODUCT, request, Subject::Product(id))
        .await?;
    let body = Bytes::from(
        serde_json::to_vec(&Product::try_from(product)?)
            .map_err(|error| ApiError::Internal(format!("product not serialisable: {error}")))?,
    );
    state.products.fill(ticket, body.clone());
    Ok(json_body(body))
}

/// A JSON body already serialised (what `Json` would have sent).
fn json_body(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Update a product partially.
#[utoipa::path(
    put, path = "/api/products/{id}", tag = "products",
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    request_body = ProductUpdate,
    responses(
        (status = 200, description = "The product after the update", body = Product),
        (status = 404, description = "`Product with id {id} not found`"),
        (status = 422, description = "A field does not fit (also `null` for name, price or quantity), or the id is not a UUID"),
    )
)]
pub async fn update_product(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
    ValidJson(body): ValidJson<ProductUpdate>,
) -> Result<Json<Product>, ApiError> {
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
    };
    let product = services
        .call(rpc::UPDATE_PRODUCT, request, Subject::Product(id))
        .await;
    // The change feed will say so too; this makes it so before the answer.
    state.products.invalidate([id]);
    let product = product?;
    Ok(Json(Product::try_from(product)?))
}

/// Delete a product.
#[utoipa::path(
    delete, path = "/api/products/{id}", tag = "products",
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    responses(
        (status = 204, description = "Deleted; empty body"),
        (status = 400, description = "`Cannot delete product that is referenced in existing orders`"),
        (status = 404, description = "`Product with id {id} not found`"),
        (status = 422, description = "The id is not a UUID"),
    )
)]
pub async fn delete_product(
    State(state): State<AppState>,
    services: Services,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let request = pb::DeleteProductRequest { id: id.to_string() };
    let deleted = services
        .call(rpc::DELETE_PRODUCT, request, Subject::Product(id))
        .await;
    state.products.invalidate([id]);
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}
