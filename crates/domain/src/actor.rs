//! Who did something, and through which front door. Both are written into every audit event.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of principal behind a write (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Staff,
    Leaseholder,
    Contractor,
    SiteManager,
    Regulator,
    System,
    Webhook,
    Platform,
}

/// The front door (or background process) a write came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Admin,
    ResidencePort,
    ContractorPort,
    BuildingThread,
    FacilityReport,
    Api,
    Worker,
    Platform,
}

impl ActorKind {
    pub const ALL: [ActorKind; 8] = [
        Self::Staff,
        Self::Leaseholder,
        Self::Contractor,
        Self::SiteManager,
        Self::Regulator,
        Self::System,
        Self::Webhook,
        Self::Platform,
    ];

    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Leaseholder => "leaseholder",
            Self::Contractor => "contractor",
            Self::SiteManager => "site_manager",
            Self::Regulator => "regulator",
            Self::System => "system",
            Self::Webhook => "webhook",
            Self::Platform => "platform",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl Channel {
    pub const ALL: [Channel; 8] = [
        Self::Admin,
        Self::ResidencePort,
        Self::ContractorPort,
        Self::BuildingThread,
        Self::FacilityReport,
        Self::Api,
        Self::Worker,
        Self::Platform,
    ];

    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::ResidencePort => "residenceport",
            Self::ContractorPort => "contractorport",
            Self::BuildingThread => "buildingthread",
            Self::FacilityReport => "facility_report",
            Self::Api => "api",
            Self::Worker => "worker",
            Self::Platform => "platform",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// How the channel reads in a sentence: "via ResidencePort".
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::ResidencePort => "ResidencePort",
            Self::ContractorPort => "ContractorPort",
            Self::BuildingThread => "BuildingThread",
            Self::FacilityReport => "Facility Report",
            Self::Api => "the API",
            Self::Worker => "a background job",
            Self::Platform => "PropLink's operator tools",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_round_trip() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::from_db(k.as_str()), Some(k));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::from_db(c.as_str()), Some(c));
        }
        assert_eq!(Channel::from_db("direct"), None);
    }
}
