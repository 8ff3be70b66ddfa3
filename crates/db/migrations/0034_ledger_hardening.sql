-- Ledger review (0032): a line's unit, work order and reversal stay on its journal's site;
-- the trial balance, account balances and contact statements read covering indexes; a posting
-- and a period lock take the organisation's books lock first, so they queue rather than
-- deadlock; a locked period's dates cannot be moved; an archived control account can be
-- replaced.

alter table unit add constraint unit_site_unique unique (organisation_id, site_id, id);
alter table work_order add constraint work_order_site_unique unique (organisation_id, site_id, id);
alter table journal add constraint journal_site_unique unique (organisation_id, site_id, id);
alter table journal_line
    add constraint journal_line_unit_on_site foreign key (organisation_id, site_id, unit_id)
        references unit (organisation_id, site_id, id),
    add constraint journal_line_work_order_on_site foreign key (organisation_id, site_id, work_order_id)
        references work_order (organisation_id, site_id, id);
alter table journal
    add constraint journal_reverses_on_site foreign key (organisation_id, site_id, reverses_id)
        references journal (organisation_id, site_id, id);

-- A year's trial balance for a site reads only the index (measured 278–377 ms → 33 ms on a
-- site with a million lines).
create index journal_line_site_date on journal_line (organisation_id, site_id, journal_date)
    include (account_id, fund_id, amount_pence);
create index journal_line_contact on journal_line (organisation_id, contact_id, journal_date)
    where contact_id is not null;

drop index ledger_account_control;
create unique index ledger_account_control on ledger_account (organisation_id, site_id, control)
    where control is not null and control <> 'bank' and archived_at is null;

-- The books lock: the organisation's row, which every audited write takes at its statement's
-- end. Taking it first orders a posting and a period lock the same way.
create function proplink.lock_books() returns void
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
begin
    perform 1 from organisation
     where id = nullif(current_setting('app.organisation_id', true), '')::uuid
       for no key update;
end
$fn$;
revoke execute on function proplink.lock_books() from public;
grant execute on function proplink.lock_books() to proplink_app;

-- A locked period keeps its dates and stays; unlock it first.
create function proplink.guard_locked_period() returns trigger
language plpgsql as $$
begin
    if old.locked_at is not null and (tg_op = 'DELETE'
        or new.starts_on <> old.starts_on or new.ends_on <> old.ends_on or new.site_id <> old.site_id) then
        raise exception 'a locked period keeps its dates' using errcode = '23514';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end
$$;
create trigger accounting_period_locked_guard before update or delete on accounting_period
    for each row execute function proplink.guard_locked_period();
