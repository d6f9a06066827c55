//! Query strings: decoded `key=value` pairs read into a typed query, every
//! violation named by its parameter. Unknown parameters are ignored; a known
//! one given twice is refused rather than guessed.

use super::{json::Violations, money};

/// A query-string type: read from decoded `key=value` pairs. `None` means at
/// least one violation was recorded.
pub trait FromQuery: Sized {
    fn read(query: &QueryPairs, errors: &mut Violations) -> Option<Self>;
}

/// Decoded query pairs, in order.
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The value of `name`, if given once.
    pub fn get(&self, errors: &mut Violations, name: &str) -> Option<Option<&str>> {
        let mut values = self
            .0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            errors.push(name, "given more than once");
            return None;
        }
        Some(first)
    }

    /// An integer parameter in `min..=max`, `default` when absent.
    pub fn integer(
        &self,
        errors: &mut Violations,
        name: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let text = self.get(errors, name)?;
        let Some(text) = text else {
            return Some(default);
        };
        match money::parse_integer(text) {
            Ok(value) if (min..=max).contains(&value) => Some(value),
            Ok(_) | Err(money::IntegerError::OutOfRange) if max == i64::MAX => {
                errors.push(name, format!("must be an integer >= {min}"));
                None
            }
            Ok(_) | Err(money::IntegerError::OutOfRange) => {
                errors.push(name, format!("must be an integer between {min} and {max}"));
                None
            }
            Err(money::IntegerError::NotAnInteger) => {
                errors.push(name, "must be an integer");
                None
            }
        }
    }

    /// A boolean parameter: `true` / `false`, and also `1` / `0`, `yes` / `no`,
    /// `y` / `n`, `on` / `off`, `t` / `f`, in any case.
    pub fn boolean(&self, errors: &mut Violations, name: &str) -> Option<Option<bool>> {
        let text = self.get(errors, name)?;
        let Some(text) = text else { return Some(None) };
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" | "t" => Some(Some(true)),
            "false" | "0" | "no" | "n" | "off" | "f" => Some(Some(false)),
            _ => {
                errors.push(name, "must be a boolean (true or false)");
                None
            }
        }
    }

    /// One of `allowed`, exactly as spelled there.
    pub fn one_of<'v>(
        &self,
        errors: &mut Violations,
        name: &str,
        allowed: &[&'v str],
    ) -> Option<Option<&'v str>> {
        let text = self.get(errors, name)?;
        let Some(text) = text else { return Some(None) };
        match allowed.iter().copied().find(|word| *word == text) {
            Some(word) => Some(Some(word)),
            None => {
                errors.push(name, format!("must be one of: {}", allowed.join(", ")));
                None
            }
        }
    }
}

/// Page size when the client gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page the contract allows (the platform's one paging rule).
pub use proto::paging::MAX_PAGE_SIZE;

/// `page` and `page_size`, read and checked.
pub fn read_paging(query: &QueryPairs, errors: &mut Violations) -> Option<(u32, u32)> {
    // The page is bounded too, so page * page_size cannot overflow an offset.
    let page = query.integer(errors, "page", 1, 1, i64::from(i32::MAX));
    let page_size = query.integer(
        errors,
        "page_size",
        i64::from(DEFAULT_PAGE_SIZE),
        1,
        i64::from(MAX_PAGE_SIZE),
    );
    Some((u32::try_from(page?).ok()?, u32::try_from(page_size?).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> QueryPairs {
        QueryPairs(
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn paging_defaults_and_bounds() {
        let mut errors = Violations::default();
        assert_eq!(read_paging(&pairs(&[]), &mut errors), Some((1, 20)));
        assert_eq!(
            read_paging(&pairs(&[("page", "3"), ("page_size", "100")]), &mut errors),
            Some((3, 100))
        );
        assert!(errors.is_empty());
        for bad in [
            [("page", "0"), ("page_size", "10")],
            [("page", "1"), ("page_size", "0")],
            [("page", "1"), ("page_size", "101")],
            [("page", "abc"), ("page_size", "10")],
            [("page", "-1"), ("page_size", "10")],
            [("page", "1"), ("page_size", "1.5")],
            [("page", "99999999999999999999"), ("page_size", "10")],
        ] {
            let mut errors = Violations::default();
            assert_eq!(read_paging(&pairs(&bad), &mut errors), None, "{bad:?}");
            assert!(!errors.is_empty());
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let mut errors = Violations::default();
        assert_eq!(
            read_paging(&pairs(&[("page", "1"), ("page", "2")]), &mut errors),
            None
        );
        assert_eq!(errors.into_vec()[0].field, "page");
    }

    #[test]
    fn booleans() {
        let mut errors = Violations::default();
        let q = pairs(&[("a", "true"), ("b", "False"), ("c", "1"), ("d", "maybe")]);
        assert_eq!(q.boolean(&mut errors, "a"), Some(Some(true)));
        assert_eq!(q.boolean(&mut errors, "b"), Some(Some(false)));
        assert_eq!(q.boolean(&mut errors, "c"), Some(Some(true)));
        assert_eq!(q.boolean(&mut errors, "missing"), Some(None));
        assert!(errors.is_empty());
        assert_eq!(q.boolean(&mut errors, "d"), None);
    }
}
