//! The demo portfolio (issue 4), written as the CSV files an agent would import and loaded
//! through the import code itself, so the demo also exercises it.
//!
//! Goldcrest: 12 sites (Riverside Estate of four blocks, a mixed-use block with shops, a
//! higher-risk tower), about 600 units and 800 contacts with joint leaseholders and past owners.
//! Acme: one small block, with a leaseholder who also owns in Goldcrest (John Smith).
//! [`Generator::large`] makes the benchmark organisation of any size from the same parts.

use std::fmt::Write as _;

use proplink_db::import::{self, Outcome};
use proplink_db::organisation::Organisation;
use proplink_db::{Actor, AppPool, TenantContext};
use proplink_domain::import::ImportKind;
use proplink_domain::{ActorKind, Channel};

/// A small deterministic generator (xorshift), so every demo is the same demo.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const FIRST: &[&str] = &[
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy", "Leo",
    "Freya", "Arthur", "Lily", "Muhammad", "Emily", "Oscar", "Sophia", "Charlie", "Grace", "Priya",
    "Ravi", "Aisha", "Tomasz", "Zofia", "Chidi", "Ngozi", "Wei", "Mei", "Siobhan", "Callum",
    "Eilidh", "Rhys", "Cerys", "Daniel", "Hannah", "Samuel", "Ruth", "Ahmed", "Fatima",
];
const LAST: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Lewis", "Harris", "Martin", "Cooper", "King", "Lee",
    "Baker", "Turner", "Hill", "Morris", "Ward", "Okafor", "Nowak", "Chen", "O'Brien", "Hughes",
    "Edwards", "Begum", "Shah", "Kowalski", "Murphy", "Price", "Bennett", "Gray", "Fisher",
];
const TITLES: &[&str] = &["Mr", "Mrs", "Ms", "Miss", "Dr", "Mx"];

/// (reference, name, street, city, postcode, estate) for Goldcrest's twelve sites.
const GOLDCREST_SITES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "GC-001",
        "Riverside Court",
        "1 Riverside Walk",
        "Leeds",
        "LS1 4BR",
        "EST-001",
    ),
    (
        "GC-002",
        "Wharf House",
        "3 Riverside Walk",
        "Leeds",
        "LS1 4BR",
        "EST-001",
    ),
    (
        "GC-003",
        "Abbey Mews",
        "12 Abbey Road",
        "York",
        "YO1 7EP",
        "EST-002",
    ),
    (
        "GC-004",
        "Lock Keeper's Yard",
        "5 Riverside Walk",
        "Leeds",
        "LS1 4BS",
        "EST-001",
    ),
    (
        "GC-005",
        "Mill Race House",
        "7 Riverside Walk",
        "Leeds",
        "LS1 4BS",
        "EST-001",
    ),
    (
        "GC-006",
        "Meridian Tower",
        "40 Wellington Street",
        "Leeds",
        "LS1 2DE",
        "",
    ),
    (
        "GC-007",
        "Market Street Chambers",
        "18 Market Street",
        "Bradford",
        "BD1 1LH",
        "",
    ),
    (
        "GC-008",
        "Cedar Gardens",
        "2 Cedar Avenue",
        "Harrogate",
        "HG1 1DD",
        "",
    ),
    (
        "GC-009",
        "Victoria Quarter",
        "55 Victoria Road",
        "Sheffield",
        "S10 2DJ",
        "",
    ),
    (
        "GC-010",
        "The Old School",
        "9 School Lane",
        "Wakefield",
        "WF1 2TA",
        "EST-002",
    ),
    (
        "GC-011",
        "Kingfisher Point",
        "101 Canal Street",
        "Manchester",
        "M1 3WB",
        "",
    ),
    (
        "GC-012",
        "Linden House",
        "14 Linden Grove",
        "Chester",
        "CH1 2AB",
        "",
    ),
];

/// Units per Goldcrest site (about 600 in all) and its blocks.
const GOLDCREST_SHAPE: &[(usize, usize)] = &[
    (48, 2),
    (36, 1),
    (12, 1),
    (40, 2),
    (44, 2),
    (96, 1),
    (30, 1),
    (60, 3),
    (72, 2),
    (24, 1),
    (84, 2),
    (40, 1),
];

/// The CSV files of one organisation's portfolio.
#[derive(Debug, Default)]
pub struct Files {
    pub sites: String,
    pub buildings: String,
    pub units: String,
    pub contacts: String,
    pub leases: String,
    pub unit_count: usize,
    pub contact_count: usize,
}

pub struct Generator {
    rng: Rng,
    files: Files,
    next_contact: usize,
    /// Prefix of contact references and e-mail domains, so organisations differ.
    tag: String,
    /// The freeholder every site names as its landlord: (name, line 1, city, postcode).
    landlord: (&'static str, &'static str, &'static str, &'static str),
}

impl Generator {
    fn new(seed: u64, tag: &str) -> Self {
        let mut files = Files::default();
        files.sites.push_str(
            "reference,name,address_line_1,address_line_2,city,postcode,estate_reference,\
             landlord_name,landlord_address_line_1,landlord_address_line_2,landlord_city,landlord_postcode\n",
        );
        files.buildings.push_str(
            "site_reference,reference,name,height_metres,storeys,residential_units,build_year,\
             construction_type,hrb_override,hrb_override_reason\n",
        );
        files.units.push_str(
            "site_reference,reference,name,building_reference,floor,type,square_metres,parking_spaces,uprn\n",
        );
        files.contacts.push_str(
            "reference,kind,title,first_name,last_name,company_name,emails,phones,address_line_1,\
             city,postcode,roles,correspondence\n",
        );
        files.leases.push_str(
            "site_reference,unit_reference,holders,start_date,end_date,term_years,ground_rent,\
             ground_rent_review,s48_notice_date\n",
        );
        Self {
            rng: Rng(seed | 1),
            files,
            next_contact: 1,
            tag: tag.to_owned(),
            landlord: ("Goldcrest Freehold Ltd", "1 Park Row", "Leeds", "LS1 5HN"),
        }
    }

    /// Goldcrest's demo portfolio, `scale` times over (1 is the demo; more for big demos).
    pub fn goldcrest(scale: usize) -> Files {
        let mut g = Self::new(0x60_1d_c2_e5, "gc");
        for round in 0..scale.max(1) {
            for (i, ((reference, name, street, city, postcode, estate), (units, blocks))) in
                GOLDCREST_SITES.iter().zip(GOLDCREST_SHAPE).enumerate()
            {
                let reference = if round == 0 {
                    (*reference).to_owned()
                } else {
                    format!("{reference}-{round}")
                };
                let name = if round == 0 {
                    (*name).to_owned()
                } else {
                    format!("{name} {}", round + 1)
                };
                let tower = i == 5;
                let mixed = i == 6;
                g.site(&reference, &name, street, city, postcode, estate);
                g.block_of_flats(&reference, *units, *blocks, tower, mixed, postcode);
            }
        }
        // The leaseholder Acme shares: the same person, a record in each organisation.
        g.shared_smith("GC-001");
        g.files
    }

    /// Acme's small portfolio, with John Smith.
    pub fn acme() -> Files {
        let mut g = Self::new(0xac_3e, "ac");
        g.landlord = (
            "Harbour Freeholds Ltd",
            "10 Queen Square",
            "Bristol",
            "BS1 4NT",
        );
        g.site(
            "AC-001",
            "Harbour View",
            "2 Harbour Road",
            "Bristol",
            "BS1 5TY",
            "EST-001",
        );
        g.block_of_flats("AC-001", 24, 1, false, false, "BS1 5TY");
        g.shared_smith("AC-001");
        g.files
    }

    /// An organisation of about `units` units and `contacts` contacts (benchmarks).
    pub fn large(seed: u64, tag: &str, units: usize, contacts: usize) -> Files {
        let mut g = Self::new(seed, tag);
        let per_site = 100;
        let sites = units.div_ceil(per_site);
        for s in 0..sites {
            let reference = format!("{}-{:05}", tag.to_uppercase(), s + 1);
            let (street, city, postcode) = g.address();
            let name = format!("{} House", g.rng.pick(LAST).replace('\'', ""));
            g.site(&reference, &name, &street, &city, &postcode, "");
            let here = per_site.min(units - s * per_site);
            g.block_of_flats(&reference, here, 2, false, false, &postcode);
        }
        while g.files.contact_count < contacts {
            g.person(&["other"], None);
        }
        g.files
    }

    fn address(&mut self) -> (String, String, String) {
        const TOWNS: &[(&str, &str)] = &[
            ("Leeds", "LS"),
            ("Bristol", "BS"),
            ("Manchester", "M"),
            ("Birmingham", "B"),
            ("Nottingham", "NG"),
            ("Cardiff", "CF"),
            ("London", "SE"),
            ("London", "N"),
            ("Reading", "RG"),
            ("Norwich", "NR"),
        ];
        const STREETS: &[&str] = &[
            "High Street",
            "Station Road",
            "Church Lane",
            "Park Avenue",
            "Mill Lane",
            "Queen's Road",
            "Victoria Street",
            "Green Lane",
            "Manor Road",
            "King Street",
        ];
        let (city, area) = TOWNS[self.rng.below(TOWNS.len())];
        let letters = "ABDEFGHJLNPQRSTUWXYZ".as_bytes();
        let postcode = format!(
            "{area}{} {}{}{}",
            1 + self.rng.below(20),
            self.rng.below(10),
            letters[self.rng.below(letters.len())] as char,
            letters[self.rng.below(letters.len())] as char
        );
        (
            format!("{} {}", 1 + self.rng.below(200), self.rng.pick(STREETS)),
            city.to_owned(),
            postcode,
        )
    }

    fn site(
        &mut self,
        reference: &str,
        name: &str,
        street: &str,
        city: &str,
        postcode: &str,
        estate: &str,
    ) {
        let (landlord, line_1, landlord_city, landlord_postcode) = self.landlord;
        let _ = writeln!(
            self.files.sites,
            "{reference},{},{},,{city},{postcode},{estate},{landlord},{line_1},,{landlord_city},{landlord_postcode}",
            quote(name),
            quote(street)
        );
    }

    fn block_of_flats(
        &mut self,
        site: &str,
        units: usize,
        blocks: usize,
        tower: bool,
        mixed: bool,
        postcode: &str,
    ) {
        let blocks = blocks.max(1);
        let per_block = units.div_ceil(blocks);
        let mut made = 0;
        for b in 0..blocks {
            let block = ["A", "B", "C", "D"][b % 4];
            let here = per_block.min(units - made);
            if here == 0 {
                break;
            }
            // Low-rise blocks keep to five storeys: the tower is the one higher-risk building.
            let per_floor = if tower { 11 } else { here.div_ceil(5).max(4) };
            let storeys = here.div_ceil(per_floor) + usize::from(mixed);
            let (height, year, construction) = if tower {
                ("24.50", 2004, "concrete")
            } else {
                (
                    ["9.60", "12.40", "15.10"][self.rng.below(3)],
                    1960 + self.rng.below(60),
                    "masonry",
                )
            };
            let _ = writeln!(
                self.files.buildings,
                "{site},{block},Block {block},{height},{storeys},{here},{year},{construction},,"
            );
            for n in 0..here {
                made += 1;
                let floor = n / per_floor;
                let floor_name = if floor == 0 {
                    "Ground".to_owned()
                } else {
                    floor.to_string()
                };
                let (kind, reference, name) = if mixed && floor == 0 && n < 4 {
                    (
                        "commercial",
                        format!("{block}-SHOP{}", n + 1),
                        format!("Shop {}", n + 1),
                    )
                } else {
                    (
                        "flat",
                        format!("{block}-{}", n + 1),
                        format!("Flat {}{}", block, n + 1),
                    )
                };
                let area = 38 + self.rng.below(60);
                let parking = usize::from(self.rng.chance(30));
                let uprn = 10_000_000 + self.rng.below(90_000_000);
                let _ = writeln!(
                    self.files.units,
                    "{site},{reference},{name},{block},{floor_name},{kind},{area}.{:02},{parking},{uprn}",
                    self.rng.below(100)
                );
                self.files.unit_count += 1;
                self.leaseholders(site, &reference, kind == "commercial", postcode);
            }
        }
    }

    /// A unit's leaseholders: some joint, some with a past owner before them.
    fn leaseholders(&mut self, site: &str, unit: &str, commercial: bool, postcode: &str) {
        let term_start = 1990 + self.rng.below(30);
        let rent = [0, 100, 150, 250, 350][self.rng.below(5)];
        let review = if rent == 0 {
            ""
        } else {
            ["Fixed", "Doubles every 25 years", "RPI every 10 years"][self.rng.below(3)]
        };
        let mut start = format!(
            "{:02}/{:02}/{term_start}",
            1 + self.rng.below(28),
            1 + self.rng.below(12)
        );
        if self.rng.chance(20) {
            // A past owner, who sold to the current one.
            let past = if commercial {
                self.company()
            } else {
                self.person(&["leaseholder"], Some(postcode))
            };
            let sold = term_start + 1 + self.rng.below(15);
            let sold_on = format!(
                "{:02}/{:02}/{sold}",
                1 + self.rng.below(28),
                1 + self.rng.below(12)
            );
            let last_day = day_before(&sold_on);
            let _ = writeln!(
                self.files.leases,
                "{site},{unit},{past},{start},{last_day},125,{rent},{review},"
            );
            start = sold_on;
        }
        let holders = if commercial {
            self.company()
        } else if self.rng.chance(15) {
            let a = self.person(&["leaseholder"], Some(postcode));
            let b = self.person(&["leaseholder"], Some(postcode));
            format!("{a}|{b}")
        } else {
            self.person(&["leaseholder"], Some(postcode))
        };
        let s48 = format!("01/04/{}", 2015 + self.rng.below(10));
        let _ = writeln!(
            self.files.leases,
            "{site},{unit},{holders},{start},,125,{rent},{review},{s48}"
        );
    }

    /// A new person; returns their reference.
    fn person(&mut self, roles: &[&str], postcode: Option<&str>) -> String {
        let reference = format!("{}-C{:06}", self.tag.to_uppercase(), self.next_contact);
        self.next_contact += 1;
        let first = self.rng.pick(FIRST);
        let last = self.rng.pick(LAST);
        let title = self.rng.pick(TITLES);
        let email = format!(
            "{}.{}{}@{}.example.com",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', ""),
            self.next_contact,
            self.tag
        );
        let phone = format!("07700{:06}", self.rng.below(1_000_000));
        let (street, city, pc) = match postcode {
            Some(pc) => ("", "", pc.to_owned()),
            None => ("", "", String::new()),
        };
        let _ = writeln!(
            self.files.contacts,
            "{reference},person,{title},{first},{},,{email},{phone},{street},{city},{pc},{},email",
            quote(last),
            roles.join("|")
        );
        self.files.contact_count += 1;
        reference
    }

    fn company(&mut self) -> String {
        const TRADES: &[&str] = &[
            "Bakery",
            "Pharmacy",
            "Dental Practice",
            "Coffee House",
            "Estate Agents",
            "Florist",
        ];
        let reference = format!("{}-C{:06}", self.tag.to_uppercase(), self.next_contact);
        self.next_contact += 1;
        let name = format!(
            "{} {} Ltd",
            self.rng.pick(LAST).replace('\'', ""),
            self.rng.pick(TRADES)
        );
        let _ = writeln!(
            self.files.contacts,
            "{reference},company,,,,{},accounts{}@{}.example.com,,,,,leaseholder,email",
            quote(&name),
            self.next_contact,
            self.tag
        );
        self.files.contact_count += 1;
        reference
    }

    /// John Smith, who bought the penthouse of block A at `site` on 1 June 2019 (in Goldcrest
    /// and in Acme: one person, a record in each organisation).
    fn shared_smith(&mut self, site: &str) {
        let _ = writeln!(
            self.files.units,
            "{site},A-PH1,Penthouse 1,A,Roof,flat,121.50,2,"
        );
        self.files.unit_count += 1;
        let _ = writeln!(
            self.files.contacts,
            "SMITH-J,person,Mr,John,Smith,,john.smith@example.com,07700900461,,,,leaseholder,email"
        );
        self.files.contact_count += 1;
        let _ = writeln!(
            self.files.leases,
            "{site},A-PH1,SMITH-J,01/06/2019,,999,0,,01/07/2019"
        );
    }
}

/// "01/06/2019" → "31/05/2019".
fn day_before(uk: &str) -> String {
    let parts: Vec<u32> = uk.split('/').filter_map(|p| p.parse().ok()).collect();
    let (d, m, y) = (parts[0], parts[1], parts[2]);
    if d > 1 {
        return format!("{:02}/{m:02}/{y}", d - 1);
    }
    // The generator only makes days 1–28, so the day before the 1st is the 28th.
    if m > 1 {
        format!("28/{:02}/{y}", m - 1)
    } else {
        format!("28/12/{}", y - 1)
    }
}

fn quote(value: &str) -> String {
    if value.contains([',', '"']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Imports the files in order (sites, buildings, units, contacts, leases) in one transaction.
pub async fn load(
    app: &AppPool,
    org: &Organisation,
    files: &Files,
) -> Result<Vec<(ImportKind, Outcome)>, String> {
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
    let mut tx = app.begin(&ctx).await.map_err(|e| e.to_string())?;
    let mut outcomes = Vec::new();
    for (kind, text) in [
        (ImportKind::Sites, &files.sites),
        (ImportKind::Buildings, &files.buildings),
        (ImportKind::Units, &files.units),
        (ImportKind::Contacts, &files.contacts),
        (ImportKind::Leases, &files.leases),
    ] {
        let parsed = kind
            .parse_file(text.as_bytes())
            .map_err(|e| format!("the demo's {} file: {e}", kind.key()))?;
        if let Some(first) = parsed.errors().first() {
            return Err(format!(
                "the demo's {} file, line {}: {}",
                kind.key(),
                first.line,
                first.message
            ));
        }
        let outcome = import::apply(&mut tx, &parsed, &mut |_| {})
            .await
            .map_err(|e| match e {
                import::ApplyError::Lines(lines) => format!(
                    "the demo's {} file: {}",
                    kind.key(),
                    lines
                        .iter()
                        .take(3)
                        .map(|l| format!("line {}: {}", l.line, l.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                import::ApplyError::Db(e) => e.to_string(),
            })?;
        outcomes.push((kind, outcome));
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(outcomes)
}
