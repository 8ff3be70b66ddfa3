//! The one search box (issue 4): contacts, units, sites, buildings and vendors, in the
//! organisation and the member's site scope, ranked by trigram word similarity so that a
//! prefix ("smi") or a typo ("smoth") still finds "Smith".
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
    let q = corrected(tx, &q).await?;
    // Everything in scope: the GiST index hands rows over nearest first by word distance
    // (`<<->`) inside the organisation, so the scan stops after `limit` rows. A site-scoped
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

/// A query that is a phone number or its start ("07700 900", "+44 7700"): the LIKE prefixes
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
    let mut prefixes = vec![format!("{}{digits}%", if plus { "+" } else { "" })];
    if let Some(national) = digits.strip_prefix('0').filter(|_| !plus) {
        prefixes.push(format!("+44{national}%"));
    } else if let Some(national) = digits.strip_prefix("44").filter(|_| plus) {
        prefixes.push(format!("0{national}%"));
    }
    Some(prefixes)
}

/// Contacts whose phone number starts with one of `prefixes`, by name; a site-scoped member
/// sees those connected to their sites.
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
                          where p.organisation_id = $1 and p.phone like x.prefix
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
                               and p.phone like x.prefix)
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
    let checkable: Vec<String> = terms
        .iter()
        .filter(|t| (3..=40).contains(&t.chars().count()) && t.chars().all(char::is_alphabetic))
        .map(|t| (*t).to_owned())
        .collect();
    if checkable.is_empty() {
        return Ok(q.to_owned());
    }
    // Candidates: the 100 nearest words by trigrams, and the words of about the same length
    // with the same first letter (trigrams miss a swap of two letters in a short word).
    let fixes: Vec<(String, Option<String>)> = sqlx::query_as(
        r#"select t.term,
                  (select w.word from (
                       (select w.word from search_word w
                         where w.organisation_id = $1
                         order by w.word <-> t.term limit 100)
                       union
                       (select w.word from search_word w
                         where w.organisation_id = $1 and left(w.word, 1) = left(t.term, 1)
                           and length(w.word) between length(t.term) - 2 and length(t.term) + 2)
                   ) w
                   where levenshtein_less_equal(w.word, t.term, t.edits) <= t.edits
                   order by levenshtein_less_equal(w.word, t.term, t.edits),
                            similarity(w.word, t.term) desc, w.word
                   limit 1)
             from (select u.term collate "C" as term,
                          case when length(u.term) <= 4 then 1 else 2 end as edits
                     from unnest($2::text[]) u(term)) t
            where not exists (select from search_word w
                               where w.organisation_id = $1 and w.word >= t.term
                                 and w.word < t.term || chr(1114111))"#,
    )
    .bind(tx.org().0)
    .bind(&checkable)
    .fetch_all(tx.conn())
    .await?;
    if fixes.is_empty() {
        return Ok(q.to_owned());
    }
    Ok(terms
        .iter()
        .map(|t| {
            fixes
                .iter()
                .find(|(term, _)| term == t)
                .and_then(|(_, fix)| fix.as_deref())
                .unwrap_or(t)
        })
        .collect::<Vec<&str>>()
        .join(" "))
}
