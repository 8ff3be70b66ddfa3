//! The `proplink` binary as a newcomer and an operator use it.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::email;
use proplink_test_support::{TestDb, sample_email};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn proplink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proplink"));
    for var in [
        "DATABASE_URL",
        "DATABASE_PLATFORM_URL",
        "DATABASE_OWNER_URL",
        "PROPLINK_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn org_create_explains_bad_and_taken_subdomains() {
    let db = TestDb::new().await;
    db.org("goldcrest", "Goldcrest Estates").await;
    let run = |slug: &str| {
        proplink()
            .env("DATABASE_PLATFORM_URL", db.url("proplink_platform"))
            .args([
                "org",
                "create",
                "--slug",
                slug,
                "--name",
                "Goldcrest Estates",
            ])
            .output()
            .unwrap()
    };
    let out = run("Gold_Crest");
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "proplink: the subdomain \"Gold_Crest\" may contain only lower-case letters a-z, digits 0-9 and hyphens: a subdomain is 1–63 lower-case letters, digits or hyphens"
    );
    let out = run("goldcrest");
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "proplink: an organisation with the subdomain \"goldcrest\" already exists"
    );
    let out = run("login");
    assert!(stderr(&out).contains("reserved by PropLink"));
    let out = run("goldcrest-north");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Created organisation \"Goldcrest Estates\" (goldcrest-north)")
    );

    // With an owner: they are invited (e-mail queued in the new organisation), as its Owner.
    let out = proplink()
        .env("DATABASE_PLATFORM_URL", db.url("proplink_platform"))
        .env("DATABASE_URL", db.url("proplink_app"))
        .args([
            "org",
            "create",
            "--slug",
            "riverside",
            "--name",
            "Riverside Lettings",
            "--owner-email",
            "rosa@riverside.example.co.uk",
            "--owner-name",
            "Rosa Rivers",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("http://riverside.proplink.localhost/invitation/"),
        "{}",
        stdout(&out)
    );
    let mut su = db.superuser().await;
    let (owner, role): (bool, String) = sqlx::query_as(
        "select m.is_owner, m.builtin_role from membership m join staff_user u on u.id = m.user_id
          where u.email = 'rosa@riverside.example.co.uk'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!((owner, role.as_str()), (true, "organisation_owner"));
    let invitations: i64 = sqlx::query_scalar(
        "select count(*) from email_message where category = 'invitation' and to_address = 'rosa@riverside.example.co.uk'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(invitations, 1);
    // A bad owner address changes nothing.
    let out = proplink()
        .env("DATABASE_PLATFORM_URL", db.url("proplink_platform"))
        .env("DATABASE_URL", db.url("proplink_app"))
        .args([
            "org",
            "create",
            "--slug",
            "another",
            "--name",
            "Another",
            "--owner-email",
            "not-an-address",
            "--owner-name",
            "X",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a valid e-mail address"),
        "{}",
        stderr(&out)
    );
    let created: i64 =
        sqlx::query_scalar("select count(*) from organisation where slug = 'another'")
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!(created, 0);
}

#[tokio::test]
async fn audit_verify_passes_an_intact_chain_and_fails_naming_the_altered_event() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    db.org("acme", "Acme Property Group").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    email::queue(&mut tx, sample_email("a@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let verify = |args: &[&str]| {
        proplink()
            .env("DATABASE_PLATFORM_URL", db.url("proplink_platform"))
            .args(["audit", "verify"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = verify(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "acme: 1 event, chain intact\ngoldcrest: 3 events, chain intact\n"
    );

    let mut owner = db.owner_in(&org).await;
    sqlx::query("update audit_event set changes = '{}' where seq = 2")
        .execute(&mut *owner)
        .await
        .unwrap();
    owner.commit().await.unwrap();

    let out = verify(&["--org", "goldcrest"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("goldcrest: BROKEN: event #2 (insert on email_message "),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        stderr(&out).trim(),
        "proplink: the audit chain is broken for: goldcrest"
    );
    let out = verify(&["--org", "nosuch"]);
    assert_eq!(
        stderr(&out).trim(),
        "proplink: there is no organisation with the subdomain \"nosuch\""
    );
}

#[test]
fn a_database_that_is_down_at_start_up_gets_one_clear_sentence() {
    let out = proplink()
        .env(
            "DATABASE_URL",
            "postgres://proplink_app@localhost:1/proplink?host=/nonexistent",
        )
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("proplink: cannot use DATABASE_URL: the database is unavailable"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = proplink().arg("serve").output().unwrap();
    assert_eq!(
        stderr(&out).trim(),
        "proplink: DATABASE_URL is not set: it must hold the PostgreSQL URL (see README.md, Production)"
    );
}

#[tokio::test]
async fn the_server_refuses_a_role_that_could_bypass_row_level_security() {
    let db = TestDb::new().await;
    let out = proplink()
        .env("DATABASE_URL", db.url("proplink_owner"))
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("connected as role \"proplink_owner\" but expected \"proplink_app\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_configuration_is_refused_with_the_key_at_fault() {
    let out = proplink()
        .env("PROPLINK_LISTEN", "not-an-address")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("proplink: the configuration is not valid") && err.contains("LISTEN"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("proplink-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("proplink.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\n[mail]\nprovider = \"carrier-pigeon\"\n",
    )
    .unwrap();
    let out = proplink()
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("carrier-pigeon"), "{}", stderr(&out));
    std::fs::write(&file, "[mail]\nprovider = \"smtp\"\n").unwrap();
    let out = proplink()
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("mail.provider is smtp but there is no [mail.smtp] section"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&file, "colour = \"blue\"\n").unwrap();
    let out = proplink()
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
    let out = proplink()
        .arg("--config")
        .arg(dir.join("missing.toml"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_without_postgresql_says_what_to_install() {
    let dir = std::env::temp_dir().join(format!("proplink-nopg-{}", std::process::id()));
    let out = proplink()
        .env("PROPLINK_PG_BINDIR", "/nonexistent")
        .arg("--data-dir")
        .arg(&dir)
        .args(["demo", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("install PostgreSQL 15 or newer"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, host: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn http_post(port: u16, host: &str, path: &str, form: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn demo_runs_end_to_end_refuses_a_second_copy_and_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!(
        "proplink-demo-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let port = free_port();
    let mut demo = proplink()
        .arg("--data-dir")
        .arg(&dir)
        .args(["demo", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(demo.stdout.take().unwrap());
    let mut banner = String::new();
    let started = Instant::now();
    while !banner.contains("Press Ctrl-C") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || started.elapsed() > Duration::from_secs(120) {
            let mut err = String::new();
            let _ = demo.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the demo did not start:\n{banner}\n{err}");
        }
        banner.push_str(&line);
    }
    assert!(
        banner.contains(&format!("http://goldcrest.proplink.localhost:{port}/")),
        "{banner}"
    );
    assert!(banner.contains("psql \"host="), "{banner}");

    assert!(http_get(port, "login.proplink.localhost", "/healthz").ends_with("\r\n\r\nok"));
    assert!(http_get(port, "login.proplink.localhost", "/readyz").ends_with("ready"));
    // An organisation's host sends a visitor to sign in; a demo account's password works and
    // its code arrives in the sign-in mailbox.
    let home = http_get(port, &format!("goldcrest.proplink.localhost:{port}"), "/");
    assert!(
        home.starts_with("HTTP/1.1 303")
            && home.contains(&format!(
                "location: http://login.proplink.localhost:{port}/"
            )),
        "{home}"
    );
    assert!(banner.contains("priya.patel@example.co.uk"), "{banner}");
    let login = http_get(port, "login.proplink.localhost", "/");
    assert!(login.contains("Sign in to PropLink"), "{login}");
    let signed = http_post(
        port,
        "login.proplink.localhost",
        "/",
        "email=olivia.owner%40goldcrest.example.co.uk&password=PropLink-demo-2026",
    );
    assert!(
        signed.starts_with("HTTP/1.1 303") && signed.contains("location: /verify"),
        "{signed}"
    );
    let mut codes = String::new();
    for _ in 0..50 {
        codes = http_get(port, "login.proplink.localhost", "/dev/mailbox");
        if codes.contains("Your PropLink sign-in code") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        codes.contains("olivia.owner@goldcrest.example.co.uk"),
        "{codes}"
    );
    // The welcome message reaches the development mailbox through the worker.
    let mut mailbox = String::new();
    for _ in 0..50 {
        mailbox = http_get(port, "acme.proplink.localhost", "/dev/mailbox");
        if mailbox.contains("<td>sent</td>") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        mailbox.contains("Welcome to PropLink, Acme Property Group")
            && mailbox.contains("<td>sent</td>"),
        "{mailbox}"
    );

    // A failed check stops the demo before failing the test, so no server outlives it.
    let resident =
        std::panic::catch_unwind(|| demo_resident_signs_in_to_residenceport(port, &banner));
    if let Err(failure) = resident {
        nix_kill_int(demo.id());
        let _ = demo.wait();
        std::panic::resume_unwind(failure);
    }

    let second = proplink()
        .arg("--data-dir")
        .arg(&dir)
        .args(["demo", "--port", &free_port().to_string()])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("another `proplink demo` (process"),
        "{}",
        stderr(&second)
    );

    nix_kill_int(demo.id());
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("Stopped. Your data is kept in"), "{rest}");
    let pid_file = dir.join("db/pg/postmaster.pid");
    assert!(
        !pid_file.exists(),
        "the embedded PostgreSQL is still running"
    );

    // A second run reuses the cluster and does not load the demo data twice.
    let out = proplink()
        .arg("--data-dir")
        .arg(&dir)
        .args(["org", "list"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A GET with a cookie.
fn http_get_with(port: u16, host: &str, path: &str, cookie: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

/// The README's demo resident signs in to Goldcrest's ResidencePort with the code from
/// Goldcrest's development mailbox and finds what the README promises: a balance to pay, the
/// notices, the shared documents, his request and his invitation.
fn demo_resident_signs_in_to_residenceport(port: u16, banner: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let email = "john.smith@example.com";
    assert!(
        readme.contains("http://goldcrest.residenceport.localhost:8080/") && readme.contains(email),
        "the README names the demo resident and his portal"
    );
    let portal = format!("goldcrest.residenceport.localhost:{port}");
    assert!(banner.contains(&format!("http://{portal}/")), "{banner}");
    let asked = http_post(port, &portal, "/sign-in", "email=john.smith%40example.com");
    assert!(
        asked.contains("If this address belongs to a resident here"),
        "{asked}"
    );
    let mailbox_host = format!("goldcrest.proplink.localhost:{port}");
    let mailbox = http_get(port, &mailbox_host, "/dev/mailbox");
    let row_of = |subject: &str| {
        mailbox
            .split("<tr>")
            .find(|row| row.contains(email) && row.contains(subject))
            .map(str::to_owned)
    };
    assert!(
        row_of("Your ResidencePort account with Goldcrest Estates").is_some(),
        "the invitation is in the mailbox: {mailbox}"
    );
    let row = row_of("Your ResidencePort sign-in code").unwrap_or_else(|| panic!("{mailbox}"));
    let id = row
        .split("href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let message = http_get(port, &mailbox_host, id);
    let body = message.split("<pre class=\"pl-body\">").nth(1).unwrap();
    let code = body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("{message}"));
    let signed = http_post(
        port,
        &portal,
        "/sign-in/verify",
        &format!("email=john.smith%40example.com&code={code}"),
    );
    assert!(signed.starts_with("HTTP/1.1 303"), "{signed}");
    let cookie = signed
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap();
    let home = http_get_with(port, &portal, "/", cookie);
    for said in [
        "Hello, Mr John Smith",
        "Penthouse 1",
        "£184.50",
        "Lift out of service on Monday",
        "Window cleaning on Thursday",
        "Bike store door does not lock",
    ] {
        assert!(home.contains(said), "{said}: {home}");
    }
    let documents = http_get_with(port, &portal, "/documents", cookie);
    for said in ["EICR 2024.pdf", "Year-end pack 2025.pdf"] {
        assert!(documents.contains(said), "{said}: {documents}");
    }
    assert!(
        !documents.contains("Fire risk assessment"),
        "staff-only files stay staff-only: {documents}"
    );
}

fn nix_kill_int(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
