//! Concurrent check-then-act in the admin UI: bursts of requests that race
//! for one single-use thing.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
};

both_engines! {
    async fn concurrent_posts_of_one_form_token_mint_exactly_one_key(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
        let form = vec![
            ("csrf", csrf_of(&page)),
            ("form_token", field(&page, "form_token")),
            ("tenant", "acme".to_owned()),
            ("service_user_id", su.clone()),
            ("name", "raced".to_owned()),
            ("expires_in_days", "30".to_owned()),
        ];
        let before = app.count("api_keys").await;
        let mut burst = JoinSet::new();
        for _ in 0..8 {
            let (client, url, form) = (client.clone(), app.url("/admin/api-keys"), form.clone());
            burst.spawn(async move { client.post(url).form(&form).send().await.expect("post").status() });
        }
        let statuses = burst.join_all().await;
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 7, "{statuses:?}");
        assert_eq!(app.count("api_keys").await, before + 1, "exactly one key minted");
        assert_eq!(app.count("form_tokens").await, 0, "the one token issued is spent");
    }

    async fn a_form_token_is_bound_to_its_account_and_stored_hashed(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        admin_user(&app, "other@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let (alice, bob) = (browser(), browser());
        sign_in(&app, &alice, "admin@acme.test", PASSWORD).await;
        sign_in(&app, &bob, "other@acme.test", PASSWORD).await;
        let page = alice.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
        let token = field(&page, "form_token");
        assert!(!app.db.dump().contains(&token), "only a hash of the token is stored");
        let bob_page = bob.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
        let form = [
            ("csrf", csrf_of(&bob_page)),
            ("form_token", token),
            ("tenant", "acme".to_owned()),
            ("service_user_id", su),
            ("name", "stolen".to_owned()),
        ];
        let before = app.count("api_keys").await;
        let res = bob.post(app.url("/admin/api-keys")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::CONFLICT, "another account's token spends nothing");
        assert_eq!(app.count("api_keys").await, before);
    }
}
