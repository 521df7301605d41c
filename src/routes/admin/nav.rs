//! The header every signed-in page shares: sections, tenant switcher, sign-out.

use super::auth::{Admin, Membership};

/// Which part of the admin UI a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Keys,
    ServiceUsers,
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
        }
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
