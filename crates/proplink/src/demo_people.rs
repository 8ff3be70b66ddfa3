//! The demo organisations' people, estates and sites: every built-in role is represented, and
//! one person (Priya Patel) belongs to both organisations with a different role in each.

use proplink_auth::links::new_token;
use proplink_auth::password::{HashParams, PasswordHasherPool};
use proplink_db::access::{self, NewInvitation, RoleChoice};
use proplink_db::organisation::Organisation;
use proplink_db::{Actor, AppPool, TenantContext, profile, staff};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_domain::{ActorKind, Channel};
use secrecy::SecretString;
use time::OffsetDateTime;

/// Every demo account signs in with this password (and a code from the development mailbox).
pub const DEMO_PASSWORD: &str = "PropLink-demo-2026";

/// How a demo person's scope is chosen.
#[derive(Clone, Copy)]
enum DemoScope {
    All,
    FirstSite,
    FirstEstate,
}

struct Person {
    email: &'static str,
    name: &'static str,
    role: BuiltInRole,
    scope: DemoScope,
}

const GOLDCREST: &[Person] = &[
    Person {
        email: "olivia.owner@goldcrest.example.co.uk",
        name: "Olivia Owen",
        role: BuiltInRole::OrganisationOwner,
        scope: DemoScope::All,
    },
    Person {
        email: "adam.admin@goldcrest.example.co.uk",
        name: "Adam Adeyemi",
        role: BuiltInRole::Administrator,
        scope: DemoScope::All,
    },
    Person {
        email: "priya.patel@example.co.uk",
        name: "Priya Patel",
        role: BuiltInRole::Manager,
        scope: DemoScope::All,
    },
    Person {
        email: "alan.accounts@goldcrest.example.co.uk",
        name: "Alan Ackroyd",
        role: BuiltInRole::Accountant,
        scope: DemoScope::All,
    },
    Person {
        email: "sam.site@goldcrest.example.co.uk",
        name: "Sam Sinclair",
        role: BuiltInRole::SiteManager,
        scope: DemoScope::FirstSite,
    },
    Person {
        email: "maya.maintenance@goldcrest.example.co.uk",
        name: "Maya Morgan",
        role: BuiltInRole::MaintenanceCoordinator,
        scope: DemoScope::FirstEstate,
    },
    Person {
        email: "rita.reader@goldcrest.example.co.uk",
        name: "Rita Reid",
        role: BuiltInRole::ReadOnly,
        scope: DemoScope::All,
    },
];

const ACME: &[Person] = &[
    Person {
        email: "oscar.owner@acme.example.co.uk",
        name: "Oscar Okafor",
        role: BuiltInRole::OrganisationOwner,
        scope: DemoScope::All,
    },
    Person {
        email: "priya.patel@example.co.uk",
        name: "Priya Patel",
        role: BuiltInRole::Accountant,
        scope: DemoScope::All,
    },
    Person {
        email: "ruby.reader@acme.example.co.uk",
        name: "Ruby Rahman",
        role: BuiltInRole::ReadOnly,
        scope: DemoScope::All,
    },
];

/// (estate reference, estate name, [(site reference, site name)]).
type Portfolio = &'static [(
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
)];

const GOLDCREST_SITES: Portfolio = &[
    (
        "EST-001",
        "Riverside Estate",
        &[("GC-001", "Riverside Court"), ("GC-002", "Wharf House")],
    ),
    ("EST-002", "Old Town Estate", &[("GC-003", "Abbey Mews")]),
];

const ACME_SITES: Portfolio = &[("EST-001", "Harbour Estate", &[("AC-001", "Harbour View")])];

/// The people each demo organisation has, for the banner: (organisation slug, name, e-mail, role).
pub fn sign_ins() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    GOLDCREST
        .iter()
        .map(|p| ("goldcrest", p.name, p.email, p.role.name()))
        .chain(
            ACME.iter()
                .map(|p| ("acme", p.name, p.email, p.role.name())),
        )
        .collect()
}

/// Loads one demo organisation's portfolio and people (called once, when it is created).
pub async fn load(app: &AppPool, org: &Organisation) -> Result<(), String> {
    let (people, portfolio) = match org.slug.as_str() {
        "goldcrest" => (GOLDCREST, GOLDCREST_SITES),
        "acme" => (ACME, ACME_SITES),
        _ => return Ok(()),
    };
    let err = |e: proplink_db::DbError| e.to_string();
    let hasher = PasswordHasherPool::new(HashParams::PRODUCTION).map_err(|e| e.to_string())?;
    let hash = hasher
        .hash(SecretString::from(DEMO_PASSWORD))
        .await
        .map_err(|e| e.to_string())?;
    let now = OffsetDateTime::now_utc();
    let ctx = TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind: ActorKind::System,
            name: Some("the demo loader".into()),
        },
        channel: Channel::Platform,
        request_id: None,
    };
    let mut tx = app.begin(&ctx).await.map_err(err)?;
    let (mut first_site, mut first_estate) = (None, None);
    for (estate_ref, estate_name, sites) in portfolio {
        let estate = access::create_estate(&mut tx, estate_ref, estate_name)
            .await
            .map_err(err)?;
        first_estate.get_or_insert(estate);
        for (site_ref, site_name) in *sites {
            let site = access::create_site(&mut tx, Some(estate), site_ref, site_name)
                .await
                .map_err(err)?;
            first_site.get_or_insert(site);
        }
    }
    profile::complete_setup(&mut tx, now).await.map_err(err)?;
    let mut users = vec![];
    for p in people {
        let scope = match (p.scope, first_site, first_estate) {
            (DemoScope::FirstSite, Some(site), _) => Scope::Sites([site].into()),
            (DemoScope::FirstEstate, _, Some(estate)) => Scope::Estates([estate].into()),
            _ => Scope::AllSites,
        };
        let (_, token_hash) = new_token();
        let membership = access::invite(
            &mut tx,
            &NewInvitation {
                email: p.email.into(),
                name: p.name.into(),
                role: RoleChoice::BuiltIn(p.role),
                scope,
                welcome_message: None,
                is_owner: p.role == BuiltInRole::OrganisationOwner,
            },
            &token_hash,
            "(accepted by the demo loader)",
            &org.name,
            None,
            now,
        )
        .await
        .map_err(err)?
        .map_err(|e| e.to_string())?;
        let member = access::member(&mut tx, membership)
            .await
            .map_err(err)?
            .ok_or("the demo member just created is missing")?;
        let invitation = member
            .invitation_id
            .ok_or("the demo invitation just created is missing")?;
        access::accept_invitation(&mut tx, invitation, now)
            .await
            .map_err(err)?;
        users.push(member.user_id);
    }
    tx.commit().await.map_err(err)?;
    for user in users {
        // Priya's password is set once, by whichever organisation loads first.
        let known = staff::find(app, user).await.map_err(err)?;
        if known.is_some_and(|u| u.password_hash.is_none()) {
            staff::set_password(app, user, &hash, now)
                .await
                .map_err(err)?;
        }
    }
    Ok(())
}
