//! An order as the service reads it, the catalog's answer to a reservation,
//! the exact total, and the list query's filters.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{CancelReason, OrderStatus, PaymentStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: i64,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub total_price: Decimal,
    /// Why a canceled order was canceled; `None` while it is not canceled,
    /// and for orders canceled before reasons were recorded.
    pub cancel_reason: Option<CancelReason>,
    /// Ordered by line id.
    pub items: Vec<OrderItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    pub id: i64,
    pub product_id: Uuid,
    pub quantity: i32,
    pub price_at_purchase: Decimal,
}

/// One line of stock the catalog took: what the order's items are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub quantity: i32,
    pub unit_price: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the order total does not fit in a decimal")]
pub struct TotalOverflow;

/// Exact sum of quantity x unit price: decimal arithmetic, never a float.
pub fn total(lines: &[ReservedLine]) -> Result<Decimal, TotalOverflow> {
    lines.iter().try_fold(Decimal::ZERO, |sum, line| {
        Decimal::from(line.quantity)
            .checked_mul(line.unit_price)
            .and_then(|amount| sum.checked_add(amount))
            .ok_or(TotalOverflow)
    })
}

/// ListOrders filters; `None` means any. Only visible statuses can be asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<OrderStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub customer_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn line(quantity: i32, price: &str) -> ReservedLine {
        ReservedLine {
            product_id: Uuid::nil(),
            quantity,
            unit_price: Decimal::from_str(price).unwrap(),
        }
    }

    #[test]
    fn total_is_exact() {
        let lines = [line(3, "0.10"), line(1, "0.20"), line(2, "999.99")];
        assert_eq!(
            total(&lines).unwrap(),
            Decimal::from_str("2000.48").unwrap()
        );
        assert_eq!(total(&[]).unwrap(), Decimal::ZERO);
    }

    #[test]
    fn total_of_large_orders_does_not_lose_cents() {
        let lines = [line(i32::MAX, "99999999.99"), line(i32::MAX, "0.01")];
        assert_eq!(
            total(&lines).unwrap(),
            Decimal::from_str("214748364700000000.00").unwrap()
        );
    }
}
