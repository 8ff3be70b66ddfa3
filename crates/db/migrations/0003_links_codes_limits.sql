-- Signed links (ContractorPort), portal accounts with e-mail one-time codes (ResidencePort,
-- BuildingThread, Facility Report), and rate-limit counters.

-- A signed link grants its bearer one record of one organisation until it expires or is revoked.
-- Only the SHA-256 of the 256-bit token is stored.
create table signed_link (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    purpose text not null check (purpose in ('contractor')),
    record_type text not null check (length(record_type) between 1 and 60),
    record_id uuid not null,
    recipient_email text not null check (recipient_email ~ '^[^@\s]+@[^@\s]+$'),
    recipient_name text,
    expires_at timestamptz not null,
    revoked_at timestamptz,
    opened_count integer not null default 0,
    last_opened_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id)
);
create index signed_link_record on signed_link (organisation_id, record_type, record_id);
select proplink.make_tenant_table('signed_link');
-- A ContractorPort URL names no organisation: presenting a token's hash (transaction-local
-- setting) makes exactly that link visible, whichever organisation it belongs to.
create policy link_bearer on signed_link for select
    using (token_hash = nullif(current_setting('app.link_token_hash', true), ''));

-- People who sign in to a portal with e-mail and a one-time code, per organisation.
create table portal_account (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    email text not null check (email ~ '^[^@\s]+@[^@\s]+$'),
    name text not null check (length(btrim(name)) between 1 and 200),
    portal text not null check (portal in ('residenceport', 'buildingthread', 'facility_report')),
    status text not null default 'active' check (status in ('active', 'deactivated')),
    created_at timestamptz not null default now(),
    last_signed_in_at timestamptz,
    primary key (organisation_id, id)
);
create unique index portal_account_email on portal_account (organisation_id, portal, lower(email));
select proplink.make_tenant_table('portal_account');

-- One-time codes: stored as a keyed hash, single use, expiring, with a bounded number of tries.
create table one_time_code (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    account_id uuid not null,
    purpose text not null check (purpose in ('sign_in')),
    code_digest text not null check (code_digest ~ '^[0-9a-f]{64}$'),
    expires_at timestamptz not null,
    attempts integer not null default 0 check (attempts >= 0),
    used_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, account_id) references portal_account (organisation_id, id)
);
create index one_time_code_live on one_time_code (organisation_id, account_id, created_at desc);
-- The digest is secret-derived; the audit log does not need it.
select proplink.make_tenant_table('one_time_code', redact => array['code_digest']);

-- Fixed-window counters for abuse limits, shared by every web process.
create table rate_limit (
    key text not null check (length(key) between 1 and 300),
    window_start timestamptz not null,
    hits integer not null default 0,
    primary key (key, window_start)
);
create index rate_limit_age on rate_limit (window_start);
grant select, insert, update, delete on rate_limit to proplink_app;
