//! `POST {issuer}/authorize`: the person's answer. The request is checked
//! again from the form (nothing is trusted from the page), the form token
//! is spent once (a re-POST cannot approve twice), and the client is sent
//! back with a code, or with `access_denied`.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};

use super::{pairs, refused, request};
use crate::{
    domain::{
        audit,
        caps::TenantCaps,
        form_tokens,
        oauth::{
            self,
            grants::{self, Approval},
        },
    },
    error::AppError,
    routes::{
        admin::{
            auth::Admin,
            page::{PageError, notice},
            service_user_picker,
        },
        oauth::issuer_tenant,
    },
    state::AppState,
};
use keysmith_verify::scope::ScopeSet;

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

pub async fn answer(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    admin: Result<Admin, Response>,
    body: Bytes,
) -> Response {
    match respond(&state, &slug, &headers, admin, &body).await {
        Ok(response) | Err(response) => response,
    }
}

async fn respond(
    state: &AppState,
    slug: &str,
    headers: &HeaderMap,
    admin: Result<Admin, Response>,
    body: &[u8],
) -> Result<Response, Response> {
    let page_error = |err: AppError| PageError(err).into_response();
    let tenant = issuer_tenant(state, slug).await.map_err(|_| {
        notice(
            StatusCode::NOT_FOUND,
            "Not Found",
            "There is no such tenant.".into(),
        )
    })?;
    let form = pairs(body);
    let carried: Vec<(String, String)> = form
        .iter()
        .filter(|(name, _)| request::CARRIED.contains(&name.as_str()))
        .cloned()
        .collect();
    let admin = match admin {
        Ok(admin) => admin,
        // The session ended while the page was open: sign in, then the
        // request is shown again (nothing was answered).
        Err(rejection) if super::signed_out(&rejection) => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&carried)
                .finish();
            return Err(super::to_sign_in(slug, &query, headers));
        }
        Err(rejection) => return Err(rejection),
    };
    admin
        .check_csrf(headers, field(&form, "csrf"))
        .map_err(IntoResponse::into_response)?;
    let request = request::check(state, &tenant, &carried)
        .await
        .map_err(refused)?;
    super::page::approver(state, &admin, &tenant).await?;
    let now = state.now();
    let spent = form_tokens::spend(
        state.pool(),
        &admin.user.user_id,
        field(&form, "form_token"),
        now,
    )
    .await
    .map_err(page_error)?;
    if !spent {
        return Err(notice(
            StatusCode::CONFLICT,
            "Already answered",
            "This connection request was already answered (or the page is too old). Start again from the application."
                .into(),
        ));
    }
    let issuer = oauth::issuer(&state.config.public_url, &tenant.slug);
    let back = |params: &[(&str, &str)]| {
        Redirect::to(&request::redirect_to(
            &request.redirect_uri,
            request.state.as_deref(),
            &issuer,
            params,
        ))
        .into_response()
    };
    let actor = admin.actor();
    if field(&form, "decision") != "approve" {
        let reason = format!(
            "{} ({}) for {}",
            request.client.name, request.client.client_id, request.resource
        );
        let mut event = audit::NewAuditEvent::tenant_action(
            &tenant.id,
            &actor,
            "oauth.consent",
            Some(&reason),
            now,
        );
        event.outcome = "denied";
        audit::record(state.pool(), event)
            .await
            .map_err(page_error)?;
        return Ok(back(&[
            ("error", "access_denied"),
            ("error_description", "the person denied the request"),
        ]));
    }
    let approved = approved_scopes(&form, &request.scopes)
        .map_err(|message| page_error(AppError::validation(message)))?;
    let service_user = service_user_picker::chosen(
        state,
        &tenant.id,
        field(&form, "service_user_id"),
        field(&form, "service_user"),
    )
    .await
    .map_err(page_error)?
    .ok_or_else(|| page_error(AppError::validation("choose the service user it acts as")))?;
    let approval = Approval {
        client_id: &request.client.client_id,
        client_name: &request.client.name,
        client_origin: &request.client.origin,
        service_user_id: &service_user,
        scopes: &approved,
        redirect_uri: &request.redirect_uri,
        resource: &request.resource,
        code_challenge: &request.code_challenge,
    };
    let cap = TenantCaps::of(&state.config).keys;
    let done = grants::approve(
        state.pool(),
        &state.peppers,
        &tenant,
        approval,
        cap,
        &actor,
        now,
    )
    .await
    .map_err(page_error)?;
    Ok(back(&[("code", done.code.expose())]))
}

/// The scopes the person ticked: each one the client asked for, at least one.
fn approved_scopes(form: &[(String, String)], asked: &ScopeSet) -> Result<ScopeSet, &'static str> {
    let ticked: Vec<&str> = form
        .iter()
        .filter(|(name, _)| name == "approved_scope")
        .map(|(_, value)| value.as_str())
        .collect();
    let approved = ScopeSet::parse(&ticked.join(" "))
        .map_err(|_| "a ticked scope is not one the application asked for")?;
    if approved
        .iter()
        .any(|scope| !asked.iter().any(|a| a == scope))
    {
        return Err("a ticked scope is not one the application asked for");
    }
    if approved.is_empty() {
        return Err("tick at least one scope to approve, or deny the request");
    }
    Ok(approved)
}
