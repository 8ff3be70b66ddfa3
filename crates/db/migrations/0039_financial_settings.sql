-- Financial settings (issue 6; docs-spec §2.6). The organisation's chart-of-accounts template:
-- a site's books are opened from it, an account added to it is added to every site's books,
-- and the account holding each posting role (debtors control, service charge income, ...) is
-- chosen there. And batches of receipts: rows of unit and amount recorded together, in one
-- transaction, each row its own receipt.

create table chart_template_account (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    code text not null check (code ~ '^[0-9A-Z][0-9A-Z-]{0,9}$'),
    name text not null check (length(btrim(name)) between 1 and 100),
    kind text not null check (kind in ('asset', 'liability', 'equity', 'income', 'expense', 'reserve')),
    control text check (control is null or control in ('debtors', 'creditors', 'bank', 'suspense',
        'vat', 'retained_earnings', 'service_charge_income', 'ground_rent_income',
        'admin_fee_income', 'reserve_contributions', 'repairs')),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, code),
    -- A role's account is in use: it cannot be archived.
    check (archived_at is null or control is null)
);
create unique index chart_template_account_control on chart_template_account (organisation_id, control)
    where control is not null and control <> 'bank';
select proplink.make_tenant_table('chart_template_account');

create table receipt_batch (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    received_on date not null check (received_on between '2000-01-01' and '2100-12-31'),
    method text not null check (method in ('bank_transfer', 'cheque', 'card', 'direct_debit', 'cash', 'other')),
    bank_account_id uuid not null,
    receipt_count integer not null check (receipt_count between 1 and 1000),
    total_pence bigint not null check (total_pence > 0),
    note text check (note is null or length(note) <= 300),
    recorded_by text not null check (length(btrim(recorded_by)) between 1 and 200),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, site_id, bank_account_id) references ledger_account (organisation_id, site_id, id)
);
create index receipt_batch_site on receipt_batch (organisation_id, site_id, received_on);
select proplink.make_tenant_table('receipt_batch');
-- A batch is a record of what was entered together; its receipts carry the money.
revoke update, delete on receipt_batch from proplink_app;

alter table receipt add column batch_id uuid;
alter table receipt add constraint receipt_batch_fkey
    foreign key (organisation_id, site_id, batch_id) references receipt_batch (organisation_id, site_id, id);
create index receipt_batch_member on receipt (organisation_id, batch_id) where batch_id is not null;
