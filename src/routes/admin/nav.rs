//! The header every signed-in page shares: sections, tenant switcher, sign-out.

use super::{
    auth::{Admin, Membership},
    page::when,
};
use crate::{domain::keys, error::AppError, state::AppState};

/// How soon before its expiry a management key is announced on every page.
const MANAGEMENT_WARNING: time::Duration = time::Duration::days(7);

/// A management key of the tenant that stops working soon.
#[derive(Debug)]
pub struct ExpiringKey {
    pub id: String,
    pub name: String,
    pub expires: String,
}

/// Which part of the admin UI a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Keys,
    ServiceUsers,
    Webhooks,
    Policy,
    /// OAuth connections (grants).
    OAuthGrants,
    /// OAuth clients (registered and pre-registered).
    OAuthClients,
    Tenants,
    Accounts,
    /// The admin's own account.
    Account,
}

impl Section {
    /// Where the tenant switcher lands: the same section in the other tenant.
    fn path(self) -> &'static str {
        match self {
            Self::Keys => "/admin/api-keys",
            Self::ServiceUsers => "/admin/service-users",
            Self::Webhooks => "/admin/webhooks",
            Self::Policy => "/admin/policy",
            Self::OAuthGrants => "/admin/oauth-grants",
            Self::OAuthClients => "/admin/oauth-clients",
            Self::Tenants => "/admin/tenants",
            Self::Accounts => "/admin/accounts",
            Self::Account => "/admin/account",
        }
    }
}

/// Everything `admin/nav.html` shows.
#[derive(Debug)]
pub struct Nav {
    pub email: String,
    pub csrf: String,
    pub superadmin: bool,
    pub section: Section,
    /// The tenant the page is about (none on instance-wide pages).
    pub tenant: Option<String>,
    /// `(slug, label)` of every tenant the admin may switch to.
    pub tenants: Vec<(String, String)>,
    /// Management keys of the tenant about to expire, shown as a banner.
    pub expiring: Vec<ExpiringKey>,
}

impl Nav {
    pub fn new(
        admin: &Admin,
        section: Section,
        current: Option<&Membership>,
        memberships: &[Membership],
    ) -> Self {
        Self {
            email: admin.user.email.clone(),
            csrf: admin.user.csrf.clone(),
            superadmin: admin.user.superadmin,
            section,
            tenant: current.map(|m| m.tenant.slug.clone()),
            tenants: memberships
                .iter()
                .map(|m| {
                    (
                        m.tenant.slug.clone(),
                        format!("{} ({})", m.tenant.name, m.role.as_str()),
                    )
                })
                .collect(),
            expiring: Vec::new(),
        }
    }

    /// The header of a tenant's page, with a banner for each management key
    /// of the tenant that expires within seven days: every process using one
    /// fails after that, so every page says it.
    pub async fn of_tenant(
        state: &AppState,
        admin: &Admin,
        section: Section,
        current: &Membership,
        memberships: &[Membership],
    ) -> Result<Self, AppError> {
        let mut nav = Self::new(admin, section, Some(current), memberships);
        let now = state.now();
        let expiring = keys::management_expiring(
            state.pool(),
            &current.tenant.id,
            now,
            now + MANAGEMENT_WARNING,
        )
        .await?;
        nav.expiring = expiring
            .into_iter()
            .map(|k| ExpiringKey {
                expires: when(k.expires_at),
                id: k.id.to_string(),
                name: k.name,
            })
            .collect();
        Ok(nav)
    }

    pub fn switch_to(&self) -> &'static str {
        self.section.path()
    }

    /// The tenant query for links, `?tenant=slug`, or nothing.
    pub fn tenant_query(&self) -> String {
        self.tenant
            .as_deref()
            .map_or_else(String::new, |slug| format!("?tenant={slug}"))
    }

    pub fn is(&self, section: Section) -> bool {
        self.section == section
    }
}
