//! Conditional requests (RFC 9110 section 13) on products: entity tags,
//! `If-Match` and `If-None-Match`.
//!
//! A product's entity tag is its catalog version (`catalog.v1.Product.version`,
//! bumped by the catalog's database on every change, stock included) as a
//! strong tag: `"<version>"`. The body is a function of the product's row,
//! and the row's version changes whenever the row does, so equal versions
//! mean byte-identical bodies: strong is honest.
//!
//! This module only reads the headers and compares tags; it never decides a
//! write. `If-Match` on a write is not evaluated here against a version read
//! earlier (a read-then-write race): the handler passes the listed version to
//! the catalog as `expected_version`, which checks it under the row lock in
//! the writing transaction ([`IfMatch::candidates`]).
//!
//! A header that does not parse as a list of entity tags (or `*`) is refused
//! with 400: RFC 9110 leaves no way to evaluate a condition whose tags cannot
//! be told apart, and a malformed request is what 400 means (section 15.5.1).
//! Guessing (treating it as absent) could turn a client's safety check into
//! an unconditional write.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use super::error::ApiError;

/// The `ETag` header value of a product at `version`: `"<version>"`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header")
}

/// One entity tag of a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityTag {
    weak: bool,
    /// Between the quotes.
    opaque: String,
}

impl EntityTag {
    /// The version this tag names, if it is one of ours: exactly the
    /// decimal digits the gateway writes (`"007"` is another tag than `"7"`;
    /// entity tags compare character by character).
    fn version(&self) -> Option<i64> {
        let version: i64 = self.opaque.parse().ok()?;
        (version.to_string() == self.opaque).then_some(version)
    }
}

/// A parsed `If-Match` or `If-None-Match`: `*`, or entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Any,
    Tags(Vec<EntityTag>),
}

/// `If-Match` of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfMatch(Condition);

impl IfMatch {
    /// The header, if the request has one; 400 when it is malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        Ok(condition(headers, header::IF_MATCH, "If-Match")?.map(Self))
    }

    /// The versions the write may proceed on, in the client's order; `None`
    /// for `*` (any current product: the write is unconditional, and one
    /// that does not exist is still 404, as RFC 9110 section 13.2.1 has it
    /// for an answer that would not have been 2xx without the condition).
    ///
    /// Weak tags never match `If-Match` (strong comparison, section 8.8.3.2),
    /// nor do tags that are not one of our versions. When nothing is left,
    /// the answer is `[0]`: versions start at 1, so the catalog refuses it
    /// (412 through the one status mapping) while still answering 404 for a
    /// product that does not exist.
    pub fn candidates(&self) -> Option<Vec<i64>> {
        let Condition::Tags(tags) = &self.0 else {
            return None;
        };
        let mut versions: Vec<i64> = Vec::with_capacity(tags.len());
        for version in tags
            .iter()
            .filter(|t| !t.weak)
            .filter_map(EntityTag::version)
        {
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        if versions.is_empty() {
            versions.push(0);
        }
        Some(versions)
    }
}

/// `If-None-Match` of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNoneMatch(Condition);

impl IfNoneMatch {
    /// The header, if the request has one; 400 when it is malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        Ok(condition(headers, header::IF_NONE_MATCH, "If-None-Match")?.map(Self))
    }

    /// Whether a product at `version` matches, so the answer is 304: `*`
    /// matches any existing product; tags compare weakly (section 8.8.3.2:
    /// `W/"3"` matches `"3"`), as section 13.1.2 says for `If-None-Match`.
    pub fn matches(&self, version: i64) -> bool {
        match &self.0 {
            Condition::Any => true,
            Condition::Tags(tags) => tags.iter().any(|tag| tag.version() == Some(version)),
        }
    }
}

/// Every field line of `name`, read as one list (section 5.3: several lines
/// are one comma-separated list); `None` when the request has none.
/// `label`: the header's name as a refusal spells it.
fn condition(
    headers: &HeaderMap,
    name: HeaderName,
    label: &str,
) -> Result<Option<Condition>, ApiError> {
    let mut lines = headers.get_all(&name).iter().peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let malformed = || {
        ApiError::BadRequest(format!(
            "Malformed {label} header: expected * or a comma-separated list of entity tags such as \"3\""
        ))
    };
    let mut any = false;
    let mut tags = Vec::new();
    for line in lines {
        match parse_line(line.as_bytes()).ok_or_else(malformed)? {
            Condition::Any => any = true,
            Condition::Tags(more) => tags.extend(more),
        }
    }
    match (any, tags.is_empty()) {
        (true, true) => Ok(Some(Condition::Any)),
        // `*` is the whole field value or nothing (section 13.1.1).
        (true, false) => Err(malformed()),
        (false, _) => Ok(Some(Condition::Tags(tags))),
    }
}

/// One field line: `*`, or `#entity-tag` (empty elements allowed, as a
/// recipient must accept them). `None` when malformed. A comma may appear
/// inside an opaque tag, so the line is read tag by tag, not split.
fn parse_line(line: &[u8]) -> Option<Condition> {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !is_ows(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    let line = &line[start..end];
    if line == b"*" {
        return Some(Condition::Any);
    }
    let mut tags = Vec::new();
    let mut rest = line;
    loop {
        // Skip OWS and empty elements.
        while let [first, tail @ ..] = rest {
            if is_ows(first) || *first == b',' {
                rest = tail;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        let (weak, quoted) = match rest.strip_prefix(b"W/") {
            Some(quoted) => (true, quoted),
            None => (false, rest),
        };
        let quoted = quoted.strip_prefix(b"\"")?;
        let close = quoted.iter().position(|b| *b == b'"')?;
        let opaque = &quoted[..close];
        // etagc: %x21 / %x23-7E / obs-text.
        if !opaque
            .iter()
            .all(|b| *b == 0x21 || (0x23..=0x7e).contains(b) || *b >= 0x80)
        {
            return None;
        }
        tags.push(EntityTag {
            weak,
            opaque: String::from_utf8_lossy(opaque).into_owned(),
        });
        rest = &quoted[close + 1..];
        // After a tag: OWS, then a comma or the end.
        while let [first, tail @ ..] = rest {
            if is_ows(first) {
                rest = tail;
            } else {
                break;
            }
        }
        match rest {
            [] => break,
            [b',', ..] => {}
            _ => return None,
        }
    }
    // A field of only commas and spaces lists nothing: not a condition one
    // can evaluate.
    (!tags.is_empty()).then_some(Condition::Tags(tags))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: HeaderName, lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(&name, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn if_match(lines: &[&str]) -> Result<Option<IfMatch>, ApiError> {
        IfMatch::from_headers(&headers(header::IF_MATCH, lines))
    }

    fn if_none_match(lines: &[&str]) -> Option<IfNoneMatch> {
        IfNoneMatch::from_headers(&headers(header::IF_NONE_MATCH, lines)).unwrap()
    }

    #[test]
    fn the_etag_is_the_quoted_version() {
        assert_eq!(etag(1), "\"1\"");
        assert_eq!(etag(123), "\"123\"");
    }

    #[test]
    fn if_match_lists_strong_versions_of_ours_in_order() {
        assert_eq!(if_match(&[]).unwrap(), None);
        let candidates = |lines: &[&str]| if_match(lines).unwrap().unwrap().candidates();
        assert_eq!(candidates(&["*"]), None);
        assert_eq!(candidates(&[" * "]), None);
        assert_eq!(candidates(&["\"3\""]), Some(vec![3]));
        assert_eq!(candidates(&["\"3\", \"5\",\"3\""]), Some(vec![3, 5]));
        assert_eq!(candidates(&["\"3\"", "\"7\""]), Some(vec![3, 7]));
        assert_eq!(candidates(&[", \"3\" ,, "]), Some(vec![3]));
        // Weak tags never match If-Match; foreign tags cannot be ours.
        assert_eq!(candidates(&["W/\"3\", \"4\""]), Some(vec![4]));
        assert_eq!(candidates(&["W/\"3\""]), Some(vec![0]));
        assert_eq!(candidates(&["\"007\", \"x\", \"\""]), Some(vec![0]));
        // A comma inside an opaque tag does not split it.
        assert_eq!(candidates(&["\"a,b\", \"9\""]), Some(vec![9]));
    }

    #[test]
    fn malformed_conditions_are_refused_as_bad_requests() {
        for malformed in [
            "3",
            "\"3",
            "\"3\" \"4\"",
            "W/3",
            "w/\"3\"",
            "*, \"3\"",
            "**",
            ",",
            "",
            "\"a\"b\"",
            "\"3\";",
        ] {
            let refused = if_match(&[malformed]).unwrap_err();
            assert!(
                matches!(refused, ApiError::BadRequest(ref detail) if detail.contains("If-Match")),
                "{malformed:?}: {refused:?}"
            );
        }
        // `*` with tags on another line is just as malformed.
        assert!(if_match(&["*", "\"3\""]).is_err());
        assert!(IfNoneMatch::from_headers(&headers(header::IF_NONE_MATCH, &["3"])).is_err());
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(if_none_match(&[]).is_none());
        let matches = |lines: &[&str], version| if_none_match(lines).unwrap().matches(version);
        assert!(matches(&["*"], 1));
        assert!(matches(&["\"3\""], 3));
        assert!(matches(&["W/\"3\""], 3));
        assert!(matches(&["\"1\", \"3\""], 3));
        assert!(matches(&["\"1\"", "W/\"3\""], 3));
        assert!(!matches(&["\"2\""], 3));
        assert!(!matches(&["\"03\""], 3));
    }
}
