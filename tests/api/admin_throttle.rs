//! Sign-in throttling under bursts, its back-off, and whose address counts.

use std::sync::atomic::Ordering;

use keysmith::domain::{people::accounts::Role, people::sign_in_throttle};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::{
    admin::{PASSWORD, admin_user, browser},
    both_engines,
    helpers::TestApp,
};

const EMAIL: &str = "admin@acme.test";

fn checks(app: &TestApp) -> u64 {
    app.state.metrics.password_checks.load(Ordering::Relaxed)
}

async fn attempts(app: &TestApp, email: &str) -> i64 {
    sign_in_throttle::attempts(
        app.state.pool(),
        &sign_in_throttle::account_subject(email),
        app.now(),
    )
    .await
    .expect("attempts")
}

/// Signs in from a fresh client, optionally with an `X-Forwarded-For`.
async fn attempt(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> StatusCode {
    let mut req = browser()
        .post(app.url("/admin/sign-in"))
        .form(&[("email", email), ("password", password)]);
    if let Some(xff) = forwarded {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.expect("sign in").status()
}

both_engines! {
    async fn a_burst_at_the_last_allowed_attempt_checks_one_password_and_counts_every_attempt(app: TestApp) {
        admin_user(&app, EMAIL, Role::Admin).await;
        for _ in 0..4 {
            assert_eq!(attempt(&app, EMAIL, "wrong guess", None).await, StatusCode::UNAUTHORIZED);
        }
        let before = checks(&app);
        let mut burst = JoinSet::new();
        for i in 0..11 {
            let (url, password) = (app.url("/admin/sign-in"), if i == 5 { PASSWORD } else { "wrong guess" });
            burst.spawn(async move {
                let res = browser().post(url).form(&[("email", EMAIL), ("password", password)]).send().await.expect("post");
                (password == PASSWORD, res.status())
            });
        }
        let outcomes = burst.join_all().await;
        let signed_in: Vec<_> = outcomes.iter().filter(|(_, s)| *s == StatusCode::SEE_OTHER).collect();
        assert_eq!(checks(&app) - before, 1, "one attempt was left, so one password was checked: {outcomes:?}");
        // The right password gets in only if it was the one attempt left; a
        // wrong one that took that place locks it out like every other.
        assert!(signed_in.len() <= 1 && signed_in.iter().all(|(right, _)| *right), "{outcomes:?}");
        assert_eq!(attempts(&app, EMAIL).await, 4 + 11 - signed_in.len() as i64, "every attempt counted, none erased");
        // Locked now: even the right password is refused, unchecked.
        let before = checks(&app);
        assert_eq!(attempt(&app, EMAIL, PASSWORD, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(checks(&app), before, "no password is checked while locked");
    }

    async fn a_locked_account_refuses_the_right_password_in_a_burst(app: TestApp) {
        admin_user(&app, EMAIL, Role::Admin).await;
        for _ in 0..5 {
            attempt(&app, EMAIL, "wrong guess", None).await;
        }
        let before = checks(&app);
        let mut burst = JoinSet::new();
        for i in 0..11 {
            let (url, password) = (app.url("/admin/sign-in"), if i == 5 { PASSWORD } else { "wrong guess" });
            burst.spawn(async move {
                browser().post(url).form(&[("email", EMAIL), ("password", password)]).send().await.expect("post").status()
            });
        }
        let statuses = burst.join_all().await;
        assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
        assert_eq!(checks(&app), before);
        assert_eq!(attempts(&app, EMAIL).await, 16);
    }

    async fn back_off_grows_with_further_attempts_but_is_capped(app: TestApp) {
        admin_user(&app, EMAIL, Role::Admin).await;
        for _ in 0..5 {
            attempt(&app, EMAIL, "wrong guess", None).await;
        }
        // 14 minutes on, 10 more attempts: the lock now lasts 10 minutes from
        // here, past the end of the first window.
        app.clock.advance(time::Duration::minutes(14));
        for _ in 0..10 {
            attempt(&app, EMAIL, "wrong guess", None).await;
        }
        app.clock.advance(time::Duration::minutes(3));
        assert_eq!(attempt(&app, EMAIL, PASSWORD, None).await, StatusCode::UNAUTHORIZED, "still backing off");
        // That attempt (the 16th) pushed the lock to 11 minutes from then; however
        // many more come, never more than 15 minutes from the last one.
        for _ in 0..30 {
            attempt(&app, EMAIL, "wrong guess", None).await;
        }
        app.clock.advance(time::Duration::minutes(15) + time::Duration::seconds(1));
        assert_eq!(attempt(&app, EMAIL, PASSWORD, None).await, StatusCode::SEE_OTHER, "the cap bounds the lock-out");
        assert_eq!(attempts(&app, EMAIL).await, 0, "the successful attempt took itself back");

        // Old rows are purged by the scheduler.
        assert!(app.count("sign_in_attempts").await > 0);
        app.clock.advance(time::Duration::minutes(16));
        app.tick().await;
        assert_eq!(app.count("sign_in_attempts").await, 0);
    }

    async fn without_trusted_proxies_forwarded_headers_do_not_evade_the_address_limit(app: TestApp) {
        admin_user(&app, EMAIL, Role::Admin).await;
        for i in 0..20 {
            let status = attempt(&app, &format!("nobody{i}@acme.test"), "wrong guess", Some(&format!("198.51.100.{i}"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(attempt(&app, EMAIL, PASSWORD, Some("203.0.113.9")).await, StatusCode::UNAUTHORIZED, "the peer address is locked");
    }

    async fn behind_a_trusted_proxy_each_client_has_its_own_address_limit(app: TestApp) {
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_TRUSTED_PROXIES", "127.0.0.0/8, ::1".to_owned())], None).await;
        admin_user(&app, EMAIL, Role::Admin).await;
        for i in 0..20 {
            attempt(&app, &format!("nobody{i}@acme.test"), "wrong guess", Some("1.1.1.1, 198.51.100.1")).await;
        }
        assert_eq!(attempt(&app, EMAIL, PASSWORD, Some("198.51.100.1")).await, StatusCode::UNAUTHORIZED, "that client is locked");
        assert_eq!(attempt(&app, EMAIL, PASSWORD, Some("198.51.100.2")).await, StatusCode::SEE_OTHER, "another client behind the same proxy is not");
        // A client cannot choose its address by prepending to the header: the
        // proxy's own (rightmost) entry decides.
        assert_eq!(attempt(&app, EMAIL, PASSWORD, Some("198.51.100.2, 198.51.100.1")).await, StatusCode::UNAUTHORIZED);
    }
}

both_engines! {
    async fn when_every_password_slot_is_busy_sign_in_says_503_without_hashing_or_counting(app: TestApp) {
        admin_user(&app, EMAIL, Role::Admin).await;
        let slots = app.state.password_slots.clone();
        let held = slots.clone().acquire_many_owned(u32::try_from(slots.available_permits()).expect("few")).await.expect("permits");
        let before = checks(&app);
        let res = browser().post(app.url("/admin/sign-in")).form(&[("email", EMAIL), ("password", PASSWORD)]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "1");
        assert!(res.text().await.expect("html").contains("busy"));
        assert_eq!(checks(&app), before, "nothing hashed");
        assert_eq!(attempts(&app, EMAIL).await, 0, "a busy refusal is not an attempt");
        drop(held);
        assert_eq!(attempt(&app, EMAIL, PASSWORD, None).await, StatusCode::SEE_OTHER);
    }

    async fn oversized_credentials_are_refused_before_any_work(app: TestApp) {
        admin_user(&app, EMAIL, Role::Admin).await;
        let before = checks(&app);
        let long_password = "p".repeat(1025);
        let long_email = format!("{}@acme.test", "a".repeat(250));
        for (email, password) in [(EMAIL, long_password.as_str()), (long_email.as_str(), PASSWORD)] {
            let res = browser().post(app.url("/admin/sign-in")).form(&[("email", email), ("password", password)]).send().await.expect("post");
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let html = res.text().await.expect("html");
            assert!(html.contains("at most 254 characters") && !html.contains(&long_email), "a clear message, nothing echoed");
        }
        assert_eq!(checks(&app), before, "nothing hashed");
        assert_eq!(app.count("sign_in_attempts").await, 0, "nothing recorded");
    }
}
