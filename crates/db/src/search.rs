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
         ), candidates as (
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
    };
    Ok(sqlx::query_as(sql)
        .bind(tx.org().0)
        .bind(&q)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(limit.clamp(1, 50))
        .fetch_all(tx.conn())
        .await?)
}
