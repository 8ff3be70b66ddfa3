//! The one authorisation decision every handler, API call and job makes (issue 3): does this
//! member's role grant the permission, and does their scope reach the record's site?
//!
//! A record outside the member's role or scope is reported as missing (404) so that its
//! existence is never confirmed; an action they may not take on a record they can see is
//! forbidden (403). A member with a role but no scope, or a scope but no role, can do nothing.

use crate::permissions::{Permission, Scope};
use std::collections::BTreeSet;
use uuid::Uuid;

/// What a signed-in member may do, as loaded for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    pub permissions: BTreeSet<Permission>,
    /// None: the member has no scope assigned.
    pub scope: Option<Scope>,
}

/// Where a record sits, for scope checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Organisation-wide (settings, users, roles): needs the permission only.
    Organisation,
    /// On a site, which may belong to an estate.
    Site { site: Uuid, estate: Option<Uuid> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Answer 404: the record is outside what this member may see.
    NotFound,
    /// Answer 403: the member may see the record but not do this.
    Forbidden,
}

impl Grants {
    fn reaches(&self, placement: Placement) -> bool {
        match (&self.scope, placement) {
            (None, _) => false,
            (Some(_), Placement::Organisation) => true,
            (Some(Scope::AllSites), Placement::Site { .. }) => true,
            (Some(Scope::Sites(sites)), Placement::Site { site, .. }) => sites.contains(&site),
            (Some(Scope::Estates(estates)), Placement::Site { estate, .. }) => {
                estate.is_some_and(|e| estates.contains(&e))
            }
        }
    }

    fn can_read(&self, domain: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p.domain() == domain && p.action() == "read")
    }

    /// May the member do `needed` to a record placed at `placement`?
    pub fn decide(&self, needed: &Permission, placement: Placement) -> Decision {
        if self.permissions.is_empty() || !self.reaches(placement) {
            return Decision::NotFound;
        }
        if self.permissions.contains(needed) {
            return Decision::Allowed;
        }
        if self.can_read(needed.domain()) {
            Decision::Forbidden
        } else {
            Decision::NotFound
        }
    }

    /// May the member take an action that creates something (no record yet) on `placement`?
    /// Refusals are 403: there is nothing whose existence to hide.
    pub fn decide_action(&self, needed: &Permission, placement: Placement) -> Decision {
        if self.reaches(placement) && self.permissions.contains(needed) {
            Decision::Allowed
        } else {
            Decision::Forbidden
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::BuiltInRole;

    fn p(key: &str) -> Permission {
        Permission::parse(key).unwrap_or_else(|| panic!("{key}"))
    }

    fn site(estate: Option<Uuid>) -> (Uuid, Placement) {
        let id = Uuid::now_v7();
        (id, Placement::Site { site: id, estate })
    }

    #[test]
    fn role_and_scope_are_both_needed() {
        let (_, somewhere) = site(None);
        let no_scope = Grants {
            permissions: BuiltInRole::Manager.permissions(),
            scope: None,
        };
        assert_eq!(
            no_scope.decide(&p("site.read"), somewhere),
            Decision::NotFound
        );
        assert_eq!(
            no_scope.decide(&p("settings.read"), Placement::Organisation),
            Decision::NotFound
        );
        let no_role = Grants {
            permissions: BTreeSet::new(),
            scope: Some(Scope::AllSites),
        };
        assert_eq!(
            no_role.decide(&p("site.read"), somewhere),
            Decision::NotFound
        );
        assert_eq!(
            no_role.decide_action(&p("site.create"), Placement::Organisation),
            Decision::Forbidden
        );
    }

    #[test]
    fn records_outside_the_scope_do_not_exist_for_the_member() {
        let estate = Uuid::now_v7();
        let (mine, my_site) = site(Some(estate));
        let (_, other_site) = site(None);
        let (_, estate_site) = site(Some(estate));
        let by_site = Grants {
            permissions: BuiltInRole::SiteManager.permissions(),
            scope: Some(Scope::Sites([mine].into())),
        };
        assert_eq!(
            by_site.decide(&p("ticket.update"), my_site),
            Decision::Allowed
        );
        assert_eq!(
            by_site.decide(&p("ticket.update"), other_site),
            Decision::NotFound
        );
        let by_estate = Grants {
            scope: Some(Scope::Estates([estate].into())),
            ..by_site.clone()
        };
        assert_eq!(
            by_estate.decide(&p("ticket.read"), estate_site),
            Decision::Allowed
        );
        assert_eq!(
            by_estate.decide(&p("ticket.read"), other_site),
            Decision::NotFound
        );
    }

    #[test]
    fn a_visible_record_with_a_missing_permission_is_forbidden_and_an_invisible_one_missing() {
        let (_, s) = site(None);
        let coordinator = Grants {
            permissions: BuiltInRole::MaintenanceCoordinator.permissions(),
            scope: Some(Scope::AllSites),
        };
        // Can read sites but not archive them: 403.
        assert_eq!(
            coordinator.decide(&p("site.archive"), s),
            Decision::Forbidden
        );
        // Cannot read bills at all: a bill is a 404, whatever the action.
        assert_eq!(coordinator.decide(&p("bill.pay"), s), Decision::NotFound);
        assert_eq!(coordinator.decide(&p("bill.read"), s), Decision::NotFound);
        assert_eq!(
            coordinator.decide_action(&p("bill.create"), s),
            Decision::Forbidden
        );
        assert_eq!(
            coordinator.decide_action(&p("work_order.create"), s),
            Decision::Allowed
        );
    }

    #[test]
    fn read_only_members_read_and_nothing_more() {
        let (_, s) = site(None);
        let ro = Grants {
            permissions: BuiltInRole::ReadOnly.permissions(),
            scope: Some(Scope::AllSites),
        };
        assert_eq!(ro.decide(&p("site.read"), s), Decision::Allowed);
        assert_eq!(ro.decide(&p("site.update"), s), Decision::Forbidden);
        assert_eq!(
            ro.decide(&p("audit.read"), Placement::Organisation),
            Decision::NotFound
        );
    }
}
