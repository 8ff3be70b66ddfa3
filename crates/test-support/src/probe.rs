//! The cross-tenant probe: two organisations with look-alike data, and proof that neither can
//! read or write the other's rows in any tenant table.
//!
//! [`seed`] must put at least one row in every tenant table; [`assert_isolated`] fails naming
//! any table it did not reach, so each issue that adds a table extends [`seed`] here.

#![expect(clippy::unwrap_used, reason = "test harness")]

use crate::TestDb;
use proplink_auth::codes::CodeKey;
use proplink_db::email::{self, NewEmail, ProviderEvent};
use proplink_db::links::{self, NewLink};
use proplink_db::organisation::Organisation;
use proplink_db::portal::{self, Portal};
use proplink_db::setup::quote_ident;
use proplink_db::{TenantTx, access, lint, profile};
use proplink_domain::EmailAddress;
use proplink_domain::permissions::{Permission, Scope};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

/// Look-alike rows for `org` in every tenant table. The same person, "Mr Smith", exists in both.
pub async fn seed(db: &TestDb, org: &Organisation) {
    let ctx = db.staff(org, "Jane Doe");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let message = email::queue(
        &mut tx,
        NewEmail {
            to_address: "smith@example.com".into(),
            to_name: Some("Mr Smith".into()),
            subject: "Your service charge demand".into(),
            body_text: "Dear Mr Smith".into(),
            body_html: None,
            category: "demand".into(),
        },
    )
    .await
    .unwrap();
    email::record_event(
        &mut tx,
        &ProviderEvent {
            provider: "sendgrid".into(),
            provider_event_id: format!("evt-{}", Uuid::new_v4()),
            message_id: message,
            status: "delivered".into(),
            detail: None,
            occurred_at: time_now(),
        },
    )
    .await
    .unwrap();
    // A contractor's link, and a resident with a sign-in code waiting.
    let now = time_now();
    links::mint(
        &mut tx,
        NewLink {
            record_type: "work_order".into(),
            record_id: Uuid::now_v7(),
            recipient_email: EmailAddress::parse("plumber@example.com").unwrap(),
            recipient_name: Some("Bright Spark Plumbing".into()),
            expires_at: now + time::Duration::days(14),
        },
        now,
    )
    .await
    .unwrap();
    let smith = EmailAddress::parse("smith@example.com").unwrap();
    portal::create_account(&mut tx, Portal::ResidencePort, &smith, "Mr Smith")
        .await
        .unwrap();
    assert!(
        portal::request_sign_in_code(
            &mut tx,
            &CodeKey::generate(),
            Portal::ResidencePort,
            &smith,
            &org.name,
            now
        )
        .await
        .unwrap()
    );
    let resident = portal::find_account(&mut tx, Portal::ResidencePort, &smith)
        .await
        .unwrap()
        .unwrap();
    portal::start_session(&mut tx, resident.id, &random_hash(), now)
        .await
        .unwrap();
    let grant = links::LinkGrant {
        org: tx.org(),
        link_id: sqlx::query_scalar("select id from signed_link limit 1")
            .fetch_one(tx.conn())
            .await
            .unwrap(),
        record_type: "work_order".into(),
        record_id: Uuid::now_v7(),
        recipient_email: "plumber@example.com".into(),
        recipient_name: None,
        expires_at: now + time::Duration::days(14),
    };
    links::start_session(&mut tx, &grant, &random_hash(), now)
        .await
        .unwrap();

    // Staff: an estate with a site, a custom role, a member scoped to the site (invited, then
    // accepted), a session, a hand-off code, sign-in activity and the organisation's profile.
    // Every optional tenant reference is filled in, so the probe's relabelled copies point at
    // the other organisation's records.
    let estate = access::create_estate(&mut tx, "EST-001", "Riverside Estate")
        .await
        .unwrap();
    let site = access::create_site(&mut tx, Some(estate), "RC-001", "Riverside Court")
        .await
        .unwrap();
    let role = access::save_custom_role(
        &mut tx,
        None,
        "Caretaker",
        "Looks after the building",
        &["site.read", "ticket.read"]
            .iter()
            .filter_map(|k| Permission::parse(k))
            .collect(),
    )
    .await
    .unwrap();
    // A different person in each organisation (one user's memberships are tested elsewhere).
    let email = format!("jane.doe@{}.example.com", org.slug.as_str());
    let membership = access::invite(
        &mut tx,
        &access::NewInvitation {
            email: email.clone(),
            name: "Jane Doe".into(),
            role: access::RoleChoice::Custom(role),
            scope: Scope::Sites([site].into()),
            welcome_message: Some("Welcome aboard".into()),
            is_owner: false,
        },
        &random_hash(),
        "http://example.invalid/invitation",
        &org.name,
        Some("Prober"),
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let member = access::member(&mut tx, membership).await.unwrap().unwrap();
    access::start_session(
        &mut tx,
        membership,
        member.user_id,
        &random_hash(),
        Some("203.0.113.9"),
        Some("probe"),
        now,
    )
    .await
    .unwrap();
    access::mint_handoff(&mut tx, membership, member.user_id, &random_hash(), now)
        .await
        .unwrap();
    access::record_auth_event(
        &mut tx,
        &access::AuthEvent {
            user_id: Some(member.user_id),
            email: &email,
            kind: "signed_in",
            detail: None,
            ip: Some("203.0.113.9"),
            user_agent: None,
        },
    )
    .await
    .unwrap();
    profile::save_modules(&mut tx, &["block".to_owned()])
        .await
        .unwrap();
    seed_portfolio(&mut tx, estate, site).await;
    tx.commit().await.unwrap();
}

/// Issue 4's tables: a building with a floor, a unit and a space on it, Mr Smith holding the
/// unit's lease with a tenant in it, an RMC with a director, a merged duplicate, an erased
/// former contact, a vendor with sealed bank details, and an import run.
async fn seed_portfolio(tx: &mut TenantTx, estate: Uuid, site: Uuid) {
    use proplink_db::people::{self, BankDetails, ContactInput, LeaseInput, VendorInput};
    use proplink_db::portfolio::{self, BuildingInput, SpaceInput, UnitInput};
    let person = |first: &str, last: &str, email: &str| ContactInput {
        kind: "person".into(),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        correspondence: "email".into(),
        emails: vec![email.into()],
        phones: vec!["07700900123".into()],
        roles: vec!["leaseholder".into()],
        ..ContactInput::default()
    };
    let smith = people::save_contact(tx, None, &person("John", "Smith", "smith@example.com"))
        .await
        .unwrap();
    let tenant = people::save_contact(tx, None, &person("Ann", "Jones", "ann@example.com"))
        .await
        .unwrap();
    let rmc = people::save_contact(
        tx,
        None,
        &ContactInput {
            kind: "company".into(),
            company_name: Some("Riverside Court RMC Ltd".into()),
            correspondence: "email".into(),
            ..ContactInput::default()
        },
    )
    .await
    .unwrap();
    people::add_officer(tx, rmc, smith, "director", None)
        .await
        .unwrap();
    let duplicate = people::save_contact(tx, None, &person("J", "Smith", "j.smith@example.com"))
        .await
        .unwrap();
    people::merge_contacts(tx, smith, duplicate).await.unwrap();
    // A former leaseholder who asked to be forgotten (erasure and its stripped audit events).
    let former = people::save_contact(tx, None, &person("Pat", "Gone", "pat@example.com"))
        .await
        .unwrap();
    let former_duplicate = people::save_contact(tx, None, &person("P", "Gone", "p@example.com"))
        .await
        .unwrap();
    people::merge_contacts(tx, former, former_duplicate)
        .await
        .unwrap();
    people::erase_contact(tx, former, "Erasure request by e-mail, 1 March 2026")
        .await
        .unwrap();
    portfolio::save_estate(
        tx,
        Some(estate),
        &portfolio::EstateInput {
            reference: "EST-001".into(),
            name: "Riverside Estate".into(),
            freeholder_id: Some(rmc),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut site_input = portfolio::SiteInput {
        reference: "RC-001".into(),
        name: "Riverside Court".into(),
        estate_id: Some(estate),
        management_company: Some((rmc, "rmc".into())),
        ..Default::default()
    };
    site_input.modules = vec!["bm".into()];
    portfolio::save_site(tx, Some(site), &site_input)
        .await
        .unwrap();
    let building = portfolio::save_building(
        tx,
        None,
        site,
        &BuildingInput {
            reference: "A".into(),
            name: "Block A".into(),
            storeys: Some(8),
            residential_units: Some(20),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let floor = portfolio::floor_named(tx, building, "1").await.unwrap();
    let unit = portfolio::save_unit(
        tx,
        None,
        site,
        &UnitInput {
            reference: "1".into(),
            name: "Flat 1".into(),
            building_id: Some(building),
            floor_id: Some(floor),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    portfolio::save_space(
        tx,
        site,
        &SpaceInput {
            building_id: Some(building),
            floor_id: Some(floor),
            name: "Bin store".into(),
            kind: "bin_store".into(),
            notes: None,
        },
    )
    .await
    .unwrap();
    people::add_lease(
        tx,
        unit,
        &LeaseInput {
            starts_on: Some(time::macros::date!(2015 - 03 - 01)),
            term_years: Some(125),
            ground_rent_pence: Some(25_000),
            holders: vec![smith],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    people::add_occupancy(
        tx,
        unit,
        tenant,
        "tenant",
        time::macros::date!(2024 - 01 - 01),
        None,
    )
    .await
    .unwrap();
    let vendor = people::save_vendor(
        tx,
        &proplink_auth::seal::DataKey::generate(),
        None,
        &VendorInput {
            name: "Bright Spark Electrical".into(),
            trade: "Electrician".into(),
            email: Some("sparks@example.com".into()),
            bank: Some(BankDetails {
                sort_code: "123456".into(),
                account_number: "12345678".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    seed_operations(tx, site, building, unit, smith, vendor).await;
    sqlx::query(
        "insert into import_run (organisation_id, id, kind, file_name, file_bytes, row_count, created_by)
         values ($1, $2, 'units', 'units.csv', 'site_reference,reference,name', 0, 'Prober')",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .execute(tx.conn())
    .await
    .unwrap();
}

/// Issue 5's tables: two issues (one a duplicate of the other, with a photo), a work order
/// raised from the first, its contractor invited, quoting with a PDF, approved, attending,
/// completing and rated; the contractor's insurance with its certificate file.
async fn seed_operations(
    tx: &mut TenantTx,
    site: Uuid,
    building: Uuid,
    unit: Uuid,
    reporter: Uuid,
    vendor: Uuid,
) {
    use proplink_db::operations::{self as ops, *};
    use proplink_domain::operations::*;
    let now = time_now();
    let issue = |title: &str| IssueInput {
        location: Location {
            site_id: site,
            building_id: Some(building),
            unit_id: Some(unit),
            space_id: None,
        },
        title: title.into(),
        description: Some("Water through the ceiling".into()),
        category: IssueCategory::WaterLeak,
        priority: Priority::High,
        reporter_kind: ReporterKind::Resident,
        reporter_contact_id: Some(reporter),
        reporter_name: "Mr Smith".into(),
        reporter_email: Some(EmailAddress::parse("smith@example.com").unwrap()),
        channel: "residenceport".into(),
    };
    let (first, first_ref) = ops::create_issue(tx, &issue("Leak in Flat 1"), now)
        .await
        .unwrap();
    let (second, _) = ops::create_issue(tx, &issue("Leak again"), now)
        .await
        .unwrap();
    ops::move_issue(
        tx,
        second,
        &IssueMove {
            to: IssueStatus::Closed,
            closed_reason: Some(ClosedReason::Duplicate),
            duplicate_of: Some(first_ref),
            note: Some("Same leak".into()),
        },
        now,
    )
    .await
    .unwrap();
    let file = |purpose: &str, media: &str| NewFile {
        sha256: "a".repeat(64),
        size_bytes: 1234,
        media_type: media.into(),
        object_key: format!("org/probe/sha256/aa/{}", "a".repeat(64)),
        thumbnail_key: Some(format!("org/probe/thumb/{}.jpg", "a".repeat(64))),
        original_name: "ceiling.jpg".into(),
        purpose: purpose.into(),
        uploaded_by: "Mr Smith".into(),
    };
    ops::record_file(
        tx,
        Attachment::Issue(first),
        &file("photo", "image/jpeg"),
        now,
    )
    .await
    .unwrap();
    let document = ops::add_vendor_document(
        tx,
        vendor,
        &DocumentInput {
            doc_type: DocumentType::PublicLiability,
            reference_number: "PL-1".into(),
            issuer: Some("Aviva".into()),
            sum_insured_pence: Some(500_000_000),
            expires_on: now.date() + time::Duration::days(300),
        },
        now.date(),
    )
    .await
    .unwrap();
    ops::verify_document(tx, vendor, document, "Prober", now)
        .await
        .unwrap();
    ops::record_file(
        tx,
        Attachment::VendorDocument(document),
        &file("certificate", "application/pdf"),
        now,
    )
    .await
    .unwrap();
    let (wo, _) = ops::create_work_order(
        tx,
        &WorkOrderInput {
            location: Location {
                site_id: site,
                building_id: Some(building),
                unit_id: Some(unit),
                space_id: None,
            },
            title: "Repair leak".into(),
            scope: "Trace and repair".into(),
            trade: "plumbing".to_owned(),
            priority: Priority::High,
            cost_code: Some("REP-01".into()),
            not_to_exceed_pence: Some(100_000),
            target_start: Some(now.date()),
            target_completion: Some(now.date() + time::Duration::days(7)),
            access_notes: Some("Key with concierge".into()),
            manager_name: "Jane Doe".into(),
            manager_email: Some("jane@example.com".into()),
        },
        &[first],
        now,
    )
    .await
    .unwrap();
    let url = |t: &str| format!("http://contractorport.localhost/{t}");
    let invited = ops::invite_contractor(
        tx,
        wo,
        &InviteRequest {
            vendor_id: vendor,
            override_reason: None,
        },
        "Probe",
        &url,
        now,
    )
    .await
    .unwrap();
    ops::accept_invitation(tx, invited.invitation_id, now)
        .await
        .unwrap();
    let quote = ops::submit_quotation(
        tx,
        invited.invitation_id,
        &QuoteInput {
            kind: "fixed".into(),
            amounts: QuoteAmounts::parse("375", "75").unwrap(),
            valid_until: now.date() + time::Duration::days(30),
            notes: Some("Parts included".into()),
        },
        now,
    )
    .await
    .unwrap();
    ops::record_file(
        tx,
        Attachment::Quotation(quote),
        &file("quotation", "application/pdf"),
        now,
    )
    .await
    .unwrap();
    ops::approve_quotation(
        tx,
        quote,
        &Approver {
            name: "Jane Doe".into(),
            limit_pence: None,
        },
        None,
        "Probe",
        now,
    )
    .await
    .unwrap();
    ops::record_update(
        tx,
        wo,
        "attendance",
        Some("On site"),
        "Bright Spark Electrical",
        now,
    )
    .await
    .unwrap();
    ops::complete_work(tx, wo, Some("Done"), "Bright Spark Electrical", now)
        .await
        .unwrap();
    ops::close_work_order(tx, wo, 4, Some("Good"), Some(45_000), now)
        .await
        .unwrap();

    // Planned maintenance with a raised work order and a completion with evidence, and a
    // service agreement for the site with its signed contract.
    use proplink_db::maintenance as mnt;
    use proplink_domain::schedule::{DueBasis, Recurrence};
    let event = mnt::create_event(
        tx,
        &mnt::EventInput {
            location: Location {
                site_id: site,
                building_id: Some(building),
                unit_id: None,
                space_id: None,
            },
            name: "Gas safety".into(),
            template_key: Some("gas_safety".into()),
            compliance: true,
            recurrence: Recurrence::annual(),
            basis: DueBasis::Anchored,
            first_due: now.date() + time::Duration::days(5),
            responsible_name: Some("Jane Doe".into()),
            vendor_id: Some(vendor),
            trade: Some("plumbing".to_owned()),
            raise_days_before: Some(14),
        },
    )
    .await
    .unwrap();
    mnt::raise_work_order(tx, event, "Probe", &url, now)
        .await
        .unwrap();
    let (completion, _) = mnt::record_completion(
        tx,
        event,
        now.date(),
        Some("Certificate issued"),
        "Jane Doe",
        now.date(),
    )
    .await
    .unwrap();
    ops::record_file(
        tx,
        Attachment::MaintenanceCompletion(completion),
        &file("evidence", "application/pdf"),
        now,
    )
    .await
    .unwrap();
    let agreement = mnt::create_agreement(
        tx,
        &mnt::AgreementInput {
            vendor_id: vendor,
            title: "Lift maintenance".into(),
            scope: Some("Monthly service".into()),
            pricing_model: "recurring_fee".into(),
            annual_value_pence: Some(360_000),
            starts_on: now.date(),
            ends_on: Some(now.date() + time::Duration::days(365)),
            notice_days: 60,
            auto_renew: true,
            sites: vec![site],
            manager_name: "Jane Doe".into(),
            manager_email: Some("jane@example.com".into()),
        },
    )
    .await
    .unwrap();
    // The organisation's own service category, and a standard one with an extra requirement.
    let rope = proplink_db::service_categories::add(
        tx,
        "Rope access",
        &[proplink_domain::operations::DocumentType::PublicLiability],
    )
    .await
    .unwrap();
    proplink_db::service_categories::set_requirements(
        tx,
        "cleaning",
        &[proplink_domain::operations::DocumentType::Chas],
    )
    .await
    .unwrap();
    ops::add_preference(tx, vendor, Some(site), Some(&rope))
        .await
        .unwrap();
    // A ticket from Mr Smith, assigned, linked to the issue and the work order, with a reply.
    use proplink_db::tickets;
    // Jane Doe has accepted her invitation by now: routing and defaults go to active staff.
    let member: Uuid = sqlx::query_scalar(
        "update membership set status = 'active' where id = (select id from membership order by id limit 1)
         returning id",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    // Settings → Tickets: the organisation's own category (with a default assignee and its
    // own service levels) and a routing rule that makes this site's leaks urgent.
    use proplink_db::ticket_settings as ts;
    let leaks = ts::add_category(tx, "Leaks").await.unwrap();
    ts::save_category(
        tx,
        &leaks,
        &ts::CategorySettings {
            name: "Leaks".into(),
            default_priority: Some(Priority::High),
            default_assignee_id: Some(member),
            response: Some(proplink_domain::sla::SlaSpan::Hours(2)),
            resolution: Some(proplink_domain::sla::SlaSpan::WorkingDays(2)),
            on_residenceport: true,
        },
    )
    .await
    .unwrap();
    ts::add_rule(
        tx,
        &ts::RuleInput {
            site_id: Some(site),
            category: Some(leaks.clone()),
            subject_keyword: Some("leak".into()),
            assign_to_id: Some(member),
            set_priority: Some(Priority::Urgent),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (ticket, _) = tickets::create_ticket(
        tx,
        &tickets::TicketInput {
            site_id: Some(site),
            subject: "Leak from above".into(),
            category: leaks.clone(),
            priority: None,
            reporter_name: "Mr Smith".into(),
            reporter_email: Some(EmailAddress::parse("smith@example.com").unwrap()),
            channel: "email".into(),
            message: "Water is coming through my ceiling".into(),
            assignee_id: None,
        },
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    sqlx::query("update ticket set assignee_id = $1, issue_id = (select id from issue limit 1), work_order_id = (select id from work_order limit 1), unit_id = $2, reporter_contact_id = $3")
        .bind(member)
        .bind(unit)
        .bind(reporter)
        .execute(tx.conn())
        .await
        .unwrap();
    tickets::reply(
        tx,
        ticket,
        false,
        "We are sending a plumber",
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    ops::record_file(
        tx,
        Attachment::ServiceAgreement(agreement),
        &file("contract", "application/pdf"),
        now,
    )
    .await
    .unwrap();
    // The site's folders, a file with a second version (expiring, shown to residents), and a
    // recorded download.
    use proplink_db::folders;
    folders::ensure_defaults(tx, site).await.unwrap();
    let compliance = folders::folders(tx, site, false)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.default_key.as_deref() == Some("compliance"))
        .unwrap()
        .id;
    let first = folders::add_file(
        tx,
        compliance,
        &file("document", "application/pdf"),
        &folders::FolderFile::default(),
        None,
        now,
    )
    .await
    .unwrap();
    let second = folders::add_file(
        tx,
        compliance,
        &file("document", "application/pdf"),
        &folders::FolderFile {
            expires_on: Some(now.date() + time::Duration::days(365)),
            shown_to_residents: true,
        },
        Some(first),
        now,
    )
    .await
    .unwrap();
    folders::record_access(tx, second, "download", None, now)
        .await
        .unwrap();
    // The site's books: its chart and funds, a period, a journal with unit, contact and work
    // order on its lines, and its reversal.
    use proplink_db::ledger;
    ledger::ensure_books(tx, site).await.unwrap();
    ledger::add_period(
        tx,
        site,
        time::macros::date!(2020 - 01 - 01),
        time::macros::date!(2020 - 12 - 31),
    )
    .await
    .unwrap();
    let debtors = ledger::control_account(tx, site, "debtors")
        .await
        .unwrap()
        .unwrap();
    let income = ledger::control_account(tx, site, "service_charge_income")
        .await
        .unwrap()
        .unwrap();
    let fund = ledger::fund_of_kind(tx, site, proplink_domain::ledger::FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap();
    let wo_id: Uuid = sqlx::query_scalar("select id from work_order limit 1")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let line = |account: Uuid, amount: i64| ledger::NewLine {
        account_id: account,
        fund_id: fund.id,
        amount_pence: amount,
        unit_id: Some(unit),
        contact_id: Some(reporter),
        work_order_id: Some(wo_id),
        description: Some("Service charge".into()),
    };
    let (journal, _) = ledger::post(
        tx,
        &ledger::NewJournal {
            site_id: site,
            date: now.date(),
            description: "Service charge demand".into(),
            source_type: "manual_journal".into(),
            source_id: None,
            lines: vec![line(debtors.id, 45_000), line(income.id, -45_000)],
        },
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    ledger::reverse(tx, journal, now.date(), "Raised twice", "Jane Doe", now)
        .await
        .unwrap();
    ledger::ensure_tax_rates(tx).await.unwrap();
    ledger::add_tax_rate(tx, "Temporary 12.5%", 1250, now.date(), None)
        .await
        .unwrap();
    seed_receivables(tx, site, unit, reporter, member, now).await;
    seed_payables(tx, site, now).await;
}

/// Issue 7's payables: a client bank account for the site, and a supplier's bill approved and
/// posted.
async fn seed_payables(tx: &mut TenantTx, site: Uuid, now: sqlx::types::time::OffsetDateTime) {
    use proplink_db::approvals::Signer;
    use proplink_db::bank_accounts::{self, AccountType, BankAccountInput, FileFormat};
    use proplink_db::bills::{self, BillInput, BillLineInput};
    use proplink_db::ledger;
    use proplink_domain::uk::{AccountNumber, SortCode};
    let bank = bank_accounts::create(
        tx,
        &proplink_auth::seal::DataKey::generate(),
        &BankAccountInput {
            name: "Riverside Client Account".into(),
            bank_name: Some("Lloyds".into()),
            account_type: AccountType::Client,
            sort_code: SortCode::parse("30-00-00").unwrap(),
            account_number: AccountNumber::parse("12345678").unwrap(),
            holder_name: "Riverside Client Account".into(),
            service_user_number: None,
            file_format: FileFormat::Csv,
            fund_kind: None,
            sites: vec![site],
            ledger_account_id: None,
        },
    )
    .await
    .unwrap();
    let vendor: Uuid = sqlx::query_scalar("select id from vendor order by created_at limit 1")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let repairs = ledger::control_account(tx, site, "repairs")
        .await
        .unwrap()
        .unwrap()
        .id;
    let fund = ledger::fund_of_kind(tx, site, proplink_domain::ledger::FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    let standard = ledger::tax_rates(tx)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.treatment == "standard")
        .unwrap()
        .id;
    let bill = bills::save_draft(
        tx,
        None,
        &BillInput {
            site_id: site,
            vendor_id: vendor,
            work_order_id: None,
            supplier_reference: "PROBE-1".into(),
            issue_date: now.date(),
            due_date: None,
            incurred_on: None,
            description: Some("Call-out".into()),
            lines: vec![BillLineInput {
                description: "Call-out charge".into(),
                account_id: repairs,
                fund_id: fund,
                tax_rate_id: standard,
                net_pence: 9_000,
                vat_pence: None,
                vat_recoverable: false,
            }],
            total_pence: Some(10_800),
            source: "admin",
            document: None,
        },
        &Signer::unchained("Prober"),
    )
    .await
    .unwrap();
    bills::submit(tx, bill, &Signer::unchained("Prober"), now)
        .await
        .unwrap();
    bills::approve(tx, bill, &Signer::unchained("Jane Doe"), now)
        .await
        .unwrap();
    seed_payments(tx, site, bank, vendor, bill, now).await;
}

/// Issue 7's payments: money into the bank, the bill paid on its own by cheque, and a second
/// bill in a payment run awaiting approval.
async fn seed_payments(
    tx: &mut TenantTx,
    site: Uuid,
    bank: Uuid,
    vendor: Uuid,
    bill: Uuid,
    now: sqlx::types::time::OffsetDateTime,
) {
    use proplink_db::approvals::Signer;
    use proplink_db::bank_accounts;
    use proplink_db::bills::{self, BillInput, BillLineInput};
    use proplink_db::ledger;
    use proplink_db::payments::{self, ManualPayment, Method, RunInput};
    use proplink_db::people::{self, BankDetails, VendorInput};
    let key = proplink_auth::seal::DataKey::generate();
    let name: String = sqlx::query_scalar("select name from vendor where id = $1")
        .bind(vendor)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    people::save_vendor(
        tx,
        &key,
        Some(vendor),
        &VendorInput {
            name,
            trade: "Electrician".into(),
            bank: Some(BankDetails {
                sort_code: "123456".into(),
                account_number: "12345678".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let bank_ledger = bank_accounts::for_site(tx, site)
        .await
        .unwrap()
        .into_iter()
        .find(|(b, _)| b.id == bank)
        .unwrap()
        .1;
    let fund = ledger::fund_of_kind(tx, site, proplink_domain::ledger::FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    let suspense = ledger::control_account(tx, site, "suspense")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mk = |account: Uuid, amount: i64| ledger::NewLine {
        account_id: account,
        fund_id: fund,
        amount_pence: amount,
        unit_id: None,
        contact_id: None,
        work_order_id: None,
        description: None,
    };
    ledger::post(
        tx,
        &ledger::NewJournal {
            site_id: site,
            date: now.date(),
            description: "Service charges received".into(),
            source_type: "manual_journal".into(),
            source_id: None,
            lines: vec![mk(bank_ledger, 100_000), mk(suspense, -100_000)],
        },
        "Prober",
        now,
    )
    .await
    .unwrap();
    payments::pay_bill(
        tx,
        &ManualPayment {
            bill_id: bill,
            bank_account_id: bank,
            payment_date: now.date(),
            method: Method::Cheque,
            reference: Some("000101".into()),
            amount_pence: None,
            override_: None,
        },
        &Signer::unchained("Prober"),
        now,
    )
    .await
    .unwrap();
    let lines = bills::lines(tx, bill).await.unwrap();
    let second = bills::save_draft(
        tx,
        None,
        &BillInput {
            site_id: site,
            vendor_id: vendor,
            work_order_id: None,
            supplier_reference: "PROBE-2".into(),
            issue_date: now.date(),
            due_date: None,
            incurred_on: None,
            description: None,
            lines: vec![BillLineInput {
                description: "Second visit".into(),
                account_id: lines[0].account_id,
                fund_id: fund,
                tax_rate_id: lines[0].tax_rate_id,
                net_pence: 5_000,
                vat_pence: None,
                vat_recoverable: false,
            }],
            total_pence: None,
            source: "admin",
            document: None,
        },
        &Signer::unchained("Prober"),
    )
    .await
    .unwrap();
    bills::submit(tx, second, &Signer::unchained("Prober"), now)
        .await
        .unwrap();
    bills::approve(tx, second, &Signer::unchained("Jane Doe"), now)
        .await
        .unwrap();
    payments::schedule_run(
        tx,
        &key,
        &RunInput {
            bank_account_id: bank,
            payment_date: now.date(),
            due_by: now.date() + time::Duration::days(60),
            bill_ids: vec![second],
            override_: None,
        },
        &Signer::unchained("Prober"),
        now,
    )
    .await
    .unwrap();
}

/// Issue 6's receivables: three demands approved (one sent, one voided); a credit note on
/// account set against the first; a receipt that bounced and was reversed; a receipt that pays
/// the rest and leaves credit, part of it refunded.
async fn seed_receivables(
    tx: &mut TenantTx,
    site: Uuid,
    unit: Uuid,
    leaseholder: Uuid,
    member: Uuid,
    now: sqlx::types::time::OffsetDateTime,
) {
    use proplink_db::approvals::{self, Approver, ChainInput, Signer, StepInput};
    use proplink_db::ledger;
    use proplink_db::receivables::{self as rx, *};
    use proplink_domain::receivables::{InvoiceKind, PaymentMethod};
    sqlx::query(
        "update site set landlord_name = 'Riverside Freehold Ltd', landlord_address_line_1 = '1 High Street',
                landlord_city = 'Leeds', landlord_postcode = 'LS1 1AA' where id = $1",
    )
    .bind(site)
    .execute(tx.conn())
    .await
    .unwrap();
    let income = ledger::control_account(tx, site, "service_charge_income")
        .await
        .unwrap()
        .unwrap()
        .id;
    let fund = ledger::fund_of_kind(tx, site, proplink_domain::ledger::FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    let exempt = ledger::tax_rates(tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "exempt")
        .unwrap()
        .id;
    let lines = || {
        vec![DraftLine {
            description: "Service charge on account".into(),
            account_id: income,
            fund_id: fund,
            tax_rate_id: exempt,
            net_pence: 45_000,
            period_from: None,
            period_to: None,
        }]
    };
    let today = now.date();
    let demand = |reference: &str| InvoiceInput {
        unit_id: unit,
        contact_id: leaseholder,
        kind: InvoiceKind::ServiceCharge,
        reference: Some(reference.into()),
        issue_date: Some(today),
        due_date: Some(today),
        lines: lines(),
    };
    // An approval chain for this site's service charge demands over £100: Sam, then anyone
    // with the Caretaker role. Sam has delegated to Jane, who signs his step; Cara, a
    // caretaker, signs the second.
    let caretaker: Uuid = sqlx::query_scalar("select custom_role_id from membership where id = $1")
        .bind(member)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let org_slug: String = sqlx::query_scalar("select slug from organisation limit 1")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let mut colleague = async |name: &str, role: proplink_db::access::RoleChoice| -> Uuid {
        let id = proplink_db::access::invite(
            tx,
            &proplink_db::access::NewInvitation {
                email: format!(
                    "{}@{org_slug}.example.com",
                    name.to_lowercase().replace(' ', ".")
                ),
                name: name.into(),
                role,
                scope: proplink_domain::permissions::Scope::AllSites,
                welcome_message: None,
                is_owner: false,
            },
            &random_hash(),
            "http://example.invalid/invitation",
            "Probe",
            Some("Prober"),
            now,
        )
        .await
        .unwrap()
        .unwrap();
        sqlx::query("update membership set status = 'active' where id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .unwrap();
        id
    };
    let sam = colleague(
        "Sam Second",
        proplink_db::access::RoleChoice::BuiltIn(
            proplink_domain::permissions::BuiltInRole::Accountant,
        ),
    )
    .await;
    let cara = colleague(
        "Cara Third",
        proplink_db::access::RoleChoice::Custom(caretaker),
    )
    .await;
    approvals::save_chain(
        tx,
        None,
        &ChainInput {
            name: "Service charge demands over £100".into(),
            record_type: "debtor_invoice".into(),
            amount_over_pence: Some(10_000),
            site_id: Some(site),
            category: Some("service_charge".into()),
            parallel: false,
            steps: vec![
                StepInput {
                    approver: Approver::Member(sam),
                    amount_over_pence: None,
                },
                StepInput {
                    approver: Approver::CustomRole(caretaker),
                    amount_over_pence: Some(10_000),
                },
            ],
        },
    )
    .await
    .unwrap();
    approvals::add_delegation(tx, sam, member, today, today + time::Duration::days(14))
        .await
        .unwrap();
    let submitter = Signer::unchained("Prober");
    let jane = Signer::member(tx, member, "Jane Doe").await.unwrap();
    let cara = Signer::member(tx, cara, "Cara Third").await.unwrap();
    let mut issued = Vec::new();
    for reference in ["First half", "Second half", "Raised in error"] {
        let id = rx::save_invoice_draft(tx, None, &demand(reference), "Jane Doe")
            .await
            .unwrap();
        rx::submit_invoice(tx, id, &submitter, now).await.unwrap();
        let first = rx::approve_invoice(tx, id, &jane, now).await.unwrap();
        assert!(matches!(first, Approval::Waiting(_)), "{first:?}");
        let second = rx::approve_invoice(tx, id, &cara, now).await.unwrap();
        assert!(matches!(second, Approval::Posted(_)), "{second:?}");
        issued.push(id);
    }
    rx::mark_sent(tx, issued[0], now).await.unwrap();
    rx::void_invoice(tx, issued[2], today, "Raised twice", "Jane Doe", now)
        .await
        .unwrap();
    let receipt = |amount: i64, allocate: Allocate| ReceiptInput {
        unit_id: unit,
        contact_id: Some(leaseholder),
        received_on: today,
        amount_pence: amount,
        method: PaymentMethod::BankTransfer,
        reference: Some("SMITH FLAT 1".into()),
        bank_account_id: None,
        fund_id: None,
        allocate,
        channel: "admin",
        batch_id: None,
    };
    let credit = rx::save_credit_draft(
        tx,
        None,
        &CreditInput {
            unit_id: unit,
            contact_id: leaseholder,
            invoice_id: None,
            reason: "Goodwill".into(),
            issue_date: Some(today),
            lines: vec![DraftLine {
                net_pence: 2_000,
                ..lines().remove(0)
            }],
        },
        "Jane Doe",
    )
    .await
    .unwrap();
    rx::submit_credit_note(tx, credit, &submitter, now)
        .await
        .unwrap();
    rx::approve_credit_note(tx, credit, &jane, now)
        .await
        .unwrap();
    rx::allocate_credit(
        tx,
        CreditSource::CreditNote(credit),
        &Allocate::OldestFirst,
        today,
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    let (bounced, _) =
        rx::record_receipt(tx, &receipt(10_000, Allocate::OldestFirst), "Jane Doe", now)
            .await
            .unwrap();
    rx::reverse_receipt(tx, bounced, today, "Returned unpaid", "Jane Doe", now)
        .await
        .unwrap();
    // The first demand's PDF and a statement's, stored; the demand e-mailed with its PDF.
    let sha = "a".repeat(64);
    for (record_type, record_id, period) in [
        ("debtor_invoice", issued[0], None),
        ("statement", unit, Some((today, today))),
    ] {
        rx::record_document(
            tx,
            &NewMoneyDocument {
                record_type,
                record_id,
                site_id: site,
                unit_id: unit,
                period,
                sha256: &sha,
                size_bytes: 1234,
                object_key: "probe/demand.pdf",
                renderer: "typst",
            },
            "Jane Doe",
        )
        .await
        .unwrap();
    }
    proplink_db::email::queue_with_attachments(
        tx,
        proplink_db::email::NewEmail {
            to_address: "smith@example.com".into(),
            to_name: None,
            subject: "Service charge demand".into(),
            body_text: "Attached.".into(),
            body_html: None,
            category: "demand".into(),
        },
        &[proplink_db::email::Attachment {
            filename: "INV-2026-000001.pdf".into(),
            media_type: "application/pdf".into(),
            sha256: sha.clone(),
            size_bytes: 1234,
            object_key: "probe/demand.pdf".into(),
        }],
    )
    .await
    .unwrap();
    // A manual journal drafted, submitted and approved (posted), and another left in draft.
    use proplink_db::manual_journals as mj;
    let bank = ledger::control_account(tx, site, "bank")
        .await
        .unwrap()
        .unwrap()
        .id;
    let journal = |pence: i64| mj::ManualInput {
        site_id: site,
        date: today,
        description: "Bank interest".into(),
        lines: vec![
            mj::ManualLine {
                account_id: bank,
                fund_id: fund,
                amount_pence: pence,
                unit_id: Some(unit),
                description: Some("Interest".into()),
            },
            mj::ManualLine {
                account_id: income,
                fund_id: fund,
                amount_pence: -pence,
                unit_id: None,
                description: None,
            },
        ],
    };
    let posted = mj::save_draft(tx, None, &journal(123), "Prober")
        .await
        .unwrap();
    mj::submit(tx, posted, &submitter, now).await.unwrap();
    mj::approve(tx, posted, &jane, now).await.unwrap();
    mj::save_draft(tx, None, &journal(456), "Prober")
        .await
        .unwrap();
    let (paid, _) = rx::record_receipt(
        tx,
        &receipt(100_000, Allocate::OldestFirst),
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    rx::refund(
        tx,
        &RefundInput {
            source: CreditSource::Receipt(paid),
            amount_pence: 1_000,
            refunded_on: today,
            method: PaymentMethod::BankTransfer,
            reference: None,
            bank_account_id: None,
        },
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    // Financial settings: an account added to the template (and the site's books); a batch
    // of receipts.
    proplink_db::chart::add_account(tx, "4150", "Parking income", "income")
        .await
        .unwrap();
    let unit_reference: String = sqlx::query_scalar("select reference from unit where id = $1")
        .bind(unit)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    proplink_db::receipt_batches::record_batch(
        tx,
        &proplink_db::receipt_batches::BatchInput {
            site_id: site,
            received_on: today,
            method: PaymentMethod::Cheque,
            bank_account_id: None,
            note: Some("Paying-in slip 42".into()),
            rows: proplink_domain::receivables::parse_batch_rows(&format!(
                "{unit_reference},12.50,CHQ 1001"
            ))
            .unwrap(),
        },
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    seed_residence(tx, site, unit, leaseholder, [issued[1], issued[0]], now).await;
}

/// Issue 8's tables: Mr Smith's ResidencePort account, a card payment that posted its
/// receipt, a Direct Debit mandate with a collection, a notice he read, a message on an issue,
/// a change to his details waiting, and folders shared with one building and one unit.
async fn seed_residence(
    tx: &mut TenantTx,
    site: Uuid,
    unit: Uuid,
    leaseholder: Uuid,
    [invoice, collected]: [Uuid; 2],
    now: sqlx::types::time::OffsetDateTime,
) {
    use proplink_db::resident::{self, *};
    let account = resident::invite(
        tx,
        leaseholder,
        "http://example.invalid/",
        "Probe",
        "Jane Doe",
        now,
    )
    .await
    .unwrap();
    let found = proplink_db::receivables::find_invoice(tx, invoice)
        .await
        .unwrap()
        .unwrap();
    let payment = Uuid::now_v7();
    let session = format!("cs_test_{}", payment.simple());
    resident::record_card_checkout(
        tx,
        &NewCardPayment {
            id: payment,
            invoice: &found,
            account_id: account,
            contact_id: found.contact_id,
            test_mode: true,
            amount_pence: 5_000,
            session_ref: &session,
            checkout_url: "/test-mode/checkout/x",
        },
    )
    .await
    .unwrap();
    let applied = resident::apply_outcome(
        tx,
        payment,
        &Outcome::Paid {
            amount_pence: 5_000,
            on: now.date(),
            payment_ref: Some("pi_test_probe".into()),
        },
        now,
    )
    .await
    .unwrap();
    assert!(matches!(applied, Applied::Receipted { .. }), "{applied:?}");
    let mandate = resident::start_mandate(
        tx,
        &NewMandate {
            site_id: site,
            unit_id: unit,
            contact_id: leaseholder,
            account_id: account,
            test_mode: true,
            billing_request_ref: "BRQ000PROBE",
            flow_url: "/test-mode/direct-debit/x",
        },
    )
    .await
    .unwrap();
    assert!(
        resident::apply_mandate_status(tx, mandate, Some("MD000PROBE"), "active", None)
            .await
            .unwrap()
    );
    let mandate = resident::find_mandate(tx, mandate).await.unwrap().unwrap();
    resident::record_collection(
        tx,
        &NewCollection {
            mandate: &mandate,
            invoice_id: collected,
            amount_pence: 1_000,
            payment_ref: "PM000PROBE",
            charge_date: Some(now.date()),
        },
    )
    .await
    .unwrap();
    let building: Uuid = sqlx::query_scalar("select building_id from unit where id = $1")
        .bind(unit)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let notice = resident::publish_notice(
        tx,
        &NewNotice {
            site_id: site,
            building_id: Some(building),
            title: "Lift out of service",
            body: "The lift is being repaired on Monday.",
            email_copy: true,
        },
        "Jane Doe",
        "http://example.invalid/",
        "Probe",
        now,
    )
    .await
    .unwrap();
    resident::mark_read(tx, notice, account, now).await.unwrap();
    let issue: Uuid = sqlx::query_scalar("select id from issue order by created_at limit 1")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    resident::add_message(tx, issue, "staff", "Jane Doe", "A plumber is booked.", now)
        .await
        .unwrap();
    let mut details = resident::details(tx, leaseholder).await.unwrap().unwrap();
    details.last_name = Some("Smith-Jones".into());
    assert!(
        resident::change_details(tx, leaseholder, account, &details, now)
            .await
            .unwrap()
    );
    let folders: Vec<Uuid> = sqlx::query_scalar(
        "select id from site_folder where site_id = $1 order by position limit 2",
    )
    .bind(site)
    .fetch_all(tx.conn())
    .await
    .unwrap();
    sqlx::query("update site_folder set building_id = $2 where id = $1")
        .bind(folders[0])
        .bind(building)
        .execute(tx.conn())
        .await
        .unwrap();
    sqlx::query("update site_folder set unit_id = $2 where id = $1")
        .bind(folders[1])
        .bind(unit)
        .execute(tx.conn())
        .await
        .unwrap();
}

/// A fresh value shaped like a stored token hash.
fn random_hash() -> String {
    proplink_auth::links::new_token().1
}

fn time_now() -> sqlx::types::time::OffsetDateTime {
    sqlx::types::time::OffsetDateTime::now_utc()
}

async fn count(tx: &mut TenantTx, table: &str, filter: &str) -> i64 {
    let sql = format!("select count(*) from {} {filter}", quote_ident(table));
    sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

async fn platform_count(db: &TestDb, table: &str, org: &Organisation) -> i64 {
    let mut su = db.superuser().await;
    let sql = format!(
        "select count(*) from {} where organisation_id = $1",
        quote_ident(table)
    );
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(org.id.0)
        .fetch_one(&mut su)
        .await
        .unwrap()
}

/// Runs `sql` as `a` in a transaction that is then rolled back. Ok(rows) or Err(SQLSTATE).
async fn attempt(
    db: &TestDb,
    a: &Organisation,
    sql: &str,
    bind: Option<serde_json::Value>,
) -> Result<u64, String> {
    let mut tx = db.app.begin(&db.staff(a, "Prober")).await.unwrap();
    let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
    if let Some(v) = bind {
        q = q.bind(v);
    }
    let result = q.execute(tx.conn()).await;
    let _ = tx.rollback().await;
    result.map(|r| r.rows_affected()).map_err(|e| {
        e.as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| e.to_string())
    })
}

/// Proves, table by table, that `a` can neither see nor change `b`'s rows.
pub async fn assert_isolated(db: &TestDb, a: &Organisation, b: &Organisation) {
    let mut su = db.superuser().await;
    let tables = lint::tenant_tables(&mut su).await.unwrap();
    assert!(!tables.is_empty());
    let with_tenant_fk: Vec<String> = sqlx::query_scalar(
        "select distinct c.conrelid::regclass::text from pg_constraint c
          where c.contype = 'f' and exists (select from pg_attribute a where a.attrelid = c.confrelid and a.attname = 'organisation_id')",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();

    for table in &tables {
        let t = quote_ident(table);
        let b_rows = platform_count(db, table, b).await;
        let a_rows = platform_count(db, table, a).await;
        assert!(
            b_rows > 0 && a_rows > 0,
            "the probe's seed puts no rows in tenant table {table}: extend proplink_test_support::probe::seed"
        );

        // Reads: nothing of B's, and all of A's.
        let mut tx = db.app.begin(&db.staff(a, "Prober")).await.unwrap();
        let b_filter = format!("where organisation_id = '{}'", b.id);
        assert_eq!(
            count(&mut tx, table, &b_filter).await,
            0,
            "{table}: A sees B's rows"
        );
        assert_eq!(
            count(&mut tx, table, "").await,
            a_rows,
            "{table}: A's view is not exactly A's rows"
        );
        tx.rollback().await.unwrap();

        // Updates and deletes aimed at B change nothing (hidden rows, or no privilege at all).
        for sql in [
            format!(
                "update {t} set organisation_id = organisation_id where organisation_id = '{}'",
                b.id
            ),
            format!("delete from {t} where organisation_id = '{}'", b.id),
        ] {
            match attempt(db, a, &sql, None).await {
                Ok(rows) => assert_eq!(rows, 0, "{table}: `{sql}` touched B's rows"),
                Err(code) => assert_eq!(code, "42501", "{table}: `{sql}` failed oddly"),
            }
        }

        // Inserting a copy of B's row (its fullest, so optional references are on trial too),
        // still labelled B, is refused.
        let row: serde_json::Value = sqlx::query(AssertSqlSafe(format!(
            "select to_jsonb(x) as j from {t} x where organisation_id = $1
              order by (select count(*) from jsonb_each(to_jsonb(x)) f where f.value <> 'null') desc
              limit 1"
        )))
        .bind(b.id.0)
        .fetch_one(&mut su)
        .await
        .unwrap()
        .get("j");
        // Generated columns (a building's higher-risk flag) are the database's to fill.
        let columns: String = sqlx::query_scalar(
            "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute
              where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = ''",
        )
        .bind(&t)
        .fetch_one(&mut su)
        .await
        .unwrap();
        let insert = format!(
            "insert into {t} ({columns}) select {columns} from jsonb_populate_record(null::{t}, $1)"
        );
        let copied = attempt(db, a, &insert, Some(row.clone())).await;
        assert_eq!(
            copied,
            Err("42501".to_owned()),
            "{table}: inserting a row labelled with B was not refused"
        );

        // Relabelled as A but pointing at B's records: the composite foreign keys refuse it.
        if with_tenant_fk.contains(table) {
            let mut relabelled = row.clone();
            relabelled["organisation_id"] = serde_json::json!(a.id.0);
            if relabelled.get("id").is_some() {
                relabelled["id"] = serde_json::json!(Uuid::now_v7());
            }
            // Globally unique secrets (and providers' references, unique per organisation)
            // would collide first; only the references are on trial.
            for unique in [
                "token_hash",
                "code_hash",
                "provider_ref",
                "billing_request_ref",
                "mandate_ref",
            ] {
                if relabelled.get(unique).is_some() {
                    relabelled[unique] = serde_json::json!(random_hash());
                }
            }
            // Keys and names unique per organisation (a category A also has) get fresh ones.
            if relabelled.get("key").is_some() {
                let fresh = format!("probe_{}", &random_hash()[..8].to_lowercase());
                relabelled["key"] = serde_json::json!(fresh);
                if *table == "ticket_category" {
                    relabelled["name"] = serde_json::json!(fresh);
                }
            }
            // An account's address is unique per organisation and portal.
            if *table == "portal_account" {
                relabelled["email"] =
                    serde_json::json!(format!("probe.{}@example.com", &random_hash()[..8]));
            }
            // Names unique per organisation.
            if *table == "approval_chain" {
                relabelled["name"] = serde_json::json!(format!("Probe {}", &random_hash()[..8]));
            }
            for column in ["reference", "number"] {
                if let Some(reference) = relabelled.get(column).and_then(|r| r.as_str()) {
                    // Numbered references (WO-2026-0042, INV-2026-000001) keep their shape,
                    // with a number of their own.
                    let fresh = match reference.split('-').collect::<Vec<_>>().as_slice() {
                        [prefix, year, _] => format!(
                            "{prefix}-{year}-9{:06}",
                            &Uuid::now_v7().as_u128() % 1_000_000
                        ),
                        _ => format!("P{}", &random_hash()[..8]),
                    };
                    relabelled[column] = serde_json::json!(fresh);
                }
            }
            let pointed = attempt(db, a, &insert, Some(relabelled)).await;
            // A table the server role may not insert into at all (written only through a
            // function, such as audit_erasure) refuses before the keys are checked.
            let may_insert: bool =
                sqlx::query_scalar("select has_table_privilege('proplink_app', $1, 'INSERT')")
                    .bind(table)
                    .fetch_one(&mut su)
                    .await
                    .unwrap();
            let refusal = if may_insert { "23503" } else { "42501" };
            assert_eq!(
                pointed,
                Err(refusal.to_owned()),
                "{table}: A inserted a row referencing B's records"
            );
        }

        assert_eq!(
            platform_count(db, table, b).await,
            b_rows,
            "{table}: B's rows changed"
        );
    }
}
