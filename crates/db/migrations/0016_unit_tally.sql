-- The unit list's total without counting the units (see db/src/portfolio.rs, list_units).
--
-- Counting 100,000 live units of one organisation read the whole unit table each time a page
-- was shown: 40-50 ms of a 60 ms page, beside 50 other organisations. unit_tally keeps,
-- per (site, unit type, live or archived), how many units there are, so the total of a list
-- filtered by scope, site, type and archive state is a sum over at most a few thousand rows.
--
-- Kept by statement-level triggers on unit (transition tables): each statement adds the counts
-- of its new rows and takes away those of its old ones, in one upsert per statement, and an
-- update that moves no unit between tallies (a renamed unit) writes nothing. Derived from the
-- audited unit table, so not audited itself (lint.rs lists the exemption).

create table unit_tally (
    organisation_id uuid not null references organisation (id),
    site_id uuid not null,
    unit_type text not null,
    live boolean not null,
    units bigint not null check (units >= 0),
    primary key (organisation_id, site_id, unit_type, live)
);
select proplink.make_tenant_table('unit_tally');
drop trigger audit on unit_tally;
drop trigger audit_update on unit_tally;
drop trigger audit_delete on unit_tally;

create or replace function proplink.tally_units_insert() returns trigger
language plpgsql as $fn$
begin
    insert into unit_tally (organisation_id, site_id, unit_type, live, units)
    select organisation_id, site_id, unit_type, archived_at is null, count(*)
      from new_rows
     group by 1, 2, 3, 4
    on conflict (organisation_id, site_id, unit_type, live)
    do update set units = unit_tally.units + excluded.units;
    return null;
end
$fn$;

-- Tallies losing units are updated and those gaining are upserted: an upsert checks its
-- proposed row (a negative count) before it finds the row it would add to.
create or replace function proplink.tally_units_update() returns trigger
language plpgsql as $fn$
begin
    with moved as (
        select organisation_id, site_id, unit_type, live, sum(n) as n
          from (select organisation_id, site_id, unit_type, archived_at is null as live, 1 as n
                  from new_rows
                union all
                select organisation_id, site_id, unit_type, archived_at is null, -1
                  from old_rows) changed
         group by 1, 2, 3, 4
        having sum(n) <> 0
    ), lost as (
        update unit_tally t
           set units = t.units + m.n
          from moved m
         where m.n < 0 and t.organisation_id = m.organisation_id and t.site_id = m.site_id
           and t.unit_type = m.unit_type and t.live = m.live
    )
    insert into unit_tally (organisation_id, site_id, unit_type, live, units)
    select organisation_id, site_id, unit_type, live, n
      from moved
     where n > 0
    on conflict (organisation_id, site_id, unit_type, live)
    do update set units = unit_tally.units + excluded.units;
    return null;
end
$fn$;

create or replace function proplink.tally_units_delete() returns trigger
language plpgsql as $fn$
begin
    update unit_tally t
       set units = t.units - gone.n
      from (select organisation_id, site_id, unit_type, archived_at is null as live, count(*) as n
              from old_rows
             group by 1, 2, 3, 4) gone
     where t.organisation_id = gone.organisation_id and t.site_id = gone.site_id
       and t.unit_type = gone.unit_type and t.live = gone.live;
    return null;
end
$fn$;

create trigger tally_insert after insert on unit
    referencing new table as new_rows for each statement
    execute function proplink.tally_units_insert();
create trigger tally_update after update on unit
    referencing old table as old_rows new table as new_rows for each statement
    execute function proplink.tally_units_update();
create trigger tally_delete after delete on unit
    referencing old table as old_rows for each statement
    execute function proplink.tally_units_delete();

-- Existing units, past forced row-level security (as 0015 does for the postings).
alter table unit no force row level security;
alter table unit_tally no force row level security;
insert into unit_tally (organisation_id, site_id, unit_type, live, units)
select organisation_id, site_id, unit_type, archived_at is null, count(*)
  from unit
 group by 1, 2, 3, 4;
alter table unit force row level security;
alter table unit_tally force row level security;
