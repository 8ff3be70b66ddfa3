//! Operations against a real PostgreSQL: every work-order and issue move, allowed and refused;
//! approval limits; the compliance block and its override; the contractor's side through its
//! own (contractor, ContractorPort) context; and the audit trail it leaves.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_auth::seal::DataKey;
use proplink_db::operations::{
    self as ops, Approver, DocumentInput, InviteRequest, IssueInput, IssueMove, Location, OpsError,
    QuoteInput, WorkOrderInput,
};
use proplink_db::organisation::Organisation;
use proplink_db::people::{self, VendorInput};
use proplink_db::portfolio::{self, SiteInput, SiteScope, UnitInput};
use proplink_db::tenant::{Actor, TenantContext};
use proplink_db::{TenantTx, links};
use proplink_domain::operations::{
    ClosedReason, DocumentType, IssueCategory, IssueStatus, Priority, QuoteAmounts, ReporterKind,
    ServiceCategory, Trade,
};
use proplink_domain::{ActorKind, Channel, EmailAddress};
use proplink_test_support::TestDb;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

struct World {
    site: Uuid,
    unit: Uuid,
    plumber: Uuid,
    gas: Uuid,
}

async fn world(tx: &mut TenantTx) -> World {
    let site = portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: "GC-001".into(),
            name: "Goldcrest House".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let unit = portfolio::save_unit(
        tx,
        None,
        site,
        &UnitInput {
            reference: "3".into(),
            name: "Flat 3".into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let vendor = |name: &str, trade: &str, email: &str| VendorInput {
        name: name.into(),
        trade: trade.into(),
        email: Some(email.into()),
        ..Default::default()
    };
    let key = DataKey::generate();
    let plumber = people::save_vendor(
        tx,
        &key,
        None,
        &vendor(
            "Bright Spark Plumbing",
            "Plumbing",
            "jobs@brightspark.example",
        ),
    )
    .await
    .unwrap();
    let gas = people::save_vendor(
        tx,
        &key,
        None,
        &vendor("Flame Heating", "Heating and gas", "office@flame.example"),
    )
    .await
    .unwrap();
    World {
        site,
        unit,
        plumber,
        gas,
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn insure(tx: &mut TenantTx, vendor: Uuid, kind: DocumentType, days: i64) -> Uuid {
    ops::add_vendor_document(
        tx,
        vendor,
        &DocumentInput {
            doc_type: kind,
            reference_number: "POL-123".into(),
            issuer: Some("Aviva".into()),
            sum_insured_pence: Some(500_000_000),
            expires_on: now().date() + Duration::days(days),
        },
        now().date(),
    )
    .await
    .unwrap()
}

fn wo_input(w: &World, trade: Trade) -> WorkOrderInput {
    WorkOrderInput {
        location: Location {
            site_id: w.site,
            unit_id: Some(w.unit),
            ..Default::default()
        },
        title: "Leak under kitchen sink".into(),
        scope: "Trace and repair the leak; make good.".into(),
        trade: trade.as_str().to_owned(),
        priority: Priority::High,
        cost_code: Some("REP-01".into()),
        not_to_exceed_pence: None,
        target_start: None,
        target_completion: None,
        access_notes: Some("Key with the concierge".into()),
        manager_name: "Priya Patel".into(),
        manager_email: Some("priya@goldcrest.example".into()),
    }
}

fn url(token: &str) -> String {
    format!("http://contractorport.localhost/{token}")
}

fn contractor_ctx(org: &Organisation, name: &str) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind: ActorKind::Contractor,
            name: Some(name.into()),
        },
        channel: Channel::ContractorPort,
        request_id: None,
    }
}

fn quote(net: &str, vat: &str) -> QuoteInput {
    QuoteInput {
        kind: "fixed".into(),
        amounts: QuoteAmounts::parse(net, vat).unwrap(),
        valid_until: now().date() + Duration::days(30),
        notes: Some("Parts included".into()),
    }
}

async fn status_of(tx: &mut TenantTx, wo: Uuid) -> String {
    ops::find_work_order(tx, wo).await.unwrap().unwrap().status
}

#[tokio::test]
async fn the_worked_example_runs_from_issue_to_closed_work_order() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
    let (issue, reference) = ops::create_issue(
        &mut tx,
        &IssueInput {
            location: Location {
                site_id: w.site,
                unit_id: Some(w.unit),
                ..Default::default()
            },
            title: "Water through the ceiling".into(),
            description: Some("From the flat above".into()),
            category: IssueCategory::WaterLeak,
            priority: Priority::High,
            reporter_kind: ReporterKind::Resident,
            reporter_contact_id: None,
            reporter_name: "Mr Patel".into(),
            reporter_email: Some(EmailAddress::parse("patel@example.com").unwrap()),
            channel: "phone".into(),
        },
        now(),
    )
    .await
    .unwrap();
    assert!(reference.starts_with("ISS-") && reference.ends_with("-0001"));
    let (wo, wo_ref) =
        ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[issue], now())
            .await
            .unwrap();
    assert!(wo_ref.ends_with("-0001"));
    let issue_row = ops::find_issue(&mut tx, issue).await.unwrap().unwrap();
    assert_eq!(issue_row.status, "in_progress");
    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.plumber,
            override_reason: None,
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "invited");
    tx.commit().await.unwrap();

    // The link opens to this invitation, in this organisation.
    let grant = links::resolve(&db.app, &invited.token, now())
        .await
        .unwrap();
    assert_eq!(grant.org, org.id);
    assert_eq!(grant.record_id, invited.invitation_id);

    let mut tx = db
        .app
        .begin(&contractor_ctx(&org, "Bright Spark Plumbing"))
        .await
        .unwrap();
    ops::accept_invitation(&mut tx, invited.invitation_id, now())
        .await
        .unwrap();
    let q = ops::submit_quotation(
        &mut tx,
        invited.invitation_id,
        &quote("375.00", "75.00"),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "quoted");
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let approver = Approver {
        name: "Priya Patel".into(),
        limit_pence: Some(500_000),
    };
    ops::approve_quotation(&mut tx, q, &approver, None, "Goldcrest", now())
        .await
        .unwrap();
    let row = ops::find_work_order(&mut tx, wo).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.approved_pence, row.vendor_id),
        ("approved", Some(45_000), Some(w.plumber))
    );
    // Approving twice is refused and changes nothing.
    let again = ops::approve_quotation(&mut tx, q, &approver, None, "Goldcrest", now()).await;
    assert!(matches!(again, Err(OpsError::State(m)) if m.contains("already been approved")));
    tx.commit().await.unwrap();

    let mut tx = db
        .app
        .begin(&contractor_ctx(&org, "Bright Spark Plumbing"))
        .await
        .unwrap();
    ops::record_update(
        &mut tx,
        wo,
        "attendance",
        Some("On site 09:10"),
        "Bright Spark Plumbing",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "in_progress");
    ops::complete_work(
        &mut tx,
        wo,
        Some("Replaced trap"),
        "Bright Spark Plumbing",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "completed");
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    ops::close_work_order(&mut tx, wo, 5, Some("Tidy work"), None, now())
        .await
        .unwrap();
    let row = ops::find_work_order(&mut tx, wo).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.final_cost_pence),
        ("closed", Some(45_000))
    );
    // Closing the work order resolved its issue, and the reporter was told each time.
    let issue_row = ops::find_issue(&mut tx, issue).await.unwrap().unwrap();
    assert_eq!(issue_row.status, "resolved");
    let told: i64 = sqlx::query_scalar(
        "select count(*) from email_message where to_address = 'patel@example.com'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(told, 2, "in progress, then resolved");
    // The manager heard of the quotation and the completion.
    let manager: Vec<String> = sqlx::query_scalar(
        "select category from email_message where to_address = 'priya@goldcrest.example' order by created_at",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert_eq!(manager, vec!["quotation_received", "work_order_completed"]);
    // The contractor's actions are audited as the contractor, on ContractorPort.
    let by_contractor: Vec<(String, String)> = sqlx::query_as(
        "select distinct table_name, channel from audit_event
          where actor_kind = 'contractor' order by 1",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert!(by_contractor.contains(&("quotation".into(), "contractorport".into())));
    assert!(by_contractor.contains(&("work_order".into(), "contractorport".into())));
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn approving_one_quotation_declines_the_others_and_limits_are_kept() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
    insure(&mut tx, w.gas, DocumentType::PublicLiability, 200).await;
    let (wo, _) = ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
        .await
        .unwrap();
    let mut invitations = Vec::new();
    let mut tokens = Vec::new();
    for vendor in [w.plumber, w.gas] {
        let req = InviteRequest {
            vendor_id: vendor,
            override_reason: None,
        };
        let invited = ops::invite_contractor(&mut tx, wo, &req, "Goldcrest", &url, now())
            .await
            .unwrap();
        invitations.push(invited.invitation_id);
        tokens.push(invited.token);
    }
    // Inviting the same contractor twice is refused.
    let twice = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.plumber,
            override_reason: None,
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await;
    assert!(matches!(twice, Err(OpsError::State(_))));
    let cheap = ops::submit_quotation(&mut tx, invitations[0], &quote("400", "80"), now())
        .await
        .unwrap();
    // One quote in, one still pending: not yet "quoted".
    assert_eq!(status_of(&mut tx, wo).await, "invited");
    let dear = ops::submit_quotation(&mut tx, invitations[1], &quote("9000", "1800"), now())
        .await
        .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "quoted");

    // £10,800 is above a £5,000 limit: refused, nothing changes.
    let coordinator = Approver {
        name: "Sam Coordinator".into(),
        limit_pence: Some(500_000),
    };
    let over = ops::approve_quotation(&mut tx, dear, &coordinator, None, "Goldcrest", now()).await;
    match over {
        Err(OpsError::OverLimit { amount, limit }) => {
            assert_eq!(
                (amount.as_str(), limit.as_str()),
                ("£10,800.00", "£5,000.00")
            );
        }
        other => panic!("expected the limit to refuse, got {other:?}"),
    }
    assert_eq!(status_of(&mut tx, wo).await, "quoted");

    ops::approve_quotation(&mut tx, cheap, &coordinator, None, "Goldcrest", now())
        .await
        .unwrap();
    let all = ops::quotations(&mut tx, wo).await.unwrap();
    let states: Vec<_> = all.iter().map(|q| (q.id, q.status.clone())).collect();
    assert!(states.contains(&(cheap, "approved".into())));
    assert!(states.contains(&(dear, "not_awarded".into())));
    let inv = ops::invitations(&mut tx, wo).await.unwrap();
    let inv_states: Vec<_> = inv.iter().map(|i| i.status.as_str()).collect();
    assert_eq!(inv_states, vec!["awarded", "not_awarded"]);
    tx.commit().await.unwrap();
    // The contractor not awarded can no longer open the job; the one awarded can.
    assert!(links::resolve(&db.app, &tokens[0], now()).await.is_ok());
    assert!(matches!(
        links::resolve(&db.app, &tokens[1], now()).await,
        Err(links::ResolveError::Refused(links::LinkRefusal::Revoked))
    ));
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    // The other quote is now closed.
    let late = ops::approve_quotation(
        &mut tx,
        dear,
        &Approver {
            name: "Owner".into(),
            limit_pence: None,
        },
        None,
        "Goldcrest",
        now(),
    )
    .await;
    assert!(matches!(late, Err(OpsError::State(_))));
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_contractor_without_required_documents_needs_an_override_with_a_reason() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    // Liability cover but no Gas Safe registration.
    insure(&mut tx, w.gas, DocumentType::PublicLiability, 200).await;
    let (wo, _) = ops::create_work_order(&mut tx, &wo_input(&w, Trade::HeatingGas), &[], now())
        .await
        .unwrap();
    let refused = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.gas,
            override_reason: Some("   ".into()),
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await;
    match refused {
        Err(e @ OpsError::Compliance { .. }) => assert_eq!(
            e.to_string(),
            "Flame Heating cannot be instructed for Heating and gas work: Gas Safe registration is missing."
        ),
        other => panic!("expected the compliance block, got {other:?}"),
    }
    assert_eq!(status_of(&mut tx, wo).await, "draft");
    assert!(ops::invitations(&mut tx, wo).await.unwrap().is_empty());

    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.gas,
            override_reason: Some("Emergency: no heating, registration renewal in post".into()),
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await
    .unwrap();
    let inv = ops::find_invitation(&mut tx, invited.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        inv.compliance_override
            .unwrap()
            .contains("Gas Safe registration is missing")
    );
    // The override is in the audit trail, by the member who gave it.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where table_name = 'work_order_invitation'
            and actor_name = 'Priya Patel' and changes::text like '%Emergency: no heating%'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Approval checks again: still blocked without an override.
    let q = ops::submit_quotation(&mut tx, invited.invitation_id, &quote("200", "40"), now())
        .await
        .unwrap();
    let boss = Approver {
        name: "Priya Patel".into(),
        limit_pence: None,
    };
    let blocked = ops::approve_quotation(&mut tx, q, &boss, None, "Goldcrest", now()).await;
    assert!(matches!(blocked, Err(OpsError::Compliance { .. })));
    // Once the certificate is on file, approval goes through.
    insure(&mut tx, w.gas, DocumentType::GasSafe, 365).await;
    ops::approve_quotation(&mut tx, q, &boss, None, "Goldcrest", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn refused_moves_change_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
    let (wo, _) = ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
        .await
        .unwrap();
    // Nothing to complete or close in a draft.
    assert!(matches!(
        ops::complete_work(&mut tx, wo, None, "x", now()).await,
        Err(OpsError::State(_))
    ));
    assert!(matches!(
        ops::close_work_order(&mut tx, wo, 4, None, None, now()).await,
        Err(OpsError::State(_))
    ));
    assert!(matches!(
        ops::record_update(&mut tx, wo, "attendance", None, "x", now()).await,
        Err(OpsError::State(_))
    ));
    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.plumber,
            override_reason: None,
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await
    .unwrap();
    // A quotation that expired yesterday cannot be sent.
    let mut stale = quote("100", "20");
    stale.valid_until = now().date() - Duration::days(1);
    assert!(matches!(
        ops::submit_quotation(&mut tx, invited.invitation_id, &stale, now()).await,
        Err(OpsError::Invalid(_))
    ));
    // Cancelling needs a reason; then it withdraws the invitation and revokes the link.
    assert!(matches!(
        ops::cancel_work_order(&mut tx, wo, " ", "Goldcrest", now()).await,
        Err(OpsError::Invalid(_))
    ));
    ops::cancel_work_order(&mut tx, wo, "Resident fixed it", "Goldcrest", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        links::resolve(&db.app, &invited.token, now()).await,
        Err(links::ResolveError::Refused(links::LinkRefusal::Revoked))
    ));
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    // Completing or cancelling a cancelled order is refused; so is quoting on it.
    assert!(matches!(
        ops::complete_work(&mut tx, wo, None, "x", now()).await,
        Err(OpsError::State(m)) if m.contains("cancelled")
    ));
    assert!(matches!(
        ops::cancel_work_order(&mut tx, wo, "again", "Goldcrest", now()).await,
        Err(OpsError::State(_))
    ));
    assert!(matches!(
        ops::submit_quotation(&mut tx, invited.invitation_id, &quote("100", "20"), now()).await,
        Err(OpsError::State(_))
    ));
    assert_eq!(status_of(&mut tx, wo).await, "cancelled");
}

#[tokio::test]
async fn every_decline_makes_the_work_order_declined_until_someone_else_is_invited() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
    insure(&mut tx, w.gas, DocumentType::PublicLiability, 200).await;
    let (wo, _) = ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
        .await
        .unwrap();
    let req = |v| InviteRequest {
        vendor_id: v,
        override_reason: None,
    };
    let first = ops::invite_contractor(&mut tx, wo, &req(w.plumber), "Goldcrest", &url, now())
        .await
        .unwrap();
    ops::decline_invitation(&mut tx, first.invitation_id, Some("Fully booked"), now())
        .await
        .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "declined");
    assert!(matches!(
        ops::decline_invitation(&mut tx, first.invitation_id, None, now()).await,
        Err(OpsError::State(_))
    ));
    ops::invite_contractor(&mut tx, wo, &req(w.gas), "Goldcrest", &url, now())
        .await
        .unwrap();
    assert_eq!(status_of(&mut tx, wo).await, "invited");
}

#[tokio::test]
async fn issue_moves_follow_the_lifecycle_and_duplicates_name_their_original() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    let input = IssueInput {
        location: Location {
            site_id: w.site,
            ..Default::default()
        },
        title: "Bulb out on landing".into(),
        description: None,
        category: IssueCategory::Lighting,
        priority: Priority::Low,
        reporter_kind: ReporterKind::Staff,
        reporter_contact_id: None,
        reporter_name: "Priya Patel".into(),
        reporter_email: None,
        channel: "admin".into(),
    };
    let (a, a_ref) = ops::create_issue(&mut tx, &input, now()).await.unwrap();
    let (b, _) = ops::create_issue(&mut tx, &input, now()).await.unwrap();
    let mv = |to, reason, dup: Option<&str>| IssueMove {
        to,
        closed_reason: reason,
        duplicate_of: dup.map(str::to_owned),
        note: None,
    };
    ops::move_issue(&mut tx, a, &mv(IssueStatus::Triaged, None, None), now())
        .await
        .unwrap();
    // Closing needs a reason; a duplicate needs its original.
    assert!(matches!(
        ops::move_issue(&mut tx, b, &mv(IssueStatus::Closed, None, None), now()).await,
        Err(OpsError::Invalid(_))
    ));
    assert!(matches!(
        ops::move_issue(&mut tx, b, &mv(IssueStatus::Closed, Some(ClosedReason::Duplicate), Some("ISS-1999-0001")), now()).await,
        Err(OpsError::Invalid(m)) if m.contains("There is no issue")
    ));
    ops::move_issue(
        &mut tx,
        b,
        &mv(
            IssueStatus::Closed,
            Some(ClosedReason::Duplicate),
            Some(&a_ref.to_lowercase()),
        ),
        now(),
    )
    .await
    .unwrap();
    let b_row = ops::find_issue(&mut tx, b).await.unwrap().unwrap();
    assert_eq!(
        (b_row.status.as_str(), b_row.duplicate_of),
        ("closed", Some(a))
    );
    // Closed moves only to reopened.
    assert!(matches!(
        ops::move_issue(&mut tx, b, &mv(IssueStatus::Resolved, None, None), now()).await,
        Err(OpsError::State(_))
    ));
    ops::move_issue(&mut tx, b, &mv(IssueStatus::Reopened, None, None), now())
        .await
        .unwrap();
    let page = ops::list_issues(
        &mut tx,
        &SiteScope::everything(),
        &ops::IssueQuery {
            per_page: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 2, "both are open again");
}

#[tokio::test]
async fn a_unit_on_another_site_is_refused_for_an_issue() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    let other = portfolio::save_site(
        &mut tx,
        None,
        &SiteInput {
            reference: "GC-002".into(),
            name: "Other".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut input = wo_input(&w, Trade::Plumbing);
    input.location.site_id = other;
    assert!(matches!(
        ops::create_work_order(&mut tx, &input, &[], now()).await,
        Err(OpsError::Invalid(m)) if m.contains("not on the chosen site")
    ));
    // The refused work order did not take a number.
    let (_, reference) =
        ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    // (A refused statement inside the same transaction would have used number 1 only if the
    // counter ran before the check: it runs after.)
    assert!(reference.ends_with("-0001"), "{reference}");
}

mod maintenance {
    use super::*;
    use proplink_db::maintenance::{self as mnt, AgreementInput, EventInput};
    use proplink_domain::schedule::{ComplianceStatus, DueBasis, Recurrence};
    use time::macros::date;

    fn event(
        w: &World,
        name: &str,
        key: &str,
        first_due: time::Date,
        basis: DueBasis,
    ) -> EventInput {
        EventInput {
            location: Location {
                site_id: w.site,
                ..Default::default()
            },
            name: name.into(),
            template_key: Some(key.into()),
            compliance: true,
            recurrence: Recurrence::annual(),
            basis,
            first_due,
            responsible_name: Some("Priya Patel".into()),
            vendor_id: Some(w.gas),
            trade: Some("heating_gas".to_owned()),
            raise_days_before: Some(14),
        }
    }

    #[tokio::test]
    async fn completions_move_the_due_date_rolling_or_anchored() {
        let db = TestDb::new().await;
        let org = db.org("goldcrest", "Goldcrest").await;
        let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
        let w = world(&mut tx).await;
        let today = date!(2026 - 11 - 24);
        let rolling = mnt::create_event(
            &mut tx,
            &event(
                &w,
                "Fire risk assessment",
                "fire_risk_assessment",
                date!(2026 - 10 - 01),
                DueBasis::Rolling,
            ),
        )
        .await
        .unwrap();
        let anchored = mnt::create_event(
            &mut tx,
            &event(
                &w,
                "Gas safety",
                "gas_safety",
                date!(2026 - 10 - 01),
                DueBasis::Anchored,
            ),
        )
        .await
        .unwrap();
        // Done late, on 20 November: rolling counts a year from then; anchored keeps 1 October.
        let (_, next) = mnt::record_completion(
            &mut tx,
            rolling,
            date!(2026 - 11 - 20),
            Some("Report filed"),
            "Priya",
            today,
        )
        .await
        .unwrap();
        assert_eq!(next, date!(2027 - 11 - 20));
        let (_, next) = mnt::record_completion(
            &mut tx,
            anchored,
            date!(2026 - 11 - 20),
            None,
            "Priya",
            today,
        )
        .await
        .unwrap();
        assert_eq!(next, date!(2027 - 10 - 01));
        // A completion in the future, or before the last one, is refused.
        assert!(matches!(
            mnt::record_completion(
                &mut tx,
                rolling,
                date!(2026 - 12 - 01),
                None,
                "Priya",
                today
            )
            .await,
            Err(OpsError::Invalid(_))
        ));
        assert!(matches!(
            mnt::record_completion(
                &mut tx,
                rolling,
                date!(2026 - 11 - 01),
                None,
                "Priya",
                today
            )
            .await,
            Err(OpsError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn the_matrix_shows_overdue_due_soon_and_compliant_within_scope() {
        let db = TestDb::new().await;
        let org = db.org("goldcrest", "Goldcrest").await;
        let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
        let w = world(&mut tx).await;
        let today = date!(2026 - 11 - 24);
        for (name, key, due) in [
            ("Gas safety", "gas_safety", date!(2026 - 11 - 01)),
            ("EICR", "eicr", date!(2026 - 12 - 20)),
            ("Lift LOLER", "lift_loler", date!(2027 - 05 - 01)),
        ] {
            mnt::create_event(&mut tx, &event(&w, name, key, due, DueBasis::Rolling))
                .await
                .unwrap();
        }
        let m = mnt::compliance_matrix(&mut tx, &SiteScope::everything(), None, today)
            .await
            .unwrap();
        assert_eq!((m.overdue, m.due_soon, m.compliant), (1, 1, 1));
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].worst, ComplianceStatus::Overdue);
        assert_eq!(m.columns.len(), 3);
        // A member scoped to no site sees nothing.
        let none = SiteScope {
            all: false,
            sites: vec![],
            estates: vec![],
        };
        let m = mnt::compliance_matrix(&mut tx, &none, None, today)
            .await
            .unwrap();
        assert!(m.rows.is_empty() && m.overdue == 0);
    }

    #[tokio::test]
    async fn the_sweep_raises_each_due_work_order_and_sends_each_reminder_once() {
        let db = TestDb::new().await;
        let org = db.org("goldcrest", "Goldcrest").await;
        let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
        let w = world(&mut tx).await;
        let now = now();
        let today = now.date();
        // Gas Safe and liability on file; the liability expires in 45 days (reminder due).
        insure(&mut tx, w.gas, DocumentType::GasSafe, 300).await;
        insure(&mut tx, w.gas, DocumentType::PublicLiability, 45).await;
        mnt::create_event(
            &mut tx,
            &event(
                &w,
                "Gas safety",
                "gas_safety",
                today + Duration::days(10),
                DueBasis::Anchored,
            ),
        )
        .await
        .unwrap();
        mnt::create_agreement(
            &mut tx,
            &AgreementInput {
                vendor_id: w.plumber,
                title: "Water hygiene monitoring".into(),
                scope: None,
                pricing_model: "recurring_fee".into(),
                annual_value_pence: Some(240_000),
                starts_on: today - Duration::days(300),
                ends_on: Some(today + Duration::days(60)),
                notice_days: 45,
                auto_renew: true,
                sites: vec![w.site],
                manager_name: "Priya Patel".into(),
                manager_email: Some("priya@goldcrest.example".into()),
            },
        )
        .await
        .unwrap();
        let first = mnt::sweep(&mut tx, "Goldcrest", &url, now).await.unwrap();
        assert_eq!(
            first,
            mnt::Swept {
                work_orders_raised: 1,
                expiry_reminders: 1,
                renewal_reminders: 1
            }
        );
        let again = mnt::sweep(&mut tx, "Goldcrest", &url, now).await.unwrap();
        assert_eq!(again, mnt::Swept::default());
        // The raised work order invited the event's contractor, whose documents are in order.
        let invited: i64 = sqlx::query_scalar(
            "select count(*) from work_order w join work_order_invitation i
                on i.organisation_id = w.organisation_id and i.work_order_id = w.id
              where w.maintenance_event_id is not null and i.vendor_id = $1",
        )
        .bind(w.gas)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(invited, 1);
        let categories: Vec<String> = sqlx::query_scalar(
            "select category from email_message where category in ('document_expiry', 'agreement_renewal') order by category",
        )
        .fetch_all(tx.conn())
        .await
        .unwrap();
        assert_eq!(categories, vec!["agreement_renewal", "document_expiry"]);
    }
}

mod tickets {
    use super::*;
    use proplink_db::tickets::{self, TicketInput};
    use proplink_domain::sla::SlaState;

    #[tokio::test]
    async fn service_levels_pause_while_waiting_and_closing_the_work_order_resolves_the_ticket() {
        let db = TestDb::new().await;
        let org = db.org("goldcrest", "Goldcrest").await;
        let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
        let w = world(&mut tx).await;
        let start = time::macros::datetime!(2026-11-24 10:00 UTC);
        let (id, reference) = tickets::create_ticket(
            &mut tx,
            &TicketInput {
                site_id: Some(w.site),
                subject: "Water through the ceiling".into(),
                category: "maintenance".into(),
                priority: Some(Priority::Urgent),
                reporter_name: "Mr Patel".into(),
                reporter_email: Some(EmailAddress::parse("patel@example.com").unwrap()),
                channel: "phone".into(),
                message: "It is dripping onto the cooker".into(),
                assignee_id: None,
            },
            "Priya Patel",
            start,
        )
        .await
        .unwrap();
        assert!(reference.starts_with("TKT-2026-"));
        let t = tickets::find_ticket(&mut tx, id).await.unwrap().unwrap();
        assert_eq!(t.response_due_at, start + Duration::hours(1));
        assert_eq!(t.resolution_due_at, start + Duration::hours(24));
        assert_eq!(t.sla(start + Duration::minutes(50)), Some(SlaState::Amber));
        assert_eq!(t.sla(start + Duration::minutes(61)), Some(SlaState::Red));
        // Waiting on the customer for two hours moves both targets on by two hours.
        tickets::set_status(
            &mut tx,
            id,
            "waiting_on_customer",
            None,
            "Priya",
            start + Duration::minutes(10),
        )
        .await
        .unwrap();
        tickets::set_status(
            &mut tx,
            id,
            "open",
            None,
            "Priya",
            start + Duration::minutes(130),
        )
        .await
        .unwrap();
        let t = tickets::find_ticket(&mut tx, id).await.unwrap().unwrap();
        assert_eq!(t.response_due_at, start + Duration::hours(3));
        // Closing needs a reason; a reply is e-mailed with the reference in the subject.
        assert!(matches!(
            tickets::set_status(&mut tx, id, "closed", None, "Priya", start).await,
            Err(OpsError::Invalid(_))
        ));
        tickets::reply(
            &mut tx,
            id,
            false,
            "A plumber is on the way",
            "Priya",
            start + Duration::minutes(140),
        )
        .await
        .unwrap();
        tickets::reply(
            &mut tx,
            id,
            true,
            "Called the plumber",
            "Priya",
            start + Duration::minutes(141),
        )
        .await
        .unwrap();
        let subjects: Vec<String> = sqlx::query_scalar(
            "select subject from email_message where to_address = 'patel@example.com' order by created_at",
        )
        .fetch_all(tx.conn())
        .await
        .unwrap();
        assert_eq!(
            subjects.len(),
            2,
            "acknowledgement and reply, not the internal note"
        );
        assert!(
            subjects
                .iter()
                .all(|s| s.starts_with(&format!("[#{reference}]")))
        );

        // Linked to a work order, the ticket resolves when the work order closes.
        insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
        let (wo, wo_ref) =
            ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
                .await
                .unwrap();
        // A member scoped to other sites is told it does not exist.
        let elsewhere = proplink_db::portfolio::SiteScope {
            sites: vec![Uuid::now_v7()],
            ..Default::default()
        };
        match tickets::link(&mut tx, id, &wo_ref, &elsewhere, "Priya", now()).await {
            Err(OpsError::Invalid(m)) => assert_eq!(m, format!("There is no {wo_ref}.")),
            other => panic!("expected the reference hidden, got {other:?}"),
        }
        let everything = proplink_db::portfolio::SiteScope::everything();
        tickets::link(
            &mut tx,
            id,
            &wo_ref.to_lowercase(),
            &everything,
            "Priya",
            now(),
        )
        .await
        .unwrap();
        assert!(matches!(
            tickets::link(&mut tx, id, "XYZ-1", &everything, "Priya", now()).await,
            Err(OpsError::Invalid(_))
        ));
        let inv = ops::invite_contractor(
            &mut tx,
            wo,
            &InviteRequest {
                vendor_id: w.plumber,
                override_reason: None,
            },
            "Goldcrest",
            &url,
            now(),
        )
        .await
        .unwrap();
        let q = ops::submit_quotation(&mut tx, inv.invitation_id, &quote("100", "20"), now())
            .await
            .unwrap();
        ops::approve_quotation(
            &mut tx,
            q,
            &Approver {
                name: "Priya".into(),
                limit_pence: None,
            },
            None,
            "Goldcrest",
            now(),
        )
        .await
        .unwrap();
        ops::complete_work(&mut tx, wo, None, "Bright Spark Plumbing", now())
            .await
            .unwrap();
        ops::close_work_order(&mut tx, wo, 4, None, None, now())
            .await
            .unwrap();
        let t = tickets::find_ticket(&mut tx, id).await.unwrap().unwrap();
        assert_eq!(t.status, "resolved");
    }
}

#[tokio::test]
async fn preferred_contractors_are_listed_first_for_their_site_and_trade_only() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    let today = now().date();
    // Flame Heating is preferred for plumbing at this site; Bright Spark is a plumber.
    ops::add_preference(&mut tx, w.gas, Some(w.site), Some("plumbing"))
        .await
        .unwrap();
    assert!(matches!(
        ops::add_preference(&mut tx, w.gas, Some(w.site), Some("plumbing")).await,
        Err(OpsError::State(_))
    ));
    let here = ops::vendor_choices(
        &mut tx,
        &ServiceCategory::standard(Trade::Plumbing, &[]),
        Some(w.site),
        today,
    )
    .await
    .unwrap();
    assert_eq!(here[0].id, w.gas);
    assert!(here[0].preferred);
    assert_eq!(here[1].id, w.plumber, "then the trade's");
    // Elsewhere, or for other work, the preference does not apply.
    let elsewhere = ops::vendor_choices(
        &mut tx,
        &ServiceCategory::standard(Trade::Plumbing, &[]),
        None,
        today,
    )
    .await
    .unwrap();
    assert_eq!(elsewhere[0].id, w.plumber);
    assert!(!elsewhere.iter().any(|v| v.preferred));
    let listed = ops::preferences(&mut tx, w.gas).await.unwrap();
    assert_eq!(listed.len(), 1);
    ops::remove_preference(&mut tx, w.gas, listed[0].0)
        .await
        .unwrap();
    assert!(matches!(
        ops::remove_preference(&mut tx, w.gas, listed[0].0).await,
        Err(OpsError::NotFound)
    ));
}

#[tokio::test]
async fn organisations_add_service_categories_and_their_required_documents() {
    use proplink_db::service_categories as cats;
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;

    // The 13 standard categories, then the organisation's own.
    assert_eq!(cats::all(&mut tx, false).await.unwrap().len(), 13);
    let rope = cats::add(
        &mut tx,
        "Rope access",
        &[
            DocumentType::PublicLiability,
            DocumentType::EmployersLiability,
        ],
    )
    .await
    .unwrap();
    assert_eq!(rope, "rope_access");
    for (name, expected) in [
        (
            "rope  ACCESS",
            "There is already a category called Rope access.",
        ),
        (
            "Heating and gas",
            "Heating and gas is already one of the standard categories; add documents to it instead.",
        ),
        ("", "Enter the category's name."),
    ] {
        match cats::add(&mut tx, name, &[]).await {
            Err(OpsError::Invalid(m)) => assert_eq!(m, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
    let all = cats::all(&mut tx, false).await.unwrap();
    assert_eq!(all.len(), 14);
    assert_eq!(all[13].name, "Rope access");

    // A work order in the organisation's own category asks for its documents.
    let mut input = wo_input(&w, Trade::Plumbing);
    input.trade = rope.clone();
    let (wo, _) = ops::create_work_order(&mut tx, &input, &[], now())
        .await
        .unwrap();
    let invite = |vendor| InviteRequest {
        vendor_id: vendor,
        override_reason: None,
    };
    match ops::invite_contractor(&mut tx, wo, &invite(w.plumber), "Goldcrest", &url, now()).await {
        Err(e @ OpsError::Compliance { .. }) => assert_eq!(
            e.to_string(),
            "Bright Spark Plumbing cannot be instructed for Rope access work: Employers' liability insurance is missing."
        ),
        other => panic!("expected the compliance block, got {other:?}"),
    }
    insure(&mut tx, w.plumber, DocumentType::EmployersLiability, 200).await;
    ops::invite_contractor(&mut tx, wo, &invite(w.plumber), "Goldcrest", &url, now())
        .await
        .unwrap();

    // A standard category can require more: plumbing now needs CHAS too, but never less than
    // its own public liability cover.
    cats::set_requirements(
        &mut tx,
        "plumbing",
        &[DocumentType::PublicLiability, DocumentType::Chas],
    )
    .await
    .unwrap();
    let saved: Vec<String> = sqlx::query_scalar(
        "select required_documents from vendor_service_category where key = 'plumbing'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(
        saved,
        ["chas"],
        "its own requirement is not saved as an extra"
    );
    let plumbing = cats::find(&mut tx, "plumbing").await.unwrap().unwrap();
    assert_eq!(
        plumbing.requirement_text(),
        "Public liability insurance; CHAS accreditation"
    );
    let (wo2, _) = ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
        .await
        .unwrap();
    let blocked =
        ops::invite_contractor(&mut tx, wo2, &invite(w.plumber), "Goldcrest", &url, now()).await;
    assert!(
        matches!(&blocked, Err(OpsError::Compliance { gap, .. }) if gap.sentences() == ["CHAS accreditation is missing"]),
        "{blocked:?}"
    );
    // The picker says the same.
    let choices = ops::vendor_choices(&mut tx, &plumbing, Some(w.site), now().date())
        .await
        .unwrap();
    let bright = choices.iter().find(|c| c.id == w.plumber).unwrap();
    assert!(bright.matches_trade && bright.gap.is_some());

    // Archived: not for new work, but the work order already in it carries on.
    assert_eq!(cats::set_archived(&mut tx, &rope, true).await.unwrap(), 0);
    assert!(matches!(
        cats::set_archived(&mut tx, "plumbing", true).await,
        Err(OpsError::Invalid(_))
    ));
    assert_eq!(cats::all(&mut tx, false).await.unwrap().len(), 13);
    match ops::create_work_order(&mut tx, &input, &[], now()).await {
        Err(OpsError::Invalid(m)) => assert_eq!(
            m,
            "The Rope access category is archived: choose another or restore it in Settings."
        ),
        other => panic!("expected the archived refusal, got {other:?}"),
    }
    assert!(matches!(
        ops::add_preference(&mut tx, w.plumber, None, Some(&rope)).await,
        Err(OpsError::Invalid(_))
    ));
    let invitation = ops::invitations(&mut tx, wo).await.unwrap()[0].id;
    let q = ops::submit_quotation(&mut tx, invitation, &quote("300", "60"), now())
        .await
        .unwrap();
    let boss = Approver {
        name: "Priya Patel".into(),
        limit_pence: None,
    };
    ops::approve_quotation(&mut tx, q, &boss, None, "Goldcrest", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The database itself refuses a category the organisation does not have.
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let bad = sqlx::query("update work_order set trade = 'astrology' where id = $1")
        .bind(wo)
        .execute(tx.conn())
        .await;
    assert!(bad.is_err());
    drop(tx);

    // Another organisation cannot use Goldcrest's own category, in code or in SQL.
    let rival = db.org("rival", "Rival").await;
    let mut tx = db.app.begin(&db.staff(&rival, "Rita")).await.unwrap();
    let theirs = world(&mut tx).await;
    let mut input = wo_input(&theirs, Trade::Plumbing);
    input.trade = "rope_access".into();
    assert!(matches!(
        ops::create_work_order(&mut tx, &input, &[], now()).await,
        Err(OpsError::Invalid(_))
    ));
    let (their_wo, _) =
        ops::create_work_order(&mut tx, &wo_input(&theirs, Trade::Plumbing), &[], now())
            .await
            .unwrap();
    let bad = sqlx::query("update work_order set trade = 'rope_access' where id = $1")
        .bind(their_wo)
        .execute(tx.conn())
        .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_quotation_above_the_not_to_exceed_amount_needs_the_amount_raised() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
    let mut input = wo_input(&w, Trade::Plumbing);
    input.not_to_exceed_pence = Some(100_000);
    let (wo, reference) = ops::create_work_order(&mut tx, &input, &[], now())
        .await
        .unwrap();
    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.plumber,
            override_reason: None,
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await
    .unwrap();
    let q = ops::submit_quotation(&mut tx, invited.invitation_id, &quote("900", "180"), now())
        .await
        .unwrap();
    let boss = Approver {
        name: "Priya Patel".into(),
        limit_pence: None,
    };
    match ops::approve_quotation(&mut tx, q, &boss, None, "Goldcrest", now()).await {
        Err(OpsError::Invalid(m)) => assert_eq!(
            m,
            format!(
                "This quotation is £1,080.00 including VAT, above {reference}'s not-to-exceed amount of £1,000.00. Raise the not-to-exceed amount to approve it, or reject it."
            )
        ),
        other => panic!("expected the not-to-exceed refusal, got {other:?}"),
    }
    assert_eq!(status_of(&mut tx, wo).await, "quoted");
    ops::raise_not_to_exceed(&mut tx, q, "Priya Patel", now())
        .await
        .unwrap();
    ops::approve_quotation(&mut tx, q, &boss, None, "Goldcrest", now())
        .await
        .unwrap();
    let after = ops::find_work_order(&mut tx, wo).await.unwrap().unwrap();
    assert_eq!(after.not_to_exceed_pence, Some(108_000));
    assert_eq!(after.status, "approved");
    let noted = ops::updates(&mut tx, wo).await.unwrap();
    assert!(
        noted.iter().any(|u| u.body.as_deref()
            == Some("Not-to-exceed amount raised from £1,000.00 to £1,080.00 including VAT, to approve Bright Spark Plumbing's quotation.")
            && u.author_name == "Priya Patel"),
        "{noted:?}"
    );
    // Once decided, the quotation cannot lift the cap again.
    assert!(matches!(
        ops::raise_not_to_exceed(&mut tx, q, "Priya Patel", now()).await,
        Err(OpsError::State(_))
    ));
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_databases_standard_categories_are_the_codes() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    let keys: Vec<String> =
        sqlx::query_scalar("select unnest(proplink.standard_service_categories())")
            .fetch_all(&mut su)
            .await
            .unwrap();
    let code: Vec<String> = Trade::ALL.iter().map(|t| t.as_str().to_owned()).collect();
    assert_eq!(keys, code);
}

#[tokio::test]
async fn folder_files_keep_their_versions_and_an_archived_site_refuses_changes() {
    use proplink_db::folders;
    use proplink_db::operations::NewFile;
    use proplink_db::portfolio::Archivable;
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    folders::ensure_defaults(&mut tx, w.site).await.unwrap();
    folders::ensure_defaults(&mut tx, w.site).await.unwrap();
    let list = folders::folders(&mut tx, w.site, false).await.unwrap();
    assert_eq!(list.len(), 7);
    let compliance = list
        .iter()
        .find(|f| f.default_key.as_deref() == Some("compliance"))
        .unwrap()
        .id;
    let pdf = |name: &str| NewFile {
        sha256: "b".repeat(64),
        size_bytes: 100,
        media_type: "application/pdf".into(),
        object_key: format!("org/x/sha256/bb/{}", "b".repeat(64)),
        thumbnail_key: None,
        original_name: name.into(),
        purpose: "document".into(),
        uploaded_by: "Priya Patel".into(),
    };
    let expiry = now().date() + Duration::days(300);
    let v1 = folders::add_file(
        &mut tx,
        compliance,
        &pdf("EICR.pdf"),
        &folders::FolderFile {
            expires_on: Some(expiry),
            shown_to_residents: true,
        },
        None,
        now(),
    )
    .await
    .unwrap();
    // A new version keeps the expiry and the residents' view unless told otherwise.
    let v2 = folders::add_file(
        &mut tx,
        compliance,
        &pdf("EICR 2026.pdf"),
        &folders::FolderFile::default(),
        Some(v1),
        now(),
    )
    .await
    .unwrap();
    let current = folders::files(&mut tx, compliance, false).await.unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, v2);
    assert_eq!(current[0].version, 2);
    assert_eq!(current[0].expires_on, Some(expiry));
    assert!(current[0].shown_to_residents);
    assert_eq!(
        folders::files(&mut tx, compliance, true)
            .await
            .unwrap()
            .len(),
        2
    );
    tx.commit().await.unwrap();

    // The database keeps old versions and other records' files as they are.
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let undo = sqlx::query("update stored_file set replaced_at = null where id = $1")
        .bind(v1)
        .execute(tx.conn())
        .await;
    assert!(
        undo.is_err(),
        "a replaced version cannot become current again"
    );
    drop(tx);
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let changed = sqlx::query("delete from file_access")
        .execute(tx.conn())
        .await;
    assert!(changed.is_err(), "the access log is append-only");
    drop(tx);

    // An archived site: its folders change no more; deleting it for good removes its empty
    // folders but is refused while they hold files.
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    portfolio::set_archived(&mut tx, Archivable::Site, w.site, true)
        .await
        .unwrap();
    assert!(matches!(
        folders::create(&mut tx, w.site, "Fire strategy").await,
        Err(OpsError::State(_))
    ));
    assert!(matches!(
        folders::add_file(
            &mut tx,
            compliance,
            &pdf("x.pdf"),
            &folders::FolderFile::default(),
            None,
            now()
        )
        .await,
        Err(OpsError::State(_))
    ));
    assert!(portfolio::force_delete_site(&mut tx, w.site).await.is_err());
    drop(tx);
    let other = db.org("other", "Other").await;
    let mut tx = db.app.begin(&db.staff(&other, "Olu")).await.unwrap();
    let bare = world(&mut tx).await;
    folders::ensure_defaults(&mut tx, bare.site).await.unwrap();
    portfolio::set_archived(&mut tx, Archivable::Site, bare.site, true)
        .await
        .unwrap();
    portfolio::force_delete_site(&mut tx, bare.site)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn vendor_performance_counts_invitations_quotes_and_days_in_compliance() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let w = world(&mut tx).await;
    insure(&mut tx, w.plumber, DocumentType::PublicLiability, 200).await;
    let (wo, _) = ops::create_work_order(&mut tx, &wo_input(&w, Trade::Plumbing), &[], now())
        .await
        .unwrap();
    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: w.plumber,
            override_reason: None,
        },
        "Goldcrest",
        &url,
        now(),
    )
    .await
    .unwrap();
    ops::submit_quotation(&mut tx, invited.invitation_id, &quote("100", "20"), now())
        .await
        .unwrap();
    let p = ops::vendor_performance(&mut tx, w.plumber, now())
        .await
        .unwrap();
    assert_eq!(p.invitations, 1);
    assert_eq!(p.quote_rate, Some(1.0));
    // On the panel since today, insured since today: in order every day so far.
    assert_eq!(p.compliance_rate, Some(1.0));
    // The gas engineer has no Gas Safe registration: never in order.
    let gas = ops::vendor_performance(&mut tx, w.gas, now())
        .await
        .unwrap();
    assert_eq!(gas.invitations, 0);
    assert_eq!(gas.compliance_rate, Some(0.0));
}
