-- ResidencePort (issue 8; docs-spec §2.10, §2.13, §2.14, §2.16): the leaseholder and tenant
-- portal. A resident's portal account names the contact it belongs to; what they see is
-- decided from that contact's leases and occupancies (current ones fully, ended ones read-only
-- up to their end). Card payments (Stripe) and Direct Debits (GoCardless) are recorded here
-- from the moment they start, so a webhook finds what it settles and settles it once.

alter table portal_account
    add column contact_id uuid,
    add column invited_at timestamptz,
    add column invited_by text check (invited_by is null or length(invited_by) <= 200),
    add foreign key (organisation_id, contact_id) references contact (organisation_id, id);
-- One resident account per contact and portal.
create unique index portal_account_contact on portal_account (organisation_id, portal, contact_id)
    where contact_id is not null;

-- A payment a resident started, by card or by Direct Debit. Its amount is the server's figure
-- for what the invoice owed when it started; the provider's confirmation posts a receipt for
-- that amount (never more than the invoice still owes; the rest is credit on account).
create table resident_payment (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    invoice_id uuid not null,
    -- Who started it (a card payment), or null for a collection under a mandate.
    account_id uuid,
    contact_id uuid not null,
    mandate_id uuid,
    method text not null check (method in ('card', 'direct_debit')),
    provider text not null check (provider in ('stripe', 'gocardless')),
    -- Completed by the embedded test-mode provider: no money moved.
    test_mode boolean not null,
    amount_pence bigint not null check (amount_pence between 30 and 1000000000000),
    -- Stripe: the Checkout Session id; GoCardless: the payment id.
    provider_ref text not null check (length(provider_ref) between 1 and 255),
    -- Stripe: the PaymentIntent id, once known.
    provider_payment_ref text check (provider_payment_ref is null or length(provider_payment_ref) <= 255),
    checkout_url text check (checkout_url is null or length(checkout_url) <= 2000),
    charge_date date,
    status text not null default 'pending' check (status in ('pending', 'submitted', 'paid',
        'failed', 'cancelled', 'expired', 'charged_back')),
    receipt_id uuid,
    failure_reason text check (failure_reason is null or length(failure_reason) <= 500),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, unit_id, invoice_id) references debtor_invoice (organisation_id, unit_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, account_id) references portal_account (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, site_id, receipt_id) references receipt (organisation_id, site_id, id),
    check ((status in ('paid', 'charged_back')) = (receipt_id is not null)),
    check (method = 'card' and provider = 'stripe' and account_id is not null
        or method = 'direct_debit' and provider = 'gocardless' and mandate_id is not null)
);
create unique index resident_payment_ref on resident_payment (organisation_id, provider, provider_ref);
create index resident_payment_invoice on resident_payment (organisation_id, invoice_id, created_at desc);
select proplink.make_tenant_table('resident_payment');

-- A Direct Debit mandate for a contact's unit, from GoCardless's billing request flow.
create table dd_mandate (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    contact_id uuid not null,
    account_id uuid,
    test_mode boolean not null,
    billing_request_ref text not null check (length(billing_request_ref) between 1 and 255),
    flow_url text check (flow_url is null or length(flow_url) <= 2000),
    mandate_ref text check (mandate_ref is null or length(mandate_ref) between 1 and 255),
    status text not null default 'pending_customer' check (status in ('pending_customer',
        'pending_submission', 'submitted', 'active', 'failed', 'cancelled', 'expired')),
    status_reason text check (status_reason is null or length(status_reason) <= 500),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, account_id) references portal_account (organisation_id, id)
);
create unique index dd_mandate_billing_request on dd_mandate (organisation_id, billing_request_ref);
create unique index dd_mandate_ref on dd_mandate (organisation_id, mandate_ref) where mandate_ref is not null;
-- At most one mandate in force (or being set up) per contact and unit.
create unique index dd_mandate_live on dd_mandate (organisation_id, contact_id, unit_id)
    where status in ('pending_customer', 'pending_submission', 'submitted', 'active');
select proplink.make_tenant_table('dd_mandate');

alter table resident_payment
    add foreign key (organisation_id, mandate_id) references dd_mandate (organisation_id, id);

-- Building notices: published by managers per site (or one building of it), read by residents.
create table notice (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    building_id uuid,
    title text not null check (length(btrim(title)) between 1 and 200),
    body text not null check (length(btrim(body)) between 1 and 10000),
    email_copy boolean not null default false,
    published_by text not null check (length(btrim(published_by)) between 1 and 200),
    published_at timestamptz not null,
    withdrawn_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, site_id, building_id) references building (organisation_id, site_id, id)
);
create index notice_site on notice (organisation_id, site_id, published_at desc);
select proplink.make_tenant_table('notice');

-- A resident's first reading of a notice (the read receipt managers see).
create table notice_read (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    notice_id uuid not null,
    account_id uuid not null,
    read_at timestamptz not null,
    primary key (organisation_id, id),
    foreign key (organisation_id, notice_id) references notice (organisation_id, id),
    foreign key (organisation_id, account_id) references portal_account (organisation_id, id)
);
create unique index notice_read_once on notice_read (organisation_id, notice_id, account_id);
select proplink.make_tenant_table('notice_read');

-- Messages on an issue between the resident who reported it and the managers.
create table issue_message (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    issue_id uuid not null,
    author_kind text not null check (author_kind in ('staff', 'resident')),
    author_name text not null check (length(btrim(author_name)) between 1 and 200),
    body text not null check (length(btrim(body)) between 1 and 5000),
    created_at timestamptz not null,
    primary key (organisation_id, id),
    foreign key (organisation_id, issue_id) references issue (organisation_id, id)
);
create index issue_message_issue on issue_message (organisation_id, issue_id, created_at);
select proplink.make_tenant_table('issue_message');

-- A resident's change to their contact details, waiting for a manager when it touches the
-- lease record (name, correspondence address); preferences apply at once.
create table profile_change (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    contact_id uuid not null,
    account_id uuid not null,
    -- {"field": {"old": …, "new": …}, …}
    changes jsonb not null check (jsonb_typeof(changes) = 'object' and changes <> '{}'::jsonb),
    status text not null default 'pending' check (status in ('pending', 'accepted', 'rejected', 'withdrawn')),
    decided_by text check (decided_by is null or length(decided_by) <= 200),
    decided_at timestamptz,
    reason text check (reason is null or length(reason) <= 300),
    created_at timestamptz not null,
    primary key (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, account_id) references portal_account (organisation_id, id),
    check ((status = 'pending') = (decided_at is null))
);
-- One change waiting per contact: a new request replaces the one before.
create unique index profile_change_pending on profile_change (organisation_id, contact_id)
    where status = 'pending';
select proplink.make_tenant_table('profile_change');

-- Folders shared with one building's or one unit's residents only (a site folder by default).
alter table site_folder
    add column building_id uuid,
    add column unit_id uuid,
    add foreign key (organisation_id, site_id, building_id) references building (organisation_id, site_id, id),
    add foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    add check (building_id is null or unit_id is null);
