-- Payables at scale (issue 7 benchmark, `proplink bench payables`).
--
-- * A supplier's invoice number is looked up by a stored, normalised key: under row-level
--   security the planner does not apply lower() to a column ahead of the tenancy check (it is
--   not leakproof), so the expression index could not serve the duplicate check and a supplier
--   with 20,000 bills took 30–50 ms a bill to enter.
-- * A payment run writes thousands of payment lines at once: the check of which payment a line
--   may be added to runs once per statement over the new rows, not once per row, and setting a
--   line's journal compares the row alone without looking anything up.

alter table bill add column supplier_reference_key text
    generated always as (lower(btrim(supplier_reference))) stored;
create index bill_supplier_reference_key on bill (organisation_id, vendor_id, supplier_reference_key)
    where status <> 'voided';

create or replace function proplink.guard_supplier_payment_line() returns trigger
language plpgsql as $$
declare
    v_status text;
    v_run_status text;
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if tg_op = 'DELETE' then
        select p.status, r.status into v_status, v_run_status
          from supplier_payment p
          left join payment_run r on r.organisation_id = p.organisation_id and r.id = p.payment_run_id
         where p.organisation_id = old.organisation_id and p.id = old.payment_id;
        if v_status is distinct from 'scheduled' or v_run_status is distinct from 'scheduled' then
            raise exception 'payment line %: only a line of a run awaiting approval is removed', old.id
                using errcode = 'check_violation';
        end if;
        return old;
    end if;
    if (new.payment_id, new.bill_id, new.site_id, new.fund_id, new.amount_pence)
           is distinct from (old.payment_id, old.bill_id, old.site_id, old.fund_id, old.amount_pence)
       or (old.journal_id is not null and new.journal_id is distinct from old.journal_id)
       or (old.reversal_journal_id is not null
           and new.reversal_journal_id is distinct from old.reversal_journal_id) then
        raise exception 'payment line %: its figures and journals do not change', old.id
            using errcode = 'check_violation';
    end if;
    return new;
end $$;
drop trigger supplier_payment_line_guard on supplier_payment_line;
create trigger supplier_payment_line_guard before update or delete on supplier_payment_line
    for each row execute function proplink.guard_supplier_payment_line();

-- New lines, all at once: each goes to a scheduled payment of a run awaiting approval, or to a
-- single payment not yet posted, and has no journal yet. (A line naming a payment this
-- organisation does not have is left to the foreign key, which has refused it already.)
create function proplink.guard_supplier_payment_line_insert() returns trigger
language plpgsql as $$
declare
    v_org uuid := nullif(current_setting('app.organisation_id', true), '')::uuid;
begin
    if exists (select from added where organisation_id = v_org
                 and (journal_id is not null or reversal_journal_id is not null)) then
        raise exception 'payment line: a new line has no journal yet'
            using errcode = 'check_violation';
    end if;
    if exists (
        select from (select distinct payment_id from added where organisation_id = v_org) n
          join supplier_payment p on p.organisation_id = v_org and p.id = n.payment_id
          left join payment_run r on r.organisation_id = p.organisation_id and r.id = p.payment_run_id
         where not ((p.status = 'scheduled' and r.status = 'scheduled')
                    or (p.payment_run_id is null and p.status = 'paid'
                        and not exists (select from supplier_payment_line l
                                         where l.organisation_id = v_org
                                           and l.payment_id = p.id and l.journal_id is not null)))) then
        raise exception 'payment line: a line is added only to a payment not yet approved or posted'
            using errcode = 'check_violation';
    end if;
    return null;
end $$;
create trigger supplier_payment_line_insert_guard after insert on supplier_payment_line
    referencing new table as added
    for each statement execute function proplink.guard_supplier_payment_line_insert();
