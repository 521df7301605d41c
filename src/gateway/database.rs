//! Database mode (the default): keys verified against the Keysmith
//! database directly. The database must exist and be current: the gateway
//! never creates or migrates one, and never creates a pepper.

use anyhow::Context;
use keysmith_verify::{Peppers, TenantScope};

use crate::{
    config::Config,
    db::{Db, existing},
    domain::tenancy::tenants,
};

/// The database and the peppers, checked; `scope`'s tenant must exist.
pub async fn open(config: &Config, scope: &TenantScope) -> anyhow::Result<(Db, Peppers)> {
    crate::files::check_pepper_file(&config.pepper_file, config.allow_readable_pepper)?;
    let db = existing::open(&config.database_url).await?;
    let text = std::fs::read_to_string(&config.pepper_file).with_context(|| {
        format!(
            "failed to read the pepper file {} (KEYSMITH_PEPPER_FILE): the gateway uses the server's, it never creates one",
            config.pepper_file.display()
        )
    })?;
    let peppers =
        Peppers::parse(&text).context("the pepper file is invalid (KEYSMITH_PEPPER_FILE)")?;
    if let TenantScope::Only(slug) = scope {
        tenants::find_by_slug(&db.pool, slug)
            .await?
            .with_context(|| format!("no tenant with the slug `{slug}` (--tenant)"))?;
    }
    Ok((db, peppers))
}
