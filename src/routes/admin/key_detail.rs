//! `/admin/api-keys/{id}`: one key, its lineage, audit trail, tool-call
//! histogram (server-side SVG) and owner emails, with Rotate, Revoke and an
//! edit of its limits.

use crate::domain::KeyId;
use askama::Template;
use axum::{
    extract::{Path, Query, State},
    response::Response,
};
use keysmith_verify::allowlist::{Allowlist, Pattern};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    form_token,
    limits_form::LimitsForm,
    nav::{Nav, Section},
    page::{PageError, render, when},
};
use crate::{
    domain::events::outbox::{self, NotificationRecord},
    domain::{
        audit::usage::{self, ToolUsage},
        audit::{self, AuditEvent, AuditKind},
        keys::{self, KeyRow},
        tenancy::service_users,
    },
    state::AppState,
};

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    pub tenant: Option<String>,
    pub cursor: Option<String>,
    /// The audit trail's filter (`admin`, `calls`, `refusals`; else all).
    pub kind: Option<String>,
}

/// One bar pair of the histogram, in SVG coordinates.
pub struct Bar {
    pub tool: String,
    pub y: usize,
    pub calls: i64,
    pub denied: i64,
    pub errors: i64,
    /// Median and 99th percentile durations, readable (`"850 µs"`).
    pub p50: String,
    pub p99: String,
    pub calls_width: i64,
    pub denied_width: i64,
}

const BAR_AREA: i64 = 360;
const ROW: usize = 28;
/// The histogram covers today and the 29 days before it.
const HISTOGRAM_DAYS: i64 = 30;

fn histogram(usage: &[ToolUsage]) -> Vec<Bar> {
    let max = usage.iter().map(|u| u.calls).max().unwrap_or(1).max(1);
    usage
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, u)| Bar {
            tool: u.tool.clone(),
            y: i * ROW,
            calls: u.calls,
            denied: u.denied,
            errors: u.errors,
            p50: readable_micros(u.p50_us),
            p99: readable_micros(u.p99_us),
            calls_width: (u.calls * BAR_AREA / max).max(1),
            denied_width: u.denied * BAR_AREA / max,
        })
        .collect()
}

/// An allowlist as the key page says it: `every` when not named, `none`
/// when named empty (least privilege), else its patterns.
fn described<P: Pattern>(list: &Allowlist<P>, every: &str) -> String {
    match list.patterns() {
        None => every.to_owned(),
        Some([]) => "none".to_owned(),
        Some(patterns) => patterns
            .iter()
            .map(Pattern::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn readable_micros(us: Option<i64>) -> String {
    match us {
        None => "n/a".to_owned(),
        Some(us) if us < 1_000 => format!("{us} µs"),
        Some(us) if us < 1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        Some(us) => format!("{:.1} s", us as f64 / 1e6),
    }
}

#[derive(Template)]
#[template(path = "admin/key_detail.html")]
struct DetailPage<'a> {
    nav: Nav,
    admin: &'a Admin,
    current: &'a Membership,
    key: &'a KeyRow,
    status: &'static str,
    service_user: String,
    created: String,
    expires: String,
    cutoff: Option<String>,
    revoked: Option<String>,
    last_used: String,
    tools: String,
    resources: String,
    prompts: String,
    events: Vec<(String, AuditEvent)>,
    kind: AuditKind,
    next_cursor: Option<String>,
    bars: Vec<Bar>,
    svg_height: usize,
    notifications: Vec<(String, NotificationRecord)>,
    can_manage: bool,
    rotate_token: String,
    /// The limits edit: as stored, or as typed when it was refused.
    limits: LimitsForm,
    limits_error: Option<String>,
    limits_legend: &'static str,
    limits_id: &'static str,
}

/// What the key page shows of a refused limits edit.
pub struct Refused {
    pub form: LimitsForm,
    pub error: String,
}

pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<KeyId>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, PageError> {
    page(&state, &admin, &id, query, None).await
}

/// The key page; with `refused`, the limits edit shows what was typed and why
/// it was refused.
pub async fn page(
    state: &AppState,
    admin: &Admin,
    id: &KeyId,
    query: DetailQuery,
    refused: Option<Refused>,
) -> Result<Response, PageError> {
    let (current, memberships) = admin.tenant(state, query.tenant.as_deref()).await?;
    let key = keys::get(state.pool(), &current.tenant.id, id).await?;
    let now = state.now();
    let owner = service_users::get(state.pool(), &current.tenant.id, &key.service_user_id).await?;
    let kind = AuditKind::parse(query.kind.as_deref())?;
    let page = audit::list_for_key(
        state.pool(),
        &current.tenant.id,
        id,
        kind,
        query.cursor.as_deref(),
        25,
    )
    .await?;
    let since = usage::window_start(now, HISTOGRAM_DAYS);
    let allowed = key.allowed();
    let usage = usage::tool_usage(state.pool(), &current.tenant.id, id, since).await?;
    let notifications = outbox::list_for_key(state.pool(), &current.tenant.id, id).await?;
    let bars = histogram(&usage);
    let can_manage = current.role.can_manage_keys();
    let (limits, limits_error) = match refused {
        Some(Refused { form, error }) => (form, Some(error)),
        None => (LimitsForm::of(&key.limits()), None),
    };
    Ok(render(&DetailPage {
        nav: Nav::of_tenant(state, admin, Section::Keys, &current, &memberships).await?,
        admin,
        current: &current,
        status: key.status_at(now).as_str(),
        service_user: owner.name,
        created: when(key.created_at),
        expires: when(key.expires_at),
        // A revoked key works until nothing: its old cutoff would mislead.
        cutoff: key.cutoff_at.filter(|_| key.revoked_at.is_none()).map(when),
        revoked: key.revoked_at.map(|at| {
            format!(
                "{} ({})",
                when(at),
                key.revoked_reason.as_deref().unwrap_or("no reason")
            )
        }),
        last_used: key.last_used_at.map_or_else(|| "never".to_owned(), when),
        tools: described(allowed.tools(), "every tool"),
        resources: described(allowed.resources(), "every resource"),
        prompts: described(allowed.prompts(), "every prompt"),
        events: page.items.into_iter().map(|e| (when(e.at), e)).collect(),
        kind,
        next_cursor: page.next_cursor,
        svg_height: bars.len().max(1) * ROW,
        bars,
        notifications: notifications
            .into_iter()
            .map(|n| (when(n.created_at), n))
            .collect(),
        can_manage,
        rotate_token: if can_manage {
            form_token::issue(state, admin).await?
        } else {
            String::new()
        },
        limits,
        limits_error,
        limits_legend: "Limits (empty: none)",
        limits_id: "edit",
        key: &key,
    }))
}
