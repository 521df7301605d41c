//! The official SDK clients over a key whose rate admits one call: the
//! second call fails, and the client's error names the limit.

use serde_json::{Value, json};

use super::{
    Target,
    harness::{CliClient, Gateway},
};
use crate::{both_engines, helpers::TestApp};

const LIMIT: &str = "rate limit 1/min for this key exceeded";

/// The `limited` run of `client`: the first `whoami` passes, the second is
/// refused with a 429 whose error the client can show.
async fn second_call_refused(app: &TestApp, gateway: &Gateway, client: CliClient) -> Value {
    let su = app
        .create_service_user(&format!("{client:?}-limited"))
        .await;
    let key = app
        .create_key(&su, json!({"rate_limit": {"per_minute": 1}}))
        .await;
    let report = client
        .run(&gateway.mcp(), "limited", key["key"].as_str().expect("key"))
        .await;
    assert_eq!(report["initialize"], "ok", "{client:?}: {report}");
    assert_eq!(report["calls"][0]["ok"], true, "{client:?}: {report}");
    let refused = &report["calls"][1];
    assert_eq!(refused["ok"], false, "{client:?}: {report}");
    refused.clone()
}

both_engines! {
    async fn sdk_clients_see_a_429_naming_the_limit(app: TestApp) {
        let target = Target::rmcp_demo().await;
        let gateway = Gateway::start(&app, &target.base).await;
        let ts = second_call_refused(&app, &gateway, CliClient::Ts).await;
        assert_eq!(ts["status"], 429, "{ts}");
        assert!(ts["error"].as_str().expect("error").contains(LIMIT), "the TS SDK's error: {ts}");
        // The Python SDK's error does not carry the body; the answer it got does.
        let py = second_call_refused(&app, &gateway, CliClient::Py).await;
        assert_eq!(py["status"], 429, "{py}");
        assert!(py["body"].as_str().expect("body").contains(LIMIT), "{py}");
        gateway.stop().await;
    }
}
