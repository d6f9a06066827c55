//! Products on the wire.

use chrono::{DateTime, Utc};
use proto::catalog::v1 as pb;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::common::{MoneyInput, MoneyOutput, money_text, page};
use crate::{
    http::error::ApiError,
    input::{
        FromBody,
        json::{self, Fields, Patch, Presence, Violations},
        query::{FromQuery, QueryPairs, read_paging},
    },
};

/// Longest product name, in characters.
pub const NAME_MAX_CHARS: usize = 255;
const QUANTITY_MAX: i64 = i32::MAX as i64;

/// `POST /api/products`. Unknown fields are ignored; a key given twice is
/// refused (422).
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"name": "Laptop", "description": "14-inch, 16 GB", "price": "999.99", "quantity": 50}))]
pub struct ProductCreate {
    /// 1 to 255 characters; no NUL characters.
    #[schema(min_length = 1, max_length = 255, example = "Laptop")]
    pub name: String,
    /// Optional; null or absent means no description.
    pub description: Option<String>,
    #[schema(value_type = MoneyInput)]
    pub price: Decimal,
    /// Units in stock, 0 to 2147483647.
    #[schema(minimum = 0, maximum = 2147483647, example = 50)]
    pub quantity: i32,
}

impl FromBody for ProductCreate {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self> {
        let product = read_product(fields, errors, Presence::Required)?;
        Some(Self {
            name: product.name?,
            description: product.description.into_option(),
            price: product.price?,
            quantity: product.quantity?,
        })
    }
}

/// `PUT /api/products/{id}`: a partial update. Only the fields given change;
/// `{}` changes nothing. `description: null` clears the description; `null`
/// for name, price or quantity is refused (422). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"price": "899.00", "quantity": 40}))]
pub struct ProductUpdate {
    /// 1 to 255 characters; not null.
    #[schema(value_type = String, required = false, min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// A new description, or null to remove it.
    #[schema(value_type = Option<String>, required = false)]
    pub description: Patch<String>,
    /// Not null.
    #[schema(value_type = MoneyInput, required = false)]
    pub price: Option<Decimal>,
    /// 0 to 2147483647; not null.
    #[schema(value_type = i32, required = false, minimum = 0, maximum = 2147483647)]
    pub quantity: Option<i32>,
}

impl FromBody for ProductUpdate {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self> {
        read_product(fields, errors, Presence::Optional)
    }
}

/// The fields of both product bodies, read in order (so violations are
/// listed in it): for a create every one but `description` is required, for
/// an update none is; `null` is refused for all but `description`, which it
/// clears.
fn read_product(
    fields: &Fields<'_>,
    errors: &mut Violations,
    presence: Presence,
) -> Option<ProductUpdate> {
    let name_text = json::string_of_length(1, NAME_MAX_CHARS);
    let name = fields.value(errors, "name", presence, &name_text);
    let description = fields.patch(errors, "description", &json::string);
    let price = fields.value(errors, "price", presence, &json::price);
    let quantity = fields.value(
        errors,
        "quantity",
        presence,
        &json::integer(0, QUANTITY_MAX),
    );
    Some(ProductUpdate {
        name: name?,
        description: description?,
        price: price?,
        quantity: match quantity? {
            Some(quantity) => Some(i32::try_from(quantity).ok()?),
            None => None,
        },
    })
}

/// Query of `GET /api/products`. Unknown parameters are ignored; a known one
/// given twice is refused (422).
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListQuery {
    /// 1-based page number. A page may start at most 10,000 rows in by
    /// default (`MAX_LIST_OFFSET` of the service): (page - 1) x page_size <=
    /// 10000, so page 101 at page_size 100, page 501 at 20. A deeper page is
    /// refused (422 on `page`, naming the last page allowed): narrow the
    /// filter instead.
    #[param(required = false, minimum = 1, default = 1)]
    pub page: u32,
    /// Products per page.
    #[param(required = false, minimum = 1, maximum = 100, default = 20)]
    pub page_size: u32,
    /// `true`: only products with quantity > 0; `false`: only quantity = 0;
    /// absent: all. Also accepts 1/0, yes/no, on/off.
    pub in_stock: Option<bool>,
}

impl FromQuery for ProductListQuery {
    fn read(query: &QueryPairs, errors: &mut Violations) -> Option<Self> {
        let paging = read_paging(query, errors);
        let in_stock = query.boolean(errors, "in_stock");
        let (page, page_size) = paging?;
        Some(Self {
            page,
            page_size,
            in_stock: in_stock?,
        })
    }
}

/// A product.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    #[schema(example = "Laptop")]
    pub name: String,
    /// Null when the product has none.
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(value_type = MoneyOutput)]
    pub price: String,
    #[schema(example = 50)]
    pub quantity: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::Product> for Product {
    type Error = ApiError;

    fn try_from(product: pb::Product) -> Result<Self, ApiError> {
        let bad = |what: &str| ApiError::Internal(format!("catalog sent a product with {what}"));
        let price = product.price.as_ref().ok_or_else(|| bad("no price"))?;
        let price = proto::money::to_decimal(price).map_err(|_| bad("a malformed price"))?;
        Ok(Self {
            id: Uuid::parse_str(&product.id).map_err(|_| bad("a malformed id"))?,
            name: product.name,
            description: product.description,
            price: money_text(price),
            quantity: product.quantity,
            created_at: timestamp(product.created_at.as_ref())
                .ok_or_else(|| bad("a malformed created_at"))?,
            updated_at: timestamp(product.updated_at.as_ref())
                .ok_or_else(|| bad("a malformed updated_at"))?,
        })
    }
}

page! {
    /// A page of products, newest first.
    ProductPage of Product for ProductListQuery,
    /// Products matching the filter, over all pages: exact up to 10,100
    /// (`MAX_LIST_OFFSET` + 100, every row a page can reach); past that, the
    /// database's estimate (from its table statistics, typically within a
    /// few percent), never below 10,101. Counting a large table exactly on
    /// every request would cost more than the page itself.
}

/// A wire timestamp as UTC; `None` when absent or out of range.
pub(crate) fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(proto::time::from_timestamp)
}
