//! `/admin/account/totp`: set up a second factor. The page shows a fresh
//! secret as a QR code (SVG drawn here, no outside service) and as text; a
//! code from it turns TOTP on and shows the recovery codes, once.

use askama::Template;
use axum::{Form, extract::State, http::HeaderMap, response::Response};
use qrcode::{QrCode, render::svg};
use serde::Deserialize;

use super::{
    auth::Admin,
    nav::{Nav, Section},
    page::{PageError, render},
    return_to,
};
use crate::{
    domain::{UnixTime, people::totp},
    error::AppError,
    state::AppState,
};

#[derive(Template)]
#[template(path = "admin/totp.html")]
struct TotpPage<'a> {
    nav: Nav,
    csrf: &'a str,
    enabled: bool,
    required: bool,
    /// While enrolling: the QR code and the secret as text.
    qr_svg: String,
    secret: String,
    /// Right after enrolment: the recovery codes, shown this once.
    recovery_codes: Vec<String>,
    error: Option<String>,
    /// Where "Continue" leads once TOTP is on: the authorization request
    /// that sent the person here, or the admin home.
    continue_to: String,
    /// An authorization request waits for this set-up.
    returning: bool,
}

async fn page(
    state: &AppState,
    admin: &Admin,
    (recovery_codes, continue_to): (Vec<String>, Option<String>),
    error: Option<String>,
) -> Result<Response, PageError> {
    let status = totp::status(state.pool(), &admin.user.user_id).await?;
    let (qr_svg, secret) = if status.enabled {
        (String::new(), String::new())
    } else {
        let secret =
            totp::start_enrolment(state.pool(), &state.peppers, &admin.user.user_id).await?;
        let qr = QrCode::new(secret.uri(&admin.user.email).as_bytes())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("qr code: {e}")))?;
        let svg = qr
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        (svg, secret.base32())
    };
    let memberships = admin.memberships(state).await?;
    let returning = continue_to.is_some()
        || return_to::peek(&admin.session, UnixTime::from(state.now()))
            .await?
            .is_some();
    Ok(render(&TotpPage {
        nav: Nav::new(admin, Section::Account, None, &memberships),
        csrf: &admin.user.csrf,
        enabled: status.enabled,
        required: state.config.require_totp || status.required_by_tenant,
        qr_svg,
        secret,
        recovery_codes,
        error,
        continue_to: continue_to.unwrap_or_else(|| "/admin/api-keys".to_owned()),
        returning,
    }))
}

pub async fn show(State(state): State<AppState>, admin: Admin) -> Result<Response, PageError> {
    page(&state, &admin, (Vec::new(), None), None).await
}

/// Never echoed back into the page.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    code: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    mut admin: Admin,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&headers, &form.csrf)?;
    let confirmed = totp::confirm_enrolment(
        state.pool(),
        &state.peppers,
        &admin.user.user_id,
        &form.code,
        &admin.actor(),
        state.now(),
    )
    .await
    .map_err(AppError::from);
    match confirmed {
        Ok((codes, epoch)) => {
            admin.renew(epoch).await?;
            // The codes are shown once, here; "Continue" then goes back to
            // the authorization request that made this detour, if any.
            let next = return_to::take(&admin.session, UnixTime::from(state.now())).await?;
            page(&state, &admin, (codes, next), None).await
        }
        Err(err @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = err.status();
            let page = page(&state, &admin, (Vec::new(), None), Some(err.to_string())).await?;
            Ok(axum::response::IntoResponse::into_response((status, page)))
        }
        Err(err) => Err(PageError(err)),
    }
}
