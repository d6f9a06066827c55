//! Parsing `API_KEYS` and authorising a request's bearer token by key and
//! right, without ever echoing a key.

use super::*;
use axum::http::HeaderValue;

const ADMIN: &str = "admin-key-0123456789";
const CLERK: &str = "clerk-key-0123456789";

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
