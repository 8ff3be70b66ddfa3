//! The demo's operations (issue 5): contractors with their insurance (one with a lapsed Gas
//! Safe registration, to show the compliance block), issues in each state, and work orders
//! along the worked example: one waiting for the plumber's quotation (its ContractorPort link
//! is in the development mailbox), one quoted and awaiting approval, one done and closed.
//! Staff actions are the demo loader's; the contractors' go through ContractorPort's own
//! context, so the history reads as it would in use.

use proplink_auth::seal::DataKey;
use proplink_db::operations::{
    self as ops, Approver, DocumentInput, InviteRequest, IssueInput, IssueMove, Location,
    QuoteInput, WorkOrderInput,
};
use proplink_db::organisation::Organisation;
use proplink_db::people::{self, VendorInput};
use proplink_db::{Actor, AppPool, TenantContext, TenantTx};
use proplink_domain::operations::{
    DocumentType, IssueCategory, IssueStatus, Priority, QuoteAmounts, ReporterKind, Trade,
};
use proplink_domain::{ActorKind, Channel, EmailAddress};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn ctx(org: &Organisation, kind: ActorKind, name: &str, channel: Channel) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind,
            name: Some(name.into()),
        },
        channel,
        request_id: None,
    }
}

fn e<E: std::fmt::Display>(err: E) -> String {
    format!("the demo's operations: {err}")
}

/// Loads the operations demo into `org`, whose portfolio is already loaded.
/// `contractor_base` (`http://contractorport.localhost:8080`) starts the ContractorPort links
/// the e-mails carry.
pub async fn load(
    app: &AppPool,
    org: &Organisation,
    contractor_base: &str,
    files: Option<&proplink_files::FileStore>,
) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let staff = ctx(org, ActorKind::System, "the demo loader", Channel::Platform);
    let mut tx = app.begin(&staff).await.map_err(e)?;
    let places: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select u.site_id, u.id from unit u join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
          where u.organisation_id = $1 and u.archived_at is null
          order by s.reference, u.list_key limit 3",
    )
    .bind(org.id.0)
    .fetch_all(tx.conn())
    .await
    .map_err(e)?;
    let Some(&(site, unit)) = places.first() else {
        return Ok(());
    };
    let other_unit = places.get(1).map(|p| p.1).filter(|_| places[1].0 == site);
    let key = DataKey::generate();
    let vendor = async |tx: &mut TenantTx, name: &str, trade: &str, email: &str| {
        people::save_vendor(
            tx,
            &key,
            None,
            &VendorInput {
                name: name.into(),
                trade: trade.into(),
                contact_name: Some("Office".into()),
                email: Some(email.into()),
                ..Default::default()
            },
        )
        .await
        .map_err(e)
    };
    let domain = org.slug.as_str();
    let plumber = vendor(
        &mut tx,
        "Bright Spark Plumbing",
        "Plumbing",
        &format!("jobs@brightspark-{domain}.example.co.uk"),
    )
    .await?;
    let gas = vendor(
        &mut tx,
        "Flame Heating Ltd",
        "Heating and gas",
        &format!("office@flame-{domain}.example.co.uk"),
    )
    .await?;
    let lifts = vendor(
        &mut tx,
        "Northern Lifts",
        "Lifts",
        &format!("service@northernlifts-{domain}.example.co.uk"),
    )
    .await?;
    let locks = vendor(
        &mut tx,
        "Keyworth Locksmiths",
        "Locksmiths",
        &format!("jobs@keyworth-{domain}.example.co.uk"),
    )
    .await?;
    for (v, kind, days, number) in [
        (plumber, DocumentType::PublicLiability, 220, "PL-448812"),
        (gas, DocumentType::PublicLiability, 300, "PL-901223"),
        (lifts, DocumentType::PublicLiability, 40, "PL-330017"),
        (locks, DocumentType::PublicLiability, 150, "PL-552190"),
    ] {
        let doc = ops::add_vendor_document(
            &mut tx,
            v,
            &DocumentInput {
                doc_type: kind,
                reference_number: number.into(),
                issuer: Some("Aviva".into()),
                sum_insured_pence: Some(500_000_000),
                expires_on: today + Duration::days(days),
            },
            today,
        )
        .await
        .map_err(e)?;
        ops::verify_document(&mut tx, v, doc, "the demo loader", now)
            .await
            .map_err(e)?;
    }
    // Flame Heating's Gas Safe registration lapsed last month: inviting them is blocked.
    sqlx::query(
        "insert into vendor_document (organisation_id, id, vendor_id, doc_type, reference_number,
                                      issuer, expires_on)
         values ($1, $2, $3, 'gas_safe', '512345', 'Gas Safe Register', $4)",
    )
    .bind(org.id.0)
    .bind(Uuid::now_v7())
    .bind(gas)
    .bind(today - Duration::days(30))
    .execute(tx.conn())
    .await
    .map_err(e)?;

    let issue = |title: &str, category, priority, unit: Option<Uuid>| IssueInput {
        location: Location {
            site_id: site,
            building_id: None,
            unit_id: unit,
            space_id: None,
        },
        title: title.into(),
        description: Some("Reported by the resident by phone.".into()),
        category,
        priority,
        reporter_kind: ReporterKind::Resident,
        reporter_contact_id: None,
        reporter_name: "Mr Patel".into(),
        reporter_email: EmailAddress::parse("patel@example.com").ok(),
        channel: "phone".into(),
    };
    let (leak, _) = ops::create_issue(
        &mut tx,
        &issue(
            "Water through the kitchen ceiling",
            IssueCategory::WaterLeak,
            Priority::High,
            Some(unit),
        ),
        now,
    )
    .await
    .map_err(e)?;
    let (light, _) = ops::create_issue(
        &mut tx,
        &issue(
            "Landing light flickering",
            IssueCategory::Lighting,
            Priority::Low,
            None,
        ),
        now,
    )
    .await
    .map_err(e)?;
    ops::move_issue(
        &mut tx,
        light,
        &IssueMove {
            to: IssueStatus::Triaged,
            closed_reason: None,
            duplicate_of: None,
            note: Some("Our caretaker will look at it on Thursday.".into()),
        },
        now,
    )
    .await
    .map_err(e)?;
    let (lift_noise, _) = ops::create_issue(
        &mut tx,
        &issue(
            "Lift making a grinding noise",
            IssueCategory::Lift,
            Priority::Medium,
            None,
        ),
        now,
    )
    .await
    .map_err(e)?;
    let (lock, _) = ops::create_issue(
        &mut tx,
        &issue(
            "Front door lock sticking",
            IssueCategory::Security,
            Priority::High,
            other_unit,
        ),
        now,
    )
    .await
    .map_err(e)?;

    let order = |title: &str, scope: &str, trade: Trade, priority, unit| WorkOrderInput {
        location: Location {
            site_id: site,
            building_id: None,
            unit_id: unit,
            space_id: None,
        },
        title: title.into(),
        scope: scope.into(),
        trade: Trade::as_str(trade).to_owned(),
        priority,
        cost_code: Some("REP-01".into()),
        not_to_exceed_pence: Some(250_000),
        target_start: Some(today + Duration::days(2)),
        target_completion: Some(today + Duration::days(9)),
        access_notes: Some("Keys with the concierge; park in bay 4.".into()),
        manager_name: "Priya Patel".into(),
        manager_email: Some("priya.patel@example.co.uk".into()),
    };
    let link = |token: &str| format!("{contractor_base}/{token}");
    let invite = |v| InviteRequest {
        vendor_id: v,
        override_reason: None,
    };
    // 1. The leak: the plumber is invited; their link is in the development mailbox.
    let (leak_wo, _) = ops::create_work_order(
        &mut tx,
        &order(
            "Repair leak above the kitchen",
            "Trace and repair the leak from the flat above; make good the ceiling.",
            Trade::Plumbing,
            Priority::High,
            Some(unit),
        ),
        &[leak],
        now,
    )
    .await
    .map_err(e)?;
    ops::invite_contractor(&mut tx, leak_wo, &invite(plumber), &org.name, &link, now)
        .await
        .map_err(e)?;
    // 2. The lift: quoted, awaiting approval.
    let (lift_wo, _) = ops::create_work_order(
        &mut tx,
        &order(
            "Investigate lift noise",
            "Attend, diagnose the grinding noise and quote for the repair.",
            Trade::Lifts,
            Priority::Medium,
            None,
        ),
        &[lift_noise],
        now,
    )
    .await
    .map_err(e)?;
    let lift_inv = ops::invite_contractor(&mut tx, lift_wo, &invite(lifts), &org.name, &link, now)
        .await
        .map_err(e)?;
    // 3. The lock: done, rated and closed.
    let (lock_wo, _) = ops::create_work_order(
        &mut tx,
        &order(
            "Replace front door lock",
            "Replace the sticking euro cylinder with a 3-star anti-snap cylinder.",
            Trade::Locksmiths,
            Priority::High,
            other_unit,
        ),
        &[lock],
        now,
    )
    .await
    .map_err(e)?;
    let lock_inv = ops::invite_contractor(&mut tx, lock_wo, &invite(locks), &org.name, &link, now)
        .await
        .map_err(e)?;
    tx.commit().await.map_err(e)?;

    let contractor = |name: &str| ctx(org, ActorKind::Contractor, name, Channel::ContractorPort);
    let mut tx = app.begin(&contractor("Northern Lifts")).await.map_err(e)?;
    ops::submit_quotation(
        &mut tx,
        lift_inv.invitation_id,
        &QuoteInput {
            kind: "estimate".into(),
            amounts: QuoteAmounts::parse("1,450.00", "290.00").map_err(e)?,
            valid_until: today + Duration::days(30),
            notes: Some("Likely worn drive sheave bearings; estimate includes parts.".into()),
        },
        now,
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;

    let mut tx = app
        .begin(&contractor("Keyworth Locksmiths"))
        .await
        .map_err(e)?;
    let quote = ops::submit_quotation(
        &mut tx,
        lock_inv.invitation_id,
        &QuoteInput {
            kind: "fixed".into(),
            amounts: QuoteAmounts::parse("95.00", "19.00").map_err(e)?,
            valid_until: today + Duration::days(30),
            notes: None,
        },
        now,
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;
    let mut tx = app.begin(&staff).await.map_err(e)?;
    ops::approve_quotation(
        &mut tx,
        quote,
        &Approver {
            name: "Priya Patel".into(),
            limit_pence: Some(500_000),
        },
        None,
        &org.name,
        now,
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;
    let mut tx = app
        .begin(&contractor("Keyworth Locksmiths"))
        .await
        .map_err(e)?;
    ops::record_update(
        &mut tx,
        lock_wo,
        "attendance",
        Some("On site 10:05"),
        "Keyworth Locksmiths",
        now,
    )
    .await
    .map_err(e)?;
    ops::complete_work(
        &mut tx,
        lock_wo,
        Some("Cylinder replaced; three keys handed to the concierge."),
        "Keyworth Locksmiths",
        now,
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;
    let mut tx = app.begin(&staff).await.map_err(e)?;
    ops::close_work_order(&mut tx, lock_wo, 5, Some("Quick and tidy."), None, now)
        .await
        .map_err(e)?;
    maintenance(&mut tx, site, gas, lifts, plumber, today).await?;
    // A resident's query as a ticket, with the acknowledgement in the mailbox.
    proplink_db::tickets::create_ticket(
        &mut tx,
        &proplink_db::tickets::TicketInput {
            site_id: Some(site),
            subject: "Why has the service charge gone up?".into(),
            category: "query".into(),
            priority: Some(Priority::Medium),
            reporter_name: "Mr Patel".into(),
            reporter_email: EmailAddress::parse("patel@example.com").ok(),
            channel: "email".into(),
            message: "My demand this year is 12% higher. Could you explain why?".into(),
            assignee_id: None,
        },
        "Priya Patel",
        now,
    )
    .await
    .map_err(e)?;
    if let Some(store) = files {
        documents(&mut tx, store, org, site, now).await?;
    }
    tx.commit().await.map_err(e)
}

/// A one-page PDF saying `title`, with a correct cross-reference table.
fn demo_pdf(title: &str) -> Vec<u8> {
    let text: String = title
        .chars()
        .filter(|c| c.is_ascii() && !"()\\".contains(*c))
        .collect();
    let stream = format!("BT /F1 18 Tf 60 760 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The site's document folders with a few certificates: the EICR in Compliance (shown to
/// residents), the buildings insurance schedule, and last year's year-end pack.
async fn documents(
    tx: &mut TenantTx,
    store: &proplink_files::FileStore,
    org: &Organisation,
    site: Uuid,
    now: OffsetDateTime,
) -> Result<(), String> {
    use proplink_db::folders;
    folders::ensure_defaults(tx, site).await.map_err(e)?;
    let list = folders::folders(tx, site, false).await.map_err(e)?;
    let today = now.date();
    let items = [
        (
            "compliance",
            "EICR 2024.pdf",
            "Electrical installation condition report",
            Some(today + Duration::days(3 * 365)),
            true,
        ),
        (
            "compliance",
            "Fire risk assessment.pdf",
            "Fire risk assessment",
            Some(today + Duration::days(20)),
            false,
        ),
        (
            "insurance",
            "Buildings insurance schedule.pdf",
            "Buildings insurance schedule",
            Some(today + Duration::days(200)),
            false,
        ),
        (
            "year_end_packs",
            "Year-end pack 2025.pdf",
            "Service charge year-end pack 2025",
            None,
            false,
        ),
    ];
    for (key, name, title, expires_on, shown) in items {
        let Some(folder) = list.iter().find(|f| f.default_key.as_deref() == Some(key)) else {
            continue;
        };
        let stored = store
            .put(
                org.id.0,
                name,
                demo_pdf(title).into(),
                proplink_files::MediaType::ALL,
            )
            .await
            .map_err(e)?;
        let file = proplink_db::operations::NewFile {
            sha256: stored.sha256,
            size_bytes: stored.size,
            media_type: stored.media_type.mime().to_owned(),
            object_key: stored.key,
            thumbnail_key: stored.thumbnail_key,
            original_name: name.to_owned(),
            purpose: "document".to_owned(),
            uploaded_by: "Priya Patel".to_owned(),
        };
        folders::add_file(
            tx,
            folder.id,
            &file,
            &folders::FolderFile {
                expires_on,
                shown_to_residents: shown,
            },
            None,
            now,
        )
        .await
        .map_err(e)?;
    }
    Ok(())
}

/// The site's compliance calendar: gas safety overdue (its contractor's Gas Safe has lapsed),
/// the lift's thorough examination due within the month, the rest in order; and a lift
/// maintenance agreement coming up for renewal.
async fn maintenance(
    tx: &mut TenantTx,
    site: Uuid,
    gas: Uuid,
    lifts: Uuid,
    plumber: Uuid,
    today: time::Date,
) -> Result<(), String> {
    use proplink_db::maintenance::{self as mnt, AgreementInput, EventInput};
    use proplink_domain::schedule::template;
    for (key, due_in, vendor, trade) in [
        ("gas_safety", -12, Some(gas), Some(Trade::HeatingGas)),
        ("lift_loler", 21, Some(lifts), Some(Trade::Lifts)),
        ("fire_risk_assessment", 140, None, None),
        ("eicr", 600, None, None),
        (
            "legionella_risk_assessment",
            300,
            Some(plumber),
            Some(Trade::Plumbing),
        ),
        ("emergency_lighting_test", 75, None, None),
    ] {
        let Some(t) = template(key) else { continue };
        mnt::create_event(
            tx,
            &EventInput {
                location: Location {
                    site_id: site,
                    ..Default::default()
                },
                name: t.name.to_owned(),
                template_key: Some(t.key.to_owned()),
                compliance: t.compliance,
                recurrence: t.recurrence,
                basis: t.basis,
                first_due: today + Duration::days(due_in),
                responsible_name: Some("Priya Patel".into()),
                vendor_id: vendor,
                trade: trade.map(|t| t.as_str().to_owned()),
                raise_days_before: trade.map(|_| 14),
            },
        )
        .await
        .map_err(e)?;
    }
    mnt::create_agreement(
        tx,
        &AgreementInput {
            vendor_id: lifts,
            title: "Lift maintenance and 24-hour call-out".into(),
            scope: Some("Monthly service visits, LOLER support, call-outs within 4 hours.".into()),
            pricing_model: "recurring_fee".into(),
            annual_value_pence: Some(432_000),
            starts_on: today - Duration::days(320),
            ends_on: Some(today + Duration::days(45)),
            notice_days: 30,
            auto_renew: true,
            sites: vec![site],
            manager_name: "Priya Patel".into(),
            manager_email: None,
        },
    )
    .await
    .map_err(e)?;
    Ok(())
}
