//! Settings: development mode, webhook secrets and API keys, and what is
//! refused outside development mode (never quoting a secret).

use super::*;

/// A generated-looking secret of 64 hex characters.
const GOOD: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The configuration of these arguments, with this webhook secret.
fn parsed(args: &[&str], secret: Option<&str>) -> Config {
    let mut config = Config::parse_from(args);
    config.webhook_secret = secret.map(str::to_owned);
    config
}

/// Development mode, with this webhook secret.
fn with_secret(secret: Option<&str>) -> Config {
    parsed(&["gateway", "--dev"], secret)
}

/// Production (no development mode), with this webhook secret.
fn production(secret: Option<&str>) -> Config {
    parsed(&["gateway"], secret)
}

#[test]
fn development_mode_is_off_unless_asked_for() {
    assert!(!Config::parse_from(["gateway"]).dev_mode);
    assert!(Config::parse_from(["gateway", "--dev"]).dev_mode);
    assert!(Config::parse_from(["gateway", "--dev", "true"]).dev_mode);
    assert!(!Config::parse_from(["gateway", "--dev", "false"]).dev_mode);
}

#[test]
fn no_secret_means_the_development_secret_in_development_mode_only() {
    let secrets = with_secret(None).webhook_secrets().unwrap();
    assert!(secrets.is_development);
    assert_eq!(secrets.as_slices().count(), 1);
    assert_eq!(
        production(None).webhook_secrets().unwrap_err(),
        ConfigError::MissingWebhookSecret
    );
}

#[test]
fn outside_development_mode_short_or_placeholder_secrets_are_refused() {
    assert!(production(Some(GOOD)).webhook_secrets().is_ok());
    assert_eq!(
        production(Some(&GOOD[..31])).webhook_secrets().unwrap_err(),
        ConfigError::ShortWebhookSecret { entry: 1 }
    );
    assert!(production(Some(&GOOD[..32])).webhook_secrets().is_ok());
    for placeholder in [
        DEVELOPMENT_WEBHOOK_SECRET,
        "please-change-me-please-change-me-please",
        "REPLACE-ME-with-a-real-secret-of-32-bytes",
        "00000000000000000000000000000000000000",
    ] {
        assert_eq!(
            production(Some(&format!("{GOOD},{placeholder}")))
                .webhook_secrets()
                .unwrap_err(),
            ConfigError::PlaceholderWebhookSecret { entry: 2 },
            "{placeholder}"
        );
    }
    // Development mode takes what it is given.
    assert!(with_secret(Some("short")).webhook_secrets().is_ok());
}

#[test]
fn writes_need_api_keys_unless_opened_on_purpose_or_in_development_mode() {
    let mut config = production(Some(GOOD));
    assert_eq!(
        config.write_access().unwrap_err(),
        ConfigError::MissingApiKeys
    );
    config.open_writes = true;
    assert!(matches!(config.write_access(), Ok(WriteAccess::Open)));
    config.open_writes = false;
    config.api_keys = Some(format!("admin={}:products,orders", &GOOD[..24]));
    assert!(matches!(config.write_access(), Ok(WriteAccess::Keys(_))));
    config.api_keys = Some("admin=change-me-0123456789abcdef:products".into());
    assert!(matches!(
        config.write_access(),
        Err(ConfigError::ApiKeys(ApiKeysError::Placeholder { entry: 1 }))
    ));
    assert!(matches!(
        with_secret(None).write_access(),
        Ok(WriteAccess::Open)
    ));
}

#[test]
fn refusals_name_the_setting_and_how_to_make_a_value_never_the_value() {
    let secret = "a-short-secret-value";
    let refusals = [
        (
            production(Some(secret)).webhook_secrets().unwrap_err(),
            ["WEBHOOK_SECRET", "openssl rand"],
        ),
        (
            production(Some(GOOD)).write_access().unwrap_err(),
            ["API_KEYS", "OPEN_WRITES"],
        ),
    ];
    for (error, words) in refusals {
        let error = error.to_string();
        assert!(words.iter().all(|word| error.contains(word)), "{error}");
        assert!(!error.contains(secret), "{error}");
    }
}

#[test]
fn an_empty_secret_is_refused() {
    for raw in ["", "  ", "a,,b", "a,", ","] {
        assert_eq!(
            with_secret(Some(raw)).webhook_secrets().unwrap_err(),
            ConfigError::EmptyWebhookSecret,
            "{raw:?}"
        );
    }
}

#[test]
fn several_secrets_are_all_kept() {
    let secrets = with_secret(Some("old-secret, new-secret"))
        .webhook_secrets()
        .unwrap();
    let all: Vec<&[u8]> = secrets.as_slices().collect();
    assert_eq!(
        all,
        vec![b"old-secret".as_slice(), b"new-secret".as_slice()]
    );
    assert!(!secrets.is_development);
}

#[test]
fn debug_never_shows_secrets() {
    let config = with_secret(Some("s3cr3t-value"));
    assert!(!format!("{config:?}").contains("s3cr3t-value"));
    let secrets = config.webhook_secrets().unwrap();
    assert!(!format!("{secrets:?}").contains("s3cr3t-value"));
    let mut config = with_secret(None);
    config.api_keys = Some("admin=an-api-key-0123456789:products".into());
    assert!(!format!("{config:?}").contains("an-api-key-0123456789"));
    let keys = config.api_keys().unwrap().unwrap();
    assert!(!format!("{keys:?}").contains("an-api-key-0123456789"));
}

#[test]
fn access_control_is_off_unless_configured() {
    assert!(with_secret(None).api_keys().unwrap().is_none());
    let mut config = with_secret(None);
    config.api_keys = Some(String::new());
    assert!(config.api_keys().is_err());
}
