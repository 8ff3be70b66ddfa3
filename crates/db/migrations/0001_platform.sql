-- Platform core: organisations, the audit log, the job queue, e-mail and incoming webhooks.
-- Roles proplink_app (the server) and proplink_platform (cross-organisation jobs) must exist;
-- `proplink migrate` checks for them first. This file runs as the owner role.

-- ---------------------------------------------------------------------------------------------
-- Platform tables (not tenant data; no organisation_id column).

create table organisation (
    id uuid primary key,
    slug text not null unique
        check (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name text not null check (length(btrim(name)) between 1 and 200),
    status text not null default 'active' check (status in ('active', 'read_only', 'closed')),
    brand_colour text check (brand_colour ~ '^#[0-9a-fA-F]{6}$'),
    logo_path text,
    created_at timestamptz not null default now(),
    status_changed_at timestamptz not null default now(),
    -- Head of the organisation's audit hash chain (see proplink.audit_row).
    audit_seq bigint not null default 0,
    audit_head text not null default ''
);

grant usage on schema public to proplink_app, proplink_platform;
grant usage on schema proplink to proplink_app, proplink_platform;
grant select (id, slug, name, status, brand_colour, logo_path, created_at, status_changed_at)
    on organisation to proplink_app;
grant select, insert, update (name, status, brand_colour, logo_path, status_changed_at)
    on organisation to proplink_platform;

-- Incoming webhook events, stored once by (provider, event id) before any processing.
create table webhook_event (
    provider text not null,
    event_id text not null,
    received_at timestamptz not null default now(),
    payload jsonb not null,
    routed_to uuid references organisation (id),
    note text,
    primary key (provider, event_id)
);
grant select, insert on webhook_event to proplink_app;
grant select on webhook_event to proplink_platform;

create table platform_meta (
    key text primary key,
    value text not null,
    updated_at timestamptz not null default now()
);
grant select on platform_meta to proplink_app, proplink_platform;

-- ---------------------------------------------------------------------------------------------
-- The audit log. A tenant table, append-only: the server role may only read its own
-- organisation's events; rows are written solely by proplink.audit_row() as the owner.

create table audit_event (
    organisation_id uuid not null references organisation (id),
    seq bigint not null,
    table_name text not null,
    record_id text not null,
    operation text not null check (operation in ('insert', 'update', 'delete')),
    changes jsonb not null,
    actor_id uuid,
    actor_kind text not null,
    actor_name text,
    channel text not null,
    request_id text,
    occurred_at timestamptz not null,
    prev_hash text not null,
    hash text not null,
    primary key (organisation_id, seq)
);
create index audit_event_record on audit_event (organisation_id, table_name, record_id, seq);
create index audit_event_time on audit_event (organisation_id, occurred_at);
create index audit_event_actor on audit_event (organisation_id, actor_id, occurred_at);

alter table audit_event enable row level security;
alter table audit_event force row level security;
create policy tenant_isolation on audit_event
    using (organisation_id = nullif(current_setting('app.organisation_id', true), '')::uuid);
create policy platform_access on audit_event for select to proplink_platform using (true);
-- The trigger function runs as the owner, which FORCE subjects to RLS too: let it append.
create policy audit_append on audit_event for insert to current_user with check (true);
grant select on audit_event to proplink_app, proplink_platform;

-- ---------------------------------------------------------------------------------------------
-- The job queue. Jobs belong to an organisation and run inside its tenant transaction.

create table job (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    kind text not null check (length(kind) between 1 and 100),
    payload jsonb not null default '{}',
    idempotency_key text check (length(idempotency_key) between 1 and 200),
    state text not null default 'pending' check (state in ('pending', 'running', 'done', 'dead')),
    attempts integer not null default 0,
    max_attempts integer not null default 8 check (max_attempts between 1 and 100),
    run_at timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz,
    last_error text,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    primary key (organisation_id, id),
    unique (organisation_id, idempotency_key)
);
-- The one index that does not lead with organisation_id: workers claim across organisations.
create index job_ready on job (run_at) where state in ('pending', 'running');
create index job_by_state on job (organisation_id, state, created_at);
select proplink.make_tenant_table('job', audit_updates => false);
grant update on job to proplink_platform;
create trigger job_notify after insert on job
    for each statement execute function proplink.notify_job();

-- ---------------------------------------------------------------------------------------------
-- E-mail: every message sent on an organisation's behalf, and what the provider said of it.

create table email_message (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    to_address text not null check (to_address ~ '^[^@\s]+@[^@\s]+$'),
    to_name text,
    subject text not null check (length(subject) between 1 and 998),
    body_text text not null,
    body_html text,
    category text not null default 'general',
    status text not null default 'queued'
        check (status in ('queued', 'sent', 'delivered', 'deferred', 'bounced', 'dropped', 'failed')),
    status_detail text,
    provider text,
    provider_message_id text,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id)
);
create index email_message_recent on email_message (organisation_id, created_at desc);
create index email_message_provider on email_message (organisation_id, provider, provider_message_id);
select proplink.make_tenant_table('email_message', redact => array['body_text', 'body_html']);

create table email_event (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    message_id uuid not null,
    provider text not null,
    provider_event_id text not null,
    event text not null,
    detail text,
    occurred_at timestamptz not null,
    primary key (organisation_id, id),
    foreign key (organisation_id, message_id) references email_message (organisation_id, id),
    unique (organisation_id, provider, provider_event_id)
);
create index email_event_message on email_event (organisation_id, message_id, occurred_at);
select proplink.make_tenant_table('email_event');
