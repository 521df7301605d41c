//! First run: the single-use setup link creates the first superadmin, once.

use reqwest::StatusCode;

use crate::{
    admin::{account, browser, sign_in},
    both_engines,
    helpers::TestApp,
};

const PASSWORD: &str = "a long first password";

async fn issue(app: &TestApp) -> String {
    app.state
        .first_run
        .issue_if_needed(app.state.pool(), app.now())
        .await
        .expect("query")
        .expect("no admin yet: a link")
        .expose()
        .to_owned()
}

async fn post(
    app: &TestApp,
    token: &str,
    email: &str,
    password: &str,
    again: &str,
) -> reqwest::Response {
    browser()
        .post(app.url("/admin/setup"))
        .form(&[
            ("token", token),
            ("email", email),
            ("password", password),
            ("password_again", again),
        ])
        .send()
        .await
        .expect("post")
}

async fn admins(app: &TestApp) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT email, is_superadmin FROM admin_users")
        .fetch_all(app.state.pool())
        .await
        .expect("admins")
}

both_engines! {
    async fn the_setup_link_creates_the_first_superadmin_once(app: TestApp) {
        let root = browser().get(app.url("/")).send().await.expect("get /");
        assert_eq!(root.status(), StatusCode::SEE_OTHER);
        assert_eq!(root.headers()["location"], "/admin/api-keys");

        let token = issue(&app).await;
        let page = browser().get(app.url(&format!("/admin/setup?token={token}"))).send().await.expect("get");
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.expect("html").contains("Create the superadmin"));
        let wrong = browser().get(app.url("/admin/setup?token=guess")).send().await.expect("get");
        assert_eq!(wrong.status(), StatusCode::NOT_FOUND);

        // Refused forms create nothing and leave the link working.
        for (email, password, again) in [("root@acme.test", PASSWORD, "another long password"), ("root@acme.test", "short", "short"), ("not-an-address", PASSWORD, PASSWORD)] {
            let res = post(&app, &token, email, password, again).await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{email} {password}");
            assert!(!res.text().await.expect("html").contains(password), "a typed password is never echoed");
        }
        let cross_site = browser().post(app.url("/admin/setup")).header("sec-fetch-site", "cross-site")
            .form(&[("token", token.as_str()), ("email", "evil@acme.test"), ("password", PASSWORD), ("password_again", PASSWORD)])
            .send().await.expect("post");
        assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
        assert!(admins(&app).await.is_empty());

        let res = post(&app, &token, "Root@Acme.test", PASSWORD, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(admins(&app).await, [("root@acme.test".to_owned(), 1)]);
        let again = post(&app, &token, "second@acme.test", PASSWORD, PASSWORD).await;
        assert_eq!(again.status(), StatusCode::NOT_FOUND, "single use");
        assert_eq!(admins(&app).await.len(), 1);
        let client = browser();
        let signed_in = sign_in(&app, &client, "root@acme.test", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "the new superadmin signs in");
        assert!(app.state.first_run.issue_if_needed(app.state.pool(), app.now()).await.expect("query").is_none(), "no link once an admin exists");
    }

    async fn the_link_expires_and_a_burst_creates_one_account(app: TestApp) {
        let token = issue(&app).await;
        app.clock.advance(time::Duration::minutes(61));
        assert_eq!(post(&app, &token, "late@acme.test", PASSWORD, PASSWORD).await.status(), StatusCode::NOT_FOUND);

        let token = issue(&app).await;
        let burst: Vec<_> = (0..8)
            .map(|i| {
                let (app_url, token) = (app.url("/admin/setup"), token.clone());
                tokio::spawn(async move {
                    let email = format!("root{i}@acme.test");
                    browser().post(app_url).form(&[("token", token.as_str()), ("email", email.as_str()), ("password", PASSWORD), ("password_again", PASSWORD)])
                        .send().await.expect("post").status()
                })
            })
            .collect();
        let mut created = 0;
        for task in burst {
            if task.await.expect("task") == StatusCode::SEE_OTHER {
                created += 1;
            }
        }
        assert_eq!(created, 1, "one request wins the link");
        assert_eq!(admins(&app).await.len(), 1);
    }

    async fn no_link_when_an_admin_exists(app: TestApp) {
        account(&app, "existing@acme.test", false).await;
        assert!(app.state.first_run.issue_if_needed(app.state.pool(), app.now()).await.expect("query").is_none());
    }
}
