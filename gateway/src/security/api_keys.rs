//! API keys: `Authorization: Bearer <key>`, with keys and their rights from
//! `API_KEYS`. Which operation needs which right is declared where the
//! operation is registered (`routes::api`; enforced by [`super::access`]):
//! product writes need `products`, order status changes `orders`; reads,
//! order creation and the payment webhook (which has its own signature) are
//! open, as the contract says. With `API_KEYS` unset (development mode or
//! `OPEN_WRITES`), every operation is open and the gateway warns at start.
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

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::http::error::ApiError;

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

    /// How many keys are configured.
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

#[cfg(test)]
mod tests;
