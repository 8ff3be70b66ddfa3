-- Tickets (issue 5; docs-spec §2.7 "Tickets"): conversations with a resident or another
-- contact, with threaded messages (to the reporter, internal notes, system events), an
-- assignee, service levels by priority (the clock pauses while waiting on the customer), and
-- links to the issue and work order they led to.

alter table reference_counter drop constraint reference_counter_kind_check;
alter table reference_counter add constraint reference_counter_kind_check
    check (kind in ('issue', 'work_order', 'ticket'));

create table ticket (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    reference text not null check (reference ~ '^TKT-[0-9]{4}-[0-9]{4,}$'),
    site_id uuid,
    unit_id uuid,
    subject text not null check (length(btrim(subject)) between 1 and 200),
    category text not null check (category in ('maintenance', 'complaint', 'query',
        'antisocial_behaviour', 'compliance', 'insurance', 'account', 'other')),
    priority text not null check (priority in ('low', 'medium', 'high', 'urgent')),
    status text not null default 'open' check (status in ('open', 'waiting_on_customer',
        'resolved', 'closed')),
    closure_reason text check (closure_reason is null or closure_reason in ('resolved',
        'no_response', 'duplicate', 'out_of_scope')),
    reporter_contact_id uuid,
    reporter_name text not null check (length(btrim(reporter_name)) between 1 and 200),
    reporter_email text check (reporter_email is null or reporter_email ~ '^[^@\s]+@[^@\s]+$'),
    channel text not null check (channel in ('admin', 'residenceport', 'facility_report', 'email', 'phone')),
    assignee_id uuid,
    response_due_at timestamptz not null,
    resolution_due_at timestamptz not null,
    first_responded_at timestamptz,
    -- While waiting on the customer the clock stops; the due times move on when it restarts.
    paused_since timestamptz,
    issue_id uuid,
    work_order_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    closed_at timestamptz,
    primary key (organisation_id, id),
    unique (organisation_id, reference),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, unit_id) references unit (organisation_id, id),
    foreign key (organisation_id, reporter_contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, assignee_id) references membership (organisation_id, id),
    foreign key (organisation_id, issue_id) references issue (organisation_id, id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id),
    check ((status = 'closed') = (closure_reason is not null)),
    check ((status = 'waiting_on_customer') = (paused_since is not null))
);
create index ticket_queue on ticket (organisation_id, status, created_at desc, id desc);
create index ticket_assignee on ticket (organisation_id, assignee_id, status);
create index ticket_work_order on ticket (organisation_id, work_order_id) where work_order_id is not null;
select proplink.make_tenant_table('ticket');

create table ticket_message (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    ticket_id uuid not null,
    kind text not null check (kind in ('message', 'internal_note', 'system')),
    -- Who wrote it: staff, the reporter, or PropLink itself for system events.
    author_kind text not null check (author_kind in ('staff', 'reporter', 'system')),
    author_name text not null check (length(btrim(author_name)) between 1 and 200),
    body text not null check (length(btrim(body)) between 1 and 10000),
    created_at timestamptz not null default now(),
    edited_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, ticket_id) references ticket (organisation_id, id)
);
create index ticket_message_thread on ticket_message (organisation_id, ticket_id, created_at);
select proplink.make_tenant_table('ticket_message');
revoke delete on ticket_message from proplink_app;
