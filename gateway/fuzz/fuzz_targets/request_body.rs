//! Request body reading (raw bytes -> the contract's request types) on
//! arbitrary bytes: never a panic, and whatever is accepted is within the
//! contract (names, prices, quantities, ids).

#![no_main]

use gateway::{
    input::{money::MAX_PRICE, read_body},
    models::{
        NAME_MAX_CHARS, OrderCreate, OrderStatusUpdate, PaymentWebhook, ProductCreate,
        ProductUpdate,
    },
};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

fn check_name(name: &str) {
    let chars = name.chars().count();
    assert!((1..=NAME_MAX_CHARS).contains(&chars));
    assert!(!name.contains('\0'));
}

fn check_price(price: Decimal) {
    assert!(price > Decimal::ZERO && price <= MAX_PRICE, "{price}");
    assert!(price.scale() <= 2, "{price}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(product) = read_body::<ProductCreate>(data) {
        check_name(&product.name);
        check_price(product.price);
        assert!(product.quantity >= 0);
        assert!(!product.description.unwrap_or_default().contains('\0'));
    }
    if let Ok(update) = read_body::<ProductUpdate>(data) {
        if let Some(name) = &update.name {
            check_name(name);
        }
        if let Some(price) = update.price {
            check_price(price);
        }
        assert!(update.quantity.is_none_or(|q| q >= 0));
    }
    if let Ok(order) = read_body::<OrderCreate>(data) {
        assert!(order.customer_id >= 1);
        assert!(!order.products.is_empty());
        assert!(order.products.iter().all(|line| line.quantity >= 1));
    }
    let _ = read_body::<OrderStatusUpdate>(data);
    if let Ok(webhook) = read_body::<PaymentWebhook>(data) {
        if let Some(id) = &webhook.event_id {
            assert!((1..=255).contains(&id.chars().count()));
        }
    }
});
