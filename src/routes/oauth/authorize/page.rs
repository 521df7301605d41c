//! The consent page and the page that re-enters the request from this origin.

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use url::Url;

use super::request::AuthorizeRequest;
use crate::{
    domain::{form_tokens, tenants::Tenant},
    error::AppError,
    routes::admin::{
        auth::{Admin, Membership},
        page::{PageError, notice, render},
        service_user_picker::Picker,
    },
    state::AppState,
};

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    client_origin: &'a str,
    redirect_origin: String,
    resource: &'a str,
    tenant_name: &'a str,
    tenant_slug: &'a str,
    email: &'a str,
    csrf: &'a str,
    form_token: String,
    carried: &'a [(String, String)],
    picker: Picker,
    scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "oauth/continue.html")]
struct ContinuePage<'a> {
    target: &'a str,
}

/// A page that loads `target` (a path of this origin) at once.
pub fn continue_here(target: &str) -> Response {
    render(&ContinuePage { target })
}

/// The origin codes are sent to, as a CSP source and as shown: a web
/// origin, or `scheme:` for an app's private-use scheme (RFC 8252 §7.1).
pub fn redirect_origin(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => "'none'".to_owned(),
    }
}

/// The membership that may answer requests for `tenant`: an owner or admin
/// of it (a viewer is refused; someone of another tenant sees a 404).
pub async fn approver(
    state: &AppState,
    admin: &Admin,
    tenant: &Tenant,
) -> Result<Membership, Response> {
    let membership = admin
        .tenant(state, Some(&tenant.slug))
        .await
        .map_err(|_| {
            notice(
                StatusCode::NOT_FOUND,
                "Not Found",
                format!(
                    "{} has no role in this tenant. Sign out and sign in as an owner or admin of it.",
                    admin.user.email
                ),
            )
        })?
        .0;
    if !membership.role.can_manage_keys() {
        return Err(PageError(AppError::Forbidden(
            "viewers cannot connect applications; ask an owner or admin of this tenant",
        ))
        .into_response());
    }
    Ok(membership)
}

/// The consent page for a checked request.
pub async fn consent(
    state: &AppState,
    admin: &Admin,
    tenant: &Tenant,
    request: &AuthorizeRequest,
) -> Result<Response, Response> {
    approver(state, admin, tenant).await?;
    let page_error = |err: AppError| PageError(err).into_response();
    let picker = Picker::load(state, &tenant.id).await.map_err(page_error)?;
    let form_token = form_tokens::issue(state.pool(), &admin.user.user_id, state.now())
        .await
        .map_err(page_error)?;
    let redirect_origin = redirect_origin(&request.redirect_uri);
    let page = ConsentPage {
        client_name: &request.client.name,
        client_origin: &request.client.origin,
        redirect_origin: redirect_origin.clone(),
        resource: &request.resource,
        tenant_name: &tenant.name,
        tenant_slug: &tenant.slug,
        email: &admin.user.email,
        csrf: &admin.user.csrf,
        form_token,
        carried: &request.carried,
        picker,
        scopes: request.scopes.iter().map(ToString::to_string).collect(),
    };
    let mut response = render(&page);
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; form-action 'self' {redirect_origin}; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::redirect_origin;

    #[test]
    fn redirect_origins_as_csp_sources() {
        assert_eq!(
            redirect_origin("http://127.0.0.1:33418/callback?x=1"),
            "http://127.0.0.1:33418"
        );
        assert_eq!(
            redirect_origin("https://claude.ai/api/mcp/auth_callback"),
            "https://claude.ai"
        );
        assert_eq!(
            redirect_origin("cursor://anysphere.cursor-mcp/oauth/callback"),
            "cursor:"
        );
        assert_eq!(redirect_origin("not a url"), "'none'");
    }
}
