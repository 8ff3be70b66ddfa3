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
mod approval_settings;
mod audit_log;
mod bank_account_pages;
mod bill_pages;
mod buildings;
mod dashboard;
mod documents;
mod financial_settings;
pub(crate) mod form;
mod imports;
mod invitation;
mod leases;
mod maintenance;
mod money;
pub(crate) mod money_pdf;
pub(crate) mod operations;
mod payment_pages;
mod receipt_batch_pages;
mod residents;
pub(crate) use operations::{human_size, parse_document};
pub(crate) use records::uk_date;
mod people;
mod portfolio;
mod records;
mod search;
mod service_categories;
mod settings;
mod setup;
mod site_money;
mod subject_access;
mod ticket_settings;
mod tickets;
mod units;
mod users;
mod vendors;

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

/// One entry of the navigation; a group (Portfolio, People) has children and no page.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
    pub children: Vec<NavItem>,
}

impl NavItem {
    fn page(href: &'static str, label: &'static str) -> Self {
        Self {
            href,
            label,
            current: false,
            children: Vec::new(),
        }
    }
}

/// A page in a navigation group: (permission to read, page, label).
type GroupPage = (&'static str, &'static str, &'static str);

/// (navigation group, its pages).
const RECORD_PAGES: [(&str, &[GroupPage]); 3] = [
    (
        "Portfolio",
        &[
            ("estate.read", "/estates", "Estates"),
            ("site.read", "/sites", "Sites"),
            ("unit.read", "/units", "Units"),
        ],
    ),
    (
        "People",
        &[
            ("contact.read", "/contacts", "Contacts"),
            ("vendor.read", "/vendors", "Vendors"),
        ],
    ),
    (
        "Operations",
        &[
            ("ticket.read", "/tickets", "Tickets"),
            ("issue.read", "/issues", "Issues"),
            ("work_order.read", "/work-orders", "Work orders"),
            ("maintenance.read", "/maintenance", "Compliance"),
        ],
    ),
];

/// What every admin page's frame shows: the organisation, the person, the navigation.
pub struct Shell {
    pub org_name: String,
    pub user_name: String,
    pub nav: Vec<NavItem>,
    pub read_only: bool,
    pub flash: Option<String>,
    /// What the header's search box holds (the search page fills it in).
    pub search: String,
}

impl Shell {
    /// The frame for `member`, with `current` (an href) marked as the current page.
    pub fn new(member: &Member, current: &str) -> Self {
        let mut nav = vec![NavItem::page("/dashboard", "Dashboard")];
        for (group, pages) in RECORD_PAGES {
            let children: Vec<NavItem> = pages
                .iter()
                .filter(|(key, ..)| member.can(key))
                .map(|&(_, href, label)| NavItem {
                    current: href == current,
                    ..NavItem::page(href, label)
                })
                .collect();
            if !children.is_empty() {
                nav.push(NavItem {
                    children,
                    ..NavItem::page("", group)
                });
            }
        }
        for (key, href, label) in MODULE_PAGES {
            if member.modules.iter().any(|m| m == key) {
                nav.push(NavItem::page(href, label));
            }
        }
        if member.can("settings.read") || member.can("user.read") || member.can("role.read") {
            nav.push(NavItem::page("/settings", "Settings"));
        }
        if member.can("audit.read") {
            nav.push(NavItem::page("/audit", "Audit log"));
        }
        for item in &mut nav {
            item.current = !item.href.is_empty() && item.href == current;
        }
        Self {
            org_name: member.org.name.clone(),
            user_name: member.name.clone(),
            nav,
            read_only: member.read_only(),
            flash: None,
            search: String::new(),
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
            "/account/delegations",
            Member,
            get(approval_settings::delegations).post(approval_settings::add_delegation),
        ),
        (
            "/account/delegations/{id}/revoke",
            Member,
            post(approval_settings::revoke_delegation),
        ),
        (
            "/settings/financial",
            Permission("ledger.read"),
            get(financial_settings::page),
        ),
        (
            "/settings/financial/accounts",
            Permission("ledger.read"),
            post(financial_settings::add_account),
        ),
        (
            "/settings/financial/accounts/{id}",
            Permission("ledger.read"),
            post(financial_settings::account_action),
        ),
        (
            "/settings/financial/roles",
            Permission("ledger.read"),
            post(financial_settings::set_role),
        ),
        (
            "/settings/financial/tax-rates",
            Permission("ledger.read"),
            post(financial_settings::add_rate),
        ),
        (
            "/settings/financial/tax-rates/{id}",
            Permission("ledger.read"),
            post(financial_settings::rate_action),
        ),
        (
            "/settings/approval-chains",
            Permission("workflow.read"),
            get(approval_settings::page).post(approval_settings::add),
        ),
        (
            "/settings/approval-chains/{id}/archive",
            Permission("workflow.read"),
            post(approval_settings::archive),
        ),
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
            "/settings/organisation/logo",
            Permission("settings.read"),
            post(settings::save_logo).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::UPLOAD_BODY,
            )),
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
            "/settings/tickets",
            Permission("settings.read"),
            get(ticket_settings::page),
        ),
        (
            "/settings/tickets/categories",
            Permission("settings.read"),
            post(ticket_settings::add_category),
        ),
        (
            "/settings/tickets/categories/{key}",
            Permission("settings.read"),
            post(ticket_settings::save_category),
        ),
        (
            "/settings/tickets/categories/{key}/archive",
            Permission("settings.read"),
            post(ticket_settings::archive_category),
        ),
        (
            "/settings/tickets/categories/{key}/restore",
            Permission("settings.read"),
            post(ticket_settings::restore_category),
        ),
        (
            "/settings/tickets/rules",
            Permission("settings.read"),
            post(ticket_settings::add_rule),
        ),
        (
            "/settings/tickets/rules/{id}/delete",
            Permission("settings.read"),
            post(ticket_settings::delete_rule),
        ),
        (
            "/settings/tickets/rules/{id}/up",
            Permission("settings.read"),
            post(ticket_settings::rule_up),
        ),
        (
            "/settings/tickets/rules/{id}/down",
            Permission("settings.read"),
            post(ticket_settings::rule_down),
        ),
        (
            "/settings/service-categories",
            Permission("settings.read"),
            get(service_categories::list).post(service_categories::add),
        ),
        (
            "/settings/service-categories/{key}",
            Permission("settings.read"),
            post(service_categories::save),
        ),
        (
            "/settings/service-categories/{key}/archive",
            Permission("settings.read"),
            post(service_categories::archive),
        ),
        (
            "/settings/service-categories/{key}/restore",
            Permission("settings.read"),
            post(service_categories::restore),
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
            "/settings/users/{id}/approval-limit",
            Permission("user.update"),
            post(users::set_approval_limit),
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
        // Data import (Settings → Data import). Imports touch any site, so the handlers also
        // refuse a member whose scope is not all sites (see `imports`).
        (
            "/imports",
            Permission("data_import.import"),
            get(imports::page)
                .post(imports::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    imports::UPLOAD_BODY_LIMIT,
                )),
        ),
        (
            "/imports/template/{kind}",
            Permission("data_import.import"),
            get(imports::template),
        ),
        (
            "/imports/{id}",
            Permission("data_import.import"),
            get(imports::show),
        ),
        (
            "/imports/{id}/file",
            Permission("data_import.import"),
            get(imports::original_file),
        ),
        (
            "/imports/{id}/progress",
            Permission("data_import.import"),
            get(imports::progress),
        ),
        (
            "/imports/{id}/confirm",
            Permission("data_import.import"),
            post(imports::confirm),
        ),
        (
            "/imports/{id}/revert",
            Permission("data_import.import"),
            post(imports::revert),
        ),
        (
            "/imports/{id}/cancel",
            Permission("data_import.import"),
            post(imports::cancel),
        ),
        // Search: any member; what they find is limited by their role and scope.
        ("/search", Member, get(search::page)),
        ("/search/live", Member, get(search::live)),
        // Portfolio. List exports are bulk copies of data, so they need `data_import.export`
        // (Managers, Accountants and administrators have it; Read Only members do not).
        (
            "/estates",
            Permission("estate.read"),
            get(portfolio::estates),
        ),
        (
            "/estates/export.csv",
            Permission("data_import.export"),
            get(portfolio::export_estates),
        ),
        (
            "/estates/new",
            Permission("estate.create"),
            get(portfolio::new_estate).post(portfolio::create_estate),
        ),
        (
            "/estates/{id}",
            Permission("estate.read"),
            get(portfolio::estate),
        ),
        (
            "/estates/{id}/edit",
            Permission("estate.update"),
            get(portfolio::edit_estate).post(portfolio::update_estate),
        ),
        (
            "/estates/{id}/archive",
            Permission("estate.archive"),
            post(portfolio::archive_estate),
        ),
        (
            "/estates/{id}/restore",
            Permission("estate.restore"),
            post(portfolio::restore_estate),
        ),
        ("/sites", Permission("site.read"), get(portfolio::sites)),
        (
            "/sites/export.csv",
            Permission("data_import.export"),
            get(portfolio::export_sites),
        ),
        (
            "/sites/new",
            Permission("site.create"),
            get(portfolio::new_site).post(portfolio::create_site),
        ),
        ("/sites/{id}", Permission("site.read"), get(portfolio::site)),
        (
            "/sites/{id}/map",
            Permission("site.read"),
            get(portfolio::site_map),
        ),
        // The address look-up on every form with an address; the forms carry the permissions.
        (
            "/addresses/suggest",
            Member,
            get(portfolio::address_suggestions),
        ),
        (
            "/sites/{id}/edit",
            Permission("site.update"),
            get(portfolio::edit_site).post(portfolio::update_site),
        ),
        (
            "/sites/{id}/archive",
            Permission("site.archive"),
            post(portfolio::archive_site),
        ),
        (
            "/sites/{id}/restore",
            Permission("site.restore"),
            post(portfolio::restore_site),
        ),
        (
            "/sites/{id}/delete",
            Permission("site.force_delete"),
            get(portfolio::confirm_delete_site).post(portfolio::delete_site),
        ),
        (
            "/sites/{id}/buildings/new",
            Permission("building.create"),
            get(buildings::new_building).post(buildings::create_building),
        ),
        (
            "/sites/{id}/spaces/new",
            Permission("building.create"),
            get(buildings::new_space).post(buildings::create_space),
        ),
        (
            "/sites/{id}/spaces/{space}/archive",
            Permission("building.archive"),
            post(buildings::archive_space),
        ),
        (
            "/sites/{id}/spaces/{space}/restore",
            Permission("building.restore"),
            post(buildings::restore_space),
        ),
        (
            "/sites/{id}/units/new",
            Permission("unit.create"),
            get(units::new_unit).post(units::create_unit),
        ),
        (
            "/buildings/{id}",
            Permission("building.read"),
            get(buildings::show),
        ),
        (
            "/buildings/{id}/edit",
            Permission("building.update"),
            get(buildings::edit_building).post(buildings::update_building),
        ),
        (
            "/buildings/{id}/archive",
            Permission("building.archive"),
            post(buildings::archive_building),
        ),
        (
            "/buildings/{id}/restore",
            Permission("building.restore"),
            post(buildings::restore_building),
        ),
        ("/units", Permission("unit.read"), get(units::list)),
        (
            "/units/export.csv",
            Permission("data_import.export"),
            get(units::export),
        ),
        ("/units/{id}", Permission("unit.read"), get(units::show)),
        (
            "/units/{id}/financials",
            Member,
            get(money::unit_financials),
        ),
        (
            "/units/{id}/invoices/new",
            Member,
            get(money::new_invoice).post(money::create_invoice),
        ),
        (
            "/units/{id}/receipts/new",
            Member,
            get(money::new_receipt).post(money::create_receipt),
        ),
        (
            "/units/{id}/credit-notes/new",
            Member,
            get(money::new_credit).post(money::create_credit),
        ),
        ("/units/{id}/statement", Member, get(money::statement)),
        (
            "/sites/{id}/financials",
            Member,
            get(site_money::site_financials),
        ),
        ("/sites/{id}/aged-debt", Member, get(site_money::aged_debt)),
        (
            "/sites/{id}/trial-balance",
            Member,
            get(site_money::trial_balance),
        ),
        (
            "/sites/{id}/income-expenditure",
            Member,
            get(site_money::income_expenditure),
        ),
        ("/sites/{id}/periods", Member, post(site_money::add_period)),
        (
            "/sites/{id}/periods/{period}/{action}",
            Member,
            post(site_money::period_lock),
        ),
        (
            "/sites/{id}/journals/new",
            Member,
            get(site_money::new_journal).post(site_money::create_journal),
        ),
        ("/journals/{id}", Member, get(site_money::journal)),
        (
            "/journals/{id}/{action}",
            Member,
            post(site_money::journal_action),
        ),
        ("/invoices/{id}", Member, get(money::invoice)),
        (
            "/invoices/{id}/edit",
            Member,
            get(money::edit_invoice).post(money::update_invoice),
        ),
        ("/invoices/{id}/pdf", Member, get(money_pdf::invoice_pdf)),
        ("/credit-notes/{id}/pdf", Member, get(money_pdf::credit_pdf)),
        ("/receipts/{id}/pdf", Member, get(money_pdf::receipt_pdf)),
        (
            "/units/{id}/statement.pdf",
            Member,
            get(money_pdf::statement_pdf),
        ),
        (
            "/invoices/{id}/{action}",
            Member,
            post(money::invoice_action),
        ),
        ("/receipts/{id}", Member, get(money::receipt)),
        (
            "/sites/{id}/bills/new",
            Member,
            get(bill_pages::new_bill)
                .post(bill_pages::create_bill)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::uploads::UPLOAD_BODY,
                )),
        ),
        ("/bills/{id}", Member, get(bill_pages::bill)),
        (
            "/bills/{id}/edit",
            Member,
            get(bill_pages::edit_bill)
                .post(bill_pages::update_bill)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::uploads::UPLOAD_BODY,
                )),
        ),
        ("/bills/{id}/document", Member, get(bill_pages::document)),
        (
            "/bank-accounts",
            Permission("bank_account.read"),
            get(bank_account_pages::page).post(bank_account_pages::add),
        ),
        (
            "/bank-accounts/{id}",
            Permission("bank_account.read"),
            get(bank_account_pages::account),
        ),
        (
            "/bank-accounts/{id}/{action}",
            Permission("bank_account.read"),
            post(bank_account_pages::archive),
        ),
        (
            "/bills/{id}/pay",
            Member,
            get(payment_pages::pay_form).post(payment_pages::pay_bill),
        ),
        (
            "/bills/{id}/{action}",
            Member,
            post(bill_pages::bill_action),
        ),
        (
            "/payments",
            Permission("payment.read"),
            get(payment_pages::page),
        ),
        (
            "/payments/new",
            Permission("payment.read"),
            get(payment_pages::new_run).post(payment_pages::schedule),
        ),
        (
            "/payments/runs/{id}",
            Permission("payment.read"),
            get(payment_pages::run),
        ),
        (
            "/payments/runs/{id}/file",
            Permission("payment.read"),
            get(payment_pages::run_file),
        ),
        (
            "/payments/runs/{id}/{action}",
            Permission("payment.read"),
            post(payment_pages::run_action),
        ),
        (
            "/supplier-payments/{id}",
            Member,
            get(payment_pages::payment),
        ),
        (
            "/supplier-payments/{id}/{action}",
            Member,
            post(payment_pages::payment_action),
        ),
        ("/creditors", Member, get(payment_pages::creditors)),
        (
            "/vendors/{id}/statement",
            Permission("bill.read"),
            get(payment_pages::vendor_statement),
        ),
        (
            "/sites/{id}/receipt-batches/new",
            Member,
            get(receipt_batch_pages::new_batch).post(receipt_batch_pages::create_batch),
        ),
        (
            "/receipt-batches/{id}",
            Member,
            get(receipt_batch_pages::batch),
        ),
        (
            "/receipts/{id}/{action}",
            Member,
            post(money::receipt_action),
        ),
        ("/credit-notes/{id}", Member, get(money::credit)),
        (
            "/credit-notes/{id}/{action}",
            Member,
            post(money::credit_action),
        ),
        (
            "/units/{id}/edit",
            Permission("unit.update"),
            get(units::edit_unit).post(units::update_unit),
        ),
        (
            "/units/{id}/archive",
            Permission("unit.archive"),
            post(units::archive_unit),
        ),
        (
            "/units/{id}/restore",
            Permission("unit.restore"),
            post(units::restore_unit),
        ),
        (
            "/units/{id}/leases/new",
            Permission("lease.create"),
            get(leases::new_lease).post(leases::create_lease),
        ),
        // A change of ownership ends the current lease (an update) and continues its terms.
        (
            "/units/{id}/ownership",
            Permission("lease.update"),
            get(leases::ownership_form).post(leases::change_ownership),
        ),
        // Who lives in a unit is part of the unit's record.
        (
            "/units/{id}/occupants/new",
            Permission("unit.update"),
            get(leases::new_occupant).post(leases::create_occupant),
        ),
        (
            "/units/{id}/occupants/{occupancy}/end",
            Permission("unit.update"),
            get(leases::end_occupant_form).post(leases::end_occupant),
        ),
        // People.
        ("/contacts", Permission("contact.read"), get(people::list)),
        (
            "/contacts/choices",
            Permission("contact.read"),
            get(portfolio::contact_search),
        ),
        (
            "/contacts/export.csv",
            Permission("data_import.export"),
            get(people::export),
        ),
        (
            "/contacts/new",
            Permission("contact.create"),
            get(people::new_contact).post(people::create_contact),
        ),
        (
            "/contacts/{id}",
            Permission("contact.read"),
            get(people::show),
        ),
        (
            "/contacts/{id}/edit",
            Permission("contact.update"),
            get(people::edit_contact).post(people::update_contact),
        ),
        (
            "/contacts/{id}/archive",
            Permission("contact.archive"),
            post(people::archive_contact),
        ),
        // The catalogue has no contact.restore: whoever may archive may undo it.
        (
            "/contacts/{id}/restore",
            Permission("contact.archive"),
            post(people::restore_contact),
        ),
        // Directors and other officers of a company contact (an RMC or RTM company).
        (
            "/contacts/{id}/officers/new",
            Permission("contact.update"),
            get(people::new_officer).post(people::create_officer),
        ),
        (
            "/contacts/{id}/officers/{officer}/resign",
            Permission("contact.update"),
            get(people::resign_officer_form).post(people::resign_officer),
        ),
        (
            "/contacts/{id}/merge",
            Permission("contact.merge"),
            get(people::confirm_merge).post(people::merge),
        ),
        (
            "/contacts/{id}/erase",
            Permission("contact.erase"),
            get(people::confirm_erase).post(people::erase),
        ),
        (
            "/contacts/{id}/residenceport",
            Permission("contact.update"),
            post(residents::invite),
        ),
        (
            "/contacts/{id}/residenceport/status",
            Permission("contact.update"),
            post(residents::set_status),
        ),
        (
            "/resident-changes",
            Permission("contact.read"),
            get(residents::changes),
        ),
        (
            "/resident-changes/{id}",
            Permission("contact.update"),
            post(residents::decide),
        ),
        (
            "/sites/{id}/residenceport-invites",
            Permission("contact.update"),
            post(residents::invite_site),
        ),
        (
            "/sites/{id}/notices",
            Permission("communication.read"),
            get(residents::site_notices).post(residents::publish),
        ),
        (
            "/notices/{id}",
            Permission("communication.read"),
            get(residents::notice),
        ),
        (
            "/notices/{id}/withdraw",
            Permission("communication.send"),
            post(residents::withdraw),
        ),
        (
            "/issues/{id}/messages",
            Permission("issue.update"),
            post(residents::reply),
        ),
        (
            "/contacts/{id}/personal-data.zip",
            Permission("contact.export"),
            get(people::personal_data),
        ),
        ("/vendors", Permission("vendor.read"), get(vendors::list)),
        (
            "/vendors/export.csv",
            Permission("data_import.export"),
            get(vendors::export),
        ),
        (
            "/vendors/new",
            Permission("vendor.create"),
            get(vendors::new_vendor).post(vendors::create_vendor),
        ),
        (
            "/vendors/{id}",
            Permission("vendor.read"),
            get(vendors::show),
        ),
        (
            "/vendors/{id}/documents",
            Permission("vendor.update"),
            post(operations::add_document).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::UPLOAD_BODY,
            )),
        ),
        (
            "/vendors/{id}/preferences",
            Permission("vendor.update"),
            post(operations::add_preference),
        ),
        (
            "/vendors/{id}/preferences/{preference}/remove",
            Permission("vendor.update"),
            post(operations::remove_preference),
        ),
        (
            "/vendors/{id}/contractor-account",
            Permission("vendor.update"),
            post(operations::issue_contractor_account),
        ),
        (
            "/vendors/{id}/documents/{document}/verify",
            Permission("vendor.update"),
            post(operations::verify_document),
        ),
        // Operations: issues, work orders, quotations and their files (issue 5).
        (
            "/issues",
            Permission("issue.read"),
            get(operations::issues)
                .post(operations::create_issue)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::uploads::UPLOAD_BODY,
                )),
        ),
        (
            "/issues/new",
            Permission("issue.create"),
            get(operations::new_issue),
        ),
        (
            "/issues/{id}",
            Permission("issue.read"),
            get(operations::issue),
        ),
        (
            "/issues/{id}/photos",
            Permission("issue.update"),
            post(operations::add_issue_photos).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::UPLOAD_BODY,
            )),
        ),
        (
            "/issues/{id}/status",
            Permission("issue.update"),
            post(operations::move_issue),
        ),
        (
            "/sites/{id}/issues",
            Permission("issue.read"),
            get(operations::site_issues),
        ),
        (
            "/sites/{id}/documents",
            Permission("file.read"),
            get(documents::site_documents).post(documents::create_folder),
        ),
        (
            "/folders/{id}",
            Permission("file.read"),
            get(documents::folder).post(documents::update_folder),
        ),
        (
            "/folders/{id}/archive",
            Permission("file.archive"),
            post(documents::archive_folder),
        ),
        (
            "/folders/{id}/restore",
            Permission("file.archive"),
            post(documents::restore_folder),
        ),
        (
            "/folders/{id}/files",
            Permission("file.create"),
            post(documents::upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::UPLOAD_BODY,
            )),
        ),
        (
            "/folders/{id}/zip",
            Permission("file.read"),
            get(documents::zip),
        ),
        (
            "/folder-files/{id}",
            Permission("file.update"),
            post(documents::update_file),
        ),
        (
            "/work-orders",
            Permission("work_order.read"),
            get(operations::work_orders).post(operations::create_work_order),
        ),
        (
            "/work-orders/new",
            Permission("work_order.create"),
            get(operations::new_work_order),
        ),
        (
            "/work-orders/{id}",
            Permission("work_order.read"),
            get(operations::work_order),
        ),
        (
            "/work-orders/{id}/invite",
            Permission("work_order.invite_contractor"),
            post(operations::invite),
        ),
        (
            "/work-orders/{id}/updates",
            Permission("work_order.update"),
            post(operations::add_update),
        ),
        (
            "/work-orders/{id}/cancel",
            Permission("work_order.update"),
            post(operations::cancel_work_order),
        ),
        (
            "/work-orders/{id}/close",
            Permission("work_order.update"),
            post(operations::close_work_order),
        ),
        (
            "/work-orders/{id}/files",
            Permission("work_order.update"),
            post(operations::add_work_order_files).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::UPLOAD_BODY,
            )),
        ),
        (
            "/quotations/{id}/approve",
            Permission("quotation.approve"),
            post(operations::approve_quotation),
        ),
        (
            "/quotations/{id}/reject",
            Permission("quotation.approve"),
            post(operations::reject_quotation),
        ),
        // Planned maintenance, the compliance matrix and service agreements.
        (
            "/maintenance",
            Permission("maintenance.read"),
            get(maintenance::dashboard),
        ),
        (
            "/maintenance/calendar",
            Permission("maintenance.read"),
            get(maintenance::calendar),
        ),
        (
            "/sites/{id}/maintenance",
            Permission("maintenance.read"),
            get(maintenance::site_maintenance).post(maintenance::create_event),
        ),
        (
            "/maintenance/events/{id}/complete",
            Permission("maintenance.update"),
            post(maintenance::complete_event).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::UPLOAD_BODY,
            )),
        ),
        (
            "/maintenance/events/{id}/raise",
            Permission("work_order.create"),
            post(maintenance::raise_event_work_order),
        ),
        (
            "/service-agreements",
            Permission("service_agreement.read"),
            get(maintenance::agreements).post(maintenance::create_agreement),
        ),
        (
            "/service-agreements/{id}/schedules",
            Permission("service_agreement.update"),
            post(maintenance::add_schedule),
        ),
        // Tickets.
        (
            "/tickets",
            Permission("ticket.read"),
            get(tickets::list).post(tickets::create),
        ),
        (
            "/tickets/new",
            Permission("ticket.create"),
            get(tickets::new_form),
        ),
        (
            "/tickets/{id}",
            Permission("ticket.read"),
            get(tickets::show),
        ),
        (
            "/tickets/{id}/reply",
            Permission("ticket.update"),
            post(tickets::reply),
        ),
        (
            "/tickets/{id}/status",
            Permission("ticket.update"),
            post(tickets::set_status),
        ),
        (
            "/tickets/{id}/assign",
            Permission("ticket.assign"),
            post(tickets::assign),
        ),
        (
            "/tickets/{id}/link",
            Permission("ticket.update"),
            post(tickets::link),
        ),
        ("/files/{id}", Member, get(operations::file)),
        ("/files/{id}/thumbnail", Member, get(operations::thumbnail)),
        (
            "/vendors/{id}/edit",
            Permission("vendor.update"),
            get(vendors::edit_vendor).post(vendors::update_vendor),
        ),
        (
            "/vendors/{id}/archive",
            Permission("vendor.archive"),
            post(vendors::archive_vendor),
        ),
        (
            "/vendors/{id}/restore",
            Permission("vendor.archive"),
            post(vendors::restore_vendor),
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
