-- Money, part 1 (issue 6): what leaseholders owe and pay. Debtor invoices (demands) and their
-- lines, credit notes, receipts, refunds, and the allocations that settle invoice lines from
-- receipts and credit notes. Each document posts its journal in the transaction that approves
-- or records it (db::receivables); this file keeps the figures honest on its own:
--   * an invoice line is never paid beyond its gross, a receipt never allocated beyond its
--     amount, a credit note line never beyond its gross (the totals are kept by the allocation
--     trigger, and nothing else may change them);
--   * allocations are append-only: an undo is a negative allocation referring to the original;
--   * a credit only settles a line of its own fund (composite keys carry the fund);
--   * a document's lines change only while it is a draft;
--   * numbers are drawn from the organisation's counter when a document is approved, so issued
--     numbers have no gaps.
--
-- The statutory texts a demand must carry (the summary of tenants' rights and obligations,
-- the ground-rent notice) are platform data, versioned by jurisdiction and dates; an issued
-- demand records the version it carried.

alter table reference_counter drop constraint reference_counter_kind_check;
alter table reference_counter add constraint reference_counter_kind_check
    check (kind in ('issue', 'work_order', 'ticket', 'journal', 'debtor_invoice', 'credit_note',
                    'receipt', 'refund'));

-- Which law a site's demands follow. England unless set; Wales is the second jurisdiction.
alter table site add column jurisdiction text not null default 'england'
    check (jurisdiction in ('england', 'wales'));

create table statutory_text (
    id uuid primary key,
    kind text not null check (kind in ('service_charge_summary', 'ground_rent_notice')),
    jurisdiction text not null check (jurisdiction in ('england', 'wales')),
    version integer not null check (version > 0),
    title text not null check (length(btrim(title)) between 1 and 200),
    -- Paragraphs separated by blank lines; `{placeholders}` are filled from the document.
    body text not null check (length(btrim(body)) between 1 and 20000),
    -- The instrument that prescribes it, e.g. "SI 2007/1257, Schedule".
    source text not null check (length(btrim(source)) between 1 and 300),
    valid_from date not null,
    valid_to date,
    -- When someone checked the text word for word against the published instrument, and who.
    verified_on date,
    verified_by text check (verified_by is null or length(verified_by) <= 200),
    created_at timestamptz not null default now(),
    unique (kind, jurisdiction, version),
    check (valid_to is null or valid_to >= valid_from),
    check ((verified_on is null) = (verified_by is null)),
    constraint statutory_text_one_at_a_time exclude using gist (
        kind with =, jurisdiction with =, daterange(valid_from, valid_to, '[]') with &&)
);
grant select on statutory_text to proplink_app, proplink_platform;
grant insert, update (valid_to, verified_on, verified_by) on statutory_text to proplink_platform;

-- England: the Service Charges (Summary of Rights and Obligations, and Transitional Provision)
-- (England) Regulations 2007. Loaded unverified: verified_on stays empty until the text has
-- been compared word for word with the published Schedule.
insert into statutory_text (id, kind, jurisdiction, version, title, body, source, valid_from)
values ('0196b1a0-0000-7000-8000-000000000001', 'service_charge_summary', 'england', 1,
'Service Charges – Summary of tenants'' rights and obligations',
'(1) This summary, which briefly sets out your rights and obligations in relation to variable service charges, must by law accompany a demand for service charges. Unless a summary is sent to you with a demand, you may withhold the service charge. The summary does not give a full interpretation of the law and if you are in any doubt about your rights and obligations you should seek independent advice.

(2) Your lease sets out your obligations to pay service charges to your landlord in addition to your rent. Service charges are amounts payable for services, repairs, maintenance, improvements, insurance or the landlord''s costs of management, to the extent that the costs have been reasonably incurred.

(3) You have the right to ask a leasehold valuation tribunal to determine whether you are liable to pay service charges for services, repairs, maintenance, improvements, insurance or management. You may make a request before or after you have paid the service charge. If the tribunal determines that the service charge is payable, the tribunal may also determine— (a) who should pay the service charge and who it should be paid to; (b) the amount; (c) the date it should be paid by; and (d) how it should be paid. However, you do not have these rights where— (a) a matter has been agreed or admitted by you; (b) a matter has already been, or is to be, referred to arbitration or has been determined by arbitration and you agreed to go to arbitration after the disagreement about the service charge or costs arose; or (c) a matter has been decided by a court.

(4) If your lease allows your landlord to recover costs incurred or that may be incurred in legal proceedings as service charges, you may ask the court or tribunal, before which those proceedings were brought, to rule that your landlord may not do so.

(5) Where you seek a determination from a leasehold valuation tribunal, you will have to pay an application fee and, where the matter proceeds to an oral hearing, a hearing fee, unless you qualify for a waiver or reduction. The total fees payable will not exceed £500, but making an application may incur additional costs, such as professional fees, which you may also have to pay.

(6) A leasehold valuation tribunal has the power to award costs, not exceeding £500, against a party to any proceedings where— (a) it dismisses a matter because it is frivolous, vexatious or an abuse of process; or (b) it considers a party has acted frivolously, vexatiously, abusively, disruptively or unreasonably. The Upper Tribunal (Lands Chamber) has similar powers when hearing an appeal against a decision of a leasehold valuation tribunal.

(7) If your landlord— (a) proposes works on a building or any other premises that will cost you or any other tenant more than £250 in a year; or (b) proposes to enter into an agreement for works or services which will last for more than 12 months and will cost you or any other tenant more than £100 in any 12 month accounting period, your contribution will be limited to these amounts unless your landlord has properly consulted on the proposed works or agreement or a leasehold valuation tribunal has agreed that consultation is not required.

(8) You have the right to apply to a leasehold valuation tribunal to ask it to determine whether your lease should be varied on the grounds that it does not make satisfactory provision in respect of the calculation of a service charge payable under the lease.

(9) You have the right to write to your landlord to request a written summary of the costs which make up the service charges. The summary must— (a) cover the last 12 month period used for making up the accounts relating to the service charge ending no later than the date of your request, where the accounts are made up for 12 month periods; or (b) cover the 12 month period ending with the date of your request, where the accounts are not made up for 12 month periods. The summary must be given to you within 1 month of your request or 6 months of the end of the period to which the summary relates whichever is the later.

(10) You have the right, within 6 months of receiving a written summary of costs, to require the landlord to provide you with reasonable facilities to inspect the accounts, receipts and other documents supporting the summary and for taking copies or extracts from them.

(11) You have the right to ask an accountant or surveyor to carry out an audit of the financial management of the premises containing your dwelling, to establish the obligations of your landlord and the extent to which the service charges you pay are being used efficiently. It will depend on your circumstances whether you can exercise this right alone or only with the support of others living in the premises. You should seek independent advice before exercising this right.

(12) Your lease may give your landlord a right of re-entry or forfeiture where you have failed to pay charges which are properly due under the lease. However, to exercise this right, the landlord must meet all the legal requirements and obtain a court order. A court order will only be granted if you have admitted you are liable to pay the amount or it is finally determined by a court, tribunal or by arbitration that the amount is due. The court has a wide discretion in granting such an order and it will take into account all the circumstances of the case.',
'The Service Charges (Summary of Rights and Obligations, and Transitional Provision) (England) Regulations 2007 (SI 2007/1257), Schedule',
'2007-10-01');

-- England: the form of notice under section 166 of the Commonhold and Leasehold Reform Act
-- 2002, as prescribed by the Landlord and Tenant (Notice of Rent) (England) Regulations 2004.
-- The numbered entries are filled from the demand. Loaded unverified, as above.
insert into statutory_text (id, kind, jurisdiction, version, title, body, source, valid_from)
values ('0196b1a0-0000-7000-8000-000000000002', 'ground_rent_notice', 'england', 1,
'Notice to long leaseholders of rent due',
'This notice is given under section 166 of the Commonhold and Leasehold Reform Act 2002.

To: {leaseholder}

1. This notice is given in respect of {premises}.

2. It requires you to pay rent of {amount} which is due on {due_date}.

3. The rent is payable in respect of the period {period_from} to {period_to}.

4. Payment should be made to {payee} at {payee_address}.

5. This notice is given by {landlord_name} of {landlord_address}.

Notes for leaseholders

1. You are not required to pay rent under your lease unless you have received a notice from your landlord in this form, and the date on which you are liable to pay is the date given in the notice.

2. The date given in the notice must be not less than 30 days nor more than 60 days after the day on which the notice is given, and not before the date on which you would have been liable to pay the rent under your lease.

3. If you have any doubt about your rights or obligations you should seek independent advice.',
'The Landlord and Tenant (Notice of Rent) (England) Regulations 2004 (SI 2004/3096), Schedule (Commonhold and Leasehold Reform Act 2002, s.166)',
'2005-02-28');

-- ---------------------------------------------------------------------------------------------
-- Debtor invoices (demands).

create table debtor_invoice (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    -- The primary billable contact: who the demand is addressed to.
    contact_id uuid not null,
    kind text not null check (kind in ('service_charge', 'ground_rent', 'other')),
    -- Drawn when approved: INV-2026-000123, without gaps per organisation and year.
    number text check (number is null or number ~ '^INV-[0-9]{4}-[0-9]{6,}$'),
    reference text check (reference is null or length(reference) <= 200),
    issue_date date check (issue_date between '2000-01-01' and '2100-12-31'),
    due_date date check (due_date between '2000-01-01' and '2100-12-31'),
    status text not null default 'draft' check (status in ('draft', 'awaiting_approval', 'approved',
        'sent', 'part_paid', 'paid', 'voided')),
    net_pence bigint not null default 0 check (net_pence between 0 and 1000000000000),
    vat_pence bigint not null default 0 check (vat_pence between 0 and 1000000000000),
    total_pence bigint not null default 0,
    -- Settled by receipts and credits; kept by the allocation trigger alone.
    paid_pence bigint not null default 0,
    -- What an issued demand carried: the law it followed, the prescribed text's version, and the
    -- landlord's name and address for service (Landlord and Tenant Act 1987 ss.47–48).
    jurisdiction text check (jurisdiction in ('england', 'wales')),
    statutory_text_id uuid references statutory_text (id),
    landlord_name text check (landlord_name is null or length(landlord_name) <= 200),
    landlord_address text check (landlord_address is null or length(landlord_address) <= 600),
    journal_id uuid,
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    submitted_by text check (submitted_by is null or length(submitted_by) <= 200),
    submitted_at timestamptz,
    approved_by text check (approved_by is null or length(approved_by) <= 200),
    approved_at timestamptz,
    sent_at timestamptz,
    voided_at timestamptz,
    void_reason text check (void_reason is null or length(void_reason) <= 300),
    -- Why an approver last sent it back to draft.
    returned_reason text check (returned_reason is null or length(returned_reason) <= 300),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    unique (organisation_id, unit_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    check (total_pence = net_pence + vat_pence),
    check (paid_pence between 0 and total_pence),
    check (due_date is null or issue_date is null or due_date >= issue_date),
    -- Past the draft, a document has its number, dates and posting.
    check (status in ('draft', 'awaiting_approval')
           or (number is not null and issue_date is not null and due_date is not null
               and journal_id is not null and approved_at is not null)),
    check ((status = 'voided') = (voided_at is not null))
);
create unique index debtor_invoice_number on debtor_invoice (organisation_id, number) where number is not null;
create index debtor_invoice_unit on debtor_invoice (organisation_id, unit_id, issue_date);
create index debtor_invoice_site_open on debtor_invoice (organisation_id, site_id, due_date)
    where status in ('approved', 'sent', 'part_paid');
create index debtor_invoice_contact on debtor_invoice (organisation_id, contact_id);
select proplink.make_tenant_table('debtor_invoice');

create table debtor_invoice_line (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    invoice_id uuid not null,
    site_id uuid not null,
    line_no smallint not null check (line_no between 1 and 200),
    description text not null check (length(btrim(description)) between 1 and 300),
    account_id uuid not null,
    fund_id uuid not null,
    tax_rate_id uuid not null,
    -- The rate used, copied from the tax rate when the line was written.
    basis_points integer not null check (basis_points between 0 and 10000),
    net_pence bigint not null check (net_pence between 1 and 1000000000000),
    vat_pence bigint not null check (vat_pence between 0 and 1000000000000),
    gross_pence bigint generated always as (net_pence + vat_pence) stored,
    period_from date,
    period_to date,
    paid_pence bigint not null default 0,
    primary key (organisation_id, id),
    unique (organisation_id, id, fund_id),
    unique (organisation_id, invoice_id, line_no),
    foreign key (organisation_id, site_id, invoice_id) references debtor_invoice (organisation_id, site_id, id)
        on delete cascade,
    foreign key (organisation_id, site_id, account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, tax_rate_id) references tax_rate (organisation_id, id),
    check (paid_pence between 0 and net_pence + vat_pence),
    check (period_to is null or period_from is null or period_to >= period_from)
);
create index debtor_invoice_line_invoice on debtor_invoice_line (organisation_id, invoice_id, line_no);
select proplink.make_tenant_table('debtor_invoice_line');

-- ---------------------------------------------------------------------------------------------
-- Credit notes.

create table credit_note (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    contact_id uuid not null,
    -- The invoice it corrects, if any; a credit note without one is credit on account.
    invoice_id uuid,
    -- A void credits an invoice's whole balance and marks it voided.
    purpose text not null default 'credit' check (purpose in ('credit', 'void')),
    number text check (number is null or number ~ '^CRN-[0-9]{4}-[0-9]{6,}$'),
    reason text not null check (length(btrim(reason)) between 1 and 300),
    issue_date date check (issue_date between '2000-01-01' and '2100-12-31'),
    status text not null default 'draft' check (status in ('draft', 'awaiting_approval', 'approved')),
    net_pence bigint not null default 0 check (net_pence between 0 and 1000000000000),
    vat_pence bigint not null default 0 check (vat_pence between 0 and 1000000000000),
    total_pence bigint not null default 0,
    allocated_pence bigint not null default 0,
    journal_id uuid,
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    submitted_by text check (submitted_by is null or length(submitted_by) <= 200),
    submitted_at timestamptz,
    approved_by text check (approved_by is null or length(approved_by) <= 200),
    approved_at timestamptz,
    sent_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, unit_id, invoice_id) references debtor_invoice (organisation_id, unit_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    check (total_pence = net_pence + vat_pence),
    check (allocated_pence between 0 and total_pence),
    check (purpose = 'credit' or invoice_id is not null),
    check (status <> 'approved'
           or (number is not null and issue_date is not null and journal_id is not null
               and approved_at is not null))
);
create unique index credit_note_number on credit_note (organisation_id, number) where number is not null;
create index credit_note_unit on credit_note (organisation_id, unit_id, issue_date);
create index credit_note_invoice on credit_note (organisation_id, invoice_id) where invoice_id is not null;
select proplink.make_tenant_table('credit_note');

create table credit_note_line (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    credit_note_id uuid not null,
    site_id uuid not null,
    line_no smallint not null check (line_no between 1 and 200),
    description text not null check (length(btrim(description)) between 1 and 300),
    account_id uuid not null,
    fund_id uuid not null,
    tax_rate_id uuid not null,
    basis_points integer not null check (basis_points between 0 and 10000),
    net_pence bigint not null check (net_pence between 1 and 1000000000000),
    vat_pence bigint not null check (vat_pence between 0 and 1000000000000),
    gross_pence bigint generated always as (net_pence + vat_pence) stored,
    allocated_pence bigint not null default 0,
    primary key (organisation_id, id),
    unique (organisation_id, id, fund_id),
    unique (organisation_id, credit_note_id, line_no),
    foreign key (organisation_id, site_id, credit_note_id) references credit_note (organisation_id, site_id, id)
        on delete cascade,
    foreign key (organisation_id, site_id, account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, tax_rate_id) references tax_rate (organisation_id, id),
    check (allocated_pence between 0 and net_pence + vat_pence)
);
select proplink.make_tenant_table('credit_note_line');

-- ---------------------------------------------------------------------------------------------
-- Receipts and refunds.

create table receipt (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    contact_id uuid,
    number text not null check (number ~ '^RCT-[0-9]{4}-[0-9]{6,}$'),
    received_on date not null check (received_on between '2000-01-01' and '2100-12-31'),
    amount_pence bigint not null check (amount_pence between 1 and 1000000000000),
    method text not null check (method in ('bank_transfer', 'cheque', 'card', 'direct_debit', 'cash', 'other')),
    reference text check (reference is null or length(reference) <= 100),
    -- The site's bank ledger account it was paid into, and the fund that holds what is not yet
    -- allocated (credit on account).
    bank_account_id uuid not null,
    fund_id uuid not null,
    allocated_pence bigint not null default 0,
    -- Where it came from: the admin app now; the portals and providers later.
    channel text not null default 'admin' check (channel in ('admin', 'residenceport', 'stripe', 'gocardless', 'import')),
    journal_id uuid not null,
    status text not null default 'posted' check (status in ('posted', 'reversed')),
    reversed_on date,
    reversal_reason text check (reversal_reason is null or length(reversal_reason) <= 300),
    recorded_by text not null check (length(btrim(recorded_by)) between 1 and 200),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, site_id, bank_account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    check (allocated_pence between 0 and amount_pence),
    check ((status = 'reversed') = (reversed_on is not null))
);
create unique index receipt_number on receipt (organisation_id, number);
create index receipt_unit on receipt (organisation_id, unit_id, received_on);
select proplink.make_tenant_table('receipt');

create table refund (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    number text not null check (number ~ '^RFD-[0-9]{4}-[0-9]{6,}$'),
    refunded_on date not null check (refunded_on between '2000-01-01' and '2100-12-31'),
    amount_pence bigint not null check (amount_pence between 1 and 1000000000000),
    method text not null check (method in ('bank_transfer', 'cheque', 'card', 'direct_debit', 'cash', 'other')),
    reference text check (reference is null or length(reference) <= 100),
    bank_account_id uuid not null,
    journal_id uuid not null,
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, bank_account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id)
);
create unique index refund_number on refund (organisation_id, number);
create index refund_unit on refund (organisation_id, unit_id, refunded_on);
select proplink.make_tenant_table('refund');
revoke update, delete on refund from proplink_app;

-- ---------------------------------------------------------------------------------------------
-- Allocations: money from a receipt or a credit note line settling an invoice line or paying a
-- refund. Append-only; an undo is a negative row naming the row it undoes.

create table allocation (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    allocated_on date not null check (allocated_on between '2000-01-01' and '2100-12-31'),
    amount_pence bigint not null check (amount_pence <> 0 and abs(amount_pence) <= 1000000000000),
    receipt_id uuid,
    credit_note_line_id uuid,
    invoice_line_id uuid,
    refund_id uuid,
    -- The fund of the money settled: the invoice line's, or (for a refund) the source's.
    fund_id uuid not null,
    undoes_id uuid,
    -- The journal that moved the money between funds, when the receipt's credit paid a line of
    -- another fund.
    journal_id uuid,
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, receipt_id) references receipt (organisation_id, site_id, id),
    -- A credit settles only lines of its own fund; an invoice line is settled in its fund.
    foreign key (organisation_id, credit_note_line_id, fund_id) references credit_note_line (organisation_id, id, fund_id),
    foreign key (organisation_id, invoice_line_id, fund_id) references debtor_invoice_line (organisation_id, id, fund_id),
    foreign key (organisation_id, site_id, refund_id) references refund (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, undoes_id) references allocation (organisation_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    check ((receipt_id is null) <> (credit_note_line_id is null)),
    check ((invoice_line_id is null) <> (refund_id is null)),
    check ((amount_pence < 0) = (undoes_id is not null))
);
create unique index allocation_undone_once on allocation (organisation_id, undoes_id) where undoes_id is not null;
create index allocation_receipt on allocation (organisation_id, receipt_id) where receipt_id is not null;
create index allocation_credit on allocation (organisation_id, credit_note_line_id) where credit_note_line_id is not null;
create index allocation_invoice_line on allocation (organisation_id, invoice_line_id) where invoice_line_id is not null;
create index allocation_unit on allocation (organisation_id, unit_id, allocated_on);
select proplink.make_tenant_table('allocation');
revoke update, delete on allocation from proplink_app;

-- An allocation moves the running totals of both sides; the check constraints on those
-- totals refuse over-allocation. An undo must mirror the row it undoes.
create function proplink.apply_allocation() returns trigger
language plpgsql as $$
declare
    v_invoice uuid;
    v_credit uuid;
    o allocation%rowtype;
begin
    if new.organisation_id is distinct from nullif(current_setting('app.organisation_id', true), '')::uuid then
        return new;
    end if;
    if new.undoes_id is not null then
        select * into o from allocation where organisation_id = new.organisation_id and id = new.undoes_id;
        if found and (o.amount_pence <> -new.amount_pence or o.undoes_id is not null
           or o.receipt_id is distinct from new.receipt_id
           or o.credit_note_line_id is distinct from new.credit_note_line_id
           or o.invoice_line_id is distinct from new.invoice_line_id
           or o.refund_id is distinct from new.refund_id) then
            raise exception 'an undo must mirror the allocation it undoes' using errcode = '23514';
        end if;
    end if;
    -- A row naming what this organisation cannot see is left to the foreign keys to refuse.
    if new.invoice_line_id is not null then
        update debtor_invoice_line set paid_pence = paid_pence + new.amount_pence
         where organisation_id = new.organisation_id and id = new.invoice_line_id
        returning invoice_id into v_invoice;
        if not found then
            return new;
        end if;
        update debtor_invoice
           set paid_pence = paid_pence + new.amount_pence,
               status = case
                   when status in ('draft', 'awaiting_approval', 'voided') then status
                   when paid_pence + new.amount_pence = total_pence then 'paid'
                   when paid_pence + new.amount_pence > 0 then 'part_paid'
                   when sent_at is not null then 'sent'
                   else 'approved' end,
               updated_at = now()
         where organisation_id = new.organisation_id and id = v_invoice
           and status not in ('draft', 'awaiting_approval');
        if not found then
            raise exception 'only an approved invoice can be paid' using errcode = '23514';
        end if;
    end if;
    if new.receipt_id is not null then
        update receipt set allocated_pence = allocated_pence + new.amount_pence, updated_at = now()
         where organisation_id = new.organisation_id and id = new.receipt_id
           and (status = 'posted' or new.amount_pence < 0);
        if not found and exists (select from receipt where organisation_id = new.organisation_id
                                    and id = new.receipt_id) then
            raise exception 'a reversed receipt cannot be allocated' using errcode = '23514';
        end if;
    else
        update credit_note_line set allocated_pence = allocated_pence + new.amount_pence
         where organisation_id = new.organisation_id and id = new.credit_note_line_id
        returning credit_note_id into v_credit;
        if not found then
            return new;
        end if;
        update credit_note set allocated_pence = allocated_pence + new.amount_pence, updated_at = now()
         where organisation_id = new.organisation_id and id = v_credit and status = 'approved';
        if not found then
            raise exception 'only an approved credit note can be allocated' using errcode = '23514';
        end if;
    end if;
    return new;
end
$$;
create trigger allocation_apply before insert on allocation
    for each row execute function proplink.apply_allocation();

-- The settled totals (the column named by the trigger's argument) change only through
-- allocations: the trigger above runs one level down.
create function proplink.guard_settled_totals() returns trigger
language plpgsql as $$
begin
    if pg_trigger_depth() < 2
       and (to_jsonb(new) -> tg_argv[0]) is distinct from (to_jsonb(old) -> tg_argv[0]) then
        raise exception 'settled amounts change only through allocations' using errcode = '23514';
    end if;
    return new;
end
$$;
create trigger debtor_invoice_settled_guard before update on debtor_invoice
    for each row execute function proplink.guard_settled_totals('paid_pence');
create trigger debtor_invoice_line_settled_guard before update on debtor_invoice_line
    for each row execute function proplink.guard_settled_totals('paid_pence');
create trigger credit_note_settled_guard before update on credit_note
    for each row execute function proplink.guard_settled_totals('allocated_pence');
create trigger credit_note_line_settled_guard before update on credit_note_line
    for each row execute function proplink.guard_settled_totals('allocated_pence');
create trigger receipt_settled_guard before update on receipt
    for each row execute function proplink.guard_settled_totals('allocated_pence');

-- A document's lines are written while it is a draft, and only its settled amounts change
-- afterwards. A document past its draft is never deleted, and its figures never change.
create function proplink.guard_document_lines() returns trigger
language plpgsql as $$
declare
    v_status text;
    v_row record;
begin
    v_row := case when tg_op = 'DELETE' then old else new end;
    if v_row.organisation_id is distinct from nullif(current_setting('app.organisation_id', true), '')::uuid then
        return v_row;
    end if;
    if tg_op = 'UPDATE' and pg_trigger_depth() >= 2 then
        return new;
    end if;
    if tg_table_name = 'debtor_invoice_line' then
        select status into v_status from debtor_invoice
         where organisation_id = v_row.organisation_id and id = v_row.invoice_id;
    else
        select status into v_status from credit_note
         where organisation_id = v_row.organisation_id and id = v_row.credit_note_id;
    end if;
    -- A cascade from deleting a draft finds no parent any more.
    if v_status is not null and v_status <> 'draft' then
        raise exception 'the lines of a document past its draft do not change' using errcode = '23514';
    end if;
    return v_row;
end
$$;
create trigger debtor_invoice_line_draft_only before insert or update or delete on debtor_invoice_line
    for each row execute function proplink.guard_document_lines();
create trigger credit_note_line_draft_only before insert or update or delete on credit_note_line
    for each row execute function proplink.guard_document_lines();

create function proplink.guard_issued_document() returns trigger
language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        if old.status <> 'draft' then
            raise exception 'only a draft can be deleted' using errcode = '23514';
        end if;
        return old;
    end if;
    if old.status not in ('draft', 'awaiting_approval') and (
        new.number is distinct from old.number or new.issue_date is distinct from old.issue_date
        or new.net_pence <> old.net_pence or new.vat_pence <> old.vat_pence
        or new.unit_id <> old.unit_id or new.site_id <> old.site_id
        or new.journal_id is distinct from old.journal_id) then
        raise exception 'an approved document''s figures do not change: credit it instead' using errcode = '23514';
    end if;
    return new;
end
$$;
create trigger debtor_invoice_issued_guard before update or delete on debtor_invoice
    for each row execute function proplink.guard_issued_document();
create trigger credit_note_issued_guard before update or delete on credit_note
    for each row execute function proplink.guard_issued_document();
-- A receipt is reversed, never deleted.
revoke delete on receipt from proplink_app;
