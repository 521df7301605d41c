//! `keysmith healthcheck`: the image's HEALTHCHECK, so the slim runtime image
//! needs no curl. It asks the server's own `/healthz` on `KEYSMITH_BIND`
//! (an unspecified address such as `0.0.0.0` is asked on loopback).

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};

/// Answers within this or the container counts as unhealthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn probe(bind: SocketAddr) -> anyhow::Result<()> {
    let mut target = bind;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
        .context("healthcheck client")?;
    let url = format!("http://{target}/healthz");
    let res = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer (KEYSMITH_BIND is {bind})"))?;
    if !res.status().is_success() {
        bail!("{url} answered {}", res.status());
    }
    Ok(())
}
