//! ResidencePort over HTTP (issue 8): a leaseholder signs in with an e-mailed code, reads their
//! statement, pays an invoice by card through the embedded test-mode provider (the amount is
//! the server's, the receipt posts once through the signed webhook and is audited in their
//! name), raises a request with a photo, reads a notice and changes their details. Another
//! organisation's ids answer 404; webhooks with bad, missing or stale signatures answer 400 and
//! record nothing; a redelivered event changes nothing twice.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use proplink_test_support::TestDb;
use proplink_test_support::http::{Client, Form};
use proplink_test_support::people as staff_people;
use proplink_web::AppState;
use std::net::SocketAddr;
use tower::ServiceExt;
use uuid::Uuid;

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

fn portal(state: &AppState, slug: &str, cookie: &str) -> Client {
    Client {
        app: proplink_web::app(state.clone()),
        host: format!("{slug}.residenceport.localhost"),
        cookie: cookie.to_owned(),
    }
}

async fn scalar<T>(db: &TestDb, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut su = db.superuser().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut su)
        .await
        .unwrap()
}

/// Signs Mr Smith in on `slug`'s portal with the code e-mailed to him; the cookie.
async fn sign_in(db: &TestDb, state: &AppState, slug: &str) -> String {
    let door = portal(state, slug, "");
    let asked = door
        .post("/sign-in", &[("email", "smith@example.com")])
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked
            .body
            .contains("If this address belongs to a resident here")
    );
    let body: String = scalar(
        db,
        &format!(
            "select m.body_text from email_message m join organisation o on o.id = m.organisation_id
              where o.slug = '{slug}' and m.category = 'sign_in_code' and m.to_address = 'smith@example.com'
              order by m.created_at desc limit 1"
        ),
    )
    .await;
    let code = body
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned();
    let wrong = door
        .post(
            "/sign-in/verify",
            &[("email", "smith@example.com"), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = door
        .post(
            "/sign-in/verify",
            &[("email", "smith@example.com"), ("code", code.as_str())],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    done.set_cookie.split(';').next().unwrap().to_owned()
}

/// An approved £`pence` service charge demand on `unit`, addressed to its leaseholder (under
/// the £100 above which the probe's approval chain applies).
async fn demand(
    db: &TestDb,
    org: &proplink_db::organisation::Organisation,
    unit: Uuid,
    pence: i64,
) {
    use proplink_db::approvals::Signer;
    use proplink_db::ledger;
    use proplink_db::receivables::{self as rx, DraftLine, InvoiceInput};
    let mut tx = db.app.begin(&db.staff(org, "Loader")).await.unwrap();
    let site: Uuid = proplink_db::portfolio::unit(&mut tx, unit)
        .await
        .unwrap()
        .unwrap()
        .site_id;
    let contact: Uuid = proplink_db::people::unit_leases(&mut tx, unit)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.ends_on.is_none())
        .and_then(|l| l.holder_ids.first().copied())
        .unwrap();
    let income = ledger::control_account(&mut tx, site, "service_charge_income")
        .await
        .unwrap()
        .unwrap()
        .id;
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
    let today = time::OffsetDateTime::now_utc().date();
    let id = rx::save_invoice_draft(
        &mut tx,
        None,
        &InvoiceInput {
            unit_id: unit,
            contact_id: contact,
            kind: proplink_domain::receivables::InvoiceKind::ServiceCharge,
            reference: Some("Reserve top-up".into()),
            issue_date: Some(today),
            due_date: Some(today + time::Duration::days(30)),
            lines: vec![DraftLine {
                description: "Reserve fund top-up".into(),
                account_id: income,
                fund_id: fund,
                tax_rate_id: exempt,
                net_pence: pence,
                period_from: None,
                period_to: None,
            }],
        },
        "Loader",
    )
    .await
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    rx::submit_invoice(&mut tx, id, &Signer::unchained("Loader"), now)
        .await
        .unwrap();
    rx::approve_invoice(&mut tx, id, &Signer::unchained("Approver"), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_leaseholder_signs_in_reads_their_statement_pays_by_card_and_raises_a_request() {
    let db = TestDb::new().await;
    let a = db.org("goldcrest", "Goldcrest Property").await;
    let b = db.org("rival", "Rival Estates").await;
    proplink_test_support::probe::seed(&db, &a).await;
    proplink_test_support::probe::seed(&db, &b).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;

    // Someone unknown is told the same and gets no code.
    let anon = portal(&state, "goldcrest", "");
    let home = anon.get("/").await;
    assert_eq!(home.location, "/sign-in");
    let unknown = anon
        .post("/sign-in", &[("email", "nobody@example.com")])
        .await;
    assert!(
        unknown
            .body
            .contains("If this address belongs to a resident here")
    );
    let sent: i64 = scalar(
        &db,
        "select count(*) from email_message where to_address = 'nobody@example.com'",
    )
    .await;
    assert_eq!(sent, 0);

    let cookie = sign_in(&db, &state, "goldcrest").await;
    let me = portal(&state, "goldcrest", &cookie);
    let home = me.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Riverside Court"), "{}", home.body);
    assert!(home.body.contains("Lift out of service"));

    // The statement of Mr Smith's unit, and its PDF.
    let unit: Uuid = scalar(
        &db,
        "select u.id from unit u join organisation o on o.id = u.organisation_id
          join lease l on l.unit_id = u.id and l.organisation_id = u.organisation_id
          join lease_holder h on h.lease_id = l.id and h.organisation_id = l.organisation_id
          join contact c on c.id = h.contact_id and c.organisation_id = h.organisation_id
         where o.slug = 'goldcrest' and c.last_name = 'Smith' limit 1",
    )
    .await;
    let statement = me.get(&format!("/units/{unit}/statement")).await;
    assert_eq!(statement.status, StatusCode::OK, "{}", statement.body);
    assert!(statement.body.contains("Closing balance"));
    let pdf = me.get(&format!("/units/{unit}/statement.pdf")).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.content_type, "application/pdf");

    // Pay an open invoice by card; a tampered amount in the form is ignored.
    demand(&db, &a, unit, 8_750).await;
    let invoice: Uuid = scalar(&db, "select i.id from debtor_invoice i join organisation o on o.id = i.organisation_id
         where o.slug = 'goldcrest' and i.status in ('approved', 'sent', 'part_paid')
           and i.total_pence - i.paid_pence >= 100
           and not exists (select from resident_payment p where p.invoice_id = i.id and p.status in ('pending', 'submitted'))
         order by i.number limit 1").await;
    let owed: i64 = scalar(
        &db,
        &format!("select total_pence - paid_pence from debtor_invoice where id = '{invoice}'"),
    )
    .await;
    let page = me.get(&format!("/invoices/{invoice}")).await;
    assert!(page.body.contains("test mode"), "{}", page.body);
    let started = me
        .post(&format!("/invoices/{invoice}/pay"), &[("amount", "1")])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert!(
        started.location.starts_with("/test-mode/checkout/"),
        "{}",
        started.location
    );
    // Pressing Pay again goes back to the same checkout: one payment can be taken, not two.
    let again = me.post(&format!("/invoices/{invoice}/pay"), &[]).await;
    assert_eq!(again.location, started.location);
    let checkout = me.get(&started.location).await;
    assert!(checkout.body.contains("TEST MODE"));
    let paid = me.post(&started.location, &[("action", "pay")]).await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER);
    let payment = me.get(&paid.location).await;
    assert!(payment.body.contains("Paid"), "{}", payment.body);
    let after: i64 = scalar(
        &db,
        &format!("select total_pence - paid_pence from debtor_invoice where id = '{invoice}'"),
    )
    .await;
    assert_eq!(after, 0, "the invoice was {owed} and is settled");
    let received: i64 = scalar(
        &db,
        &format!(
            "select r.amount_pence from receipt r join resident_payment p on p.receipt_id = r.id
          where p.invoice_id = '{invoice}' and p.status = 'paid'"
        ),
    )
    .await;
    assert_eq!(received, owed, "the server's amount, not the form's");
    // Audited in Mr Smith's name, on ResidencePort.
    let (kind, channel): (String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as("select actor_kind, channel from audit_event where table_name = 'receipt' and operation = 'insert'
             and record_id = (select receipt_id::text from resident_payment where invoice_id = $1 and status = 'paid')")
            .bind(invoice)
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(
        (kind.as_str(), channel.as_str()),
        ("leaseholder", "residenceport")
    );
    let receipt_mail: i64 = scalar(
        &db,
        "select count(*) from email_message where category = 'receipt_confirmation'
          and to_address = 'smith@example.com'",
    )
    .await;
    assert!(receipt_mail >= 1);

    // Webhooks: a bad, missing or stale signature is refused and nothing is stored; a replay of
    // a signed event changes nothing twice.
    let api = Client {
        app: proplink_web::app(state.clone()),
        host: "api.proplink.localhost".into(),
        cookie: String::new(),
    };
    let session: String = scalar(&db, &format!("select provider_ref from resident_payment where invoice_id = '{invoice}' and status = 'paid'")).await;
    let org_id: Uuid = scalar(&db, "select id from organisation where slug = 'goldcrest'").await;
    let event = serde_json::json!({
        "id": "evt_replayed_1", "object": "event", "type": "checkout.session.completed",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(), "livemode": false,
        "data": { "object": { "id": session, "object": "checkout.session", "status": "complete",
            "payment_status": "paid", "amount_total": owed, "currency": "gbp",
            "payment_intent": "pi_replayed", "metadata": { "proplink_org": org_id.to_string() } } }
    })
    .to_string();
    let stored_before: i64 = scalar(
        &db,
        "select count(*) from webhook_event where provider = 'stripe'",
    )
    .await;
    let webhook = |signature: Option<String>, body: String| {
        let api = &api;
        async move {
            let mut req = Request::builder()
                .method("POST")
                .uri("/webhooks/stripe/goldcrest")
                .header(header::HOST, &api.host)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(s) = signature {
                req = req.header("stripe-signature", s);
            }
            let mut req = req.body(Body::from(body)).unwrap();
            req.extensions_mut().insert(ConnectInfo(
                "203.0.113.20:40000".parse::<SocketAddr>().unwrap(),
            ));
            let resp = api.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let secret = &state.settings().payments.stripe_webhook;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (status, _) = webhook(None, event.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = webhook(
        Some(format!("t={now},v1={}", "0".repeat(64))),
        event.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = webhook(
        Some(secret.sign(event.as_bytes(), now - 3600)),
        event.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let tampered = event.replace(&owed.to_string(), "1");
    let (status, _) = webhook(Some(secret.sign(event.as_bytes(), now)), tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let stored_after: i64 = scalar(
        &db,
        "select count(*) from webhook_event where provider = 'stripe'",
    )
    .await;
    assert_eq!(stored_before, stored_after, "refused events are not stored");
    let receipts_before: i64 = scalar(&db, "select count(*) from receipt").await;
    let (status, first) = webhook(Some(secret.sign(event.as_bytes(), now)), event.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(
        first.contains("Unchanged"),
        "an already paid payment stays as it is: {first}"
    );
    let (status, again) = webhook(Some(secret.sign(event.as_bytes(), now)), event.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("duplicate"), "{again}");
    let receipts_after: i64 = scalar(&db, "select count(*) from receipt").await;
    assert_eq!(receipts_before, receipts_after);
    // The platform's one endpoint routes by our metadata: the same event is found stored; an
    // event naming no organisation of ours is acknowledged and not stored.
    let routed = |signature: String, body: String| {
        let api = &api;
        async move {
            let mut req = Request::builder()
                .method("POST")
                .uri("/webhooks/stripe")
                .header(header::HOST, &api.host)
                .header(header::CONTENT_TYPE, "application/json")
                .header("stripe-signature", signature)
                .body(Body::from(body))
                .unwrap();
            req.extensions_mut().insert(ConnectInfo(
                "203.0.113.20:40000".parse::<SocketAddr>().unwrap(),
            ));
            let resp = api.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, body) = routed(secret.sign(event.as_bytes(), now), event.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("duplicate"), "{body}");
    let stranger = event
        .replace("evt_replayed_1", "evt_stranger_1")
        .replace(&org_id.to_string(), &Uuid::now_v7().to_string());
    let (status, body) = routed(secret.sign(stranger.as_bytes(), now), stranger.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("not a payment of ours"), "{body}");
    let stored: i64 = scalar(
        &db,
        "select count(*) from webhook_event where event_id = 'evt_stranger_1'",
    )
    .await;
    assert_eq!(stored, 0);

    // Another organisation's invoice, unit, notice or request: 404, as if missing.
    let foreign_invoice: Uuid = scalar(
        &db,
        "select i.id from debtor_invoice i join organisation o on o.id = i.organisation_id
         where o.slug = 'rival' and i.status <> 'draft' limit 1",
    )
    .await;
    let foreign_unit: Uuid = scalar(&db, "select u.id from unit u join organisation o on o.id = u.organisation_id where o.slug = 'rival' limit 1").await;
    let foreign_notice: Uuid = scalar(&db, "select n.id from notice n join organisation o on o.id = n.organisation_id where o.slug = 'rival' limit 1").await;
    let foreign_issue: Uuid = scalar(&db, "select i.id from issue i join organisation o on o.id = i.organisation_id where o.slug = 'rival' limit 1").await;
    for path in [
        format!("/invoices/{foreign_invoice}"),
        format!("/invoices/{foreign_invoice}/pdf"),
        format!("/units/{foreign_unit}/statement"),
        format!("/notices/{foreign_notice}"),
        format!("/requests/{foreign_issue}"),
        "/invoices/not-an-id".to_owned(),
    ] {
        assert_eq!(me.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        me.post(&format!("/invoices/{foreign_invoice}/pay"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Goldcrest's cookie means nothing on the rival's portal.
    let elsewhere = portal(&state, "rival", &cookie).get("/").await;
    assert_eq!(elsewhere.location, "/sign-in");

    // A request with a photo: the same issue row the admin app shows.
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    let unit_place = format!("unit:{unit}");
    let raised = me
        .send(
            "POST",
            "/requests",
            Form::Multipart(
                &[
                    ("place", unit_place.as_str()),
                    ("category", "water_leak"),
                    ("title", "Leak in the main hallway ceiling"),
                    ("description", "Dripping by the front door."),
                ],
                &[("photos", "leak.png", png)],
            ),
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    let request = me.get(&raised.location).await;
    assert!(request.body.contains("Leak in the main hallway ceiling"));
    assert!(request.body.contains("leak.png"));
    let channel: String = scalar(
        &db,
        "select channel from issue where title = 'Leak in the main hallway ceiling'",
    )
    .await;
    assert_eq!(channel, "residenceport");
    let bad = me
        .send(
            "POST",
            "/requests",
            Form::Multipart(
                &[
                    ("place", "unit:00000000-0000-0000-0000-000000000000"),
                    ("category", "water_leak"),
                    ("title", "x"),
                ],
                &[],
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A notice is read, and the read is recorded.
    let notice: Uuid = scalar(&db, "select n.id from notice n join organisation o on o.id = n.organisation_id where o.slug = 'goldcrest' limit 1").await;
    assert!(
        me.get(&format!("/notices/{notice}"))
            .await
            .body
            .contains("The lift is being repaired")
    );

    // Details: a new address waits for the manager; a bad postcode is refused.
    let refused = me
        .post(
            "/profile",
            &[
                ("last_name", "Smith"),
                ("postcode", "NOT A POSTCODE"),
                ("correspondence", "email"),
            ],
        )
        .await;
    assert!(
        refused.body.contains("not a UK postcode"),
        "{}",
        refused.body
    );
    let saved = me
        .post(
            "/profile",
            &[
                ("last_name", "Smith"),
                ("address_line_1", "2 New Road"),
                ("city", "Leeds"),
                ("postcode", "ls1 4ap"),
                ("correspondence", "post"),
            ],
        )
        .await;
    assert_eq!(saved.location, "/profile?saved=2");

    // The manager reads the payment in words on the invoice, with the card attempt beside it.
    let manager = staff(&state, &db, &a).await;
    let invoice_page = manager.get(&format!("/invoices/{invoice}")).await;
    assert!(
        invoice_page.body.contains(&format!(
            "paid {} by card via ResidencePort on",
            proplink_domain::uk::format_pence(owed)
        )),
        "{}",
        invoice_page.body
    );
    assert!(invoice_page.body.contains("[test mode]"));

    // Signing out ends the session.
    me.post("/sign-out", &[]).await;
    assert_eq!(me.get("/").await.location, "/sign-in");
}

async fn staff(
    state: &AppState,
    db: &TestDb,
    org: &proplink_db::organisation::Organisation,
) -> Client {
    staff_as(
        state,
        db,
        org,
        "Priya Patel",
        proplink_domain::permissions::BuiltInRole::Manager,
    )
    .await
}

async fn staff_as(
    state: &AppState,
    db: &TestDb,
    org: &proplink_db::organisation::Organisation,
    name: &str,
    role: proplink_domain::permissions::BuiltInRole,
) -> Client {
    let email = format!(
        "{}@goldcrest.example",
        name.to_lowercase().replace(' ', ".")
    );
    let m = staff_people::member(
        db,
        org,
        &email,
        name,
        role,
        proplink_domain::permissions::Scope::AllSites,
    )
    .await;
    let token = staff_people::session(db, org, &m).await;
    Client {
        app: proplink_web::app(state.clone()),
        host: format!("{}.proplink.localhost", org.slug),
        cookie: format!("pl_session={token}"),
    }
}

#[tokio::test]
async fn managers_invite_residents_publish_notices_see_who_read_them_and_accept_their_changes() {
    let db = TestDb::new().await;
    let a = db.org("goldcrest", "Goldcrest Property").await;
    let b = db.org("rival", "Rival Estates").await;
    proplink_test_support::probe::seed(&db, &a).await;
    proplink_test_support::probe::seed(&db, &b).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let manager = staff(&state, &db, &a).await;
    let smith: Uuid = scalar(
        &db,
        "select c.id from contact c join organisation o on o.id = c.organisation_id
          where o.slug = 'goldcrest' and c.last_name = 'Smith' and c.first_name = 'John'",
    )
    .await;
    let site: Uuid = scalar(
        &db,
        "select s.id from site s join organisation o on o.id = s.organisation_id where o.slug = 'goldcrest' limit 1",
    )
    .await;

    // The contact page shows the account the probe made and offers to send it again.
    let page = manager.get(&format!("/contacts/{smith}")).await;
    assert!(page.body.contains("ResidencePort"), "{}", page.body);
    assert!(page.body.contains("smith@example.com"));
    let again = manager
        .post(&format!("/contacts/{smith}/residenceport"), &[])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(
        manager
            .get(&again.location)
            .await
            .body
            .contains("Invited to ResidencePort")
    );
    let invitations: i64 = scalar(
        &db,
        "select count(*) from email_message where category = 'residenceport_invitation' and to_address = 'smith@example.com'",
    )
    .await;
    assert!(invitations >= 2, "the probe's and this one");
    // A contact without a unit cannot be invited: the page says why.
    let created = manager
        .post(
            "/contacts/new",
            &[
                ("kind", "person"),
                ("first_name", "Nina"),
                ("last_name", "Nohome"),
                ("emails", "nina@example.com"),
                ("correspondence", "email"),
                ("country", "United Kingdom"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let vendorish = created
        .location
        .trim_start_matches("/contacts/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let refused = manager
        .post(&format!("/contacts/{vendorish}/residenceport"), &[])
        .await;
    let shown = manager.get(&refused.location).await;
    assert!(
        shown.body.contains("needs at least one unit link")
            || shown.body.contains("has no e-mail address"),
        "{}",
        shown.body
    );
    // Turned off: the resident's sign-in code is no longer sent.
    let off = manager
        .post(
            &format!("/contacts/{smith}/residenceport/status"),
            &[("active", "no")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    let status: String = scalar(
        &db,
        "select a.status from portal_account a join organisation o on o.id = a.organisation_id
          where o.slug = 'goldcrest' and a.portal = 'residenceport' and a.email = 'smith@example.com'",
    )
    .await;
    assert_eq!(status, "deactivated");
    manager
        .post(
            &format!("/contacts/{smith}/residenceport/status"),
            &[("active", "yes")],
        )
        .await;
    // Bulk: everyone on the site with an address and no account.
    let bulk = manager
        .post(&format!("/sites/{site}/residenceport-invites"), &[])
        .await;
    assert!(
        manager
            .get(&bulk.location)
            .await
            .body
            .contains("ResidencePort")
    );

    // A notice, published for the site, read by the resident, with the read shown to managers.
    let published = manager
        .post(
            &format!("/sites/{site}/notices"),
            &[
                ("title", "Fire alarm test on Friday"),
                ("body", "The alarm will sound at 10:00 for five minutes."),
                ("email_copy", "yes"),
            ],
        )
        .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.body
    );
    let empty = manager
        .post(
            &format!("/sites/{site}/notices"),
            &[("title", ""), ("body", "x")],
        )
        .await;
    assert!(
        empty.body.contains("Give the notice a title"),
        "{}",
        empty.body
    );
    let copies: i64 = scalar(
        &db,
        "select count(*) from email_message where subject = 'Building notice: Fire alarm test on Friday'",
    )
    .await;
    assert!(copies >= 1);
    let notice: Uuid = scalar(
        &db,
        "select id from notice where title = 'Fire alarm test on Friday'",
    )
    .await;
    let cookie = sign_in(&db, &state, "goldcrest").await;
    let me = portal(&state, "goldcrest", &cookie);
    assert!(
        me.get("/notices")
            .await
            .body
            .contains("Fire alarm test on Friday")
    );
    me.get(&format!("/notices/{notice}")).await;
    let receipts = manager.get(&format!("/notices/{notice}")).await;
    assert!(receipts.body.contains("Read by 1"), "{}", receipts.body);
    assert!(receipts.body.contains("smith@example.com"));
    let withdrawn = manager
        .post(&format!("/notices/{notice}/withdraw"), &[])
        .await;
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER);
    assert_eq!(
        me.get(&format!("/notices/{notice}")).await.status,
        StatusCode::NOT_FOUND
    );

    // A change of address waits for the manager, who accepts it: the contact changes.
    me.post(
        "/profile",
        &[
            ("last_name", "Smith"),
            ("first_name", "John"),
            ("address_line_1", "9 Canal Wharf"),
            ("city", "Leeds"),
            ("postcode", "LS11 5PS"),
            ("correspondence", "email"),
        ],
    )
    .await;
    let before: Option<String> = scalar(
        &db,
        &format!("select address_line_1 from contact where id = '{smith}'"),
    )
    .await;
    assert_ne!(before.as_deref(), Some("9 Canal Wharf"));
    let list = manager.get("/resident-changes").await;
    assert!(list.body.contains("9 Canal Wharf"), "{}", list.body);
    let change: Uuid = scalar(
        &db,
        &format!(
            "select id from profile_change where contact_id = '{smith}' and status = 'pending'"
        ),
    )
    .await;
    let accepted = manager
        .post(
            &format!("/resident-changes/{change}"),
            &[("decision", "accept")],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    let after: Option<String> = scalar(
        &db,
        &format!("select address_line_1 from contact where id = '{smith}'"),
    )
    .await;
    assert_eq!(after.as_deref(), Some("9 Canal Wharf"));
    let twice = manager
        .post(
            &format!("/resident-changes/{change}"),
            &[("decision", "accept")],
        )
        .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);

    // A request, answered by the manager, and the answer seen by the resident.
    let unit: Uuid = scalar(&db, &format!("select l.unit_id from lease l join lease_holder h on h.lease_id = l.id and h.organisation_id = l.organisation_id where h.contact_id = '{smith}' limit 1")).await;
    let place = format!("unit:{unit}");
    let raised = me.post("/requests", &[]).await;
    assert_ne!(raised.status, StatusCode::INTERNAL_SERVER_ERROR);
    let raised = me
        .send(
            "POST",
            "/requests",
            Form::Multipart(
                &[
                    ("place", place.as_str()),
                    ("category", "heating"),
                    ("title", "No hot water"),
                ],
                &[],
            ),
        )
        .await;
    let issue = raised.location.trim_start_matches("/requests/").to_owned();
    let replied = manager
        .post(
            &format!("/issues/{issue}/messages"),
            &[("body", "An engineer will call tomorrow morning.")],
        )
        .await;
    assert_eq!(replied.status, StatusCode::SEE_OTHER);
    assert!(
        manager
            .get(&format!("/issues/{issue}"))
            .await
            .body
            .contains("An engineer will call")
    );
    assert!(
        me.get(&format!("/requests/{issue}"))
            .await
            .body
            .contains("An engineer will call")
    );
    me.post(
        &format!("/requests/{issue}/messages"),
        &[("body", "Thank you, I will be in.")],
    )
    .await;
    assert!(
        manager
            .get(&format!("/issues/{issue}"))
            .await
            .body
            .contains("I will be in")
    );

    // Shared documents: the compliance certificate shown to residents is listed; its folder
    // shared with another organisation's unit is refused, with the unit's own it still shows,
    // and with a building the resident does not live in it disappears.
    let docs = me.get("/documents").await;
    assert!(docs.body.contains("href=\"/documents/"), "{}", docs.body);
    let compliance: Uuid = scalar(
        &db,
        "select f.id from site_folder f join organisation o on o.id = f.organisation_id
         where o.slug = 'goldcrest' and f.default_key = 'compliance'",
    )
    .await;
    let f_unit_early: Uuid = scalar(&db, "select u.id from unit u join organisation o on o.id = u.organisation_id where o.slug = 'rival' limit 1").await;
    let foreign_reach = format!("unit:{f_unit_early}");
    let refused = manager
        .post(
            &format!("/folders/{compliance}"),
            &[
                ("name", "Compliance"),
                ("residents", "none"),
                ("reach", foreign_reach.as_str()),
            ],
        )
        .await;
    assert!(
        refused.location.contains("problem="),
        "{}",
        refused.location
    );
    let own_reach = format!("unit:{unit}");
    manager
        .post(
            &format!("/folders/{compliance}"),
            &[
                ("name", "Compliance"),
                ("residents", "none"),
                ("reach", own_reach.as_str()),
            ],
        )
        .await;
    assert!(
        me.get("/documents")
            .await
            .body
            .contains("href=\"/documents/")
    );
    let other_building: Uuid = {
        let mut tx = db.app.begin(&db.staff(&a, "Loader")).await.unwrap();
        let id = proplink_db::portfolio::save_building(
            &mut tx,
            None,
            site,
            &proplink_db::portfolio::BuildingInput {
                reference: "BLK-Z".into(),
                name: "Block Z".into(),
                height_cm: None,
                storeys: None,
                residential_units: None,
                build_year: None,
                construction_type: None,
                hrb_override: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let elsewhere = format!("building:{other_building}");
    manager
        .post(
            &format!("/folders/{compliance}"),
            &[
                ("name", "Compliance"),
                ("residents", "none"),
                ("reach", elsewhere.as_str()),
            ],
        )
        .await;
    assert!(
        !me.get("/documents")
            .await
            .body
            .contains("href=\"/documents/")
    );

    // Branding: a logo uploaded in Settings shows in the portal's header; a PDF is refused,
    // and a manager (no organisation settings) may not change it.
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    let forbidden = manager
        .send(
            "POST",
            "/settings/organisation/logo",
            Form::Multipart(&[], &[("logo", "logo.png", png.clone())]),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let manager = staff_as(
        &state,
        &db,
        &a,
        "Adam Admin",
        proplink_domain::permissions::BuiltInRole::Administrator,
    )
    .await;
    let refused = manager
        .send(
            "POST",
            "/settings/organisation/logo",
            Form::Multipart(&[], &[("logo", "logo.pdf", b"%PDF-1.4\n%%EOF\n".to_vec())]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let uploaded = manager
        .send(
            "POST",
            "/settings/organisation/logo",
            Form::Multipart(&[], &[("logo", "logo.png", png)]),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    assert!(me.get("/brand.css").await.body.contains("url(/brand/logo)"));
    let logo = me.get("/brand/logo").await;
    assert_eq!(logo.status, StatusCode::OK);
    assert_eq!(logo.content_type, "image/png");
    // The other organisation's portal has no logo of its own.
    assert_eq!(
        portal(&state, "rival", "").get("/brand/logo").await.status,
        StatusCode::NOT_FOUND
    );
    manager
        .send(
            "POST",
            "/settings/organisation/logo",
            Form::Multipart(&[("remove", "yes")], &[]),
        )
        .await;
    assert_eq!(me.get("/brand/logo").await.status, StatusCode::NOT_FOUND);

    // Every ResidencePort route with the other organisation's ids answers 404.
    let foreign = |sql: &'static str| scalar::<Uuid>(&db, sql);
    let f_unit = foreign("select u.id from unit u join organisation o on o.id = u.organisation_id where o.slug = 'rival' limit 1").await;
    let f_invoice = foreign("select i.id from debtor_invoice i join organisation o on o.id = i.organisation_id where o.slug = 'rival' limit 1").await;
    let f_payment = foreign("select p.id from resident_payment p join organisation o on o.id = p.organisation_id where o.slug = 'rival' limit 1").await;
    let f_issue = foreign("select i.id from issue i join organisation o on o.id = i.organisation_id where o.slug = 'rival' limit 1").await;
    let f_notice = foreign("select n.id from notice n join organisation o on o.id = n.organisation_id where o.slug = 'rival' limit 1").await;
    let f_file = foreign("select f.id from stored_file f join organisation o on o.id = f.organisation_id where o.slug = 'rival' limit 1").await;
    for path in [
        format!("/units/{f_unit}/statement"),
        format!("/units/{f_unit}/statement.pdf"),
        format!("/invoices/{f_invoice}"),
        format!("/invoices/{f_invoice}/pdf"),
        format!("/payments/{f_payment}"),
        format!("/test-mode/checkout/{f_payment}"),
        format!("/requests/{f_issue}"),
        format!("/requests/{f_issue}/photos/{f_file}"),
        format!("/notices/{f_notice}"),
        format!("/documents/{f_file}"),
    ] {
        assert_eq!(
            me.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    for path in [
        format!("/invoices/{f_invoice}/pay"),
        format!("/test-mode/checkout/{f_payment}"),
        format!("/requests/{f_issue}/messages"),
    ] {
        assert_eq!(
            me.post(&path, &[("action", "pay"), ("body", "x")])
                .await
                .status,
            StatusCode::NOT_FOUND,
            "POST {path}"
        );
    }
    // The other organisation's notices and requests are not listed either.
    assert!(!me.get("/requests").await.body.contains("rival"));
}

#[tokio::test]
async fn a_direct_debit_collects_due_demands_and_a_failed_collection_reopens_the_demand() {
    let db = TestDb::new().await;
    let a = db.org("goldcrest", "Goldcrest Property").await;
    proplink_test_support::probe::seed(&db, &a).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let _manager = staff(&state, &db, &a).await;
    let unit: Uuid = scalar(&db, "select l.unit_id from lease l join lease_holder h on h.lease_id = l.id and h.organisation_id = l.organisation_id
          join contact c on c.id = h.contact_id and c.organisation_id = h.organisation_id
         where c.first_name = 'John' and c.last_name = 'Smith' and l.ends_on is null limit 1").await;
    demand(&db, &a, unit, 6_000).await;
    let invoice: Uuid = scalar(
        &db,
        "select id from debtor_invoice where reference = 'Reserve top-up'",
    )
    .await;
    // The probe's own mandate for this unit is ended so that this one can be set up.
    {
        let mut su = db.superuser().await;
        sqlx::query("update dd_mandate set status = 'cancelled'")
            .execute(&mut su)
            .await
            .unwrap();
    }
    let cookie = sign_in(&db, &state, "goldcrest").await;
    let me = portal(&state, "goldcrest", &cookie);
    let page = me.get("/direct-debit").await;
    assert!(page.body.contains("Set up a Direct Debit"), "{}", page.body);
    let unit_text = unit.to_string();
    let started = me
        .post("/direct-debit", &[("unit", unit_text.as_str())])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert!(
        started.location.starts_with("/test-mode/direct-debit/"),
        "{}",
        started.location
    );
    let form = me.get(&started.location).await;
    assert!(form.body.contains("TEST MODE"));
    let bad = me
        .post(
            &started.location,
            &[
                ("holder", "John Smith"),
                ("sort_code", "12-34"),
                ("account_number", "12345678"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("A sort code has 6 digits"));
    let done = me
        .post(
            &started.location,
            &[
                ("holder", "John Smith"),
                ("sort_code", "12-34-56"),
                ("account_number", "12345678"),
            ],
        )
        .await;
    assert_eq!(done.location, "/direct-debit?done=1");
    assert!(me.get("/direct-debit").await.body.contains("Active"));
    // The due demand was collected and posted as a Direct Debit receipt.
    let balance: i64 = scalar(
        &db,
        &format!("select total_pence - paid_pence from debtor_invoice where id = '{invoice}'"),
    )
    .await;
    assert_eq!(balance, 0);
    let (status, payment_ref): (String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as("select status, provider_ref from resident_payment where invoice_id = $1 and method = 'direct_debit'")
            .bind(invoice)
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(status, "paid");
    let method: String = scalar(&db, &format!("select r.method from receipt r join resident_payment p on p.receipt_id = r.id where p.invoice_id = '{invoice}'")).await;
    assert_eq!(method, "direct_debit");

    // GoCardless's deliveries: a bad signature is refused and stores nothing.
    let api = Client {
        app: proplink_web::app(state.clone()),
        host: "api.proplink.localhost".into(),
        cookie: String::new(),
    };
    let deliver = |signature: Option<String>, body: String| {
        let api = &api;
        async move {
            let mut req = Request::builder()
                .method("POST")
                .uri("/webhooks/gocardless/goldcrest")
                .header(header::HOST, &api.host)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(s) = signature {
                req = req.header("webhook-signature", s);
            }
            let mut req = req.body(Body::from(body)).unwrap();
            req.extensions_mut().insert(ConnectInfo(
                "203.0.113.20:40000".parse::<SocketAddr>().unwrap(),
            ));
            let resp = api.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    // A batch: the collection came back (a late failure), and an event about someone else's
    // payment that is not ours.
    let batch = serde_json::json!({ "events": [
        { "id": "EV0001LATE", "created_at": "2026-11-25T09:00:00.000Z", "resource_type": "payments",
          "action": "failed", "links": { "payment": payment_ref },
          "details": { "origin": "bank", "cause": "insufficient_funds", "description": "The customer's account had insufficient funds." } },
        { "id": "EV0002OTHER", "created_at": "2026-11-25T09:00:00.000Z", "resource_type": "payments",
          "action": "confirmed", "links": { "payment": "PM_NOT_OURS" },
          "details": { "origin": "gocardless", "cause": "payment_confirmed", "description": "" } }
    ]})
    .to_string();
    let secret = &state.settings().payments.gocardless_webhook;
    let before: i64 = scalar(
        &db,
        "select count(*) from webhook_event where provider = 'gocardless'",
    )
    .await;
    let (status, _) = deliver(None, batch.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = deliver(Some("00".repeat(32)), batch.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = deliver(
        Some(secret.sign(batch.as_bytes())),
        batch.replace("insufficient", "plenty of"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let after: i64 = scalar(
        &db,
        "select count(*) from webhook_event where provider = 'gocardless'",
    )
    .await;
    assert_eq!(before, after);
    let (status, body) = deliver(Some(secret.sign(batch.as_bytes())), batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Reversed"), "{body}");
    assert!(body.contains("ignored"), "{body}");
    // The demand is open again, the receipt reversed, the resident and managers told.
    let balance: i64 = scalar(
        &db,
        &format!("select total_pence - paid_pence from debtor_invoice where id = '{invoice}'"),
    )
    .await;
    assert_eq!(balance, 6_000);
    let told: i64 = scalar(
        &db,
        "select count(*) from email_message where category = 'payment_failed'",
    )
    .await;
    assert!(told >= 2, "the resident and at least one manager");
    let resident_told: i64 = scalar(&db, "select count(*) from email_message where category = 'payment_failed' and to_address = 'smith@example.com' and body_text like '%insufficient funds%'").await;
    assert_eq!(resident_told, 1);
    // Redelivered: nothing happens twice.
    let (status, again) = deliver(Some(secret.sign(batch.as_bytes())), batch.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again.matches("duplicate").count(), 2, "{again}");
    // The next collection takes the re-opened demand once, however often it runs.
    let payments = &state.settings().payments;
    let started = proplink_web::direct_debit::collect(
        &db.app,
        payments,
        &a,
        None,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(started, 1);
    let again = proplink_web::direct_debit::collect(
        &db.app,
        payments,
        &a,
        None,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
    let balance: i64 = scalar(
        &db,
        &format!("select total_pence - paid_pence from debtor_invoice where id = '{invoice}'"),
    )
    .await;
    assert_eq!(balance, 0);
    let reversed: i64 = scalar(
        &db,
        "select count(*) from receipt where status = 'reversed' and method = 'direct_debit'",
    )
    .await;
    assert_eq!(reversed, 1);
}
