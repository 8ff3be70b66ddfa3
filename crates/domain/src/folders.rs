//! Site folders and who may see their files (docs-spec §2.13 "Files"): every site starts with
//! seven folders; permissions are set per folder and inherited by its files, for five classes
//! of viewer. Staff see every folder of the sites their access covers; the others see only
//! what a folder (or, for residents, a single file) is opened to.

/// Which residents of the site a folder is open to on ResidencePort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResidentAudience {
    /// Staff only.
    None,
    /// Every leaseholder and tenant of the site.
    Residents,
    /// Leaseholders only (not tenants).
    Leaseholders,
    /// Directors of the residents' management company only.
    Directors,
}

impl ResidentAudience {
    pub const ALL: [Self; 4] = [
        Self::None,
        Self::Residents,
        Self::Leaseholders,
        Self::Directors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Residents => "residents",
            Self::Leaseholders => "leaseholders",
            Self::Directors => "directors",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::None => "Not shown to residents",
            Self::Residents => "All residents of the site",
            Self::Leaseholders => "Leaseholders only",
            Self::Directors => "Directors only",
        }
    }
}

/// A folder's permissions: staff always; the other classes as set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderAccess {
    pub residents: ResidentAudience,
    /// Contractors with a live ContractorPort session for a work order at the site.
    pub contractors: bool,
    /// The Building Safety Regulator on BuildingThread (for higher-risk buildings).
    pub regulator: bool,
}

impl FolderAccess {
    pub const STAFF_ONLY: Self = Self {
        residents: ResidentAudience::None,
        contractors: false,
        regulator: false,
    };

    /// "Staff; all residents of the site; contractors on its work orders".
    pub fn summary(self) -> String {
        let mut parts = vec!["Staff"];
        if self.residents != ResidentAudience::None {
            parts.push(match self.residents {
                ResidentAudience::Residents => "all residents of the site",
                ResidentAudience::Leaseholders => "leaseholders",
                ResidentAudience::Directors => "directors",
                ResidentAudience::None => "",
            });
        }
        if self.contractors {
            parts.push("contractors on its work orders");
        }
        if self.regulator {
            parts.push("the Building Safety Regulator");
        }
        if parts.len() == 1 {
            "Staff only".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// Who is looking. Share links (the fifth class, external recipients) grant one file, not a
/// folder, so they are checked on the link rather than here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Staff,
    Resident { leaseholder: bool, director: bool },
    Contractor,
    Regulator,
}

/// Whether a viewer may see a file in a folder with these permissions. `shown_to_residents`
/// is a single file opened to the folder's site's residents although its folder is not (an
/// individual certificate in Compliance).
pub fn may_view(access: FolderAccess, shown_to_residents: bool, viewer: Viewer) -> bool {
    match viewer {
        Viewer::Staff => true,
        Viewer::Contractor => access.contractors,
        Viewer::Regulator => access.regulator,
        Viewer::Resident {
            leaseholder,
            director,
        } => {
            shown_to_residents
                || match access.residents {
                    ResidentAudience::None => false,
                    ResidentAudience::Residents => true,
                    ResidentAudience::Leaseholders => leaseholder || director,
                    ResidentAudience::Directors => director,
                }
        }
    }
}

/// One of the folders every site starts with.
#[derive(Debug, Clone, Copy)]
pub struct DefaultFolder {
    pub key: &'static str,
    pub name: &'static str,
    pub access: FolderAccess,
}

/// The seven default site folders with their default permissions (docs-spec §2.13): Year-end
/// packs and Section 20 are the residents'; the rest are staff only. Section 20 is archived
/// after its consultation by the manager.
pub const DEFAULT_FOLDERS: [DefaultFolder; 7] = [
    DefaultFolder {
        key: "site_documents",
        name: "Site documents",
        access: FolderAccess::STAFF_ONLY,
    },
    DefaultFolder {
        key: "compliance",
        name: "Compliance",
        access: FolderAccess::STAFF_ONLY,
    },
    DefaultFolder {
        key: "insurance",
        name: "Insurance",
        access: FolderAccess::STAFF_ONLY,
    },
    DefaultFolder {
        key: "year_end_packs",
        name: "Year-end packs",
        access: FolderAccess {
            residents: ResidentAudience::Residents,
            contractors: false,
            regulator: false,
        },
    },
    DefaultFolder {
        key: "section_20",
        name: "Section 20",
        access: FolderAccess {
            residents: ResidentAudience::Residents,
            contractors: false,
            regulator: false,
        },
    },
    DefaultFolder {
        key: "plans_and_drawings",
        name: "Plans and drawings",
        access: FolderAccess::STAFF_ONLY,
    },
    DefaultFolder {
        key: "photos",
        name: "Photos",
        access: FolderAccess::STAFF_ONLY,
    },
];

/// The default expiry of a file share link (docs-spec §2.13).
pub const SHARE_LINK_DAYS: i64 = 7;

/// Checks a folder name: 1–80 characters, no slashes (folders are not paths), no control
/// characters.
pub fn check_folder_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the folder a name.".into());
    }
    if name.chars().count() > 80 {
        return Err("Keep the folder's name to 80 characters.".into());
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err("A folder's name cannot contain slashes or control characters.".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const TENANT: Viewer = Viewer::Resident {
        leaseholder: false,
        director: false,
    };
    const LEASEHOLDER: Viewer = Viewer::Resident {
        leaseholder: true,
        director: false,
    };
    const DIRECTOR: Viewer = Viewer::Resident {
        leaseholder: true,
        director: true,
    };

    #[test]
    fn the_defaults_keep_compliance_and_insurance_to_staff() {
        let by_key = |k: &str| DEFAULT_FOLDERS.iter().find(|f| f.key == k).unwrap();
        let compliance = by_key("compliance").access;
        assert!(may_view(compliance, false, Viewer::Staff));
        for v in [TENANT, DIRECTOR, Viewer::Contractor, Viewer::Regulator] {
            assert!(!may_view(compliance, false, v), "{v:?}");
        }
        // One certificate opened to residents explicitly.
        assert!(may_view(compliance, true, TENANT));
        assert!(!may_view(compliance, true, Viewer::Contractor));
        let packs = by_key("year_end_packs").access;
        assert!(may_view(packs, false, TENANT));
        assert_eq!(packs.summary(), "Staff; all residents of the site");
        assert_eq!(compliance.summary(), "Staff only");
    }

    #[test]
    fn audiences_narrow_from_residents_to_directors() {
        let open = |residents| FolderAccess {
            residents,
            contractors: true,
            regulator: false,
        };
        let leaseholders = open(ResidentAudience::Leaseholders);
        assert!(!may_view(leaseholders, false, TENANT));
        assert!(may_view(leaseholders, false, LEASEHOLDER));
        let directors = open(ResidentAudience::Directors);
        assert!(!may_view(directors, false, LEASEHOLDER));
        assert!(may_view(directors, false, DIRECTOR));
        assert!(may_view(directors, false, Viewer::Contractor));
        assert!(!may_view(directors, false, Viewer::Regulator));
        assert_eq!(
            directors.summary(),
            "Staff; directors; contractors on its work orders"
        );
    }

    #[test]
    fn folder_names_are_checked() {
        assert_eq!(
            check_folder_name("  Fire strategy ").unwrap(),
            "Fire strategy"
        );
        assert!(check_folder_name(" ").is_err());
        assert!(check_folder_name("a/b").is_err());
        assert!(check_folder_name(&"x".repeat(81)).is_err());
        assert!(check_folder_name("tab\there").is_err());
        assert_eq!(
            ResidentAudience::parse("leaseholders"),
            Some(ResidentAudience::Leaseholders)
        );
        assert_eq!(ResidentAudience::parse("everyone"), None);
    }
}
