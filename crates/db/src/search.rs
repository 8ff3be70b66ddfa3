//! The one search box (issue 4): contacts, units, sites, buildings and vendors, in the
//! organisation and the member's site scope.
//!
//! A query goes through up to three steps, cheapest first:
//! 1. a phone number or its start ("07700 900", "+44 7700") is looked up by prefix;
//! 2. each typed word stands for the index words it begins and its spelling neighbours
//!    (`search_word`); the entries holding a word for every typed word are found through the
//!    word postings (`search_posting`) — for a site-scoped member, among their own entries —
//!    and ranked by how many typed words they match exactly;
//! 3. only when some typed word names no word at all (the middle of a reference, a misspelt
//!    e-mail address) are entries measured for trigram likeness, nearest first.
//!
//! The index (`search_entry`) is kept by triggers on the source tables; each row carries its
//! kind, its site (for units, buildings and sites) and one lower-case body of the words a
//! person might type. Row-level security keeps every query inside the organisation.

use serde::Serialize;
use uuid::Uuid;

use crate::portfolio::SiteScope;
use crate::{DbError, TenantTx};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct SearchHit {
    pub id: Uuid,
    /// `contact`, `unit`, `site`, `building` or `vendor`.
    pub kind: String,
    pub site_id: Option<Uuid>,
    pub title: String,
    pub detail: String,
    /// 0 (no likeness) to 1 (the words match exactly).
    pub score: f32,
}

/// The member's sites, their units and the people connected to them (lease holders,
/// occupants, management companies and their officers), as `sites.ids`, `units.ids` and
/// `people.ids`; parameters $1 organisation, $3 all sites, $4 sites, $5 estates. (A macro, so
/// that `concat!` can splice it into literal SQL.)
macro_rules! scope_people {
    () => {
        "with sites as materialized (
             select array(select s.id from site s
                           where s.organisation_id = $1 and not $3
                             and (s.id = any($4) or s.estate_id = any($5))) as ids
         ), units as materialized (
             select array(select u.id from unit u, sites
                           where u.organisation_id = $1 and u.site_id = any(sites.ids)) as ids
         ), people as materialized (
             select array(
                 select h.contact_id from lease l, units
                   join lease_holder h on true
                  where l.organisation_id = $1 and l.unit_id = any(units.ids)
                    and h.organisation_id = $1 and h.lease_id = l.id
                 union
                 select o.contact_id from occupancy o, units
                  where o.organisation_id = $1 and o.unit_id = any(units.ids)
                 union
                 select s.management_company_id from site s, sites
                  where s.organisation_id = $1 and s.id = any(sites.ids)
                    and s.management_company_id is not null
                 union
                 select f.person_id from site s, sites, company_officer f
                  where s.organisation_id = $1 and s.id = any(sites.ids)
                    and f.organisation_id = $1 and f.company_id = s.management_company_id) as ids
         )"
    };
}

/// Longest query looked at, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// The best `limit` matches for `q` (blank → none), archived and merged records left out.
/// Contacts and vendors have no site: a site-scoped member finds the contacts connected to
/// their sites (`contact_site`) and every vendor.
pub async fn search(
    tx: &mut TenantTx,
    scope: &SiteScope,
    q: &str,
    limit: i64,
) -> Result<Vec<SearchHit>, DbError> {
    // Sized for this organisation: see TenantTx::plan_for_this_organisation.
    tx.plan_for_this_organisation().await?;
    let q: String = q
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    if q.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        return Ok(Vec::new());
    }
    let limit = limit.clamp(1, 50);
    if let Some(prefixes) = phone_prefixes(&q) {
        let hits = by_phone(tx, scope, &prefixes, limit).await?;
        if !hits.is_empty() {
            return Ok(hits);
        }
    }
    // Everything in scope uses a word's spelling neighbours only when it begins no word.
    let resolved = resolve(tx, &q, !scope.all).await?;
    let q = match resolved {
        // A site-scoped member's entries are few: those holding a word that begins each typed
        // word (or a spelling neighbour of it) are found and ranked directly. When none does,
        // the words are the organisation's but not on the member's sites: nothing to show.
        Some(sets) if !scope.all => return by_words(tx, scope, &q, &sets, limit).await,
        // Everything in scope: the entries holding the words, through the word postings.
        Some(sets) => {
            let hits = by_postings(tx, &q, &sets, limit).await?;
            if !hits.is_empty() {
                return Ok(hits);
            }
            // Every entry holding them is archived: look for likeness instead, each typed
            // word that is not itself a word completed to the shortest one it begins.
            q.split_whitespace()
                .map(|t| match sets.iter().find(|(term, _)| term == t) {
                    Some((_, words)) if !words.iter().any(|w| w == t) => {
                        words.first().map_or(t, String::as_str)
                    }
                    _ => t,
                })
                .collect::<Vec<&str>>()
                .join(" ")
        }
        None => corrected(tx, &q).await?,
    };
    // What names no word of the index (the middle of a reference, a misspelt e-mail address)
    // is measured for likeness instead. Everything in scope: the GiST index hands rows over
    // nearest first by word distance (`<<->`) inside the organisation, so the scan stops after
    // `limit` rows. A site-scoped
    // member: the candidates are gathered from their sites first (entries on those sites,
    // contacts connected to them, vendors) and ranked, so the scan never wades through other
    // sites' records. Either way the outer filter drops rows that do not look like the query.
    // (A `%>` similarity floor as an index condition made typo queries far slower on the
    // everything-in-scope scan: p99 3.3 s against 200 ms without it, on 250,000 entries.)
    let sql = if scope.all {
        "select id, kind, site_id, title, detail, (1 - dist)::float4 as score
           from (select e.id, e.kind, e.site_id, e.title, e.detail, $2 <<-> e.body as dist
                   from search_entry e
                  where e.organisation_id = $1 and not e.archived
                  order by $2 <<-> e.body
                  limit $6) e
          where e.dist < 0.7
          order by e.dist, e.title"
    } else {
        concat!(
            scope_people!(),
            ", candidates as (
             select e.* from search_entry e, sites
              where e.organisation_id = $1 and e.site_id = any(sites.ids)
             union all
             select e.* from search_entry e, people
              where e.organisation_id = $1 and e.id = any(people.ids) and e.kind = 'contact'
             union all
             select e.* from search_entry e where e.organisation_id = $1 and e.kind = 'vendor'
         )
         select id, kind, site_id, title, detail, (1 - dist)::float4 as score
           from (select c.id, c.kind, c.site_id, c.title, c.detail, $2 <<-> c.body as dist
                   from candidates c where not c.archived) e
          where e.dist < 0.7
          order by e.dist, e.title
          limit $6"
        )
    };
    Ok(sqlx::query_as(sql)
        .bind(tx.org().0)
        .bind(&q)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(limit)
        .fetch_all(tx.conn())
        .await?)
}

/// A query that is a phone number or its start ("07700 900", "+44 7700"): the prefixes
/// to look for, in both the national and the international form. `None` for anything else,
/// including fewer than 4 digits.
fn phone_prefixes(q: &str) -> Option<Vec<String>> {
    let compact: String = q.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let (plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    if digits.len() < 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut prefixes = vec![format!("{}{digits}", if plus { "+" } else { "" })];
    if let Some(national) = digits.strip_prefix('0').filter(|_| !plus) {
        prefixes.push(format!("+44{national}"));
    } else if let Some(national) = digits.strip_prefix("44").filter(|_| plus) {
        prefixes.push(format!("0{national}"));
    }
    Some(prefixes)
}

/// Contacts whose phone number starts with one of `prefixes`, by name; a site-scoped member
/// sees those connected to their sites. (A range in byte order rather than LIKE: row-level
/// security lets only leakproof operators use an index, and LIKE is not one.)
async fn by_phone(
    tx: &mut TenantTx,
    scope: &SiteScope,
    prefixes: &[String],
    limit: i64,
) -> Result<Vec<SearchHit>, DbError> {
    let sql = if scope.all {
        "select e.id, e.kind, e.site_id, e.title, e.detail, 1::float4 as score
           from search_entry e
          where e.organisation_id = $1 and e.kind = 'contact' and not e.archived
            and e.id in (select p.contact_id from contact_phone p, unnest($2::text[]) x(prefix)
                          where p.organisation_id = $1 and p.phone ~>=~ x.prefix
                            and p.phone ~<~ (x.prefix || chr(1114111))
                          limit 500)
          order by e.title, e.id
          limit $6"
    } else {
        concat!(
            scope_people!(),
            "select e.id, e.kind, e.site_id, e.title, e.detail, 1::float4 as score
               from search_entry e, people
              where e.organisation_id = $1 and e.kind = 'contact' and not e.archived
                and e.id = any(people.ids)
                and exists (select from contact_phone p, unnest($2::text[]) x(prefix)
                             where p.organisation_id = $1 and p.contact_id = e.id
                               and p.phone ~>=~ x.prefix and p.phone ~<~ (x.prefix || chr(1114111)))
              order by e.title, e.id
              limit $6"
        )
    };
    Ok(sqlx::query_as(sql)
        .bind(tx.org().0)
        .bind(prefixes)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(limit)
        .fetch_all(tx.conn())
        .await?)
}

/// `q` with each word that begins no word of the organisation's index replaced by the nearest
/// one within one edit (words of 3–4 letters) or two (longer): "jnoes" → "jones". Words with
/// digits or symbols, shorter words, and words with no near neighbour are kept as typed.
async fn corrected(tx: &mut TenantTx, q: &str) -> Result<String, DbError> {
    let terms: Vec<&str> = q.split_whitespace().collect();
    let near = near_words(tx, &terms, 1, true).await?;
    Ok(terms
        .iter()
        .map(|t| {
            near.iter()
                .find(|(term, _)| term == t)
                .and_then(|(_, words)| words.first().map(String::as_str))
                .unwrap_or(t)
        })
        .collect::<Vec<&str>>()
        .join(" "))
}

/// For each letters-only word of 3 to 40 letters among `terms`, up to `per_term` words of the
/// organisation's index within one edit (3–4 letters) or two (longer), nearest first; with
/// `only_unknown`, only for the words that begin no word of the index.
async fn near_words(
    tx: &mut TenantTx,
    terms: &[&str],
    per_term: i64,
    only_unknown: bool,
) -> Result<Vec<(String, Vec<String>)>, DbError> {
    let checkable: Vec<String> = terms
        .iter()
        // ASCII letters, as the index's `[[:alpha:]]` means under its "C" collation: names
        // with accents get no spelling neighbours (they still match by prefix and likeness).
        .filter(|t| (3..=40).contains(&t.len()) && t.chars().all(|c| c.is_ascii_alphabetic()))
        .map(|t| (*t).to_owned())
        .collect();
    if checkable.is_empty() {
        return Ok(Vec::new());
    }
    // Candidates: the 100 nearest words by trigrams, and the words of about the same length
    // with the same first letter (trigrams miss a swap of two letters in a short word).
    Ok(sqlx::query_as(
        r#"select t.term::text,
                  array(select w.word from (
                       (select w.word from search_word w
                         where w.organisation_id = $1 and w.word ~ '^[[:alpha:]]{3,40}$'
                         order by w.word <-> t.term limit 100)
                       union
                       (select w.word from search_word w
                         where w.organisation_id = $1 and w.word ~ '^[[:alpha:]]{3,40}$'
                           and left(w.word, 1) = left(t.term, 1)
                           and length(w.word) between length(t.term) - 2 and length(t.term) + 2)
                   ) w
                   where w.word <> t.term
                     and levenshtein_less_equal(w.word, t.term, t.edits) <= t.edits
                   order by levenshtein_less_equal(w.word, t.term, t.edits),
                            similarity(w.word, t.term) desc, w.word
                   limit $3)
             from (select u.term collate "C" as term,
                          case when length(u.term) <= 4 then 1 else 2 end as edits
                     from unnest($2::text[]) u(term)) t
            where not $4 or not exists (select from search_word w
                                         where w.organisation_id = $1 and w.word >= t.term
                                           and w.word < t.term || chr(1114111))"#,
    )
    .bind(tx.org().0)
    .bind(&checkable)
    .bind(per_term)
    .bind(only_unknown)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .filter(|(_, words): &(String, Vec<String>)| !words.is_empty())
    .collect())
}

/// Most typed words looked up; more are left out of the word lookup.
const MAX_TERMS: usize = 6;
/// Index words a typed word can stand for: the shortest ones it begins.
const WORDS_PER_TERM: i64 = 8;
/// Spelling neighbours a typed word also stands for.
const NEAR_PER_TERM: i64 = 3;
/// Entries ranked per query. A broader query ("flat") ranks a sample of this many; its
/// owner types another word to narrow it.
const MAX_CANDIDATES: i64 = 2_000;
/// Entries ranked per query found through the postings (each costs a lookup of its entry;
/// the postings are read in word order, so a typed word's exact holders come first).
const MAX_POSTED: i64 = 500;

/// Each typed word of two or more characters as the index words it stands for: the shortest
/// words it begins and its nearest spelling neighbours (letters-only words within one or two
/// edits; with `all_neighbours` false, only for words that begin none). `None` when some typed
/// word names no word at all (left to the likeness scan).
async fn resolve(
    tx: &mut TenantTx,
    q: &str,
    all_neighbours: bool,
) -> Result<Option<Vec<(String, Vec<String>)>>, DbError> {
    let mut terms: Vec<String> = Vec::new();
    for t in q.split_whitespace().filter(|t| t.chars().count() >= 2) {
        if !terms.iter().any(|seen| seen == t) && terms.len() < MAX_TERMS {
            terms.push(t.to_owned());
        }
    }
    if terms.is_empty() {
        return Ok(None);
    }
    // The first 200 words of each prefix's range in the index, shortest first.
    let found: Vec<(String, Vec<String>)> = sqlx::query_as(
        r#"select t.term::text,
                  array(select p.word from (
                            select w.word from search_word w
                             where w.organisation_id = $1 and w.word >= t.term
                               and w.word < t.term || chr(1114111)
                             order by w.word limit 200) p
                         order by length(p.word), p.word limit $3)
             from (select u.term collate "C" as term from unnest($2::text[]) u(term)) t"#,
    )
    .bind(tx.org().0)
    .bind(&terms)
    .bind(WORDS_PER_TERM)
    .fetch_all(tx.conn())
    .await?;
    // Spelling neighbours too ("smith" also finds Smyth; "jnoes", which begins nothing, finds
    // Jones); they rank below the words typed.
    let term_refs: Vec<&str> = terms.iter().map(String::as_str).collect();
    let near = near_words(tx, &term_refs, NEAR_PER_TERM, !all_neighbours).await?;
    let mut sets = Vec::with_capacity(terms.len());
    for term in &terms {
        let mut words = found
            .iter()
            .find(|(t, _)| t == term)
            .map(|(_, w)| w.clone())
            .unwrap_or_default();
        if let Some((_, close)) = near.iter().find(|(t, _)| t == term) {
            words.extend(
                close
                    .iter()
                    .filter(|w| !words.contains(w))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        if words.is_empty() {
            return Ok(None);
        }
        sets.push((term.clone(), words));
    }
    Ok(Some(sets))
}

/// A site-scoped member's entries holding, for every typed word, a word it begins or one of
/// the words it stands for (or, when none holds them all, any of them), ranked by how many typed
/// words they match and match exactly. (Beginnings are checked on the member's own entries, so
/// a postcode district that is not among the organisation's shortest completions of "ls1" is
/// still found.)
async fn by_words(
    tx: &mut TenantTx,
    scope: &SiteScope,
    q: &str,
    sets: &[(String, Vec<String>)],
    limit: i64,
) -> Result<Vec<SearchHit>, DbError> {
    let typed: Vec<String> = q.split_whitespace().map(str::to_owned).collect();
    // $7, $9, … are the word sets, one per typed word; $8, $10, … the typed words, each after
    // a space: a body's words are joined by spaces, so " ls1" in " " || body means a word
    // begins "ls1".
    let holds = |row: &str, i: usize| {
        format!(
            "({row}.words && ${w} or strpos(' ' || {row}.body, ${t}) > 0)",
            w = 7 + 2 * i,
            t = 8 + 2 * i
        )
    };
    let matched = (0..sets.len())
        .map(|i| format!("(case when {} then 1 else 0 end)", holds("c", i)))
        .collect::<Vec<_>>()
        .join(" + ");
    let mut hits = Vec::new();
    for all_words in [true, false] {
        if !all_words && sets.len() < 2 {
            break;
        }
        let condition = (0..sets.len())
            .map(|i| holds("e", i))
            .collect::<Vec<_>>()
            .join(if all_words { " and " } else { " or " });
        // Measured on 100,000 units: filtering the organisation's entries by the member's
        // sites in one pass (p50 17 ms, p99 37 ms) beat gathering the candidates per source
        // first (p50 40 ms, p99 150 ms). The member's entries are set apart first
        // (materialised) so that the word checks run on them alone, whatever order the
        // planner picks for the filters.
        let sql = format!(
            "{}, mine as materialized (
                 select e.id, e.kind, e.site_id, e.title, e.detail, e.body,
                        string_to_array(e.body, ' ') as words
                   from search_entry e, sites, people
                  where e.organisation_id = $1 and not e.archived
                    and (e.site_id = any(sites.ids)
                         or (e.kind = 'contact' and e.id = any(people.ids))
                         or e.kind = 'vendor')
             ), c as materialized (
                 select * from mine e where {condition} limit {MAX_CANDIDATES})
             select id, kind, site_id, title, detail,
                    ((({matched}) + (select count(*) from unnest($2::text[]) x where x = any(c.words)))::float4
                        / (2 * cardinality($2::text[])))::float4 as score
               from c
              order by score desc, title, id
              limit $6",
            scope_people!()
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tx.org().0)
            .bind(&typed)
            .bind(scope.all)
            .bind(&scope.sites)
            .bind(&scope.estates)
            .bind(limit);
        for (term, words) in sets {
            query = query.bind(words).bind(format!(" {term}"));
        }
        hits = query.fetch_all(tx.conn()).await?;
        if !hits.is_empty() {
            break;
        }
    }
    Ok(hits)
}

/// Everything in scope: the entries holding, for every typed word, one of the words it stands
/// for (or, when none holds them all, any of them), found through the word postings
/// (`search_posting`, whose btree row-level security lets PostgreSQL use) and ranked like
/// [`by_words`]. The typed word leading to the fewest entries goes first: its entries (at most
/// [`MAX_POSTED`]) are read and kept when they hold the other typed words too.
async fn by_postings(
    tx: &mut TenantTx,
    q: &str,
    sets: &[(String, Vec<String>)],
    limit: i64,
) -> Result<Vec<SearchHit>, DbError> {
    let typed: Vec<String> = q.split_whitespace().map(str::to_owned).collect();
    let mut set_no: Vec<i32> = Vec::new();
    let mut flat: Vec<&str> = Vec::new();
    for (i, (_, words)) in (0_i32..).zip(sets) {
        for w in words {
            set_no.push(i);
            flat.push(w);
        }
    }
    // How many entries each typed word's words lead to, counted up to MAX_POSTED + 1.
    let counts: Vec<(i32, i64)> = sqlx::query_as(
        r#"with x as (select u.i, array_agg(u.word collate "C") as words
                        from unnest($2::int4[], $3::text[]) u(i, word) group by u.i)
           select x.i, (select count(*) from (select from search_posting p
                                                where p.organisation_id = $1
                                                  and p.word = any(x.words)
                                                limit $4) n)
             from x"#,
    )
    .bind(tx.org().0)
    .bind(&set_no)
    .bind(&flat)
    .bind(MAX_POSTED + 1)
    .fetch_all(tx.conn())
    .await?;
    let mut order: Vec<usize> = (0..sets.len()).collect();
    order.sort_by_key(|i| {
        counts
            .iter()
            .find(|(set, _)| usize::try_from(*set).ok() == Some(*i))
            .map_or(0, |(_, n)| *n)
    });
    let n = sets.len();
    for all_words in [true, false] {
        if !all_words && n < 2 {
            break;
        }
        // $4, $5, … are the word sets, rarest first.
        let param = |k: usize| format!("${}", k + 4);
        let (candidates, matched) = if all_words {
            let others: String = (1..n)
                .map(|k| {
                    format!(
                        " and p.entry_id in (select q.entry_id from search_posting q
                                              where q.organisation_id = $1 and q.word = any({}))",
                        param(k)
                    )
                })
                .collect();
            (
                format!(
                    "select p.entry_id from search_posting p
                      where p.organisation_id = $1 and p.word = any($4){others}
                      limit {MAX_POSTED}"
                ),
                n.to_string(),
            )
        } else {
            let per = MAX_POSTED / i64::try_from(n).unwrap_or(1);
            (
                (0..n)
                    .map(|k| {
                        format!(
                            "(select p.entry_id from search_posting p
                               where p.organisation_id = $1 and p.word = any({}) limit {per})",
                            param(k)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" union all "),
                (0..n)
                    .map(|k| {
                        format!(
                            "(case when string_to_array(e.body, ' ') && {}::text[] then 1 else 0 end)",
                            param(k)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" + "),
            )
        };
        let sql = format!(
            "with c as materialized ({candidates})
             select e.id, e.kind, e.site_id, e.title, e.detail,
                    ((({matched}) + (select count(*) from unnest($2::text[]) x
                                      where x = any(string_to_array(e.body, ' '))))::float4
                        / (2 * cardinality($2::text[])))::float4 as score
               from (select distinct c.entry_id from c) c
               join search_entry e on e.organisation_id = $1 and e.id = c.entry_id
              where not e.archived
              order by score desc, e.title, e.id
              limit $3"
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tx.org().0)
            .bind(&typed)
            .bind(limit);
        for &i in &order {
            query = query.bind(&sets[i].1);
        }
        let hits: Vec<SearchHit> = query.fetch_all(tx.conn()).await?;
        if !hits.is_empty() {
            return Ok(hits);
        }
    }
    Ok(Vec::new())
}
