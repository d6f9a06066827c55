//! Page requests, the same rule for every list of the platform (products,
//! orders, and the gateway's query validation): a 1-based page, and 1 to
//! [`MAX_PAGE_SIZE`] items per page.

use crate::errors::Violation;

pub const MAX_PAGE_SIZE: u32 = 100;

/// A valid page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
}

impl PageRequest {
    /// Every violation at once, named by the wire fields `page` and `page_size`.
    pub fn parse(page: u32, page_size: u32) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        if page < 1 {
            violations.push(Violation::new("page", "must be greater than or equal to 1"));
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
        (i64::from(self.page) - 1) * i64::from(self.page_size)
    }
}

/// `ceil(total / page_size)`, 0 when there is nothing.
pub fn total_pages(total: u64, page_size: u32) -> u64 {
    total.div_ceil(u64::from(page_size.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_offsets() {
        assert_eq!(PageRequest::parse(3, 20).unwrap().offset(), 40);
        assert_eq!(PageRequest::parse(0, 0).unwrap_err().len(), 2);
        assert!(PageRequest::parse(1, 101).is_err());
        assert!(PageRequest::parse(1, 100).is_ok());
        assert_eq!(
            PageRequest::parse(u32::MAX, 100).unwrap().offset(),
            (i64::from(u32::MAX) - 1) * 100
        );
    }

    #[test]
    fn total_pages_rounds_up() {
        assert_eq!(total_pages(0, 20), 0);
        assert_eq!(total_pages(57, 20), 3);
        assert_eq!(total_pages(60, 20), 3);
    }
}
