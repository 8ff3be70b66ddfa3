//! Money pages end to end (issue 6): a demand drafted, refused for a fraction of a penny,
//! submitted, approved with its statutory summary, part paid by a receipt, stated, aged and
//! balanced; manual journals and approval chains; another site's member reaching nothing.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use proplink_db::organisation::Organisation;
use proplink_db::people::{self, ContactInput, LeaseInput};
use proplink_db::portfolio::{self, Address, Landlord, SiteInput, UnitInput};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_test_support::people::{self as staff_people, TestMember};
use proplink_web::AppState;
use std::net::SocketAddr;
use tower::ServiceExt;
use uuid::Uuid;

struct Reply {
    status: StatusCode,
    location: String,
    content_type: String,
    body: String,
}

struct Client {
    app: Router,
    host: String,
    cookie: String,
}

impl Client {
    async fn send(&self, method: &str, path: &str, pairs: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish(),
            ))
            .unwrap();
        let peer: SocketAddr = "203.0.113.20:40000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let h = |name| {
            resp.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (location, content_type) = (h(header::LOCATION), h(header::CONTENT_TYPE));
        let bytes = axum::body::to_bytes(resp.into_body(), 32 << 20)
            .await
            .unwrap();
        Reply {
            status,
            location,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[]).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.send("POST", path, pairs).await
    }

    /// Posts, expects a redirect, and returns the page it leads to with its banner.
    async fn post_then_follow(&self, path: &str, pairs: &[(&str, &str)]) -> (String, Reply) {
        let r = self.post(path, pairs).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.body);
        let page = self.get(&r.location).await;
        assert_eq!(page.status, StatusCode::OK, "{}", r.location);
        (r.location, page)
    }
}

async fn client(state: &AppState, db: &TestDb, org: &Organisation, m: &TestMember) -> Client {
    let token = staff_people::session(db, org, m).await;
    Client {
        app: proplink_web::app(state.clone()),
        host: format!("{}.proplink.localhost", org.slug),
        cookie: format!("pl_session={token}"),
    }
}

struct Books {
    site: Uuid,
    other_site: Uuid,
    unit: Uuid,
    holder: Uuid,
    income: Uuid,
    fund: Uuid,
    exempt: Uuid,
    bank: Uuid,
}

async fn books(db: &TestDb, org: &Organisation) -> Books {
    let mut tx = db.app.begin(&db.staff(org, "Loader")).await.unwrap();
    let site = portfolio::save_site(
        &mut tx,
        None,
        &SiteInput {
            reference: "GC-001".into(),
            name: "Goldcrest House".into(),
            landlord: Some(Landlord {
                name: "Goldcrest Freehold Ltd".into(),
                address: Address {
                    line_1: Some("1 Park Row".into()),
                    city: Some("Leeds".into()),
                    postcode: Some("LS1 5HD".into()),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let other_site = portfolio::save_site(
        &mut tx,
        None,
        &SiteInput {
            reference: "GC-002".into(),
            name: "Other House".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let unit = portfolio::save_unit(
        &mut tx,
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
    let holder = people::save_contact(
        &mut tx,
        None,
        &ContactInput {
            kind: "person".into(),
            title: Some("Mr".into()),
            first_name: Some("Ravi".into()),
            last_name: Some("Patel".into()),
            correspondence: "email".into(),
            emails: vec!["ravi@example.com".into()],
            roles: vec!["leaseholder".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    people::add_lease(
        &mut tx,
        unit,
        &LeaseInput {
            starts_on: Some(time::macros::date!(2015 - 03 - 01)),
            holders: vec![holder],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    use proplink_db::ledger;
    ledger::ensure_books(&mut tx, site).await.unwrap();
    ledger::ensure_tax_rates(&mut tx).await.unwrap();
    let control = async |tx: &mut proplink_db::TenantTx, c: &str| {
        ledger::control_account(tx, site, c)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let income = control(&mut tx, "service_charge_income").await;
    let bank = control(&mut tx, "bank").await;
    let fund = ledger::fund_of_kind(
        &mut tx,
        site,
        proplink_domain::ledger::FundKind::ServiceCharge,
    )
    .await
    .unwrap()
    .unwrap()
    .id;
    let exempt = ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "exempt")
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    Books {
        site,
        other_site,
        unit,
        holder,
        income,
        fund,
        exempt,
        bank,
    }
}

async fn count(db: &TestDb, table: &str) -> i64 {
    let mut su = db.superuser().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(&mut su)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_demand_goes_from_draft_to_part_paid_and_the_reports_agree() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let b = books(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let m = async |email: &str, name: &str, role: BuiltInRole, scope: Scope| {
        staff_people::member(&db, &org, email, name, role, scope).await
    };
    let priya = m(
        "priya@goldcrest.test",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let ann = m(
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let sid = m(
        "sid@goldcrest.test",
        "Sid Site",
        BuiltInRole::SiteManager,
        Scope::Sites([b.other_site].into()),
    )
    .await;
    let priya = client(&state, &db, &org, &priya).await;
    let ann = client(&state, &db, &org, &ann).await;
    let sid = client(&state, &db, &org, &sid).await;

    let new = format!("/units/{}/invoices/new", b.unit);
    let page = priya.get(&new).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("New demand or invoice"));
    let (unit, holder, income, fund, exempt) = (
        b.unit.to_string(),
        b.holder.to_string(),
        b.income.to_string(),
        b.fund.to_string(),
        b.exempt.to_string(),
    );
    let form = |amount: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("kind", "service_charge".into()),
            ("contact", holder.clone()),
            (
                "reference",
                "Service charge 1 April to 30 September 2026".into(),
            ),
            ("issue_date", "2026-03-01".into()),
            ("due_date", "01/04/2026".into()),
            ("description_1", "Service charge on account".into()),
            ("account_1", income.clone()),
            ("fund_1", fund.clone()),
            ("tax_1", exempt.clone()),
            ("amount_1", amount.into()),
        ]
    };
    let pairs = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };
    let send = async |path: &str, f: Vec<(&'static str, String)>| {
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        priya.post(path, &refs).await
    };

    // A fraction of a penny: refused with the reason, the form kept, nothing saved.
    let refused = send(&new, pairs(&form("450.005"))).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("more than 2 decimal places"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("450.005"));
    assert_eq!(count(&db, "debtor_invoice").await, 0);

    let saved = send(&new, pairs(&form("450.00"))).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let invoice = saved.location.split('?').next().unwrap().to_owned();
    assert!(invoice.starts_with("/invoices/"));
    let draft = priya.get(&invoice).await;
    assert!(draft.body.contains("Draft") && draft.body.contains("£450.00"));

    let (_, page) = priya
        .post_then_follow(&format!("{invoice}/submit"), &[])
        .await;
    assert!(page.body.contains("Submitted for approval."));
    let (_, page) = ann
        .post_then_follow(&format!("{invoice}/approve"), &[])
        .await;
    assert!(
        page.body
            .contains("Approved and posted as INV-2026-000001."),
        "{}",
        page.body
    );
    assert!(page.body.contains(
        "Unless a summary is sent to you with a demand, you may withhold the service charge."
    ));
    assert!(
        page.body
            .contains("Goldcrest Freehold Ltd, 1 Park Row, Leeds, LS1 5HD")
    );

    // The demand's PDF: typeset, stored against it with its hash, and served as stored.
    let pdf = priya.get(&format!("{invoice}/pdf")).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.body.starts_with("%PDF-"));
    let again = priya.get(&format!("{invoice}/pdf")).await;
    assert_eq!(again.body, pdf.body, "served as stored, not typeset again");
    assert_eq!(count(&db, "money_document").await, 1);
    // Sent: e-mailed to the leaseholder with the PDF attached.
    let (_, page) = priya
        .post_then_follow(&format!("{invoice}/send"), &[])
        .await;
    assert!(
        page.body
            .contains("Sent to ravi@example.com, with INV-2026-000001.pdf attached."),
        "{}",
        page.body
    );
    assert_eq!(count(&db, "email_attachment").await, 1);
    assert_eq!(count(&db, "money_document").await, 1);

    // Another site's member reaches none of it.
    for path in [
        invoice.clone(),
        format!("/units/{unit}/financials"),
        format!("/units/{unit}/statement"),
        format!("/sites/{}/aged-debt", b.site),
        format!("/sites/{}/trial-balance", b.site),
        format!("{invoice}/pdf"),
        format!("/units/{unit}/statement.pdf"),
    ] {
        assert_eq!(sid.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        sid.post(
            &format!("{invoice}/void"),
            &[("reason", "x"), ("on", "2026-03-02")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // £300 by card, then more than a line owes to a chosen line: refused, nothing recorded.
    let receipt_path = format!("/units/{unit}/receipts/new");
    let line: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from debtor_invoice_line limit 1")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    let line_key = format!("line_{line}");
    let over = priya
        .post(
            &receipt_path,
            &[
                ("amount", "500.00"),
                ("received_on", "2026-03-20"),
                ("method", "card"),
                ("allocation", "chosen"),
                (&line_key, "450.01"),
            ],
        )
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        over.body
            .contains("line 1 has £450.00 outstanding: £450.01 is more than that."),
        "{}",
        over.body
    );
    assert_eq!(count(&db, "receipt").await, 0);
    let (_, receipt) = priya
        .post_then_follow(
            &receipt_path,
            &[
                ("amount", "300.00"),
                ("received_on", "2026-03-20"),
                ("method", "card"),
                ("contact", &holder),
                ("allocation", "oldest"),
            ],
        )
        .await;
    assert!(
        receipt
            .body
            .contains("Mr Ravi Patel paid £300.00 by card on 20 March 2026."),
        "{}",
        receipt.body
    );
    let inv = priya.get(&invoice).await;
    assert!(inv.body.contains("Part paid"));
    assert!(
        inv.body
            .contains("Mr Ravi Patel paid £300.00 by card on 20 March 2026 (RCT-2026-000001)")
    );

    // The statement, on screen and as CSV.
    let st_pdf = priya
        .get(&format!(
            "/units/{unit}/statement.pdf?from=2026-01-01&to=2026-06-30"
        ))
        .await;
    assert_eq!(st_pdf.content_type, "application/pdf");
    assert!(st_pdf.body.starts_with("%PDF-"));
    let st = priya
        .get(&format!(
            "/units/{unit}/statement?from=2026-01-01&to=2026-12-31"
        ))
        .await;
    assert!(st.body.contains("£150.00 owed"), "{}", st.body);
    let csv = priya
        .get(&format!(
            "/units/{unit}/statement?from=2026-01-01&to=2026-12-31&format=csv"
        ))
        .await;
    assert!(csv.content_type.starts_with("text/csv"));
    assert!(
        csv.body
            .contains("2026-03-01,Service charge demand INV-2026-000001"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.contains("2026-12-31,Closing balance,,,150.00"),
        "{}",
        csv.body
    );

    // Aged debt, trial balance and income & expenditure.
    let aged = priya
        .get(&format!("/sites/{}/aged-debt?as_at=2026-05-15", b.site))
        .await;
    assert!(aged.body.contains("Mr Ravi Patel") && aged.body.contains("£150.00"));
    let aged_csv = priya
        .get(&format!(
            "/sites/{}/aged-debt?as_at=2026-05-15&format=csv",
            b.site
        ))
        .await;
    assert!(
        aged_csv
            .body
            .contains("3,Mr Ravi Patel,0.00,0.00,150.00,0.00,0.00,150.00,0.00,150.00,2026-03-20"),
        "{}",
        aged_csv.body
    );
    let tb = priya
        .get(&format!(
            "/sites/{}/trial-balance?from=2026-01-01&to=2026-12-31",
            b.site
        ))
        .await;
    assert!(tb.body.contains("Debits and credits agree."), "{}", tb.body);
    let ie = priya
        .get(&format!(
            "/sites/{}/income-expenditure?from=2026-01-01&to=2026-12-31&format=csv",
            b.site
        ))
        .await;
    assert!(
        ie.body.contains("Service charge income") && ie.body.contains("450.00"),
        "{}",
        ie.body
    );
    let bad_period = priya
        .get(&format!("/sites/{}/trial-balance?from=31/02/2026", b.site))
        .await;
    assert_eq!(bad_period.status, StatusCode::OK);
    assert!(
        bad_period.body.contains("not a real date"),
        "{}",
        bad_period.body
    );

    // A manual journal: unbalanced refused; drafted by Ann, not approved by Ann, posted by Priya.
    let journal_path = format!("/sites/{}/journals/new", b.site);
    let bank = b.bank.to_string();
    let unbalanced = ann
        .post(
            &journal_path,
            &[
                ("date", "2026-03-31"),
                ("description", "Bank interest"),
                ("account_1", &bank),
                ("fund_1", &fund),
                ("debit_1", "12.34"),
                ("account_2", &income),
                ("fund_2", &fund),
                ("credit_2", "12.33"),
            ],
        )
        .await;
    assert_eq!(unbalanced.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unbalanced.body.contains(
            "The lines do not balance: debits £12.34 and credits £12.33 differ by £0.01."
        )
    );
    let (journal, _) = ann
        .post_then_follow(
            &journal_path,
            &[
                ("date", "2026-03-31"),
                ("description", "Bank interest"),
                ("account_1", &bank),
                ("fund_1", &fund),
                ("debit_1", "12.34"),
                ("account_2", &income),
                ("fund_2", &fund),
                ("credit_2", "12.34"),
            ],
        )
        .await;
    let journal = journal.split('?').next().unwrap().to_owned();
    ann.post_then_follow(&format!("{journal}/submit"), &[])
        .await;
    let (_, page) = ann
        .post_then_follow(&format!("{journal}/approve"), &[])
        .await;
    assert!(
        page.body.contains("You drafted this journal"),
        "{}",
        page.body
    );
    let alan = m(
        "alan@goldcrest.test",
        "Alan Auditor",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let alan = client(&state, &db, &org, &alan).await;
    let (_, page) = alan
        .post_then_follow(&format!("{journal}/approve"), &[])
        .await;
    assert!(
        page.body.contains("Approved and posted as JNL-2026-"),
        "{}",
        page.body
    );
    // A manager may not approve journals at all.
    assert_eq!(
        priya.post(&format!("{journal}/approve"), &[]).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn approval_chains_are_set_up_in_settings_and_hold_a_demand_until_signed() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let b = books(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let owner_m = staff_people::member(
        &db,
        &org,
        "olivia@goldcrest.test",
        "Olivia Owner",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let priya_m = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.test",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let ann_m = staff_people::member(
        &db,
        &org,
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let owner = client(&state, &db, &org, &owner_m).await;
    let priya = client(&state, &db, &org, &priya_m).await;
    let ann = client(&state, &db, &org, &ann_m).await;

    let ann_choice = format!("member:{}", ann_m.membership_id);
    let (_, page) = owner
        .post_then_follow(
            "/settings/approval-chains",
            &[
                ("name", "Demands over £100"),
                ("record_type", "debtor_invoice"),
                ("amount_over", "100"),
                ("mode", "sequential"),
                ("approver_1", &ann_choice),
            ],
        )
        .await;
    assert!(
        page.body.contains("Added the chain Demands over £100"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Over £100.00"));
    // A chain with no approver is refused with a sentence.
    let (_, page) = owner
        .post_then_follow(
            "/settings/approval-chains",
            &[("name", "Empty"), ("record_type", "credit_note")],
        )
        .await;
    assert!(page.body.contains("A chain needs at least one approver."));
    // Ann cannot change chains.
    assert_eq!(
        ann.post(
            "/settings/approval-chains",
            &[
                ("name", "X"),
                ("record_type", "bill"),
                ("approver_1", &ann_choice)
            ]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let (holder, income, fund, exempt) = (
        b.holder.to_string(),
        b.income.to_string(),
        b.fund.to_string(),
        b.exempt.to_string(),
    );
    let saved = priya
        .post(
            &format!("/units/{}/invoices/new", b.unit),
            &[
                ("kind", "service_charge"),
                ("contact", &holder),
                ("issue_date", "2026-03-01"),
                ("due_date", "2026-04-01"),
                ("description_1", "Service charge"),
                ("account_1", &income),
                ("fund_1", &fund),
                ("tax_1", &exempt),
                ("amount_1", "450"),
            ],
        )
        .await;
    let invoice = saved.location.split('?').next().unwrap().to_owned();
    owner
        .post_then_follow(&format!("{invoice}/submit"), &[])
        .await;
    // Priya may approve invoices, but the chain waits for Ann.
    let (_, page) = priya
        .post_then_follow(&format!("{invoice}/approve"), &[])
        .await;
    assert!(
        page.body
            .contains("This is waiting for Ann Accountant to approve it."),
        "{}",
        page.body
    );
    let (_, page) = ann
        .post_then_follow(&format!("{invoice}/approve"), &[])
        .await;
    assert!(
        page.body
            .contains("Approved and posted as INV-2026-000001."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Approved by Ann Accountant on"),
        "{}",
        page.body
    );

    // Delegations: Ann hands her approvals to Priya for a week.
    let (_, page) = ann
        .post_then_follow(
            "/account/delegations",
            &[
                ("to", &priya_m.membership_id.to_string()),
                ("starts_on", "2026-03-01"),
                ("ends_on", "2026-02-01"),
            ],
        )
        .await;
    assert!(page.body.contains("The delegation ends before it starts."));
}

#[tokio::test]
async fn financial_settings_and_receipt_batches_work_from_the_admin_app() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let b = books(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let m = async |email: &str, name: &str, role: BuiltInRole, scope: Scope| {
        let member = staff_people::member(&db, &org, email, name, role, scope).await;
        client(&state, &db, &org, &member).await
    };
    let ann = m(
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let priya = m(
        "priya@goldcrest.test",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let sid = m(
        "sid@goldcrest.test",
        "Sid Site",
        BuiltInRole::SiteManager,
        Scope::Sites([b.other_site].into()),
    )
    .await;

    // Settings → Financial settings: the chart, the roles and the rates.
    let index = ann.get("/settings").await;
    assert!(index.body.contains("/settings/financial"), "{}", index.body);
    let page = ann.get("/settings/financial").await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "Debtors control",
        "Service charge income",
        "Outside the scope of VAT",
        "Add account",
        "Add rate",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    let (_, page) = ann
        .post_then_follow(
            "/settings/financial/accounts",
            &[
                ("code", "4150"),
                ("name", "Parking income"),
                ("kind", "income"),
            ],
        )
        .await;
    assert!(
        page.body
            .contains("Added account 4150 Parking income: it is in 1 site&#39;s books"),
        "{}",
        page.body
    );
    // A duplicate code comes back with the reason, nothing added.
    let page = ann
        .post(
            "/settings/financial/accounts",
            &[("code", "4150"), ("name", "Parking"), ("kind", "income")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body
            .contains("The code 4150 is already used by Parking income.")
    );
    assert!(
        page.body
            .contains(r#"name="name" maxlength="100" required value="Parking""#)
    );
    assert_eq!(
        count(&db, "chart_template_account where code = '4150'").await,
        1
    );
    let mut tx = db.app.begin(&db.staff(&org, "Reader")).await.unwrap();
    let parking = proplink_db::chart::template(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.code == "4150")
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    let (_, page) = ann
        .post_then_follow(
            "/settings/financial/roles",
            &[
                ("action", "role"),
                ("role", "admin_fee_income"),
                ("account", &parking.to_string()),
            ],
        )
        .await;
    assert!(
        page.body
            .contains("Postings to administration fee income now use this account"),
        "{}",
        page.body
    );
    // A tax rate with a fraction too many is refused; a good one is added and archived.
    let page = ann
        .post(
            "/settings/financial/tax-rates",
            &[
                ("name", "Temporary"),
                ("rate", "12.345"),
                ("valid_from", "2026-01-01"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("A rate has at most two decimal places."));
    assert!(page.body.contains(r#"value="12.345""#));
    let (_, page) = ann
        .post_then_follow(
            "/settings/financial/tax-rates",
            &[
                ("name", "Temporary"),
                ("rate", "12.5"),
                ("valid_from", "01/01/2026"),
            ],
        )
        .await;
    assert!(
        page.body.contains("Added the rate Temporary (12.5%)."),
        "{}",
        page.body
    );
    // A manager reads the settings but changes neither accounts nor rates.
    let page = priya.get("/settings/financial").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Add account") && !page.body.contains("Add rate"));
    let r = priya
        .post(
            "/settings/financial/accounts",
            &[("code", "4160"), ("name", "Laundry"), ("kind", "income")],
        )
        .await;
    assert!(
        matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{}",
        r.status
    );
    assert_eq!(
        count(&db, "chart_template_account where code = '4160'").await,
        0
    );

    // A batch with a bad row comes back with every problem and the typed rows; nothing
    // recorded.
    let path = format!("/sites/{}/receipt-batches/new", b.site);
    let form = ann.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    let bank = b.bank.to_string();
    let bad_rows = "3, 450.00, PATEL F3\n99, 10.00\n3, 1.234";
    let r = ann
        .post(
            &path,
            &[
                ("received_on", "2026-03-20"),
                ("method", "cheque"),
                ("bank", &bank),
                ("rows", bad_rows),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Nothing was recorded"), "{}", r.body);
    assert!(r.body.contains("Row 3: the amount"), "{}", r.body);
    assert!(r.body.contains("99, 10.00"), "the typed rows are kept");
    assert_eq!(count(&db, "receipt").await, 0);
    let r = ann
        .post(
            &path,
            &[
                ("received_on", "2026-03-20"),
                ("method", "cheque"),
                ("bank", &bank),
                ("rows", "3, 450.00, PATEL F3\n99, 10.00"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Row 2: there is no unit 99 on this site."),
        "{}",
        r.body
    );
    assert_eq!(count(&db, "receipt").await, 0);

    let (location, page) = ann
        .post_then_follow(
            &path,
            &[
                ("received_on", "2026-03-20"),
                ("method", "cheque"),
                ("bank", &bank),
                ("rows", "3\t£450.00\tPATEL F3\n3\t25\t"),
                ("note", "Paying-in slip 000123"),
            ],
        )
        .await;
    assert!(location.starts_with("/receipt-batches/"), "{location}");
    assert!(
        page.body
            .contains("Recorded 2 receipts totalling £475.00: RCT-2026-000001 to RCT-2026-000002."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Mr Ravi Patel"),
        "the payer is the leaseholder"
    );
    assert!(page.body.contains("Paying-in slip 000123"));
    assert_eq!(count(&db, "receipt").await, 2);
    let site_page = ann.get(&format!("/sites/{}/financials", b.site)).await;
    assert!(
        site_page
            .body
            .contains("2 receipts totalling £475.00 by cheque")
    );

    // A site manager of another site reaches neither the batch nor the form.
    assert_eq!(sid.get(&location).await.status, StatusCode::NOT_FOUND);
    assert_eq!(sid.get(&path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bill_is_entered_approved_by_someone_else_held_and_released() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let b = books(&db, &org).await;
    let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
    let vendor = proplink_db::people::save_vendor(
        &mut tx,
        &proplink_auth::seal::DataKey::generate(),
        None,
        &proplink_db::people::VendorInput {
            name: "Bright Spark Plumbing".into(),
            trade: "Plumbing".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let repairs = proplink_db::ledger::control_account(&mut tx, b.site, "repairs")
        .await
        .unwrap()
        .unwrap()
        .id;
    let standard = proplink_db::ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "standard")
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let m = async |email: &str, name: &str, role: BuiltInRole, scope: Scope| {
        let member = staff_people::member(&db, &org, email, name, role, scope).await;
        client(&state, &db, &org, &member).await
    };
    let ann = m(
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let priya = m(
        "priya@goldcrest.test",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let sid = m(
        "sid@goldcrest.test",
        "Sid Site",
        BuiltInRole::SiteManager,
        Scope::Sites([b.other_site].into()),
    )
    .await;

    let path = format!("/sites/{}/bills/new", b.site);
    let form = ann.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Bright Spark Plumbing (Plumbing)"));
    let (vendor, repairs, fund, standard) = (
        vendor.to_string(),
        repairs.to_string(),
        b.fund.to_string(),
        standard.to_string(),
    );
    let fields = |total: &'static str| {
        vec![
            ("vendor", vendor.clone()),
            ("supplier_reference", "INV-1042".to_owned()),
            ("issue_date", "2026-05-12".to_owned()),
            ("description_1", "Repair to plant room pipework".to_owned()),
            ("account_1", repairs.clone()),
            ("fund_1", fund.clone()),
            ("tax_1", standard.clone()),
            ("net_1", "375.00".to_owned()),
            ("total", total.to_owned()),
        ]
    };
    fn as_refs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        f.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
    // Lines that do not add up to the printed total: refused, the form back as typed.
    let wrong = fields("450.01");
    let r = ann.post(&path, &as_refs(&wrong)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("The lines add up to £450.00 (net £375.00 + VAT £75.00), not the invoice&#39;s total of £450.01."),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"value="INV-1042""#));
    assert_eq!(count(&db, "bill").await, 0);

    let right = fields("450.00");
    let (location, page) = ann.post_then_follow(&path, &as_refs(&right)).await;
    assert!(location.starts_with("/bills/"), "{location}");
    assert!(page.body.contains("Draft bill saved."));
    assert!(page.body.contains("£450.00 (net £375.00 + VAT £75.00)"));
    let location = location.split('?').next().unwrap().to_owned();
    let (_, page) = ann
        .post_then_follow(&format!("{location}/submit"), &[])
        .await;
    assert!(page.body.contains("Submitted for approval."));
    // Ann entered it: she cannot approve it.
    let (_, page) = ann
        .post_then_follow(&format!("{location}/approve"), &[])
        .await;
    assert!(
        page.body
            .contains("You entered or submitted this bill: someone else must approve it."),
        "{}",
        page.body
    );
    let (_, page) = priya
        .post_then_follow(&format!("{location}/approve"), &[])
        .await;
    assert!(
        page.body
            .contains("Approved and posted as BIL-2026-000001."),
        "{}",
        page.body
    );
    let (_, page) = ann
        .post_then_follow(
            &format!("{location}/hold"),
            &[("reason", "Query on labour")],
        )
        .await;
    assert!(page.body.contains("On hold"), "{}", page.body);
    let (_, page) = ann
        .post_then_follow(&format!("{location}/release"), &[])
        .await;
    assert!(page.body.contains("Released."));
    let site_page = ann.get(&format!("/sites/{}/financials", b.site)).await;
    assert!(
        site_page
            .body
            .contains("BIL-2026-000001 (Bright Spark Plumbing INV-1042)")
    );

    // Another site's manager reaches neither the bill nor the form.
    assert_eq!(sid.get(&location).await.status, StatusCode::NOT_FOUND);
    assert_eq!(sid.get(&path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bank_accounts_are_added_masked_and_show_each_sites_money() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let b = books(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let ann_m = staff_people::member(
        &db,
        &org,
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let ann = client(&state, &db, &org, &ann_m).await;
    let (site, other) = (b.site.to_string(), b.other_site.to_string());
    let form = |sort: &'static str| {
        vec![
            ("name", "Goldcrest Client Account"),
            ("bank_name", "Barclays"),
            ("account_type", "client"),
            ("sort_code", sort),
            ("account_number", "5577 9911"),
            ("holder_name", "Goldcrest PM Ltd Client Account"),
            ("file_format", "csv"),
            ("site", site.as_str()),
            ("site", other.as_str()),
        ]
    };
    let r = ann.post("/bank-accounts", &form("20-00")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a sort code"), "{}", r.body);
    assert!(r.body.contains(r#"value="Goldcrest Client Account""#));
    assert!(!r.body.contains("55779911") && !r.body.contains("5577 9911"));
    assert_eq!(count(&db, "bank_account").await, 0);
    let (_, page) = ann
        .post_then_follow("/bank-accounts", &form("20-00-00"))
        .await;
    assert!(
        page.body.contains("Added Goldcrest Client Account"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Sort code **-**-00, account ****9911"));
    assert!(!page.body.contains("55779911"));
    let mut su = db.superuser().await;
    let id: Uuid = sqlx::query_scalar("select id from bank_account")
        .fetch_one(&mut su)
        .await
        .unwrap();
    let page = ann.get(&format!("/bank-accounts/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Pooled: 2 sites"));
    assert!(page.body.contains("Goldcrest House") && page.body.contains("Other House"));
    assert!(page.body.contains("Service charge fund"), "{}", page.body);
}

#[tokio::test]
async fn bills_are_paid_in_a_run_approved_by_a_second_person_and_the_trail_reads_both_ways() {
    use proplink_db::bank_accounts::{self as banks, AccountType, BankAccountInput, FileFormat};
    use proplink_db::bills::{self, BillInput, BillLineInput};
    use proplink_db::ledger;
    use proplink_domain::uk::{AccountNumber, SortCode};
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let b = books(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let key = state.settings().data_key.clone();
    let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
    let vendor = people::save_vendor(
        &mut tx,
        &key,
        None,
        &people::VendorInput {
            name: "Bright Spark Plumbing".into(),
            trade: "Plumbing".into(),
            email: Some("accounts@brightspark.test".into()),
            bank_account_name: Some("Bright Spark Plumbing Ltd".into()),
            bank: Some(people::BankDetails {
                sort_code: "404040".into(),
                account_number: "11112222".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let bank = banks::create(
        &mut tx,
        &key,
        &BankAccountInput {
            name: "Goldcrest Client Account".into(),
            bank_name: Some("Barclays".into()),
            account_type: AccountType::Client,
            sort_code: SortCode::parse("20-00-00").unwrap(),
            account_number: AccountNumber::parse("55779911").unwrap(),
            holder_name: "Goldcrest PM Client".into(),
            service_user_number: Some("123456".into()),
            file_format: FileFormat::BacsStandard18,
            fund_kind: None,
            sites: vec![b.site],
            ledger_account_id: Some(b.bank),
        },
    )
    .await
    .unwrap();
    let suspense = ledger::control_account(&mut tx, b.site, "suspense")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mk = |account: Uuid, amount: i64| ledger::NewLine {
        account_id: account,
        fund_id: b.fund,
        amount_pence: amount,
        unit_id: None,
        contact_id: None,
        work_order_id: None,
        description: None,
    };
    ledger::post(
        &mut tx,
        &ledger::NewJournal {
            site_id: b.site,
            date: time::macros::date!(2026 - 05 - 01),
            description: "Service charges received".into(),
            source_type: "manual_journal".into(),
            source_id: None,
            lines: vec![mk(b.bank, 100_000), mk(suspense, -100_000)],
        },
        "Loader",
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let repairs = ledger::control_account(&mut tx, b.site, "repairs")
        .await
        .unwrap()
        .unwrap()
        .id;
    let standard = ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "standard")
        .unwrap()
        .id;
    let mut approved = Vec::new();
    for (reference, net) in [("INV-1042", 37_500), ("INV-1050", 10_000)] {
        let who = proplink_db::approvals::Signer::unchained("Loader");
        let id = bills::save_draft(
            &mut tx,
            None,
            &BillInput {
                site_id: b.site,
                vendor_id: vendor,
                work_order_id: None,
                supplier_reference: reference.into(),
                issue_date: time::macros::date!(2026 - 05 - 12),
                due_date: None,
                incurred_on: None,
                description: None,
                lines: vec![BillLineInput {
                    description: "Plant room pipework".into(),
                    account_id: repairs,
                    fund_id: b.fund,
                    tax_rate_id: standard,
                    net_pence: net,
                    vat_pence: None,
                    vat_recoverable: false,
                }],
                total_pence: None,
                source: "admin",
                document: None,
            },
            &who,
        )
        .await
        .unwrap();
        bills::submit(&mut tx, id, &who, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        bills::approve(
            &mut tx,
            id,
            &proplink_db::approvals::Signer::unchained("Checker"),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        approved.push(id);
    }
    tx.commit().await.unwrap();
    let m = async |email: &str, name: &str, role: BuiltInRole, scope: Scope| {
        let member = staff_people::member(&db, &org, email, name, role, scope).await;
        client(&state, &db, &org, &member).await
    };
    let ann = m(
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let olga = m(
        "olga@goldcrest.test",
        "Olga Finance",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let priya = m(
        "priya@goldcrest.test",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let sid = m(
        "sid@goldcrest.test",
        "Sid Site",
        BuiltInRole::SiteManager,
        Scope::Sites([b.other_site].into()),
    )
    .await;

    // The first bill in a run; the second paid on its own.
    let page = ann.get("/payments").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Goldcrest Client Account (Sort code **-**-00, account ****9911)")
    );
    let bank_s = bank.to_string();
    let choose = ann
        .get(&format!("/payments/new?bank={bank_s}&due_by=2026-12-31"))
        .await;
    assert_eq!(choose.status, StatusCode::OK);
    assert!(
        choose.body.contains("Bright Spark Plumbing — £570.00"),
        "{}",
        choose.body
    );
    let first = approved[0].to_string();
    let today = super_today();
    // A payment date that has passed: refused, the form back with the bill still ticked.
    let r = ann
        .post(
            "/payments/new",
            &[
                ("bank", &bank_s),
                ("due_by", "2026-12-31"),
                ("payment_date", "2020-01-01"),
                ("bill", &first),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("has passed"), "{}", r.body);
    assert_eq!(count(&db, "payment_run").await, 0);
    let (run_path, page) = ann
        .post_then_follow(
            "/payments/new",
            &[
                ("bank", &bank_s),
                ("due_by", "2026-12-31"),
                ("payment_date", &today),
                ("bill", &first),
            ],
        )
        .await;
    assert!(
        page.body
            .contains("Scheduled: someone else now approves the run.")
    );
    assert!(
        page.body
            .contains("scheduled payment run PRN-2026-000001 of £450.00 via admin"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("£450.00 to 1 supplier for 1 bill<"),
        "{}",
        page.body
    );
    let run_path = run_path.split('?').next().unwrap().to_owned();
    // Not the scheduler; not a manager without the permission; another accountant.
    let (_, page) = ann
        .post_then_follow(&format!("{run_path}/approve"), &[])
        .await;
    assert!(
        page.body
            .contains("You scheduled this run: someone else must approve it.")
    );
    assert_eq!(
        priya.post(&format!("{run_path}/approve"), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let (_, page) = olga
        .post_then_follow(&format!("{run_path}/approve"), &[])
        .await;
    assert!(
        page.body.contains("Approved: download the bank file"),
        "{}",
        page.body
    );
    // The run page says beforehand what the bank will be sent differently.
    assert!(
        page.body
            .contains("name sent as &#34;BRIGHT SPARK PLUMB&#34;"),
        "{}",
        page.body
    );
    let file = ann.get(&format!("{run_path}/file")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(file.content_type.starts_with("text/plain") && file.body.starts_with("VOL1"));
    assert!(
        file.body.contains("INV-1042          BRIGHT SPARK PLUMB"),
        "{}",
        file.body
    );
    let (_, page) = ann.post_then_follow(&format!("{run_path}/paid"), &[]).await;
    assert!(
        page.body
            .contains("Marked paid and posted. 1 remittance advice e-mailed."),
        "{}",
        page.body
    );
    let mut su = db.superuser().await;
    let (subject, attachments): (String, i64) = sqlx::query_as(
        "select m.subject, (select count(*) from email_attachment a where a.message_id = m.id)
           from email_message m where m.category = 'remittance'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(
        (subject.as_str(), attachments),
        ("Remittance advice PAY-2026-000001: £450.00", 1)
    );
    let payment: Uuid = sqlx::query_scalar("select id from supplier_payment")
        .fetch_one(&mut su)
        .await
        .unwrap();
    // The bill's history tells the run in words, though scheduling wrote no bill.
    let page = ann.get(&format!("/bills/{first}")).await;
    for said in [
        "Ann Accountant put it in a payment run to pay £450.00 via admin",
        "recorded it paid in full via admin",
    ] {
        assert!(page.body.contains(said), "{said}: {}", page.body);
    }

    // The payment's page reads back to the bill; the reversal re-opens it.
    let pay_path = format!("/supplier-payments/{payment}");
    let page = ann.get(&pay_path).await;
    assert!(page.body.contains("Bright Spark Plumbing") && page.body.contains("INV-1042"));
    assert!(page.body.contains(&format!("/bills/{first}")));
    assert!(
        page.body
            .contains("Ann Accountant marked it paid via admin"),
        "{}",
        page.body
    );
    let r = ann
        .post(
            &format!("{pay_path}/reverse"),
            &[("on", &today), ("reason", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ann.get(&r.location).await.body.contains("Give the reason"));
    let (_, page) = ann
        .post_then_follow(
            &format!("{pay_path}/reverse"),
            &[("on", &today), ("reason", "Returned by the bank")],
        )
        .await;
    assert!(
        page.body
            .contains("Reversed: the bills it paid are owed again"),
        "{}",
        page.body
    );
    let creditors = ann.get(&format!("/creditors?site={}", b.site)).await;
    assert!(creditors.body.contains("£570.00"), "{}", creditors.body);

    // A single payment by cheque of the second bill: a bad amount is refused and kept.
    let second = approved[1];
    let pay_bill = format!("/bills/{second}/pay");
    let form = ann.get(&pay_bill).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"value="120.00""#), "{}", form.body);
    let r = ann
        .post(
            &pay_bill,
            &[
                ("bank", &bank_s),
                ("method", "cheque"),
                ("amount", "120.01"),
                ("payment_date", &today),
                ("reference", "000123"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("owes £120.00"), "{}", r.body);
    assert!(r.body.contains(r#"value="120.01""#));
    let (_, page) = ann
        .post_then_follow(
            &pay_bill,
            &[
                ("bank", &bank_s),
                ("method", "cheque"),
                ("amount", "120.00"),
                ("payment_date", &today),
                ("reference", "000123"),
            ],
        )
        .await;
    assert!(page.body.contains("Paid and posted."), "{}", page.body);
    let statement = ann
        .get(&format!("/vendors/{vendor}/statement?from=2026-01-01"))
        .await;
    assert_eq!(statement.status, StatusCode::OK);
    assert!(
        statement.body.contains("Payment PAY-2026-000001 reversed"),
        "{}",
        statement.body
    );
    assert!(statement.body.contains("Payment PAY-2026-000002 (000123)"));
    assert!(
        statement.body.contains("<strong>£450.00</strong>"),
        "{}",
        statement.body
    );

    // Another organisation's accountant finds none of it, by any route.
    let acme = db.org("acme", "Acme Property").await;
    let outsider_m = staff_people::member(
        &db,
        &acme,
        "ann@acme.test",
        "Acme Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let outsider = client(&state, &db, &acme, &outsider_m).await;
    for path in [
        run_path.clone(),
        format!("{run_path}/file"),
        pay_path.clone(),
        pay_bill.clone(),
        format!("/vendors/{vendor}/statement"),
    ] {
        assert_eq!(
            outsider.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for path in [
        format!("{run_path}/cancel"),
        format!("{pay_path}/reverse"),
        pay_bill.clone(),
    ] {
        let r = outsider
            .post(&path, &[("reason", "x"), ("on", &today), ("bank", &bank_s)])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.location);
    }
    assert!(
        !outsider
            .get("/creditors")
            .await
            .body
            .contains("Bright Spark")
    );
    assert_eq!(
        count(
            &db,
            "journal where source_type = 'supplier_payment_reversal'"
        )
        .await,
        1
    );

    // Another site's manager reaches none of it.
    assert_eq!(sid.get("/payments").await.status, StatusCode::NOT_FOUND);
    assert_eq!(sid.get(&pay_path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        sid.get(&format!("/creditors?site={}", b.site)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sid.get(&pay_bill).await.status, StatusCode::FORBIDDEN);
}

fn super_today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
