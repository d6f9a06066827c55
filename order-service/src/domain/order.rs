//! An order as the service reads it, the catalog's answer to a reservation,
//! the exact total, and the list query's filters and paging.

use chrono::{DateTime, Utc};
use proto::errors::Violation;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{OrderStatus, PaymentStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: i64,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub total_price: Decimal,
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

/// Largest page the list query serves.
pub const MAX_PAGE_SIZE: u32 = 100;

/// ListOrders filters; `None` means any. Only visible statuses can be asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<OrderStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub customer_id: Option<i64>,
}

/// A valid page request: 1-based page, 1..=100 per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
}

impl PageRequest {
    pub fn parse(page: u32, page_size: u32) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        if page < 1 {
            violations.push(Violation::new("page", "must be at least 1"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            violations.push(Violation::new(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if violations.is_empty() {
            Ok(Self { page, page_size })
        } else {
            Err(violations)
        }
    }

    pub fn limit(self) -> i64 {
        i64::from(self.page_size)
    }

    pub fn offset(self) -> i64 {
        // (u32::MAX - 1) * 100 fits in i64 with room to spare.
        i64::from(self.page - 1) * i64::from(self.page_size)
    }
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

    #[test]
    fn pages_are_checked_and_translated_to_offsets() {
        let page = PageRequest::parse(3, 20).unwrap();
        assert_eq!((page.limit(), page.offset()), (20, 40));
        assert_eq!(PageRequest::parse(1, 100).unwrap().offset(), 0);
        let fields = |violations: Vec<Violation>| {
            violations.into_iter().map(|v| v.field).collect::<Vec<_>>()
        };
        assert_eq!(
            fields(PageRequest::parse(0, 0).unwrap_err()),
            ["page", "page_size"]
        );
        assert_eq!(
            fields(PageRequest::parse(1, 101).unwrap_err()),
            ["page_size"]
        );
        assert_eq!(
            PageRequest::parse(u32::MAX, 100).unwrap().offset(),
            429_496_729_400
        );
    }
}
