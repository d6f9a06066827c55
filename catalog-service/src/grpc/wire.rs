//! Wire <-> domain: each request message as validated domain values (with
//! every violation at once, each naming its wire field), each domain result
//! as a wire message. Money travels in the one configured currency.

use std::str::FromStr;

use proto::{catalog::v1 as pb, common::v1::Money, paging::PageRequest};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    domain::{
        Refusal, Violation,
        product::{
            Description, NewProduct, Price, Product, ProductName, ProductPatch, Stock, StockFilter,
        },
        reservation::{self, ReservationRequest, ReservedLine},
    },
    error::CatalogError,
};

/// The id a request names in `field`, or the refusal naming that field.
pub fn id(field: &str, value: &str) -> Result<Uuid, CatalogError> {
    uuid(field, value).map_err(CatalogError::invalid)
}

fn uuid(field: &str, value: &str) -> Result<Uuid, Violation> {
    Uuid::from_str(value).map_err(|_| Violation::new(field, "must be a UUID"))
}

/// A ListProducts request: its page (at most `max_offset` deep) and filter.
pub fn list(
    request: &pb::ListProductsRequest,
    max_offset: u32,
) -> Result<(PageRequest, StockFilter), CatalogError> {
    let page = PageRequest::parse_within(request.page, request.page_size, max_offset)
        .map_err(|violations| Refusal::Invalid(violations.into_iter().map(Into::into).collect()))?;
    Ok((page, request.in_stock.into()))
}

/// A ReserveInventory request: at least one item, each naming a product by
/// UUID with a positive quantity.
pub fn reservation(
    request: &pb::ReserveInventoryRequest,
) -> Result<ReservationRequest, CatalogError> {
    let mut checks = Checks::default();
    let id = checks.take(uuid("reservation_id", &request.reservation_id));
    checks.take(reservation::some_lines("items", request.items.len()));
    let mut items = Vec::with_capacity(request.items.len());
    for (i, item) in request.items.iter().enumerate() {
        let product_id = checks.take(uuid(&format!("items[{i}].product_id"), &item.product_id));
        let quantity = checks.take(reservation::line_quantity(
            &format!("items[{i}].quantity"),
            item.quantity,
        ));
        items.extend(product_id.zip(quantity));
    }
    checks.finish()?;
    Ok(ReservationRequest::new(id.expect("checked"), items))
}

/// Wire mapping that depends on the configured currency.
#[derive(Clone)]
pub struct Wire {
    /// The one currency of every price (ISO 4217).
    currency: String,
}

impl Wire {
    pub fn new(currency: String) -> Self {
        Self { currency }
    }

    /// A CreateProduct request.
    pub fn new_product(
        &self,
        request: pb::CreateProductRequest,
    ) -> Result<NewProduct, CatalogError> {
        let mut checks = Checks::default();
        let name = checks.take(ProductName::parse("name", request.name));
        let description = request
            .description
            .map(|d| checks.take(Description::parse("description", d)));
        let price = checks.take(self.price("price", request.price.as_ref()));
        let quantity = checks.take(Stock::parse("quantity", request.quantity));
        checks.finish()?;
        let (Some(name), Some(price), Some(quantity)) = (name, price, quantity) else {
            unreachable!("checks.finish() returned Ok, so every value parsed")
        };
        Ok(NewProduct {
            name,
            description: description.flatten(),
            price,
            quantity,
        })
    }

    /// An UpdateProduct request: the product's id, the fields it sets
    /// (`clear_description` clears the description) and the version it is
    /// conditioned on (any value: one that is not the product's is refused
    /// as a mismatch, not as an invalid field).
    pub fn patch(
        &self,
        request: pb::UpdateProductRequest,
    ) -> Result<(Uuid, ProductPatch, Option<i64>), CatalogError> {
        let mut checks = Checks::default();
        let id = checks.take(uuid("id", &request.id));
        let name = request
            .name
            .map(|n| checks.take(ProductName::parse("name", n)));
        let description = match (request.description, request.clear_description) {
            (Some(_), true) => {
                checks.0.push(Violation::new(
                    "clear_description",
                    "cannot be set together with description",
                ));
                None
            }
            (Some(text), false) => Some(
                checks
                    .take(Description::parse("description", text))
                    .map(Some),
            ),
            (None, true) => Some(Some(None)),
            (None, false) => None,
        };
        let price = request
            .price
            .as_ref()
            .map(|p| checks.take(self.price("price", Some(p))));
        let quantity = request
            .quantity
            .map(|q| checks.take(Stock::parse("quantity", q)));
        checks.finish()?;
        // Every Option<Option<T>> above is Some(Some(_)) or None once checks passed.
        let patch = ProductPatch {
            name: name.flatten(),
            description: description.flatten(),
            price: price.flatten(),
            quantity: quantity.flatten(),
        };
        Ok((id.expect("checked"), patch, request.expected_version))
    }

    pub fn product(&self, product: Product) -> Result<pb::Product, CatalogError> {
        Ok(pb::Product {
            id: product.id.to_string(),
            name: product.name,
            description: product.description,
            price: Some(self.money(product.price)?),
            quantity: product.quantity,
            created_at: Some(proto::time::to_timestamp(product.created_at)),
            updated_at: Some(proto::time::to_timestamp(product.updated_at)),
            version: product.version,
        })
    }

    pub fn products(&self, products: Vec<Product>) -> Result<Vec<pb::Product>, CatalogError> {
        products.into_iter().map(|p| self.product(p)).collect()
    }

    pub fn reserved_lines(
        &self,
        lines: Vec<ReservedLine>,
    ) -> Result<Vec<pb::ReservedLine>, CatalogError> {
        lines
            .into_iter()
            .map(|line| {
                Ok(pb::ReservedLine {
                    product_id: line.product_id.to_string(),
                    product_name: line.product_name,
                    quantity: line.quantity,
                    unit_price: Some(self.money(line.unit_price)?),
                })
            })
            .collect()
    }

    fn money(&self, amount: Decimal) -> Result<Money, CatalogError> {
        proto::money::from_decimal(amount, &self.currency).map_err(|e| {
            CatalogError::Internal(format!("stored amount {amount} not representable: {e}"))
        })
    }

    /// A wire price as a validated `Price`: present, in this platform's
    /// currency (an empty code means the default), exact.
    fn price(&self, field: &str, money: Option<&Money>) -> Result<Price, Violation> {
        let money = money.ok_or_else(|| Violation::new(field, "is required"))?;
        if !money.currency_code.is_empty() && money.currency_code != self.currency {
            return Err(Violation::new(
                field,
                format!("currency must be {}", self.currency),
            ));
        }
        let amount =
            proto::money::to_decimal(money).map_err(|e| Violation::new(field, e.to_string()))?;
        Price::parse(field, amount)
    }
}

/// Collects every violation of a request, so the caller learns all at once.
#[derive(Default)]
struct Checks(Vec<Violation>);

impl Checks {
    fn take<T>(&mut self, result: Result<T, Violation>) -> Option<T> {
        result.map_err(|v| self.0.push(v)).ok()
    }

    fn finish(self) -> Result<(), CatalogError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Invalid(self.0).into())
        }
    }
}
