-- Staff identity (issue 3): people who sign in to the admin app, their memberships of
-- organisations (role + scope), invitations, sessions, the minimal estates and sites that scope
-- refers to, and sessions for the passwordless front doors.

-- ---------------------------------------------------------------------------------------------
-- Platform tables: a person is one staff user whatever organisations they belong to. What they
-- may do in an organisation lives in that organisation's `membership` row (tenant data).

create table staff_user (
    id uuid primary key,
    email text not null check (email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 254),
    name text not null check (length(btrim(name)) between 1 and 200),
    -- Null until the person accepts their first invitation (or after an administrator's reset).
    password_hash text,
    second_factor text not null default 'email' check (second_factor in ('email', 'totp')),
    totp_secret text check (totp_secret ~ '^[A-Z2-7]{16,128}$'),
    -- The last TOTP time step accepted: the same or an earlier step is refused (replay).
    totp_last_step bigint,
    failed_attempts integer not null default 0 check (failed_attempts >= 0),
    locked_until timestamptz,
    -- Sessions created before this instant are over ("sign out everywhere", password reset).
    sessions_valid_after timestamptz not null default '-infinity',
    created_at timestamptz not null default now(),
    password_changed_at timestamptz,
    check (second_factor <> 'totp' or totp_secret is not null)
);
create unique index staff_user_email on staff_user (lower(email));
grant select, insert, update on staff_user to proplink_app;
grant select on staff_user to proplink_platform;

-- Ten one-use backup codes per user, stored as keyed digests.
create table staff_backup_code (
    user_id uuid not null references staff_user (id),
    digest text not null check (digest ~ '^[0-9a-f]{64}$'),
    created_at timestamptz not null default now(),
    used_at timestamptz,
    primary key (user_id, digest)
);
grant select, insert, update, delete on staff_backup_code to proplink_app;

-- E-mailed 6-digit codes for the staff second factor: keyed digest, 10 minutes, 5 tries.
create table staff_code (
    id uuid primary key,
    user_id uuid not null references staff_user (id),
    digest text not null check (digest ~ '^[0-9a-f]{64}$'),
    expires_at timestamptz not null,
    attempts integer not null default 0 check (attempts >= 0),
    used_at timestamptz,
    created_at timestamptz not null default now()
);
create index staff_code_live on staff_code (user_id, created_at desc);
grant select, insert, update, delete on staff_code to proplink_app;

-- Sign-in in progress, and the signed-in state, on the login host (before an organisation is
-- picked). `verified_at` is set once the second factor is passed.
create table login_session (
    id uuid primary key,
    user_id uuid not null references staff_user (id),
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    verified_at timestamptz,
    remember_device boolean not null default false,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    ended_at timestamptz,
    ip text,
    user_agent text
);
create index login_session_user on login_session (user_id);
grant select, insert, update, delete on login_session to proplink_app;

-- Devices remembered for 30 days: the second factor is not asked again on them.
create table staff_device (
    id uuid primary key,
    user_id uuid not null references staff_user (id),
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    label text not null check (length(label) <= 200),
    ip text,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz
);
create index staff_device_user on staff_device (user_id, created_at desc);
grant select, insert, update on staff_device to proplink_app;

-- Password-reset links (self-service, or sent when an administrator resets a user).
create table password_reset (
    id uuid primary key,
    user_id uuid not null references staff_user (id),
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null default now()
);
create index password_reset_user on password_reset (user_id);
grant select, insert, update on password_reset to proplink_app;

-- Mail that belongs to no organisation (sign-in codes, password resets, lock-out notices):
-- sent by the worker, never shown in any organisation's e-mail log.
create table platform_email (
    id uuid primary key,
    to_address text not null check (to_address ~ '^[^@\s]+@[^@\s]+$'),
    to_name text,
    subject text not null check (length(subject) between 1 and 300),
    body_text text not null,
    category text not null check (category ~ '^[a-z_]{1,40}$'),
    status text not null default 'queued' check (status in ('queued', 'sent', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    provider_message_id text,
    created_at timestamptz not null default now(),
    sent_at timestamptz
);
create index platform_email_queue on platform_email (next_attempt_at) where status = 'queued';
grant select, insert on platform_email to proplink_app;
grant select, update on platform_email to proplink_platform;
create trigger platform_email_notify after insert on platform_email
    for each statement execute function proplink.notify_job();

-- Sign-in activity on the login host, before any organisation is involved (unknown addresses
-- included). Activity of known members is also written to each organisation's `auth_event`.
create table sign_in_event (
    id uuid primary key,
    user_id uuid references staff_user (id),
    email text not null,
    kind text not null check (kind ~ '^[a-z_]{1,40}$'),
    ip text,
    user_agent text,
    created_at timestamptz not null default now()
);
create index sign_in_event_user on sign_in_event (user_id, created_at desc);
grant insert on sign_in_event to proplink_app;
grant select on sign_in_event to proplink_platform;

-- ---------------------------------------------------------------------------------------------
-- Tenant tables.

-- The minimal estate and site records that access scope refers to (the portfolio issue adds
-- buildings, units and the rest).
create table estate (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    reference text not null check (reference ~ '^[A-Za-z0-9][A-Za-z0-9-]{0,19}$'),
    name text not null check (length(btrim(name)) between 1 and 200),
    created_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id)
);
create unique index estate_reference on estate (organisation_id, lower(reference));
select proplink.make_tenant_table('estate');

create table site (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    estate_id uuid,
    reference text not null check (reference ~ '^[A-Za-z0-9][A-Za-z0-9-]{0,19}$'),
    name text not null check (length(btrim(name)) between 1 and 200),
    created_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, estate_id) references estate (organisation_id, id)
);
create unique index site_reference on site (organisation_id, lower(reference));
create index site_estate on site (organisation_id, estate_id);
select proplink.make_tenant_table('site');

-- Roles an organisation builds from the permission catalogue (Settings → Roles).
create table custom_role (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    name text not null check (length(btrim(name)) between 1 and 80),
    description text not null default '' check (length(description) <= 500),
    permissions text[] not null,
    created_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id)
);
create unique index custom_role_name on custom_role (organisation_id, lower(name));
select proplink.make_tenant_table('custom_role');

-- A staff user's place in one organisation: one role (built-in or custom) and one scope.
-- Either may be missing, and then the member can do nothing.
create table membership (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    user_id uuid not null references staff_user (id),
    builtin_role text check (builtin_role in ('organisation_owner', 'administrator', 'manager',
        'accountant', 'site_manager', 'maintenance_coordinator', 'read_only')),
    custom_role_id uuid,
    scope text check (scope in ('all_sites', 'sites', 'estates')),
    status text not null default 'invited' check (status in ('invited', 'active', 'deactivated')),
    is_owner boolean not null default false,
    created_at timestamptz not null default now(),
    activated_at timestamptz,
    deactivated_at timestamptz,
    primary key (organisation_id, id),
    unique (organisation_id, user_id),
    foreign key (organisation_id, custom_role_id) references custom_role (organisation_id, id),
    check (builtin_role is null or custom_role_id is null),
    -- The Organisation Owner keeps the owner role and cannot be deactivated.
    check (not is_owner or (builtin_role = 'organisation_owner' and status <> 'deactivated'))
);
create index membership_user on membership (user_id);
select proplink.make_tenant_table('membership');
-- The organisation picker on the login host lists the signed-in person's own memberships in
-- every organisation: visible only when the server has set that person's id for the
-- transaction, after their second factor (SELECT only).
create policy own_memberships on membership for select
    using (user_id = nullif(current_setting('app.staff_user_id', true), '')::uuid);

-- The sites or estates of a member's "selected sites" / "by estate" scope.
create table membership_scope (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    membership_id uuid not null,
    site_id uuid,
    estate_id uuid,
    primary key (organisation_id, id),
    foreign key (organisation_id, membership_id) references membership (organisation_id, id)
        on delete cascade,
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, estate_id) references estate (organisation_id, id),
    check (num_nonnulls(site_id, estate_id) = 1)
);
create unique index membership_scope_site on membership_scope (organisation_id, membership_id, site_id)
    where site_id is not null;
create unique index membership_scope_estate on membership_scope (organisation_id, membership_id, estate_id)
    where estate_id is not null;
select proplink.make_tenant_table('membership_scope');

-- Invitations: a 14-day link (token stored as SHA-256) to accept a membership.
create table invitation (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    membership_id uuid not null,
    email text not null check (email ~ '^[^@\s]+@[^@\s]+$'),
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    welcome_message text check (length(welcome_message) <= 2000),
    invited_by_name text,
    status text not null default 'pending' check (status in ('pending', 'accepted', 'revoked')),
    expires_at timestamptz not null,
    sent_count integer not null default 1,
    created_at timestamptz not null default now(),
    accepted_at timestamptz,
    revoked_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, membership_id) references membership (organisation_id, id)
);
create index invitation_membership on invitation (organisation_id, membership_id);
select proplink.make_tenant_table('invitation', redact => array['token_hash']);

-- Signed-in sessions on an organisation's admin host. Creation is audited (a sign-in); the
-- "last seen" touches are not.
create table staff_session (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    membership_id uuid not null,
    user_id uuid not null references staff_user (id),
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    absolute_expires_at timestamptz not null,
    ended_at timestamptz,
    ended_reason text,
    ip text,
    user_agent text,
    primary key (organisation_id, id),
    foreign key (organisation_id, membership_id) references membership (organisation_id, id)
);
create index staff_session_member on staff_session (organisation_id, membership_id) where ended_at is null;
select proplink.make_tenant_table('staff_session', redact => array['token_hash'], audit_updates => false);

-- One-time hand-off codes: minted on the login host (or by "switch organisation"), exchanged
-- once, within a minute, on the organisation's host for a session there.
create table session_handoff (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    membership_id uuid not null,
    user_id uuid not null references staff_user (id),
    code_hash text not null unique check (code_hash ~ '^[0-9a-f]{64}$'),
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, membership_id) references membership (organisation_id, id)
);
select proplink.make_tenant_table('session_handoff', redact => array['code_hash'], audit_updates => false);

-- Sign-in and security activity of the organisation's members (sign-ins, failures, second
-- factor changes, lock-outs, sign-outs everywhere), each one an audit event.
create table auth_event (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    user_id uuid references staff_user (id),
    email text not null,
    kind text not null check (kind ~ '^[a-z_]{1,40}$'),
    detail text,
    ip text,
    user_agent text,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id)
);
create index auth_event_user on auth_event (organisation_id, user_id, created_at desc);
select proplink.make_tenant_table('auth_event');

-- Company details, branding and modules (Settings → Organisation, the set-up wizard).
create table organisation_profile (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    trading_name text check (length(trading_name) <= 200),
    registered_name text check (length(registered_name) <= 200),
    company_number text check (company_number ~ '^(?:[0-9]{8}|[A-Z]{2}[0-9]{6})$'),
    vat_number text check (vat_number ~ '^GB(?:[0-9]{9}|[0-9]{12})$'),
    registered_office text check (length(registered_office) <= 500),
    brand_colour text check (brand_colour ~ '^#[0-9a-fA-F]{6}$'),
    email_footer text check (length(email_footer) <= 1000),
    modules text[] not null default array['block', 'facilities', 'hrb', 'lettings']
        check (modules <@ array['block', 'facilities', 'hrb', 'lettings']),
    setup_completed_at timestamptz,
    primary key (organisation_id, id),
    check (id = organisation_id)
);
select proplink.make_tenant_table('organisation_profile');

-- Portal sessions (ResidencePort, BuildingThread, Facility Report), started by a one-time code.
create table portal_session (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    account_id uuid not null,
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    absolute_expires_at timestamptz not null,
    ended_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, account_id) references portal_account (organisation_id, id)
);
select proplink.make_tenant_table('portal_session', redact => array['token_hash'], audit_updates => false);

-- A ContractorPort session: opening a signed link grants its record, and only that record.
create table link_session (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    link_id uuid not null,
    token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    ended_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, link_id) references signed_link (organisation_id, id)
);
select proplink.make_tenant_table('link_session', redact => array['token_hash'], audit_updates => false);
