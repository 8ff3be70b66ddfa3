-- Money, part 2 (issue 7; docs-spec §2.6): bank accounts and supplier bills.
--
-- A bank account is a real account at a bank (its sort code and account number sealed, only
-- the last digits in the clear). It serves one site, or is pooled and serves several: each
-- site it serves has its own ledger account for it (control 'bank', `bank_account_id`), so the
-- site's share of the money, per fund, is that ledger account's balance in the site's books.
--
-- A bill is a supplier's invoice to a site: lines coded to the site's expense accounts and
-- funds, optionally coded to a work order. Approval posts it (expense and recoverable VAT
-- against creditors control); payments settle it.

create table bank_account (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    name text not null check (length(btrim(name)) between 1 and 100),
    bank_name text check (bank_name is null or length(bank_name) <= 100),
    account_type text not null check (account_type in ('client', 'trust', 'office')),
    pooled boolean not null default false,
    -- "sort code/account number", sealed with the organisation's data key.
    sealed bytea not null,
    last_digits text not null check (last_digits ~ '^[0-9]{2}/[0-9]{4}$'),
    -- The name the bank holds the account in (a payment file's originator).
    holder_name text not null check (length(btrim(holder_name)) between 1 and 100),
    service_user_number text check (service_user_number is null or service_user_number ~ '^[A-Z0-9]{6}$'),
    file_format text not null default 'csv' check (file_format in ('bacs_std18', 'csv')),
    -- The only fund it holds, if it is kept for one (a reserve account).
    fund_kind text check (fund_kind is null or fund_kind in ('service_charge', 'reserve', 'ground_rent', 'other')),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    check (file_format <> 'bacs_std18' or service_user_number is not null)
);
create unique index bank_account_name on bank_account (organisation_id, lower(name));
-- The audit log keeps the sealed bytes out of its change sets.
select proplink.make_tenant_table('bank_account', array['sealed']);

alter table ledger_account add column bank_account_id uuid;
alter table ledger_account add constraint ledger_account_bank_account_fkey
    foreign key (organisation_id, bank_account_id) references bank_account (organisation_id, id);
alter table ledger_account add constraint ledger_account_bank_role
    check (bank_account_id is null or control = 'bank');
create unique index ledger_account_one_per_bank on ledger_account (organisation_id, site_id, bank_account_id)
    where bank_account_id is not null;

alter table reference_counter drop constraint reference_counter_kind_check;
alter table reference_counter add constraint reference_counter_kind_check
    check (kind in ('issue', 'work_order', 'ticket', 'journal', 'debtor_invoice', 'credit_note',
                    'receipt', 'refund', 'bill', 'supplier_payment', 'payment_run'));

create table bill (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    vendor_id uuid not null,
    work_order_id uuid,
    -- The supplier's own invoice number, and ours (drawn at approval).
    supplier_reference text not null check (length(btrim(supplier_reference)) between 1 and 50),
    number text check (number is null or number ~ '^BIL-[0-9]{4}-[0-9]{6,}$'),
    issue_date date not null check (issue_date between '2000-01-01' and '2100-12-31'),
    due_date date not null,
    incurred_on date check (incurred_on is null or incurred_on between '2000-01-01' and '2100-12-31'),
    description text check (description is null or length(description) <= 300),
    status text not null default 'draft' check (status in ('draft', 'awaiting_approval', 'approved',
        'scheduled', 'paid', 'held', 'voided')),
    -- Where a held bill goes back to when released.
    held_from text check (held_from is null or held_from in ('approved', 'scheduled')),
    hold_reason text check (hold_reason is null or length(hold_reason) <= 300),
    void_reason text check (void_reason is null or length(void_reason) <= 300),
    net_pence bigint not null default 0 check (net_pence between 0 and 1000000000000),
    vat_pence bigint not null default 0 check (vat_pence between 0 and 1000000000000),
    total_pence bigint not null default 0 check (total_pence = net_pence + vat_pence),
    paid_pence bigint not null default 0,
    source text not null default 'admin' check (source in ('admin', 'upload', 'contractorport')),
    -- The supplier's invoice as received (a PDF or an image), in the object store.
    document_key text check (document_key is null or length(document_key) <= 300),
    document_name text check (document_name is null or length(document_name) <= 200),
    document_type text check (document_type is null or document_type in ('application/pdf', 'image/jpeg', 'image/png')),
    document_sha256 text check (document_sha256 is null or document_sha256 ~ '^[0-9a-f]{64}$'),
    journal_id uuid,
    void_journal_id uuid,
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    created_by_membership uuid,
    submitted_by text check (submitted_by is null or length(submitted_by) <= 200),
    submitted_by_membership uuid,
    submitted_at timestamptz,
    approved_by text check (approved_by is null or length(approved_by) <= 200),
    approved_at timestamptz,
    returned_reason text check (returned_reason is null or length(returned_reason) <= 300),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    foreign key (organisation_id, site_id, work_order_id) references work_order (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, void_journal_id) references journal (organisation_id, site_id, id),
    check (due_date >= issue_date),
    check (paid_pence between 0 and total_pence),
    check ((document_key is null) = (document_sha256 is null)),
    check ((status = 'held') = (held_from is not null)),
    check (status <> 'held' or hold_reason is not null),
    check (status <> 'voided' or void_reason is not null),
    check ((number is not null) = (journal_id is not null)),
    check (status in ('draft', 'awaiting_approval') or number is not null or status = 'voided')
);
-- A supplier's invoice number is entered once (a voided entry frees it).
create unique index bill_supplier_reference on bill (organisation_id, vendor_id, lower(btrim(supplier_reference)))
    where status <> 'voided';
create unique index bill_number on bill (organisation_id, number) where number is not null;
create index bill_site_status on bill (organisation_id, site_id, status, due_date);
create index bill_vendor on bill (organisation_id, vendor_id, issue_date);
create index bill_work_order on bill (organisation_id, work_order_id) where work_order_id is not null;
select proplink.make_tenant_table('bill');

create table bill_line (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    bill_id uuid not null,
    site_id uuid not null,
    line_no smallint not null check (line_no between 1 and 200),
    description text not null check (length(btrim(description)) between 1 and 300),
    account_id uuid not null,
    fund_id uuid not null,
    tax_rate_id uuid not null,
    net_pence bigint not null check (net_pence between 1 and 1000000000000),
    vat_pence bigint not null check (vat_pence between 0 and 1000000000000),
    -- Whether the site can reclaim the VAT (it is VAT-registered for this supply); if not, the
    -- VAT is part of the expense.
    vat_recoverable boolean not null default false,
    primary key (organisation_id, id),
    unique (organisation_id, bill_id, line_no),
    foreign key (organisation_id, site_id, bill_id) references bill (organisation_id, site_id, id) on delete cascade,
    foreign key (organisation_id, site_id, account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, tax_rate_id) references tax_rate (organisation_id, id)
);
select proplink.make_tenant_table('bill_line');

-- A bill's lines and figures are written while it is a draft; afterwards only its status,
-- settled amount and workflow fields change, and only a draft is deleted.
create function proplink.guard_bill() returns trigger
language plpgsql as $$
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if tg_op = 'DELETE' then
        if old.status <> 'draft' then
            raise exception 'bill % is %: only a draft is deleted', old.id, old.status
                using errcode = 'check_violation';
        end if;
        return old;
    end if;
    if old.status <> 'draft' and (
           new.site_id, new.vendor_id, new.work_order_id, new.supplier_reference,
           new.issue_date, new.due_date, new.incurred_on, new.net_pence, new.vat_pence,
           new.total_pence, new.document_key)
       is distinct from (
           old.site_id, old.vendor_id, old.work_order_id, old.supplier_reference,
           old.issue_date, old.due_date, old.incurred_on, old.net_pence, old.vat_pence,
           old.total_pence, old.document_key) then
        raise exception 'bill % is %: its figures no longer change', old.id, old.status
            using errcode = 'check_violation';
    end if;
    if old.journal_id is not null and new.journal_id is distinct from old.journal_id then
        raise exception 'bill % is posted: its journal does not change', old.id
            using errcode = 'check_violation';
    end if;
    return new;
end $$;
create trigger bill_guard before update or delete on bill
    for each row execute function proplink.guard_bill();

create function proplink.guard_bill_line() returns trigger
language plpgsql as $$
declare
    v_row record;
    v_status text;
begin
    v_row := case when tg_op = 'DELETE' then old else new end;
    if v_row.organisation_id is distinct from nullif(current_setting('app.organisation_id', true), '')::uuid then
        return v_row;
    end if;
    select status into v_status from bill
     where organisation_id = v_row.organisation_id and id = v_row.bill_id;
    -- A cascade from deleting a draft finds no bill any more.
    if v_status is not null and v_status <> 'draft' then
        raise exception 'bill % is %: its lines no longer change', v_row.bill_id, v_status
            using errcode = 'check_violation';
    end if;
    return v_row;
end $$;
create trigger bill_line_guard before insert or update or delete on bill_line
    for each row execute function proplink.guard_bill_line();

-- A bill leaves draft only with lines that add up to its figures.
create function proplink.check_bill_totals() returns trigger
language plpgsql as $$
declare
    v_net bigint;
    v_vat bigint;
begin
    if new.organisation_id is distinct from nullif(current_setting('app.organisation_id', true), '')::uuid then
        return new;
    end if;
    if old.status = 'draft' and new.status <> 'draft' then
        select coalesce(sum(net_pence), 0), coalesce(sum(vat_pence), 0) into v_net, v_vat
          from bill_line where organisation_id = new.organisation_id and bill_id = new.id;
        if v_net = 0 or v_net <> new.net_pence or v_vat <> new.vat_pence then
            raise exception 'bill %: its lines (net %, VAT %) do not match its figures (net %, VAT %)',
                new.id, v_net, v_vat, new.net_pence, new.vat_pence
                using errcode = 'check_violation';
        end if;
    end if;
    return new;
end $$;
create trigger bill_totals before update of status on bill
    for each row execute function proplink.check_bill_totals();
