//! Page requests, the same rule for every list of the platform (products,
//! orders, and the gateway's query validation): a 1-based page, 1 to
//! [`MAX_PAGE_SIZE`] items per page, and a page may start at most
//! `max_offset` rows in ([`DEFAULT_MAX_LIST_OFFSET`] unless the service is
//! configured otherwise, `MAX_LIST_OFFSET`).
//!
//! Why a depth bound: a page is `ORDER BY ... LIMIT n OFFSET m`, and
//! PostgreSQL reads and throws away the `m` rows before the page, so without
//! a bound one request for page 2*10^9 costs a scan of the whole table. With
//! it, the most any page costs is `max_offset + page_size` index entries,
//! whatever the table's size. People page through the first few pages and
//! filter to find the rest; past the bound the answer says so.
//!
//! The same bound keeps `total` cheap: it is counted exactly up to
//! [`PageRequest::count_cap`] rows (every row a page can reach, plus one
//! page), which covers every small table exactly; past that the stores
//! answer an estimate instead of counting the whole table on every request.

use crate::errors::Violation;

pub const MAX_PAGE_SIZE: u32 = 100;

/// The deepest row a page may start at by default: page 101 of 100, page
/// 501 of 20.
pub const DEFAULT_MAX_LIST_OFFSET: u32 = 10_000;

/// A valid page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
    /// The deepest offset this request was checked against; also sets how
    /// far `total` is counted exactly ([`Self::count_cap`]).
    pub max_offset: u32,
}

impl PageRequest {
    /// [`Self::parse_within`] with the default depth bound.
    pub fn parse(page: u32, page_size: u32) -> Result<Self, Vec<Violation>> {
        Self::parse_within(page, page_size, DEFAULT_MAX_LIST_OFFSET)
    }

    /// Every violation at once, named by the wire fields `page` and
    /// `page_size`. A page that would start more than `max_offset` rows in is
    /// refused on `page`, naming the last page allowed at this page size.
    pub fn parse_within(
        page: u32,
        page_size: u32,
        max_offset: u32,
    ) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        if page < 1 {
            violations.push(Violation::new("page", "must be greater than or equal to 1"));
        }
        let size_ok = (1..=MAX_PAGE_SIZE).contains(&page_size);
        if !size_ok {
            violations.push(Violation::new(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let request = Self {
            page,
            page_size,
            max_offset,
        };
        if page >= 1 && size_ok && request.offset() > i64::from(max_offset) {
            violations.push(Violation::new(
                "page",
                format!(
                    "must be at most {} with page_size {page_size}: lists are paged at most \
                     {max_offset} rows deep; narrow the filter to reach further",
                    request.last_page()
                ),
            ));
        }
        if violations.is_empty() {
            Ok(request)
        } else {
            Err(violations)
        }
    }

    pub fn limit(self) -> i64 {
        i64::from(self.page_size)
    }

    pub fn offset(self) -> i64 {
        // (u32::MAX - 1) * 100 fits in i64 with room to spare.
        (i64::from(self.page.max(1)) - 1) * i64::from(self.page_size)
    }

    /// The deepest page allowed at this page size.
    pub fn last_page(self) -> u32 {
        self.max_offset / self.page_size.max(1) + 1
    }

    /// How many matching rows a store counts exactly: every row a page can
    /// reach (`max_offset` plus the largest page). A store counts at most
    /// one more, to learn that there are more; `total` is exact up to this
    /// number and an estimate above it.
    pub fn count_cap(self) -> i64 {
        i64::from(self.max_offset) + i64::from(MAX_PAGE_SIZE)
    }
}

/// `total` of a list from a capped count: `counted` is the exact count of at
/// most `cap + 1` rows; when it reached past `cap`, `estimate` (the
/// planner's, possibly stale or absent) stands in, never below `cap + 1`:
/// the rows seen are certainly there.
pub fn capped_total(counted: i64, cap: i64, estimate: Option<i64>) -> u64 {
    let total = if counted <= cap {
        counted
    } else {
        estimate.unwrap_or(0).max(cap + 1)
    };
    u64::try_from(total).unwrap_or(0)
}

/// `ceil(total / page_size)`, 0 when there is nothing.
pub fn total_pages(total: u64, page_size: u32) -> u64 {
    total.div_ceil(u64::from(page_size.max(1)))
}

/// The row estimate of the top plan node in the text output of `EXPLAIN`
/// (`Seq Scan on products  (cost=0.00..1.05 rows=5 width=4)`): what the
/// planner expects a query to return, from table statistics, without running
/// it.
pub fn plan_rows(first_explain_line: &str) -> Option<i64> {
    let rest = &first_explain_line[first_explain_line.find("rows=")? + "rows=".len()..];
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn bounds_and_offsets() {
        assert_eq!(PageRequest::parse(3, 20).unwrap().offset(), 40);
        assert_eq!(PageRequest::parse(0, 0).unwrap_err().len(), 2);
        assert!(PageRequest::parse(1, 101).is_err());
        assert!(PageRequest::parse(1, 100).is_ok());
        // The arithmetic cannot overflow, whatever the bound.
        let deepest = PageRequest {
            page: u32::MAX,
            page_size: 100,
            max_offset: u32::MAX,
        };
        assert_eq!(deepest.offset(), (i64::from(u32::MAX) - 1) * 100);
        assert!(PageRequest::parse_within(u32::MAX, 100, u32::MAX).is_err());
    }

    #[test]
    fn pages_deeper_than_the_bound_are_refused_on_page() {
        // The last allowed page starts exactly at the bound.
        let last = PageRequest::parse(101, 100).unwrap();
        assert_eq!(last.offset(), 10_000);
        assert_eq!(last.last_page(), 101);
        assert!(PageRequest::parse(501, 20).is_ok());
        for (page, page_size, last) in [(102, 100, 101), (502, 20, 501), (u32::MAX, 1, 10_001)] {
            let violations = PageRequest::parse(page, page_size).unwrap_err();
            assert_eq!(fields(&violations), vec!["page"]);
            let message = &violations[0].message;
            assert!(message.contains(&format!("at most {last} ")), "{message}");
            assert!(message.contains("10000 rows") && message.contains("filter"));
        }
        // Configured elsewhere.
        assert!(PageRequest::parse_within(2, 10, 10).is_ok());
        assert!(PageRequest::parse_within(3, 10, 10).is_err());
        assert!(PageRequest::parse_within(1, 100, 0).is_ok());
        assert!(PageRequest::parse_within(2, 1, 0).is_err());
        // A bad page_size says so, not that the page is too deep.
        assert_eq!(
            fields(&PageRequest::parse(5_000_000, 101).unwrap_err()),
            vec!["page_size"]
        );
    }

    #[test]
    fn totals_are_exact_up_to_the_cap_then_estimated_but_never_below_it() {
        let cap = PageRequest::parse(1, 20).unwrap().count_cap();
        assert_eq!(cap, 10_100);
        assert_eq!(capped_total(0, cap, None), 0);
        assert_eq!(capped_total(57, cap, Some(1)), 57);
        assert_eq!(capped_total(cap, cap, Some(1)), 10_100);
        assert_eq!(capped_total(cap + 1, cap, Some(2_000_000)), 2_000_000);
        assert_eq!(capped_total(cap + 1, cap, Some(50)), 10_101);
        assert_eq!(capped_total(cap + 1, cap, None), 10_101);
    }

    #[test]
    fn plan_rows_reads_the_top_node() {
        assert_eq!(
            plan_rows("Seq Scan on products  (cost=0.00..1.05 rows=5 width=4)"),
            Some(5)
        );
        assert_eq!(
            plan_rows("Index Only Scan using x on orders  (cost=0.29..4.31 rows=1234567 width=0)"),
            Some(1_234_567)
        );
        assert_eq!(plan_rows("Result  (cost=0.00..0.01 width=0)"), None);
    }

    #[test]
    fn total_pages_rounds_up() {
        assert_eq!(total_pages(0, 20), 0);
        assert_eq!(total_pages(57, 20), 3);
        assert_eq!(total_pages(60, 20), 3);
    }
}
