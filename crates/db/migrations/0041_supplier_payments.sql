-- Money, part 2 (issue 7; docs-spec §2.6 "Supplier payments and batches"): payments to
-- suppliers, one at a time or in runs.
--
-- A payment run pays approved bills due by a date out of one bank account: one payment per
-- supplier covering all its bills. Someone schedules it, someone else approves it (and any
-- approval chain for payment batches), the bank file is made from it, and it is marked paid
-- when the bank confirms: only then does it post (creditors control against the bank, per
-- site and fund). A single payment posts when it is recorded.
--
-- A payment's lines say how much of which bill, in which of the bill's funds, it pays; each
-- line is posted in its site's journal for that payment and reversed by that journal's
-- reversal. A bill's paid amount is the sum of its paid lines.

create table payment_run (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    number text not null check (number ~ '^PRN-[0-9]{4}-[0-9]{6,}$'),
    bank_account_id uuid not null,
    payment_date date not null check (payment_date between '2000-01-01' and '2100-12-31'),
    due_by date not null check (due_by between '2000-01-01' and '2100-12-31'),
    status text not null default 'scheduled' check (status in ('scheduled', 'approved', 'paid', 'cancelled')),
    payment_count integer not null default 0 check (payment_count >= 0),
    bill_count integer not null default 0 check (bill_count >= 0),
    total_pence bigint not null default 0 check (total_pence >= 0),
    scheduled_by text not null check (length(btrim(scheduled_by)) between 1 and 200),
    scheduled_by_membership uuid,
    scheduled_at timestamptz not null,
    approved_by text check (approved_by is null or length(approved_by) <= 200),
    approved_by_membership uuid,
    approved_at timestamptz,
    file_made_by text check (file_made_by is null or length(file_made_by) <= 200),
    file_made_at timestamptz,
    paid_by text check (paid_by is null or length(paid_by) <= 200),
    paid_at timestamptz,
    cancelled_by text check (cancelled_by is null or length(cancelled_by) <= 200),
    cancelled_at timestamptz,
    cancel_reason text check (cancel_reason is null or length(cancel_reason) <= 300),
    -- An office account overdrawn on purpose: who allowed it and why.
    override_by text check (override_by is null or length(override_by) <= 200),
    override_reason text check (override_reason is null or length(override_reason) <= 300),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, bank_account_id) references bank_account (organisation_id, id),
    check (due_by <= payment_date + 366),
    check (status not in ('approved', 'paid') or approved_at is not null),
    check (status <> 'paid' or paid_at is not null),
    check (status <> 'cancelled' or cancel_reason is not null),
    check ((override_by is null) = (override_reason is null))
);
create unique index payment_run_number on payment_run (organisation_id, number);
create index payment_run_status on payment_run (organisation_id, status, payment_date);
select proplink.make_tenant_table('payment_run');

create table supplier_payment (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    number text not null check (number ~ '^PAY-[0-9]{4}-[0-9]{6,}$'),
    payment_run_id uuid,
    vendor_id uuid not null,
    bank_account_id uuid not null,
    payment_date date not null check (payment_date between '2000-01-01' and '2100-12-31'),
    method text not null check (method in ('bacs', 'faster_payment', 'cheque', 'card', 'other')),
    -- What the supplier sees on their bank statement, or the cheque number.
    reference text check (reference is null or length(reference) between 1 and 50),
    amount_pence bigint not null check (amount_pence between 1 and 1000000000000),
    status text not null check (status in ('scheduled', 'paid', 'reversed', 'cancelled')),
    paid_at timestamptz,
    reversed_on date,
    reverse_reason text check (reverse_reason is null or length(reverse_reason) <= 300),
    reversed_by text check (reversed_by is null or length(reversed_by) <= 200),
    remittance_sent_at timestamptz,
    override_by text check (override_by is null or length(override_by) <= 200),
    override_reason text check (override_reason is null or length(override_reason) <= 300),
    recorded_by text not null check (length(btrim(recorded_by)) between 1 and 200),
    recorded_by_membership uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, payment_run_id) references payment_run (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    foreign key (organisation_id, bank_account_id) references bank_account (organisation_id, id),
    check (payment_run_id is not null or status <> 'scheduled'),
    check (status not in ('paid', 'reversed') or paid_at is not null),
    check ((status = 'reversed') = (reversed_on is not null)),
    check (status <> 'reversed' or reverse_reason is not null),
    check ((override_by is null) = (override_reason is null))
);
create unique index supplier_payment_number on supplier_payment (organisation_id, number);
create index supplier_payment_run on supplier_payment (organisation_id, payment_run_id) where payment_run_id is not null;
create index supplier_payment_vendor on supplier_payment (organisation_id, vendor_id, payment_date);
select proplink.make_tenant_table('supplier_payment');

create table supplier_payment_line (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    payment_id uuid not null,
    bill_id uuid not null,
    site_id uuid not null,
    fund_id uuid not null,
    amount_pence bigint not null check (amount_pence between 1 and 1000000000000),
    journal_id uuid,
    reversal_journal_id uuid,
    primary key (organisation_id, id),
    unique (organisation_id, payment_id, bill_id, fund_id),
    foreign key (organisation_id, payment_id) references supplier_payment (organisation_id, id),
    foreign key (organisation_id, site_id, bill_id) references bill (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, reversal_journal_id) references journal (organisation_id, site_id, id),
    check (reversal_journal_id is null or journal_id is not null)
);
create index supplier_payment_line_bill on supplier_payment_line (organisation_id, bill_id);
select proplink.make_tenant_table('supplier_payment_line');

-- A payment line is written once: its journal is set once when it is posted and its reversal
-- once when it is reversed. Only a line of a payment still scheduled (in a run not yet paid) is
-- deleted, when its bill is taken out of the run.
create function proplink.guard_supplier_payment_line() returns trigger
language plpgsql as $$
declare
    v_status text;
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if tg_op = 'DELETE' then
        select status into v_status from supplier_payment
         where organisation_id = old.organisation_id and id = old.payment_id;
        if v_status is distinct from 'scheduled' then
            raise exception 'payment line %: only a line of a scheduled payment is removed', old.id
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
create trigger supplier_payment_line_guard before update or delete on supplier_payment_line
    for each row execute function proplink.guard_supplier_payment_line();

-- A payment's figures are fixed; a paid or reversed payment is never deleted, and a reversed
-- one stays reversed.
create function proplink.guard_supplier_payment() returns trigger
language plpgsql as $$
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if tg_op = 'DELETE' then
        if old.status <> 'scheduled' then
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
    if (new.number, new.vendor_id, new.bank_account_id, new.payment_run_id)
           is distinct from (old.number, old.vendor_id, old.bank_account_id, old.payment_run_id)
       or (old.status <> 'scheduled' and (new.amount_pence, new.payment_date, new.method)
           is distinct from (old.amount_pence, old.payment_date, old.method)) then
        raise exception 'payment %: its figures do not change', old.number
            using errcode = 'check_violation';
    end if;
    return new;
end $$;
create trigger supplier_payment_guard before update or delete on supplier_payment
    for each row execute function proplink.guard_supplier_payment();

-- What each bill still owes, quickly, for the creditors list and for choosing bills to pay.
create index bill_open on bill (organisation_id, site_id, vendor_id)
    include (total_pence, paid_pence, due_date)
    where status in ('approved', 'scheduled', 'held');

-- Paying a work order's last bill closes it (the manager may rate it afterwards), so a closed
-- work order has a rating or was closed on payment.
alter table work_order add column closed_on_payment boolean not null default false;
do $$
declare
    v_name text;
begin
    select conname into v_name from pg_constraint
     where conrelid = 'work_order'::regclass and contype = 'c'
       and pg_get_constraintdef(oid) like '%rating IS NOT NULL%';
    if v_name is null then
        raise exception 'work_order rating constraint not found';
    end if;
    execute format('alter table work_order drop constraint %I', v_name);
end $$;
alter table work_order add constraint work_order_closed_rated
    check (status <> 'closed' or rating is not null or closed_on_payment);
