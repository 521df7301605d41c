//! What a key's changes tell the outside, decided here where the key's row
//! lives: the data of its webhook events (never its secret) and the emails
//! to its service user's owner. The `events` room only carries them out.

use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::KeyRow;
use crate::domain::{
    Actor, UnixTime,
    error::DomainResult,
    events::{
        notice::{Notice, RevocationNotice, RotationNotice},
        outbox::{self, AboutKey},
        webhooks,
    },
    tenancy::tenants::Tenant,
};

impl KeyRow {
    /// What a key event says about the key: never its secret.
    pub fn event_data(&self) -> serde_json::Value {
        serde_json::json!({
            "key_id": self.id,
            "service_user_id": self.service_user_id,
            "name": self.name,
            "hint": self.hint,
            "status": self.status,
            "expires_at": self.expires_at,
            "cutoff_at": self.cutoff_at,
            "revoked_reason": self.revoked_reason,
            "rotated_to": self.rotated_to,
        })
    }

    /// The key as a notice to its owner names it.
    pub fn about(&self) -> AboutKey<'_> {
        AboutKey {
            tenant_id: &self.tenant_id,
            key_id: &self.id,
            service_user_id: &self.service_user_id,
        }
    }
}

/// The owner's email and the `key.rotated` event, in the rotation's
/// transaction. No owner email: no email.
pub(super) async fn announce_rotation(
    tx: &mut Transaction<'_, Any>,
    tenant: &Tenant,
    old: &KeyRow,
    new: &KeyRow,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let notice = |owner: &outbox::Owner| {
        Some(Notice::Rotation(RotationNotice {
            tenant_name: tenant.name.clone(),
            service_user: owner.service_user.clone(),
            key_name: old.name.clone(),
            old_key_id: old.id.clone(),
            old_hint: old.hint.clone(),
            new_key_id: new.id.clone(),
            new_hint: new.hint.clone(),
            cutoff_at: old.cutoff_at.unwrap_or(old.expires_at),
            rotated_by: actor.describe(),
        }))
    };
    outbox::enqueue_for_owner(tx, old.about(), notice, now).await?;
    let data = serde_json::json!({"old": old.event_data(), "new": new.event_data()});
    webhooks::enqueue(tx, &tenant.id, "key.rotated", data, now).await
}

/// The owner's email, unless the owner revoked the key, and the
/// `key.revoked` event, in the revocation's transaction.
pub(super) async fn announce_revocation(
    tx: &mut Transaction<'_, Any>,
    tenant: &Tenant,
    key: &KeyRow,
    reason: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let notice = |owner: &outbox::Owner| {
        let by_owner =
            matches!(actor, Actor::User { email, .. } if email.eq_ignore_ascii_case(&owner.email));
        (!by_owner).then(|| {
            Notice::Revocation(RevocationNotice {
                tenant_name: tenant.name.clone(),
                service_user: owner.service_user.clone(),
                key_name: key.name.clone(),
                key_id: key.id.clone(),
                hint: key.hint.clone(),
                revoked_at: UnixTime::from(now),
                revoked_by: actor.describe(),
                reason: reason.to_owned(),
            })
        })
    };
    outbox::enqueue_for_owner(tx, key.about(), notice, now).await?;
    webhooks::enqueue(tx, &tenant.id, "key.revoked", key.event_data(), now).await
}
