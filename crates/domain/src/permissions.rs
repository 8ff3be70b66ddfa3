//! Permissions, roles and scopes (docs-spec §2.2).
//!
//! A permission is a record type ("domain") with one of the seven verbs, or with a named extra
//! action the product lists (pay a bill, lock a period, merge contacts, …). The catalogue below
//! is the single list; built-in roles are defined as rules over it, so a permission added here
//! reaches the right roles without editing each one.

use std::collections::BTreeSet;
use std::fmt;

/// The seven verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Read,
    Create,
    Update,
    Approve,
    Archive,
    Restore,
    ForceDelete,
}

impl Verb {
    pub const ALL: [Verb; 7] = [
        Self::Read,
        Self::Create,
        Self::Update,
        Self::Approve,
        Self::Archive,
        Self::Restore,
        Self::ForceDelete,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Approve => "approve",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::ForceDelete => "force_delete",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Read => "Read",
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Approve => "Approve",
            Self::Archive => "Archive",
            Self::Restore => "Restore",
            Self::ForceDelete => "Force delete",
        }
    }
}

/// The module a record type belongs to (for grouping on the Roles page and for roles' rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    Portfolio,
    People,
    Money,
    Operations,
    Compliance,
    Lettings,
    Shared,
    Administration,
}

/// One record type and what can be done to it.
pub struct Domain {
    pub key: &'static str,
    pub label: &'static str,
    pub area: Area,
    pub verbs: &'static [Verb],
    /// Named actions beyond the verbs: (key, label).
    pub extras: &'static [(&'static str, &'static str)],
}

use Verb::*;

/// Sites: the one record type the product lets a privileged user delete for good.
const RECORD: &[Verb] = &[Read, Create, Update, Archive, Restore, ForceDelete];
const RESTORABLE: &[Verb] = &[Read, Create, Update, Archive, Restore];
const EDITABLE: &[Verb] = &[Read, Create, Update, Archive];
const DOCUMENT: &[Verb] = &[Read, Create, Update, Approve];
const APPROVED_RECORD: &[Verb] = &[Read, Create, Update, Approve, Archive];
const READ_ONLY: &[Verb] = &[Read];

/// The catalogue.
pub const DOMAINS: &[Domain] = &[
    // Portfolio
    Domain {
        key: "estate",
        label: "Estates",
        area: Area::Portfolio,
        verbs: RESTORABLE,
        extras: &[],
    },
    Domain {
        key: "site",
        label: "Sites",
        area: Area::Portfolio,
        verbs: RECORD,
        extras: &[],
    },
    Domain {
        key: "building",
        label: "Buildings, floors and spaces",
        area: Area::Portfolio,
        verbs: RESTORABLE,
        extras: &[],
    },
    Domain {
        key: "unit",
        label: "Units",
        area: Area::Portfolio,
        verbs: RESTORABLE,
        extras: &[],
    },
    Domain {
        key: "lease",
        label: "Leases",
        area: Area::Portfolio,
        verbs: EDITABLE,
        extras: &[],
    },
    // People
    Domain {
        key: "contact",
        label: "Contacts",
        area: Area::People,
        verbs: EDITABLE,
        extras: &[
            ("merge", "Merge contacts"),
            ("export", "Export personal data (GDPR)"),
            ("erase", "Erase personal data (GDPR)"),
        ],
    },
    Domain {
        key: "company",
        label: "Companies",
        area: Area::People,
        verbs: EDITABLE,
        extras: &[],
    },
    Domain {
        key: "vendor",
        label: "Vendors",
        area: Area::People,
        verbs: EDITABLE,
        extras: &[],
    },
    // Money
    Domain {
        key: "debtor_invoice",
        label: "Demands and invoices",
        area: Area::Money,
        verbs: DOCUMENT,
        extras: &[
            ("submit", "Submit for approval"),
            ("send", "Send"),
            ("void", "Void"),
        ],
    },
    Domain {
        key: "credit_note",
        label: "Credit notes",
        area: Area::Money,
        verbs: DOCUMENT,
        extras: &[("void", "Void")],
    },
    Domain {
        key: "bill",
        label: "Supplier bills",
        area: Area::Money,
        verbs: DOCUMENT,
        extras: &[
            ("submit", "Submit for approval"),
            ("hold", "Put on hold"),
            ("pay", "Pay"),
            ("void", "Void"),
        ],
    },
    Domain {
        key: "payment",
        label: "Payments and receipts",
        area: Area::Money,
        verbs: READ_ONLY,
        extras: &[
            ("record", "Record"),
            ("reverse", "Reverse"),
            ("schedule_batch", "Schedule a payment batch"),
            ("approve_batch", "Approve a payment batch"),
        ],
    },
    Domain {
        key: "ledger",
        label: "Ledger",
        area: Area::Money,
        verbs: READ_ONLY,
        extras: &[
            ("post_journal", "Post a manual journal"),
            ("approve_journal", "Approve a manual journal"),
            ("lock_period", "Lock a period"),
            ("unlock_period", "Unlock a period"),
            (
                "manage_accounts",
                "Manage ledger accounts and posting roles",
            ),
        ],
    },
    Domain {
        key: "bank_account",
        label: "Bank accounts",
        area: Area::Money,
        verbs: EDITABLE,
        extras: &[("reconcile", "Reconcile"), ("unreconcile", "Unreconcile")],
    },
    Domain {
        key: "budget",
        label: "Budgets and service charge schedules",
        area: Area::Money,
        verbs: DOCUMENT,
        extras: &[],
    },
    // Operations
    Domain {
        key: "ticket",
        label: "Tickets",
        area: Area::Operations,
        verbs: RECORD,
        extras: &[("assign", "Assign")],
    },
    Domain {
        key: "issue",
        label: "Issues",
        area: Area::Operations,
        verbs: RECORD,
        extras: &[],
    },
    Domain {
        key: "work_order",
        label: "Work orders",
        area: Area::Operations,
        verbs: APPROVED_RECORD,
        extras: &[
            ("invite_contractor", "Invite a contractor"),
            (
                "override_compliance",
                "Instruct a contractor whose documents are missing or expired (with a reason)",
            ),
        ],
    },
    Domain {
        key: "quotation",
        label: "Quotations",
        area: Area::Operations,
        verbs: DOCUMENT,
        extras: &[],
    },
    Domain {
        key: "maintenance",
        label: "Planned maintenance",
        area: Area::Operations,
        verbs: EDITABLE,
        extras: &[],
    },
    Domain {
        key: "service_agreement",
        label: "Service agreements",
        area: Area::Operations,
        verbs: EDITABLE,
        extras: &[],
    },
    // Compliance and building safety
    Domain {
        key: "compliance",
        label: "Compliance items",
        area: Area::Compliance,
        verbs: EDITABLE,
        extras: &[],
    },
    Domain {
        key: "golden_thread",
        label: "Golden thread (HRB)",
        area: Area::Compliance,
        verbs: DOCUMENT,
        extras: &[(
            "share_with_regulator",
            "Share with the Building Safety Regulator",
        )],
    },
    // Lettings
    Domain {
        key: "tenancy",
        label: "Tenancies",
        area: Area::Lettings,
        verbs: EDITABLE,
        extras: &[],
    },
    // Shared
    Domain {
        key: "file",
        label: "Files and folders",
        area: Area::Shared,
        verbs: EDITABLE,
        extras: &[("share", "Share by link")],
    },
    Domain {
        key: "communication",
        label: "Communications",
        area: Area::Shared,
        verbs: READ_ONLY,
        extras: &[("send", "Send")],
    },
    Domain {
        key: "report",
        label: "Reports",
        area: Area::Shared,
        verbs: READ_ONLY,
        extras: &[("export", "Export")],
    },
    Domain {
        key: "workflow",
        label: "Workflows",
        area: Area::Shared,
        verbs: &[Read, Create, Update],
        extras: &[
            ("pause", "Pause"),
            ("bypass_approval", "Bypass an approval"),
        ],
    },
    // Administration
    Domain {
        key: "user",
        label: "Users",
        area: Area::Administration,
        verbs: &[Read, Update],
        extras: &[
            ("invite", "Invite"),
            ("deactivate", "Deactivate"),
            ("reactivate", "Reactivate"),
            (
                "reset_credentials",
                "Reset another user's password and second factor",
            ),
        ],
    },
    Domain {
        key: "role",
        label: "Roles",
        area: Area::Administration,
        verbs: &[Read, Create, Update, Archive],
        extras: &[],
    },
    Domain {
        key: "settings",
        label: "Settings",
        area: Area::Administration,
        verbs: READ_ONLY,
        extras: &[
            ("update_organisation", "Update organisation settings"),
            ("manage_modules", "Switch modules on and off"),
            ("manage_tax_rates", "Manage tax rates"),
            ("manage_payment_methods", "Manage payment methods"),
            ("manage_templates", "Manage templates"),
            ("billing", "Manage the subscription and billing"),
        ],
    },
    Domain {
        key: "data_import",
        label: "Data import and export",
        area: Area::Administration,
        verbs: READ_ONLY,
        extras: &[
            ("import", "Import"),
            ("revert", "Revert an import"),
            ("export", "Export"),
        ],
    },
    Domain {
        key: "audit",
        label: "Audit log",
        area: Area::Administration,
        verbs: READ_ONLY,
        extras: &[
            ("export", "Export audit logs"),
            ("configure_read_logging", "Configure read logging"),
        ],
    },
];

/// A permission key, `domain.action` (e.g. `bill.pay`, `site.read`). Only the catalogue makes
/// them, once per process, so a permission is a cheap copy of a static string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(&'static str);

/// The catalogue's keys, built once.
fn catalogue() -> &'static [Permission] {
    static CATALOGUE: std::sync::OnceLock<Vec<Permission>> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| {
        DOMAINS
            .iter()
            .flat_map(|d| {
                d.verbs
                    .iter()
                    .map(move |v| format!("{}.{}", d.key, v.key()))
                    .chain(d.extras.iter().map(move |(k, _)| format!("{}.{k}", d.key)))
            })
            // Made once per process and kept for its life: 161 short strings.
            .map(|key| Permission(Box::leak(key.into_boxed_str())))
            .collect()
    })
}

impl Permission {
    /// Only keys in the catalogue parse.
    pub fn parse(key: &str) -> Option<Self> {
        catalogue().iter().find(|p| p.0 == key).copied()
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    pub fn domain(&self) -> &'static str {
        self.0.split_once('.').map(|(d, _)| d).unwrap_or(self.0)
    }

    pub fn action(&self) -> &'static str {
        self.0.split_once('.').map(|(_, a)| a).unwrap_or("")
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Every permission in the catalogue, in catalogue order.
pub fn all() -> Vec<Permission> {
    catalogue().to_vec()
}

/// The permission for a verb on a record type. None if the catalogue does not have it.
pub fn verb(domain: &str, verb: Verb) -> Option<Permission> {
    Permission::parse(&format!("{domain}.{}", verb.key()))
}

/// The seven built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltInRole {
    OrganisationOwner,
    Administrator,
    Manager,
    Accountant,
    SiteManager,
    MaintenanceCoordinator,
    ReadOnly,
}

impl BuiltInRole {
    pub const ALL: [BuiltInRole; 7] = [
        Self::OrganisationOwner,
        Self::Administrator,
        Self::Manager,
        Self::Accountant,
        Self::SiteManager,
        Self::MaintenanceCoordinator,
        Self::ReadOnly,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::OrganisationOwner => "organisation_owner",
            Self::Administrator => "administrator",
            Self::Manager => "manager",
            Self::Accountant => "accountant",
            Self::SiteManager => "site_manager",
            Self::MaintenanceCoordinator => "maintenance_coordinator",
            Self::ReadOnly => "read_only",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::OrganisationOwner => "Organisation Owner",
            Self::Administrator => "Administrator",
            Self::Manager => "Manager",
            Self::Accountant => "Accountant",
            Self::SiteManager => "Site Manager",
            Self::MaintenanceCoordinator => "Maintenance Coordinator",
            Self::ReadOnly => "Read Only",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    /// Whether the role includes `p`.
    pub fn grants(self, p: &Permission) -> bool {
        let (domain, action) = (p.domain(), p.action());
        let area = DOMAINS.iter().find(|d| d.key == domain).map(|d| d.area);
        let is_read = action == "read";
        let admin_domain = matches!(area, Some(Area::Administration));
        match self {
            Self::OrganisationOwner => true,
            Self::Administrator => p.as_str() != "settings.billing",
            // Runs the portfolio day to day: everything operational, no administration beyond
            // reading it, no ledger period control, no permanent deletion or erasure.
            Self::Manager => {
                is_read
                    || (!admin_domain
                        && !matches!(action, "force_delete" | "erase")
                        && !matches!(
                            action,
                            "lock_period"
                                | "unlock_period"
                                | "approve_journal"
                                | "approve_batch"
                                | "manage_accounts"
                        ))
                    || matches!(
                        p.as_str(),
                        "user.invite" | "data_import.export" | "audit.export"
                    )
            }
            // The books: all of Money, reading everything else, reports and exports.
            Self::Accountant => {
                is_read
                    || (matches!(area, Some(Area::Money)) && action != "force_delete")
                    || matches!(
                        p.as_str(),
                        "report.export"
                            | "data_import.export"
                            | "data_import.import"
                            | "audit.export"
                            | "settings.manage_tax_rates"
                    )
            }
            // On site: operations and compliance, reading the rest of the portfolio.
            Self::SiteManager => {
                (is_read && !matches!(area, Some(Area::Money) | Some(Area::Administration)))
                    || (matches!(area, Some(Area::Operations) | Some(Area::Compliance))
                        && matches!(
                            action,
                            "create" | "update" | "assign" | "archive" | "restore"
                        ))
                    || matches!(
                        p.as_str(),
                        "file.create" | "file.update" | "communication.send"
                    )
            }
            // Tickets, work orders, quotations and the vendors who do the work.
            Self::MaintenanceCoordinator => {
                (is_read && !matches!(area, Some(Area::Money) | Some(Area::Administration)))
                    || (matches!(
                        domain,
                        "ticket"
                            | "issue"
                            | "work_order"
                            | "quotation"
                            | "maintenance"
                            | "service_agreement"
                            | "vendor"
                    ) && action != "force_delete")
                    || matches!(p.as_str(), "file.create" | "communication.send")
            }
            Self::ReadOnly => is_read && p.as_str() != "audit.read",
        }
    }

    /// The role's permissions (worked out once per process).
    pub fn permissions(self) -> BTreeSet<Permission> {
        static SETS: std::sync::OnceLock<Vec<(BuiltInRole, BTreeSet<Permission>)>> =
            std::sync::OnceLock::new();
        SETS.get_or_init(|| {
            Self::ALL
                .iter()
                .map(|r| (*r, all().into_iter().filter(|p| r.grants(p)).collect()))
                .collect()
        })
        .iter()
        .find(|(r, _)| *r == self)
        .map(|(_, set)| set.clone())
        .unwrap_or_default()
    }
}

/// Which sites a member may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    AllSites,
    Sites(BTreeSet<uuid::Uuid>),
    Estates(BTreeSet<uuid::Uuid>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_about_150_unique_permissions_and_all_seven_verbs() {
        let all = all();
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "duplicate keys");
        assert!(
            (140..=170).contains(&all.len()),
            "{} permissions",
            all.len()
        );
        for v in Verb::ALL {
            assert!(
                all.iter().any(|p| p.action() == v.key()),
                "no permission uses {v:?}"
            );
        }
        for named in [
            "bill.pay",
            "ledger.lock_period",
            "contact.merge",
            "audit.export",
            "user.reset_credentials",
        ] {
            assert!(Permission::parse(named).is_some(), "{named} missing");
        }
        assert!(Permission::parse("bill.fly").is_none());
    }

    #[test]
    fn the_owner_has_everything_and_the_administrator_everything_but_billing() {
        let all: BTreeSet<_> = all().into_iter().collect();
        assert_eq!(BuiltInRole::OrganisationOwner.permissions(), all);
        let admin = BuiltInRole::Administrator.permissions();
        assert_eq!(
            all.difference(&admin)
                .map(|p| p.as_str())
                .collect::<Vec<_>>(),
            vec!["settings.billing"]
        );
    }

    #[test]
    fn roles_match_their_jobs() {
        let p = |k: &str| Permission::parse(k).unwrap_or_else(|| panic!("{k}"));
        use BuiltInRole::*;
        assert!(Accountant.grants(&p("bill.pay")) && Accountant.grants(&p("ledger.lock_period")));
        assert!(!Accountant.grants(&p("work_order.create")));
        assert!(
            SiteManager.grants(&p("ticket.create")) && SiteManager.grants(&p("work_order.update"))
        );
        assert!(!SiteManager.grants(&p("bill.read")) && !SiteManager.grants(&p("bill.pay")));
        assert!(
            MaintenanceCoordinator.grants(&p("quotation.approve"))
                && !MaintenanceCoordinator.grants(&p("user.invite"))
        );
        assert!(
            Manager.grants(&p("debtor_invoice.approve"))
                && !Manager.grants(&p("ledger.lock_period"))
        );
        assert!(
            !Manager.grants(&p("site.force_delete"))
                && !Manager.grants(&p("settings.update_organisation"))
        );
        let read_only = ReadOnly.permissions();
        assert!(read_only.iter().all(|q| q.action() == "read"));
        assert!(
            !read_only.contains(&p("audit.read")),
            "the audit log needs its own permission"
        );
        for role in BuiltInRole::ALL {
            assert_eq!(BuiltInRole::from_key(role.key()), Some(role));
            assert!(!role.permissions().is_empty());
        }
    }
}
