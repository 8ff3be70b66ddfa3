-- Supplier payments, tightened after review (issue 7).
--
-- * A run's payee is the bank account the supplier had when the run was scheduled: each
--   payment keeps a digest of the supplier's sealed bank details then, and the run is not
--   approved, filed or paid if they have changed since (someone would be approving one
--   account and paying another).
-- * A run is changed only while it waits for approval; its status only moves forward.
-- * A payment line is added only to a scheduled payment of a run awaiting approval, or to a
--   single payment not yet posted; it is removed or changed only while its run waits for
--   approval.
-- * A paid or reversed payment keeps who, when and why.

alter table supplier_payment add column payee_seal_sha256 text
    check (payee_seal_sha256 is null or payee_seal_sha256 ~ '^[0-9a-f]{64}$');

create function proplink.guard_payment_run() returns trigger
language plpgsql as $$
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if tg_op = 'DELETE' then
        raise exception 'payment run % is kept: cancel it instead', old.number
            using errcode = 'check_violation';
    end if;
    if new.status is distinct from old.status and not (
           (old.status = 'scheduled' and new.status in ('approved', 'cancelled'))
        or (old.status = 'approved' and new.status in ('paid', 'cancelled'))) then
        raise exception 'payment run %: it does not go from % to %', old.number, old.status, new.status
            using errcode = 'check_violation';
    end if;
    if (new.number, new.bank_account_id, new.payment_date, new.due_by, new.scheduled_by,
        new.scheduled_by_membership, new.scheduled_at, new.override_by, new.override_reason)
       is distinct from
       (old.number, old.bank_account_id, old.payment_date, old.due_by, old.scheduled_by,
        old.scheduled_by_membership, old.scheduled_at, old.override_by, old.override_reason) then
        raise exception 'payment run %: what was scheduled does not change', old.number
            using errcode = 'check_violation';
    end if;
    if old.status <> 'scheduled'
       and (new.total_pence, new.bill_count, new.payment_count)
           is distinct from (old.total_pence, old.bill_count, old.payment_count) then
        raise exception 'payment run % is %: its bills and total no longer change', old.number, old.status
            using errcode = 'check_violation';
    end if;
    if old.status in ('paid', 'cancelled')
       and (new.approved_by, new.approved_at, new.paid_by, new.paid_at, new.cancelled_by,
            new.cancelled_at, new.cancel_reason)
           is distinct from
           (old.approved_by, old.approved_at, old.paid_by, old.paid_at, old.cancelled_by,
            old.cancelled_at, old.cancel_reason) then
        raise exception 'payment run % is %: who approved, paid or cancelled it does not change', old.number, old.status
            using errcode = 'check_violation';
    end if;
    return new;
end $$;
create trigger payment_run_guard before update or delete on payment_run
    for each row execute function proplink.guard_payment_run();

create or replace function proplink.guard_supplier_payment() returns trigger
language plpgsql as $$
declare
    v_run_status text;
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if old.payment_run_id is not null then
        select status into v_run_status from payment_run
         where organisation_id = old.organisation_id and id = old.payment_run_id;
    end if;
    if tg_op = 'DELETE' then
        if old.status <> 'scheduled' or v_run_status is distinct from 'scheduled' then
            raise exception 'payment % is %: it is not deleted', old.number, old.status
                using errcode = 'check_violation';
        end if;
        return old;
    end if;
    if old.status in ('reversed', 'cancelled') and new.status is distinct from old.status then
        raise exception 'payment % is %: it stays so', old.number, old.status
            using errcode = 'check_violation';
    end if;
    if old.status = 'paid' and new.status not in ('paid', 'reversed') then
        raise exception 'payment % is paid: it is only reversed', old.number
            using errcode = 'check_violation';
    end if;
    if (new.number, new.vendor_id, new.bank_account_id, new.payment_run_id, new.payee_seal_sha256,
        new.recorded_by, new.recorded_by_membership)
           is distinct from
       (old.number, old.vendor_id, old.bank_account_id, old.payment_run_id, old.payee_seal_sha256,
        old.recorded_by, old.recorded_by_membership)
       or ((old.status <> 'scheduled' or v_run_status is distinct from 'scheduled')
           and (new.amount_pence, new.payment_date, new.method, new.reference)
               is distinct from (old.amount_pence, old.payment_date, old.method, old.reference)) then
        raise exception 'payment %: its figures do not change', old.number
            using errcode = 'check_violation';
    end if;
    if old.status in ('paid', 'reversed')
       and (new.paid_at, new.override_by, new.override_reason)
           is distinct from (old.paid_at, old.override_by, old.override_reason) then
        raise exception 'payment % is %: when it was paid, and any override, do not change', old.number, old.status
            using errcode = 'check_violation';
    end if;
    if old.status = 'reversed'
       and (new.reversed_on, new.reverse_reason, new.reversed_by)
           is distinct from (old.reversed_on, old.reverse_reason, old.reversed_by) then
        raise exception 'payment % is reversed: its reversal does not change', old.number
            using errcode = 'check_violation';
    end if;
    return new;
end $$;

create or replace function proplink.guard_supplier_payment_line() returns trigger
language plpgsql as $$
declare
    v_row record;
    v_status text;
    v_run uuid;
    v_run_status text;
    v_posted boolean;
begin
    v_row := case when tg_op = 'DELETE' then old else new end;
    if v_row.organisation_id is distinct from nullif(current_setting('app.organisation_id', true), '')::uuid then
        return v_row;
    end if;
    select status, payment_run_id into v_status, v_run
      from supplier_payment where organisation_id = v_row.organisation_id and id = v_row.payment_id;
    if v_run is not null then
        select status into v_run_status from payment_run
         where organisation_id = v_row.organisation_id and id = v_run;
    end if;
    if tg_op = 'INSERT' then
        -- A payment not found here is refused by the foreign key.
        if v_status is null then
            return new;
        end if;
        select exists (select from supplier_payment_line
                        where organisation_id = new.organisation_id and payment_id = new.payment_id
                          and journal_id is not null) into v_posted;
        if not ((v_status = 'scheduled' and v_run_status = 'scheduled')
                or (v_run is null and v_status = 'paid' and not v_posted)) then
            raise exception 'payment line: a line is added only to a payment not yet approved or posted'
                using errcode = 'check_violation';
        end if;
        if new.journal_id is not null or new.reversal_journal_id is not null then
            raise exception 'payment line: a new line has no journal yet'
                using errcode = 'check_violation';
        end if;
        return new;
    end if;
    if tg_op = 'DELETE' then
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
create trigger supplier_payment_line_guard before insert or update or delete on supplier_payment_line
    for each row execute function proplink.guard_supplier_payment_line();
