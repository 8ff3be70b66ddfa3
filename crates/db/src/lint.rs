//! The schema rules for tenant tables (DESIGN.md §2), checked against the live catalogue.
//!
//! A tenant table is any table in `public` with an `organisation_id` column. Each must have:
//! row-level security enabled and forced; the `tenant_isolation` policy comparing
//! `organisation_id` with `app.organisation_id`; a primary key that leads with
//! `organisation_id` and has at least one more column; foreign keys to other tenant tables that
//! include `organisation_id`; and the audit trigger (the audit log itself excepted). The server
//! role must own nothing and must not bypass row-level security.

use sqlx::PgConnection;

#[derive(Debug, sqlx::FromRow)]
struct TableFacts {
    table_name: String,
    rls: bool,
    forced: bool,
    tenant_policy: bool,
    pk_columns: Option<Vec<String>>,
    has_audit_trigger: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct ForeignKey {
    table_name: String,
    constraint_name: String,
    target: String,
    columns: Vec<String>,
    target_columns: Vec<String>,
}

/// One row of `pg_policies`: table, policy, roles, command, USING, WITH CHECK.
type PolicyRow = (
    String,
    String,
    Vec<String>,
    String,
    Option<String>,
    Option<String>,
);

/// Policies beyond `tenant_isolation` and `platform_access` that are allowed, with the reason.
pub const EXTRA_POLICIES: &[(&str, &str, &str)] = &[
    (
        "audit_event",
        "audit_append",
        "the audit trigger (as the owner) appends events",
    ),
    (
        "signed_link",
        "link_bearer",
        "a link is shown to whoever presents its token's hash (SELECT only)",
    ),
    (
        "membership",
        "own_memberships",
        "a signed-in person sees their own memberships of every organisation (SELECT only)",
    ),
];

/// Tables exempt from the audit-trigger rule, with the reason.
pub const AUDIT_EXEMPT: &[(&str, &str)] = &[
    ("audit_event", "it is the audit log"),
    (
        "reference_counter",
        "the last number drawn; the record that takes each number is audited",
    ),
    (
        "search_entry",
        "a search index rebuilt by triggers from audited tables",
    ),
    (
        "search_word",
        "the words of the search index, collected by its triggers",
    ),
    (
        "search_posting",
        "which search entries hold each word, kept by the search index's triggers",
    ),
    (
        "audit_erasure",
        "part of the audit log: which events an erasure stripped, attested by the erasure's own event",
    ),
    (
        "unit_tally",
        "how many units each site has by type, counted by triggers on the audited unit table",
    ),
];

/// Returns one sentence per violation; empty when the schema follows the rules.
pub async fn check(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let tables: Vec<TableFacts> = sqlx::query_as(
        r#"
        with tenant as (
            select c.oid, c.relname::text as table_name, c.relrowsecurity, c.relforcerowsecurity
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind in ('r', 'p')
               and exists (select from pg_attribute a where a.attrelid = c.oid
                            and a.attname = 'organisation_id' and not a.attisdropped)
        )
        select t.table_name,
               t.relrowsecurity as rls,
               t.relforcerowsecurity as forced,
               exists (select from pg_policies p
                        where p.schemaname = 'public' and p.tablename = t.table_name
                          and p.policyname = 'tenant_isolation' and p.permissive = 'PERMISSIVE'
                          and 'public' = any(p.roles)) as tenant_policy,
               (select array_agg(a.attname::text order by k.ord)
                  from pg_constraint pk
                  cross join unnest(pk.conkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = pk.conrelid and a.attnum = k.attnum
                 where pk.conrelid = t.oid and pk.contype = 'p') as pk_columns,
               exists (select from pg_trigger tr join pg_proc f on f.oid = tr.tgfoid
                        where tr.tgrelid = t.oid and f.proname in ('audit_stmt', 'audit_row') and not tr.tgisinternal
                          and tr.tgenabled <> 'D') as has_audit_trigger
          from tenant t order by t.table_name
        "#,
    )
    .fetch_all(&mut *conn)
    .await?;
    let tenant_names: Vec<&str> = tables.iter().map(|t| t.table_name.as_str()).collect();

    let fks: Vec<ForeignKey> = sqlx::query_as(
        r#"
        select c.conrelid::regclass::text as table_name, c.conname::text as constraint_name,
               c.confrelid::regclass::text as target,
               (select array_agg(a.attname::text order by k.ord) from unnest(c.conkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum) as columns,
               (select array_agg(a.attname::text order by k.ord) from unnest(c.confkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum) as target_columns
          from pg_constraint c join pg_namespace n on n.oid = c.connamespace
         where c.contype = 'f' and n.nspname = 'public'
        "#,
    )
    .fetch_all(&mut *conn)
    .await?;

    let mut problems = Vec::new();
    for t in &tables {
        let name = &t.table_name;
        if !t.rls {
            problems.push(format!("{name}: row-level security is not enabled"));
        }
        if !t.forced {
            problems.push(format!(
                "{name}: row-level security is not forced (FORCE ROW LEVEL SECURITY)"
            ));
        }
        // (Its USING and WITH CHECK expressions are checked with the other policies below.)
        if !t.tenant_policy {
            problems.push(format!(
                "{name}: no tenant_isolation policy comparing organisation_id with app.organisation_id"
            ));
        }
        match &t.pk_columns {
            Some(cols) if cols.len() >= 2 && cols[0] == "organisation_id" => {}
            Some(cols) => problems.push(format!(
                "{name}: primary key ({}) must lead with organisation_id and have another column",
                cols.join(", ")
            )),
            None => problems.push(format!("{name}: has no primary key")),
        }
        let exempt = AUDIT_EXEMPT.iter().any(|(t, _)| t == name);
        if !t.has_audit_trigger && !exempt {
            problems.push(format!(
                "{name}: has no audit trigger (select proplink.make_tenant_table('{name}'))"
            ));
        }
    }
    for fk in &fks {
        if tenant_names.contains(&fk.target.as_str()) {
            let pairs_org = fk
                .columns
                .iter()
                .zip(&fk.target_columns)
                .any(|(c, t)| c == "organisation_id" && t == "organisation_id");
            if !pairs_org {
                problems.push(format!(
                    "{}: foreign key {} to tenant table {} must include organisation_id on both sides (single-column keys let one organisation point at another's rows)",
                    fk.table_name, fk.constraint_name, fk.target
                ));
            }
        }
    }

    // Every permissive policy on a tenant table must be one we know, doing what we expect.
    let policies: Vec<PolicyRow> = sqlx::query_as(
        "select tablename::text, policyname::text, roles::text[], cmd::text, qual, with_check
           from pg_policies where schemaname = 'public' and permissive = 'PERMISSIVE'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let tenant_expr = |e: &Option<String>| {
        e.as_deref().is_some_and(|q| {
            q.replace(' ', "").contains(
                "organisation_id=(NULLIF(current_setting('app.organisation_id'::text,true),''::text))::uuid",
            )
        })
    };
    for (table, policy, roles, cmd, qual, with_check) in &policies {
        if !tenant_names.contains(&table.as_str()) {
            continue;
        }
        match policy.as_str() {
            "tenant_isolation" => {
                if with_check.is_some() && !tenant_expr(with_check) {
                    problems.push(format!("{table}: tenant_isolation's WITH CHECK does not compare organisation_id with app.organisation_id"));
                }
                if !tenant_expr(qual) {
                    problems.push(format!("{table}: tenant_isolation's USING does not compare organisation_id with app.organisation_id"));
                }
            }
            "platform_access" => {
                if roles != &["proplink_platform".to_owned()] {
                    problems.push(format!("{table}: platform_access must apply to proplink_platform only, not {roles:?}"));
                }
            }
            other => {
                let allowed = EXTRA_POLICIES
                    .iter()
                    .any(|(t, p, _)| t == table && *p == other);
                let select_only =
                    !matches!(other, "link_bearer" | "own_memberships") || cmd == "SELECT";
                if !allowed || !select_only {
                    problems.push(format!("{table}: unexpected permissive policy {other} ({cmd} to {roles:?}) widens tenant isolation"));
                }
            }
        }
    }

    let role_problems: Vec<String> = sqlx::query_scalar(
        r#"
        select format('role %s %s', r.rolname, why) from pg_roles r,
          lateral (values
            (case when r.rolbypassrls or r.rolsuper then 'can bypass row-level security' end),
            (case when exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                where n.nspname in ('public', 'proplink') and c.relowner = r.oid)
                  then 'owns tables' end)) v(why)
         where r.rolname in ('proplink_app', 'proplink_platform') and why is not null
        "#,
    )
    .fetch_all(&mut *conn)
    .await?;
    problems.extend(role_problems);
    Ok(problems)
}

/// The tenant tables, for harnesses that must cover every one of them.
pub async fn tenant_tables(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind in ('r', 'p')
            and exists (select from pg_attribute a where a.attrelid = c.oid
                         and a.attname = 'organisation_id' and not a.attisdropped)
          order by 1",
    )
    .fetch_all(conn)
    .await
}
