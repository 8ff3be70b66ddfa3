-- Approval chains (issue 6; docs-spec §2.12), built once and used by every record type that
-- needs sign-off: Settings → Workflows → Approval chains. A chain applies to one record type,
-- with optional conditions (amount over, site, category); its steps are ordered approvers (a
-- named member or anyone holding a role), each optionally only above an amount, signed in
-- order or in any order. A record posts only when its request is complete. Members delegate
-- their approvals for a date range. The Organisation Owner alone may bypass, with a reason.
-- Requests and decisions are audited like every tenant table; decisions are append-only.
--
-- Manual journals: a journal drafted by someone who may post journals and approved by someone
-- who may approve them (or its chain) before it reaches the ledger.

create table approval_chain (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    name text not null check (length(btrim(name)) between 1 and 100),
    record_type text not null check (record_type in ('debtor_invoice', 'credit_note',
        'manual_journal', 'bill', 'payment_batch', 'budget', 'freeholder_payout', 'write_off',
        'announcement')),
    -- Conditions; a chain with none applies to every record of its type.
    amount_over_pence bigint check (amount_over_pence is null or amount_over_pence >= 0),
    site_id uuid,
    category text check (category is null or category ~ '^[a-z0-9_]{1,60}$'),
    mode text not null default 'sequential' check (mode in ('sequential', 'parallel')),
    -- Where several chains match a record, the first by position applies.
    position integer not null default 0,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id)
);
create unique index approval_chain_name on approval_chain (organisation_id, lower(name)) where archived_at is null;
select proplink.make_tenant_table('approval_chain');

create table approval_step (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    chain_id uuid not null,
    position smallint not null check (position between 1 and 20),
    -- A named member, or anyone holding a built-in role or a custom role.
    membership_id uuid,
    builtin_role text check (builtin_role in ('organisation_owner', 'administrator', 'manager',
        'accountant', 'site_manager', 'maintenance_coordinator', 'read_only')),
    custom_role_id uuid,
    -- The step applies only to records above this amount (e.g. the finance director over £20,000).
    amount_over_pence bigint check (amount_over_pence is null or amount_over_pence >= 0),
    primary key (organisation_id, id),
    unique (organisation_id, chain_id, position),
    foreign key (organisation_id, chain_id) references approval_chain (organisation_id, id) on delete cascade,
    foreign key (organisation_id, membership_id) references membership (organisation_id, id),
    foreign key (organisation_id, custom_role_id) references custom_role (organisation_id, id),
    check (num_nonnulls(membership_id, builtin_role, custom_role_id) = 1)
);
select proplink.make_tenant_table('approval_step');

-- A member's approvals signed by another while they are away.
create table approval_delegation (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    from_membership_id uuid not null,
    to_membership_id uuid not null,
    starts_on date not null,
    ends_on date not null,
    revoked_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, from_membership_id) references membership (organisation_id, id),
    foreign key (organisation_id, to_membership_id) references membership (organisation_id, id),
    check (from_membership_id <> to_membership_id),
    check (ends_on >= starts_on and ends_on - starts_on <= 366)
);
create index approval_delegation_to on approval_delegation (organisation_id, to_membership_id);
select proplink.make_tenant_table('approval_delegation');

-- One request per submission of a record; the chain's steps as they applied are copied in, so
-- editing the chain later does not change what a pending record needs.
create table approval_request (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    record_type text not null check (record_type ~ '^[a-z_]{1,40}$'),
    record_id uuid not null,
    chain_id uuid not null,
    mode text not null check (mode in ('sequential', 'parallel')),
    amount_pence bigint not null,
    submitted_by_membership_id uuid,
    status text not null default 'pending' check (status in ('pending', 'approved', 'rejected',
        'bypassed', 'withdrawn')),
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, chain_id) references approval_chain (organisation_id, id),
    foreign key (organisation_id, submitted_by_membership_id) references membership (organisation_id, id),
    check ((status = 'pending') = (decided_at is null))
);
create unique index approval_request_pending on approval_request (organisation_id, record_type, record_id)
    where status = 'pending';
create index approval_request_record on approval_request (organisation_id, record_type, record_id, created_at);
select proplink.make_tenant_table('approval_request');

create table approval_request_step (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    request_id uuid not null,
    position smallint not null,
    membership_id uuid,
    builtin_role text,
    custom_role_id uuid,
    primary key (organisation_id, id),
    unique (organisation_id, request_id, position),
    foreign key (organisation_id, request_id) references approval_request (organisation_id, id),
    foreign key (organisation_id, membership_id) references membership (organisation_id, id),
    foreign key (organisation_id, custom_role_id) references custom_role (organisation_id, id),
    check (num_nonnulls(membership_id, builtin_role, custom_role_id) = 1)
);
select proplink.make_tenant_table('approval_request_step');
revoke update, delete on approval_request_step from proplink_app;

create table approval_decision (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    request_id uuid not null,
    -- The step signed; none for a bypass or a rejection of the whole request.
    step_id uuid,
    decision text not null check (decision in ('approved', 'rejected', 'bypassed')),
    membership_id uuid not null,
    -- When signed as a delegate: whose approval it was.
    on_behalf_of_membership_id uuid,
    decided_by text not null check (length(btrim(decided_by)) between 1 and 200),
    reason text check (reason is null or length(reason) <= 300),
    decided_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, request_id) references approval_request (organisation_id, id),
    foreign key (organisation_id, step_id) references approval_request_step (organisation_id, id),
    foreign key (organisation_id, membership_id) references membership (organisation_id, id),
    foreign key (organisation_id, on_behalf_of_membership_id) references membership (organisation_id, id),
    check (decision = 'approved' or reason is not null)
);
create unique index approval_decision_step_once on approval_decision (organisation_id, step_id)
    where step_id is not null;
select proplink.make_tenant_table('approval_decision');
revoke update, delete on approval_decision from proplink_app;

-- ---------------------------------------------------------------------------------------------
-- Manual journals.

create table manual_journal (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    journal_date date not null check (journal_date between '2000-01-01' and '2100-12-31'),
    description text not null check (length(btrim(description)) between 1 and 300),
    status text not null default 'draft' check (status in ('draft', 'awaiting_approval', 'posted')),
    -- The ledger journal once posted.
    journal_id uuid,
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    submitted_by text,
    submitted_at timestamptz,
    approved_by text,
    approved_at timestamptz,
    returned_reason text check (returned_reason is null or length(returned_reason) <= 300),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, site_id, journal_id) references journal (organisation_id, site_id, id),
    check ((status = 'posted') = (journal_id is not null))
);
create index manual_journal_site on manual_journal (organisation_id, site_id, status, journal_date);
select proplink.make_tenant_table('manual_journal');

create table manual_journal_line (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    manual_journal_id uuid not null,
    site_id uuid not null,
    line_no smallint not null check (line_no between 1 and 1000),
    account_id uuid not null,
    fund_id uuid not null,
    amount_pence bigint not null check (amount_pence <> 0 and abs(amount_pence) <= 1000000000000),
    unit_id uuid,
    description text check (description is null or length(description) <= 300),
    primary key (organisation_id, id),
    unique (organisation_id, manual_journal_id, line_no),
    foreign key (organisation_id, site_id, manual_journal_id) references manual_journal (organisation_id, site_id, id)
        on delete cascade,
    foreign key (organisation_id, site_id, account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id)
);
select proplink.make_tenant_table('manual_journal_line');

-- A manual journal's lines change only while it is a draft; a posted one is never deleted.
create function proplink.guard_manual_journal_lines() returns trigger
language plpgsql as $$
declare
    v_row record;
    v_status text;
begin
    v_row := case when tg_op = 'DELETE' then old else new end;
    if v_row.organisation_id is distinct from nullif(current_setting('app.organisation_id', true), '')::uuid then
        return v_row;
    end if;
    select status into v_status from manual_journal
     where organisation_id = v_row.organisation_id and id = v_row.manual_journal_id;
    if v_status is not null and v_status <> 'draft' then
        raise exception 'the lines of a submitted journal do not change' using errcode = '23514';
    end if;
    return v_row;
end
$$;
create trigger manual_journal_line_draft_only before insert or update or delete on manual_journal_line
    for each row execute function proplink.guard_manual_journal_lines();

create function proplink.guard_manual_journal() returns trigger
language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        if old.status = 'posted' then
            raise exception 'a posted journal is reversed, never deleted' using errcode = '23514';
        end if;
        return old;
    end if;
    if old.status = 'posted' then
        raise exception 'a posted journal does not change' using errcode = '23514';
    end if;
    return new;
end
$$;
create trigger manual_journal_posted_guard before update or delete on manual_journal
    for each row execute function proplink.guard_manual_journal();
