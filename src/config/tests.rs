use super::*;

fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

#[test]
fn defaults_work_on_a_laptop() {
    let c = config(&[]).expect("defaults");
    assert_eq!(c.database_url.engine(), Engine::Sqlite);
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert!(c.pepper_file.ends_with("pepper"));
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert!(c.smtp_url.is_none());
}

#[test]
fn errors_name_the_variable() {
    let err = config(&[("KEYSMITH_BIND", "nope")]).expect_err("bad bind");
    assert!(err.to_string().contains("KEYSMITH_BIND"));
    let err = config(&[("KEYSMITH_TRUSTED_PROXIES", "10.0.0.0/33")]).expect_err("bad cidr");
    assert!(err.to_string().contains("KEYSMITH_TRUSTED_PROXIES"));
    let err = config(&[("KEYSMITH_DATABASE_URL", "mysql://x")]).expect_err("bad db");
    assert!(err.to_string().contains("KEYSMITH_DATABASE_URL"));
    for (name, value) in [
        ("KEYSMITH_HEADER_TIMEOUT_SECS", "0"),
        ("KEYSMITH_BODY_TIMEOUT_SECS", "1.5"),
        ("KEYSMITH_BODY_TIMEOUT_SECS", "86401"),
        ("KEYSMITH_MAX_CONNECTIONS", "0"),
        ("KEYSMITH_MAX_CONNECTIONS", "-3"),
        ("KEYSMITH_FORWARD_AUTH_TOKEN", "short"),
    ] {
        let err = config(&[(name, value)]).expect_err("bad connection limit");
        assert!(err.to_string().contains(name), "{name}={value}: {err}");
    }
}

#[test]
fn tenant_caps_have_defaults_and_bounds() {
    let c = config(&[]).expect("defaults");
    assert_eq!(
        (c.max_service_users_per_tenant, c.max_keys_per_tenant),
        (10_000, 50_000)
    );
    assert_eq!(c.max_concurrent_requests_per_tenant, 4);
    assert_eq!(c.oauth_unused_client_hours, 24);
    let c = config(&[
        ("KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", "3"),
        ("KEYSMITH_MAX_KEYS_PER_TENANT", "7"),
    ])
    .expect("valid");
    assert_eq!(
        (c.max_service_users_per_tenant, c.max_keys_per_tenant),
        (3, 7)
    );
    for (name, value) in [
        ("KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", "0"),
        ("KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", "1000001"),
        ("KEYSMITH_MAX_KEYS_PER_TENANT", "-1"),
        ("KEYSMITH_MAX_KEYS_PER_TENANT", "many"),
        ("KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT", "0"),
        ("KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT", "65"),
        ("KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS", "0"),
        ("KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS", "8761"),
    ] {
        let err = config(&[(name, value)]).expect_err("bad cap");
        assert!(err.to_string().contains(name), "{name}={value}: {err}");
    }
}

#[test]
fn connection_limits_have_defaults_and_can_be_set() {
    assert_eq!(
        config(&[]).expect("defaults").connections,
        ConnectionLimits::default()
    );
    let c = config(&[
        ("KEYSMITH_HEADER_TIMEOUT_SECS", "5"),
        ("KEYSMITH_BODY_TIMEOUT_SECS", "120"),
        ("KEYSMITH_MAX_CONNECTIONS", "900"),
    ])
    .expect("valid");
    assert_eq!(
        c.connections,
        ConnectionLimits {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(120),
            max_connections: Some(900),
        }
    );
}

#[test]
fn debug_hides_passwords() {
    let c = config(&[
        (
            "KEYSMITH_DATABASE_URL",
            "postgres://app:hunter2@db/keysmith",
        ),
        ("KEYSMITH_SMTP_URL", "smtp://u:mailpass@mx:25"),
    ])
    .expect("valid");
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("mailpass"),
        "{shown}"
    );
    assert!(shown.contains("postgres://app:***@db/keysmith"));
}

#[test]
fn intervals_retention_and_webhook_cap_have_defaults_bounds_and_say_what_they_want() {
    let c = config(&[]).expect("defaults");
    assert_eq!(
        (c.scheduler_interval, c.webhook_interval, c.webhook_timeout),
        (
            Duration::from_secs(60),
            Duration::from_secs(5),
            Duration::from_secs(10)
        )
    );
    assert_eq!(
        (c.audit_retention_days, c.max_webhooks_per_tenant),
        (90, 10)
    );
    let c = config(&[
        ("KEYSMITH_WEBHOOK_TIMEOUT_SECS", "60"),
        ("KEYSMITH_AUDIT_RETENTION_DAYS", "36500"),
        ("KEYSMITH_MAX_WEBHOOKS_PER_TENANT", "1000"),
    ])
    .expect("the bounds themselves");
    assert_eq!(c.webhook_timeout, Duration::from_secs(60));
    assert_eq!(
        (c.audit_retention_days, c.max_webhooks_per_tenant),
        (36_500, 1_000)
    );
    for (name, value, wanted) in [
        (
            "KEYSMITH_SCHEDULER_INTERVAL_SECS",
            "0",
            "a positive number of seconds",
        ),
        (
            "KEYSMITH_WEBHOOK_INTERVAL_SECS",
            "-5",
            "a positive number of seconds",
        ),
        (
            "KEYSMITH_WEBHOOK_TIMEOUT_SECS",
            "61",
            "a whole number of seconds from 1 to 60",
        ),
        (
            "KEYSMITH_AUDIT_RETENTION_DAYS",
            "0",
            "a whole number of days from 1 to 36500",
        ),
        (
            "KEYSMITH_MAX_WEBHOOKS_PER_TENANT",
            "1001",
            "a whole number from 1 to 1000",
        ),
        (
            "KEYSMITH_HEADER_TIMEOUT_SECS",
            "x",
            "a whole number of seconds from 1 to 86400",
        ),
    ] {
        let err = config(&[(name, value)]).expect_err("out of bounds");
        assert_eq!(
            err.to_string(),
            format!("{name} must be {wanted}"),
            "{name}={value}"
        );
    }
}

#[test]
fn flags_are_on_only_for_one_true_or_yes() {
    for (value, on) in [
        ("1", true),
        ("true", true),
        ("yes", true),
        ("0", false),
        ("no", false),
        ("TRUE", false),
    ] {
        let c = config(&[
            ("KEYSMITH_REQUIRE_TOTP", value),
            ("KEYSMITH_WEBHOOK_ALLOW_PRIVATE", value),
        ])
        .expect("valid");
        assert_eq!(
            (c.require_totp, c.webhook_allow_private),
            (on, on),
            "{value}"
        );
    }
}
