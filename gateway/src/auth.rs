//! Access control for the operations that change the catalog or an order's
//! status: `Authorization: Bearer <key>`, with keys and their rights from
//! `API_KEYS`.
//!
//! | operation | right |
//! |---|---|
//! | `POST /api/products`, `PUT` / `DELETE /api/products/{id}` | `products` |
//! | `PUT /api/orders/{id}/status` | `orders` |
//!
//! Reads, order creation and the payment webhook (which has its own
//! signature) stay open, as the contract says. With `API_KEYS` unset, every
//! operation is open (clients of the original API keep working) and the
//! gateway warns at start.
//!
//! ## `API_KEYS` format
//!
//! Entries separated by `;` or new lines, each `name=key:right[,right...]`:
//!
//! ```text
//! API_KEYS="admin=9f3c1e7a5b2d4f60a8c3:products,orders;fulfilment=4be8d21f07c9a6e3d5b1:orders"
//! ```
//!
//! - `name`: a label (`A-Z a-z 0-9 _ -`), logged with each authorised write so
//!   an operator sees who changed what; the key itself never is.
//! - `key`: at least 16 characters from `A-Z a-z 0-9 - . _ ~ + /` (the bearer
//!   token alphabet, without `=`); e.g. `openssl rand -hex 24`.
//! - rights: `products`, `orders`.
//!
//! Spaces around parts are ignored. An empty value, a malformed entry, an
//! unknown right, a short key, or a name or key given twice is a start-up
//! error (never "access control off"); the error names the entry by its
//! position, never by its text, which holds the key.
//!
//! Keys are kept as SHA-256 digests and a presented token is compared, as a
//! digest, against every configured one without an early exit (`subtle`), so
//! timing shows neither which key nor how much of it matched.

use std::fmt;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::{config::WriteAccess, error::ApiError};

/// Shortest key accepted, in characters.
pub const MIN_KEY_LEN: usize = 16;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    /// Create, update and delete products.
    Products,
    /// Change an order's status (complete, cancel).
    Orders,
}

impl Right {
    pub const ALL: [Right; 2] = [Self::Products, Self::Orders];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Products => "products",
            Self::Orders => "orders",
        }
    }

    fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|right| right.as_str() == word)
    }

    fn bit(self) -> u8 {
        match self {
            Self::Products => 1,
            Self::Orders => 2,
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right an operation needs, by method and route template (as the router
/// and the OpenAPI document spell it); `None`: open to everyone. The one
/// place that decides; the middleware and the document both ask it.
/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (reads; order creation and the signed webhook, as the contract says).
    Public,
    /// A key holding this right (or anyone, when writes are open on purpose).
    Requires(Right),
    /// Nobody: an operation that changes something and is missing from
    /// [`OPERATIONS`]. A new write route starts out closed until it is listed.
    Closed,
}

/// Every operation that is not a plain read (GET, HEAD, OPTIONS), with who may
/// call it: the one table the access guard enforces and `/openapi.json`
/// declares, so the two cannot drift.
pub const OPERATIONS: &[(&str, &str, Access)] = &[
    ("POST", "/api/products", Access::Requires(Right::Products)),
    (
        "PUT",
        "/api/products/{id}",
        Access::Requires(Right::Products),
    ),
    (
        "DELETE",
        "/api/products/{id}",
        Access::Requires(Right::Products),
    ),
    (
        "PUT",
        "/api/orders/{id}/status",
        Access::Requires(Right::Orders),
    ),
    // The contract lets anyone order; stock is never oversold whoever does.
    ("POST", "/api/orders", Access::Public),
    // Authenticated by its own signature (see `crate::signature`).
    ("POST", "/api/payment-webhook", Access::Public),
];

/// Who may call `method` on the route template `route`.
pub fn access(method: &Method, route: &str) -> Access {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Access::Public;
    }
    OPERATIONS
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map_or(Access::Closed, |(_, _, access)| *access)
}

/// The right an operation needs, if any (what OpenAPI declares).
pub fn required_right(method: &Method, route: &str) -> Option<Right> {
    match access(method, route) {
        Access::Requires(right) => Some(right),
        Access::Public | Access::Closed => None,
    }
}

/// Why `API_KEYS` cannot be used. Entries are named by position only: their
/// text holds a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeysError {
    #[error(
        "API_KEYS is set but holds no key: refusing to start (unset it to turn access control off)"
    )]
    Empty,
    #[error("API_KEYS entry {entry} is not `name=key:right[,right]`")]
    Malformed { entry: usize },
    #[error("API_KEYS entry {entry}: the name may only hold A-Z, a-z, 0-9, '_' and '-'")]
    BadName { entry: usize },
    #[error(
        "API_KEYS entry {entry}: the key must be at least {MIN_KEY_LEN} characters from A-Z a-z 0-9 - . _ ~ + /"
    )]
    BadKey { entry: usize },
    #[error("API_KEYS entry {entry}: unknown right (known: products, orders) or none given")]
    BadRight { entry: usize },
    #[error("API_KEYS entry {entry}: the name is already used by another entry")]
    DuplicateName { entry: usize },
    #[error("API_KEYS entry {entry}: the key is already used by another entry")]
    DuplicateKey { entry: usize },
    #[error(
        "API_KEYS entry {entry}: the key is a placeholder (an example value), not a secret; \
         generate one (e.g. `openssl rand -hex 24`)"
    )]
    Placeholder { entry: usize },
}

struct Credential {
    name: String,
    digest: [u8; 32],
    rights: u8,
}

/// The configured keys, as digests. `Debug` shows names and rights only.
#[derive(Clone)]
pub struct ApiKeys {
    credentials: std::sync::Arc<Vec<Credential>>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for credential in self.credentials.iter() {
            let rights: Vec<&str> = Right::ALL
                .into_iter()
                .filter(|right| credential.rights & right.bit() != 0)
                .map(Right::as_str)
                .collect();
            list.entry(&credential.name, &rights);
        }
        list.finish()
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/')
}

impl ApiKeys {
    /// Parses the `API_KEYS` format (see the module docs).
    pub fn parse(raw: &str) -> Result<Self, ApiKeysError> {
        let mut credentials: Vec<Credential> = Vec::new();
        let entries = raw
            .split([';', '\n'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let number = index + 1;
            let malformed = ApiKeysError::Malformed { entry: number };
            let (name, rest) = entry.split_once('=').ok_or(malformed.clone())?;
            let (key, rights) = rest.split_once(':').ok_or(malformed)?;
            let (name, key) = (name.trim(), key.trim());
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ApiKeysError::BadName { entry: number });
            }
            if key.len() < MIN_KEY_LEN || !key.chars().all(is_key_char) {
                return Err(ApiKeysError::BadKey { entry: number });
            }
            let mut bits = 0;
            for word in rights.split(',').map(str::trim) {
                let right =
                    Right::from_word(word).ok_or(ApiKeysError::BadRight { entry: number })?;
                bits |= right.bit();
            }
            let digest = digest(key.as_bytes());
            if credentials.iter().any(|c| c.name == name) {
                return Err(ApiKeysError::DuplicateName { entry: number });
            }
            if credentials.iter().any(|c| c.digest == digest) {
                return Err(ApiKeysError::DuplicateKey { entry: number });
            }
            credentials.push(Credential {
                name: name.to_owned(),
                digest,
                rights: bits,
            });
        }
        if credentials.is_empty() {
            return Err(ApiKeysError::Empty);
        }
        Ok(Self {
            credentials: std::sync::Arc::new(credentials),
        })
    }

    /// How many keys are configured.
    /// The position of the first entry of a valid `API_KEYS` value whose key
    /// looks like a placeholder (see [`crate::config::is_placeholder`]).
    pub fn placeholder_entry(raw: &str) -> Option<usize> {
        raw.split([';', '\n'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .position(|entry| {
                entry
                    .split_once('=')
                    .and_then(|(_, rest)| rest.split_once(':'))
                    .is_some_and(|(key, _)| crate::config::is_placeholder(key.trim()))
            })
            .map(|index| index + 1)
    }

    pub fn len(&self) -> usize {
        self.credentials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    /// The credential whose key is `token`, found without an early exit and
    /// without comparing secret bytes in variable time.
    fn find(&self, token: &[u8]) -> Option<&Credential> {
        let presented = digest(token);
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, credential) in self.credentials.iter().enumerate() {
            let equal = credential.digest.ct_eq(&presented);
            // At most 2^32 keys: the configuration is a single variable.
            index.conditional_assign(&(i as u32), equal);
            matched |= equal;
        }
        bool::from(matched).then(|| &self.credentials[index as usize])
    }

    /// Checks the request's `Authorization` header for `right`. `Ok` is the
    /// key's name, for the log.
    pub fn authorize(&self, headers: &HeaderMap, right: Right) -> Result<&str, AuthError> {
        let token = bearer_token(headers)?;
        let credential = self.find(token).ok_or(AuthError::UnknownKey)?;
        if credential.rights & right.bit() == 0 {
            return Err(AuthError::LacksRight {
                name: credential.name.clone(),
                right,
            });
        }
        Ok(&credential.name)
    }
}

/// Why a request was not authorised. `Display` is for logs and never holds a
/// key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization header is not `Bearer <key>`")]
    Malformed,
    #[error("no configured key matches")]
    UnknownKey,
    #[error("key '{name}' lacks the '{right}' right")]
    LacksRight { name: String, right: Right },
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => ApiError::ApiKeyRequired {
                detail: "Missing API key: send `Authorization: Bearer <key>`".into(),
                invalid: false,
            },
            AuthError::Malformed | AuthError::UnknownKey => ApiError::ApiKeyRequired {
                detail: "Invalid API key".into(),
                invalid: true,
            },
            AuthError::LacksRight { right, .. } => ApiError::Forbidden {
                detail: format!("This API key does not have the '{right}' right"),
                right: right.as_str(),
            },
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme in any case). Two
/// Authorization headers are ambiguous, so neither is trusted.
fn bearer_token(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let value = value.as_bytes().trim_ascii();
    let scheme_end = value
        .iter()
        .position(|&b| b == b' ')
        .ok_or(AuthError::Malformed)?;
    let (scheme, token) = value.split_at(scheme_end);
    let token = token.trim_ascii();
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// Route layer: refuses a protected operation without a key holding its
/// right (401 / 403, problem details, `WWW-Authenticate: Bearer`), before
/// the body is read. Open operations pass untouched.
/// The access guard, on every route: a read or a public operation passes; one
/// that needs a right passes with a key holding it (or when writes are open on
/// purpose); a closed one never does. Runs before any extractor, so a refused
/// request never has its body read.
pub async fn guard(State(writes): State<WriteAccess>, request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>() else {
        // No route matched: the fallbacks answer 404 / 405.
        return next.run(request).await;
    };
    let right = match access(request.method(), route.as_str()) {
        Access::Public => return next.run(request).await,
        Access::Closed => {
            tracing::error!(
                method = %request.method(),
                route = route.as_str(),
                "a write route without an access rule: refused (list it in auth::OPERATIONS)"
            );
            return ApiError::Forbidden {
                detail: "This operation is not open to any API key".into(),
                right: "none",
            }
            .into_response();
        }
        Access::Requires(right) => right,
    };
    let keys = match &writes {
        WriteAccess::Open => return next.run(request).await,
        WriteAccess::Keys(keys) => keys,
    };
    match keys.authorize(request.headers(), right) {
        Ok(name) => {
            tracing::Span::current().record("api_key", name);
            tracing::debug!(api_key = name, %right, "authorised");
            next.run(request).await
        }
        Err(error) => {
            tracing::warn!(reason = %error, %right, "request refused by access control");
            ApiError::from(error).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const ADMIN: &str = "admin-key-0123456789";
    const CLERK: &str = "clerk-key-0123456789";

    #[test]
    fn reads_and_listed_public_operations_are_open_and_anything_unlisted_is_closed() {
        assert_eq!(access(&Method::GET, "/api/products/{id}"), Access::Public);
        assert_eq!(access(&Method::POST, "/api/orders"), Access::Public);
        assert_eq!(
            access(&Method::POST, "/api/payment-webhook"),
            Access::Public
        );
        assert_eq!(
            access(&Method::DELETE, "/api/products/{id}"),
            Access::Requires(Right::Products)
        );
        assert_eq!(access(&Method::POST, "/api/refunds"), Access::Closed);
        assert_eq!(access(&Method::DELETE, "/api/orders/{id}"), Access::Closed);
        assert_eq!(access(&Method::PATCH, "/api/products/{id}"), Access::Closed);
    }

    /// A write route someone adds without listing it in [`OPERATIONS`] is
    /// refused to everyone, even with writes open.
    #[tokio::test]
    async fn the_guard_refuses_an_unlisted_write_route_even_with_open_writes() {
        use axum::{Router, body::Body, routing::post};
        use tower::ServiceExt;

        let router = Router::new()
            .route("/api/refunds", post(|| async { "refunded" }))
            .route("/api/orders", post(|| async { "ordered" }))
            .route_layer(axum::middleware::from_fn_with_state(
                WriteAccess::Open,
                guard,
            ));
        let call = |path: &'static str| {
            let router = router.clone();
            async move {
                router
                    .oneshot(axum::http::Request::post(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(
            call("/api/refunds").await,
            axum::http::StatusCode::FORBIDDEN
        );
        assert_eq!(call("/api/orders").await, axum::http::StatusCode::OK);
    }

    #[test]
    fn a_placeholder_key_is_found_by_its_position_only() {
        assert_eq!(
            ApiKeys::placeholder_entry(&format!(
                "admin={ADMIN}:products;ops=change-me-0123456789:orders"
            )),
            Some(2)
        );
        assert_eq!(
            ApiKeys::placeholder_entry(&format!("admin={ADMIN}:products")),
            None
        );
    }

    fn keys() -> ApiKeys {
        ApiKeys::parse(&format!(
            " admin = {ADMIN} : products , orders ;\nclerk={CLERK}:orders;"
        ))
        .unwrap()
    }

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn parses_names_keys_and_rights() {
        let keys = keys();
        assert_eq!(keys.len(), 2);
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("admin") && shown.contains("orders"),
            "{shown}"
        );
        assert!(!shown.contains(ADMIN) && !shown.contains(CLERK), "{shown}");
    }

    #[test]
    fn refuses_bad_configurations_without_echoing_keys() {
        let long = "k".repeat(MIN_KEY_LEN);
        let cases = [
            ("".to_owned(), ApiKeysError::Empty),
            (" ; \n ".to_owned(), ApiKeysError::Empty),
            (long.clone(), ApiKeysError::Malformed { entry: 1 }),
            (format!("a={long}"), ApiKeysError::Malformed { entry: 1 }),
            (
                format!("={long}:orders"),
                ApiKeysError::BadName { entry: 1 },
            ),
            (
                format!("a b={long}:orders"),
                ApiKeysError::BadName { entry: 1 },
            ),
            (
                "a=short:orders".to_owned(),
                ApiKeysError::BadKey { entry: 1 },
            ),
            (
                format!("a={long}é:orders"),
                ApiKeysError::BadKey { entry: 1 },
            ),
            (
                format!("a={long}=:orders"),
                ApiKeysError::BadKey { entry: 1 },
            ),
            (format!("a={long}:"), ApiKeysError::BadRight { entry: 1 }),
            (
                format!("a={long}:admin"),
                ApiKeysError::BadRight { entry: 1 },
            ),
            (
                format!("a={long}:orders,"),
                ApiKeysError::BadRight { entry: 1 },
            ),
            (
                format!("a={long}:orders;a={long}x:orders"),
                ApiKeysError::DuplicateName { entry: 2 },
            ),
            (
                format!("a={long}:orders;b={long}:products"),
                ApiKeysError::DuplicateKey { entry: 2 },
            ),
        ];
        for (raw, expected) in cases {
            let error = ApiKeys::parse(&raw).unwrap_err();
            assert_eq!(error, expected, "{raw:?}");
            assert!(!error.to_string().contains(&long), "{error}");
        }
    }

    #[test]
    fn authorises_by_key_and_right() {
        let keys = keys();
        let admin = bearer(&format!("Bearer {ADMIN}"));
        assert_eq!(keys.authorize(&admin, Right::Products), Ok("admin"));
        assert_eq!(keys.authorize(&admin, Right::Orders), Ok("admin"));
        let clerk = bearer(&format!("bearer   {CLERK} "));
        assert_eq!(keys.authorize(&clerk, Right::Orders), Ok("clerk"));
        assert_eq!(
            keys.authorize(&clerk, Right::Products),
            Err(AuthError::LacksRight {
                name: "clerk".into(),
                right: Right::Products
            })
        );
    }

    #[test]
    fn refuses_missing_malformed_and_unknown_keys() {
        let keys = keys();
        assert_eq!(
            keys.authorize(&HeaderMap::new(), Right::Orders),
            Err(AuthError::Missing)
        );
        for value in [
            "Bearer",
            "Bearer ",
            ADMIN,
            &format!("Basic {ADMIN}"),
            &format!("Bearer{ADMIN}"),
        ] {
            assert_eq!(
                keys.authorize(&bearer(value), Right::Orders),
                Err(AuthError::Malformed),
                "{value:?}"
            );
        }
        for value in [
            format!("Bearer {ADMIN}x"),
            format!("Bearer {}", &ADMIN[1..]),
            format!("Bearer {}", ADMIN.to_uppercase()),
            "Bearer another-key-0123456789".to_owned(),
        ] {
            assert_eq!(
                keys.authorize(&bearer(&value), Right::Orders),
                Err(AuthError::UnknownKey),
                "{value:?}"
            );
        }
        let mut two = bearer(&format!("Bearer {ADMIN}"));
        two.append(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {ADMIN}")).unwrap(),
        );
        assert_eq!(
            keys.authorize(&two, Right::Orders),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn only_writes_of_products_and_order_status_need_a_right() {
        let cases = [
            ("POST", "/api/products", Some(Right::Products)),
            ("PUT", "/api/products/{id}", Some(Right::Products)),
            ("DELETE", "/api/products/{id}", Some(Right::Products)),
            ("PUT", "/api/orders/{id}/status", Some(Right::Orders)),
            ("GET", "/api/products", None),
            ("GET", "/api/products/{id}", None),
            ("GET", "/api/orders", None),
            ("POST", "/api/orders", None),
            ("GET", "/api/orders/{id}", None),
            ("POST", "/api/payment-webhook", None),
            ("GET", "/health", None),
        ];
        for (method, route, expected) in cases {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(required_right(&method, route), expected, "{method} {route}");
        }
    }
}
