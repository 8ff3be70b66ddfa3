//! The admin app (`<org>.<admin base>`).
//!
//! Every route is declared once in [`routes`] with its [`Access`]; the router is built from
//! that table only, and each route is wrapped in [`guard`], the one authorisation check:
//! - no live session → to the login host (the page reveals nothing);
//! - a page the member's role does not reach → 404 (never confirming it exists), an action →
//!   403, both decided by [`proplink_domain::authorize::Grants`].
//!
//! Handlers receive the signed-in [`Member`] as an extension.

mod account;
mod audit_log;
mod dashboard;
mod form;
mod invitation;
mod settings;
mod setup;
mod users;

use crate::error::{WebError, current_request_id};
use crate::session;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use proplink_db::organisation::{OrgStatus, Organisation};
use proplink_db::{Actor, TenantContext, access};
use proplink_domain::authorize::{Decision, Grants, Placement};
use proplink_domain::permissions::Permission;
use proplink_domain::{ActorKind, Channel};
use uuid::Uuid;

/// Who may reach a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the hand-off from the login host, invitation links, the development mailbox.
    Public,
    /// Any signed-in member of this organisation (their own account pages, the dashboard).
    Member,
    /// A signed-in member whose role grants this organisation-wide permission.
    Permission(&'static str),
}

/// The signed-in member of this request's organisation.
#[derive(Debug, Clone)]
pub struct Member {
    pub session_id: Uuid,
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub is_owner: bool,
    pub grants: Grants,
    pub org: Organisation,
    pub modules: Vec<String>,
    pub setup_done: bool,
}

impl Member {
    /// The tenant context for this member's writes: they are the actor in the audit log.
    pub fn ctx(&self) -> TenantContext {
        TenantContext {
            org: self.org.id,
            actor: Actor {
                id: Some(self.user_id),
                kind: ActorKind::Staff,
                name: Some(self.name.clone()),
            },
            channel: Channel::Admin,
            request_id: current_request_id(),
        }
    }

    fn permission(key: &str) -> Result<Permission, WebError> {
        Permission::parse(key)
            .ok_or_else(|| WebError::Internal(format!("unknown permission {key}")))
    }

    /// Does the member's role grant this organisation-wide permission?
    pub fn can(&self, key: &str) -> bool {
        Permission::parse(key)
            .is_some_and(|p| self.grants.decide(&p, Placement::Organisation) == Decision::Allowed)
    }

    /// For pages and records: 404 when the member cannot read this kind of thing at all, 403
    /// when they can see it but not do this.
    pub fn require(&self, key: &str) -> Result<(), WebError> {
        match self
            .grants
            .decide(&Self::permission(key)?, Placement::Organisation)
        {
            Decision::Allowed => Ok(()),
            Decision::NotFound => Err(WebError::NotFound),
            Decision::Forbidden => Err(WebError::Forbidden),
        }
    }

    /// For actions: 403 when not allowed.
    pub fn require_action(&self, key: &str) -> Result<(), WebError> {
        match self
            .grants
            .decide_action(&Self::permission(key)?, Placement::Organisation)
        {
            Decision::Allowed => Ok(()),
            _ => Err(WebError::Forbidden),
        }
    }

    pub fn read_only(&self) -> bool {
        self.org.status == OrgStatus::ReadOnly
    }
}

/// One entry of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every admin page's frame shows: the organisation, the person, the navigation.
pub struct Shell {
    pub org_name: String,
    pub user_name: String,
    pub nav: Vec<NavItem>,
    pub read_only: bool,
    pub flash: Option<String>,
}

impl Shell {
    /// The frame for `member`, with `current` (an href) marked as the current page.
    pub fn new(member: &Member, current: &str) -> Self {
        let mut nav = vec![NavItem {
            href: "/dashboard",
            label: "Dashboard",
            current: false,
        }];
        for (key, href, label) in MODULE_PAGES {
            if member.modules.iter().any(|m| m == key) {
                nav.push(NavItem {
                    href,
                    label,
                    current: false,
                });
            }
        }
        if member.can("settings.read") || member.can("user.read") || member.can("role.read") {
            nav.push(NavItem {
                href: "/settings",
                label: "Settings",
                current: false,
            });
        }
        if member.can("audit.read") {
            nav.push(NavItem {
                href: "/audit",
                label: "Audit log",
                current: false,
            });
        }
        for item in &mut nav {
            item.current = item.href == current;
        }
        Self {
            org_name: member.org.name.clone(),
            user_name: member.name.clone(),
            nav,
            read_only: member.read_only(),
            flash: None,
        }
    }

    pub fn with_flash(mut self, flash: Option<String>) -> Self {
        self.flash = flash;
        self
    }
}

/// (module key, page, navigation label).
pub const MODULE_PAGES: [(&str, &str, &str); 4] = [
    ("block", "/block", "Block"),
    ("facilities", "/facilities", "Facilities"),
    ("hrb", "/hrb", "HRB"),
    ("lettings", "/lettings", "Lettings"),
];

/// Every admin route and who may reach it. The router is built from this table alone.
pub fn routes() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
    use Access::*;
    vec![
        ("/", Public, get(dashboard::root)),
        ("/auth/handoff", Public, get(account::handoff)),
        (
            "/invitation/{token}",
            Public,
            get(invitation::show).post(invitation::accept),
        ),
        (
            "/invitation/{token}/code",
            Public,
            post(invitation::send_code),
        ),
        ("/sign-out", Member, post(account::sign_out)),
        ("/dashboard", Member, get(dashboard::dashboard)),
        ("/block", Member, get(dashboard::module_page)),
        ("/facilities", Member, get(dashboard::module_page)),
        ("/hrb", Member, get(dashboard::module_page)),
        ("/lettings", Member, get(dashboard::module_page)),
        (
            "/account/organisations",
            Member,
            get(account::organisations).post(account::switch),
        ),
        ("/account/security", Member, get(account::security)),
        (
            "/account/security/totp",
            Member,
            get(account::totp_form).post(account::totp_enable),
        ),
        (
            "/account/security/email-codes",
            Member,
            post(account::use_email_codes),
        ),
        (
            "/account/security/backup-codes",
            Member,
            post(account::new_backup_codes),
        ),
        (
            "/account/security/devices/{id}/revoke",
            Member,
            post(account::revoke_device),
        ),
        (
            "/account/security/password",
            Member,
            post(account::change_password),
        ),
        (
            "/account/security/sign-out-everywhere",
            Member,
            post(account::sign_out_everywhere),
        ),
        (
            "/setup",
            Permission("settings.update_organisation"),
            get(setup::show).post(setup::save),
        ),
        ("/settings", Member, get(settings::index)),
        (
            "/settings/organisation",
            Permission("settings.read"),
            get(settings::organisation).post(settings::save_organisation),
        ),
        (
            "/settings/modules",
            Permission("settings.read"),
            get(settings::modules).post(settings::save_modules),
        ),
        (
            "/settings/roles",
            Permission("role.read"),
            get(settings::roles),
        ),
        (
            "/settings/roles/new",
            Permission("role.create"),
            get(settings::new_role).post(settings::create_role),
        ),
        (
            "/settings/roles/{id}",
            Permission("role.read"),
            get(settings::role).post(settings::update_role),
        ),
        (
            "/settings/roles/{id}/archive",
            Permission("role.archive"),
            post(settings::archive_role),
        ),
        ("/settings/users", Permission("user.read"), get(users::list)),
        (
            "/settings/users/invite",
            Permission("user.invite"),
            get(users::invite_form).post(users::invite),
        ),
        (
            "/settings/users/bulk",
            Permission("user.invite"),
            get(users::bulk_form).post(users::bulk_preview),
        ),
        (
            "/settings/users/bulk/confirm",
            Permission("user.invite"),
            post(users::bulk_confirm),
        ),
        (
            "/settings/users/{id}",
            Permission("user.read"),
            get(users::show),
        ),
        (
            "/settings/users/{id}/access",
            Permission("user.update"),
            post(users::change_access),
        ),
        (
            "/settings/users/{id}/deactivate",
            Permission("user.deactivate"),
            post(users::deactivate),
        ),
        (
            "/settings/users/{id}/reactivate",
            Permission("user.reactivate"),
            post(users::reactivate),
        ),
        (
            "/settings/users/{id}/resend",
            Permission("user.invite"),
            post(users::resend),
        ),
        (
            "/settings/users/{id}/revoke",
            Permission("user.invite"),
            post(users::revoke),
        ),
        (
            "/settings/users/{id}/reset-credentials",
            Permission("user.reset_credentials"),
            post(users::reset_credentials),
        ),
        ("/audit", Permission("audit.read"), get(audit_log::page)),
        (
            "/audit/export.csv",
            Permission("audit.export"),
            get(audit_log::export),
        ),
    ]
}

/// The route table as (path, access), for the coverage test.
pub fn route_table() -> Vec<(&'static str, Access)> {
    routes().into_iter().map(|(p, a, _)| (p, a)).collect()
}

pub fn router(state: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for (path, access, methods) in routes() {
        let guarded = methods.route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), access),
            guard,
        ));
        router = router.route(path, guarded);
    }
    router
}

/// Where an anonymous visitor is sent: the login host. An htmx request gets a 401 that tells
/// htmx to go there.
fn to_sign_in(state: &AppState, req: &Request) -> Response {
    let url = state.settings().url(&state.settings().login_host(), "/");
    let secure = state.settings().tls;
    let mut resp = if req.headers().contains_key("hx-request") {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else {
        Redirect::to(&url).into_response()
    };
    // A cookie that no longer opens a session is dropped.
    if session::read(req.headers(), session::ADMIN_SESSION).is_some() {
        resp.headers_mut().append(
            header::SET_COOKIE,
            session::clear(session::ADMIN_SESSION, secure),
        );
    }
    resp
}

/// The signed-in member of this organisation, if the request carries a live session.
pub(crate) async fn load_member(
    state: &AppState,
    org: &Organisation,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Member>, WebError> {
    let Some(hash) = session::read(headers, session::ADMIN_SESSION)
        .and_then(|t| proplink_auth::links::hash_token(&t))
    else {
        return Ok(None);
    };
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Admin,
        request_id: current_request_id(),
    };
    let Some(found) = access::live_member_session(state.db(), &ctx, &hash, state.now()).await?
    else {
        return Ok(None);
    };
    Ok(Some(Member {
        session_id: found.session.session_id,
        membership_id: found.session.membership_id,
        user_id: found.session.user_id,
        email: found.session.email,
        name: found.session.name,
        is_owner: found.session.is_owner,
        grants: found.grants,
        org: org.clone(),
        modules: found.modules,
        setup_done: found.setup_done,
    }))
}

/// The one authorisation check, around every admin route.
async fn guard(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let Some(org) = req.extensions().get::<Organisation>().cloned() else {
        return WebError::NotFound.into_response();
    };
    let headers = req.headers().clone();
    let member = match load_member(&state, &org, &headers).await {
        Ok(Some(m)) => m,
        Ok(None) => return to_sign_in(&state, &req),
        Err(e) => return e.into_response(),
    };
    if let Access::Permission(key) = access {
        let reading = matches!(*req.method(), Method::GET | Method::HEAD);
        let decided = if reading {
            member.require(key)
        } else {
            member.require_action(key)
        };
        if let Err(e) = decided {
            return e.into_response();
        }
    }
    req.extensions_mut().insert(member);
    next.run(req).await
}
