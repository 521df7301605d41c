//! Cross-instance cache invalidation on PostgreSQL: the server announces every
//! revoke and rotation with `NOTIFY keysmith_key_changes, '<key id>'` in the
//! same transaction; each layer listening drops that key from its cache at once.
//! The cache TTL remains the backstop (e.g. while the listener reconnects).

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::layer::VerifyLayer;

/// The channel the server notifies on.
pub const CHANNEL: &str = "keysmith_key_changes";

/// Listens on `database_url` (a `postgres://` URL) and invalidates `layer`'s
/// cache for every announced key. Runs until the task is aborted.
pub async fn listen_postgres(
    database_url: &str,
    layer: VerifyLayer,
) -> Result<JoinHandle<()>, sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => layer.invalidate_key(notification.payload()),
                // The connection dropped and was re-established: anything
                // announced meanwhile is unknown, so forget everything.
                Ok(None) => layer.invalidate_all(),
                Err(err) => {
                    tracing::warn!(error = %err, "key change listener failed; retrying");
                    layer.invalidate_all();
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }))
}
