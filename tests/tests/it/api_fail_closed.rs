//! Secure by default, as an operator meets it: the real gateway binary refuses
//! to start without what an operator must set (a webhook secret of at least
//! 32 bytes that is no placeholder; API keys, unless writes are opened on
//! purpose), saying which setting and how to make a value, never echoing one;
//! and starts, loudly, in the explicit development mode or with open writes.

use std::time::Duration;

use tests::{
    gateway::WEBHOOK_SECRET,
    process::{CapturedOutput, ChildService, free_addr, run_to_exit},
};

/// The services' settings, pointing where nothing listens (the gateway
/// connects lazily, so it starts, or refuses to, without them), then `env`.
fn with_services_nowhere(env: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let nowhere = || format!("http://{}", free_addr());
    let mut all = vec![("CATALOG_URL", nowhere()), ("ORDER_URL", nowhere())];
    all.extend_from_slice(env);
    all
}

/// Runs the gateway with `env` (and no other gateway setting) until it exits;
/// returns what it wrote.
async fn refused_start(env: &[(&'static str, String)]) -> String {
    let mut all = with_services_nowhere(env);
    all.push(("LISTEN_ADDR", free_addr().to_string()));
    let output = CapturedOutput::new();
    let status = run_to_exit("gateway", &[], &all, &output, Duration::from_secs(30)).await;
    let text = output.text();
    assert!(
        !status.success(),
        "the gateway started with {env:?}:\n{text}"
    );
    text
}

/// Starts the gateway with `env`, stops it (it must exit 0); returns what
/// it wrote.
async fn started(env: &[(&'static str, String)]) -> String {
    let output = CapturedOutput::new();
    let env = with_services_nowhere(env);
    let gateway = ChildService::start_captured("gateway", &env, &output).await;
    assert!(gateway.terminate().await);
    output.text()
}

const KEY: &str = "6f1ed002ab5595859014ebf0951522d9";

#[tokio::test]
async fn without_a_webhook_secret_the_gateway_refuses_to_start_and_says_how_to_make_one() {
    let said = refused_start(&[("API_KEYS", format!("admin={KEY}:products,orders"))]).await;
    assert!(said.contains("WEBHOOK_SECRET is not set"), "{said}");
    assert!(said.contains("openssl rand -hex 32"), "{said}");
    assert!(said.contains("DEV_MODE=true"), "{said}");
}

#[tokio::test]
async fn a_short_or_placeholder_webhook_secret_is_refused_without_being_echoed() {
    let keys = ("API_KEYS", format!("admin={KEY}:products,orders"));
    let short = "only-twenty-bytes-xy";
    let said = refused_start(&[("WEBHOOK_SECRET", short.into()), keys.clone()]).await;
    assert!(said.contains("shorter than 32 bytes"), "{said}");
    assert!(!said.contains(short), "{said}");

    // The development secret, and a template's value, are known to everyone.
    for placeholder in [
        gateway::config::DEVELOPMENT_WEBHOOK_SECRET.to_owned(),
        "change-me-to-a-secret-of-at-least-32-bytes".to_owned(),
    ] {
        let rotation = format!("{WEBHOOK_SECRET},{placeholder}");
        let said = refused_start(&[("WEBHOOK_SECRET", rotation), keys.clone()]).await;
        assert!(said.contains("entry 2 is a placeholder"), "{said}");
        assert!(!said.contains(&placeholder), "{said}");
    }
}

#[tokio::test]
async fn without_api_keys_writes_stay_closed_unless_opened_on_purpose() {
    let said = refused_start(&[("WEBHOOK_SECRET", WEBHOOK_SECRET.into())]).await;
    assert!(said.contains("API_KEYS is not set"), "{said}");
    assert!(said.contains("OPEN_WRITES=true"), "{said}");

    let placeholder_key = "admin=replace-me-with-a-generated-key:products";
    let said = refused_start(&[
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("API_KEYS", placeholder_key.into()),
    ])
    .await;
    assert!(said.contains("API_KEYS entry 1"), "{said}");
    assert!(!said.contains("replace-me-with"), "{said}");
}

#[tokio::test]
async fn open_writes_and_development_mode_start_and_say_so_at_start() {
    let said = started(&[
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("OPEN_WRITES", "true".into()),
    ])
    .await;
    assert!(said.contains("OPEN_WRITES is on"), "{said}");

    // Nothing set at all: fine on a developer's machine, with warnings.
    let said = started(&[("DEV_MODE", "true".into())]).await;
    assert!(said.contains("DEV_MODE is on"), "{said}");
    assert!(said.contains("development secret"), "{said}");
}
