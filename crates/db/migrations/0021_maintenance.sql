-- Planned maintenance and service agreements (issue 5; docs-spec §2.7 "Maintenance events",
-- "Compliance matrix", "Service agreements"): recurring obligations per site (or a building or
-- communal space on it), each completion with its evidence, work orders raised for them, and
-- contracts with vendors with their renewal dates. The daily operations sweep (worker) raises
-- due work orders and sends expiry and renewal reminders; the *_reminded_* columns make it
-- idempotent.

create table maintenance_event (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    building_id uuid,
    space_id uuid,
    name text not null check (length(btrim(name)) between 1 and 200),
    -- The obligation it meets (gas_safety, eicr, ...), for the compliance matrix's columns.
    template_key text check (template_key is null or template_key ~ '^[a-z_]{1,40}$'),
    compliance boolean not null default false,
    rrule text not null check (rrule ~ '^FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(;INTERVAL=[0-9]{1,3})?$'),
    due_basis text not null check (due_basis in ('rolling', 'anchored')),
    anchor_date date not null,
    next_due date not null,
    responsible_name text check (responsible_name is null or length(responsible_name) <= 200),
    vendor_id uuid,
    trade text check (trade is null or trade in ('plumbing', 'electrical', 'heating_gas', 'roofing',
        'fire_safety', 'lifts', 'cleaning', 'gardening', 'pest_control', 'locksmiths',
        'general_repairs', 'decoration', 'building_work')),
    -- Raise a work order this many days before each due date (null: never automatically).
    raise_days_before integer check (raise_days_before is null or raise_days_before between 0 and 90),
    last_completed_on date,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, building_id) references building (organisation_id, id),
    foreign key (organisation_id, space_id) references space (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    check (raise_days_before is null or trade is not null)
);
create index maintenance_event_site on maintenance_event (organisation_id, site_id, next_due);
create index maintenance_event_due on maintenance_event (organisation_id, next_due)
    where archived_at is null;
select proplink.make_tenant_table('maintenance_event');

create table maintenance_completion (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    event_id uuid not null,
    due_on date not null,
    completed_on date not null,
    notes text check (notes is null or length(notes) <= 2000),
    work_order_id uuid,
    recorded_by text not null,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, event_id) references maintenance_event (organisation_id, id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id)
);
create index maintenance_completion_event on maintenance_completion (organisation_id, event_id, completed_on desc);
select proplink.make_tenant_table('maintenance_completion');
revoke update, delete on maintenance_completion from proplink_app;

-- A work order raised for an event's due date: at most one per event and date.
alter table work_order add column maintenance_event_id uuid;
alter table work_order add column maintenance_due_on date;
alter table work_order add foreign key (organisation_id, maintenance_event_id)
    references maintenance_event (organisation_id, id);
alter table work_order add check ((maintenance_event_id is null) = (maintenance_due_on is null));
create unique index work_order_maintenance_due on work_order (organisation_id, maintenance_event_id, maintenance_due_on)
    where maintenance_event_id is not null;

-- Service agreements with vendors.
create table service_agreement (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    vendor_id uuid not null,
    title text not null check (length(btrim(title)) between 1 and 200),
    scope text check (scope is null or length(scope) <= 5000),
    pricing_model text not null check (pricing_model in ('fixed_fee', 'recurring_fee',
        'schedule_of_rates', 'time_and_materials')),
    -- Yearly value, VAT included, where the pricing model has one.
    annual_value_pence bigint check (annual_value_pence is null or annual_value_pence between 0 and 10000000000),
    starts_on date not null,
    ends_on date,
    notice_days integer not null default 30 check (notice_days between 0 and 365),
    auto_renew boolean not null default false,
    manager_name text not null check (length(btrim(manager_name)) between 1 and 200),
    manager_email text check (manager_email is null or manager_email ~ '^[^@\s]+@[^@\s]+$'),
    renewal_reminded_for date,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    check (ends_on is null or ends_on >= starts_on)
);
create index service_agreement_vendor on service_agreement (organisation_id, vendor_id);
create index service_agreement_ends on service_agreement (organisation_id, ends_on) where archived_at is null;
select proplink.make_tenant_table('service_agreement');

create table service_agreement_site (
    organisation_id uuid not null references organisation (id),
    agreement_id uuid not null,
    site_id uuid not null,
    primary key (organisation_id, agreement_id, site_id),
    foreign key (organisation_id, agreement_id) references service_agreement (organisation_id, id)
        on delete cascade,
    foreign key (organisation_id, site_id) references site (organisation_id, id)
);
create index service_agreement_site_site on service_agreement_site (organisation_id, site_id);
select proplink.make_tenant_table('service_agreement_site');

-- Contractor documents: when the 60-day expiry reminder went out.
alter table vendor_document add column expiry_reminded_at timestamptz;

-- Evidence of a completion, and the signed contract of an agreement, are stored files too.
alter table stored_file add column maintenance_completion_id uuid;
alter table stored_file add column service_agreement_id uuid;
alter table stored_file add foreign key (organisation_id, maintenance_completion_id)
    references maintenance_completion (organisation_id, id);
alter table stored_file add foreign key (organisation_id, service_agreement_id)
    references service_agreement (organisation_id, id);
alter table stored_file drop constraint stored_file_one_owner;
alter table stored_file add constraint stored_file_one_owner check (num_nonnulls(issue_id,
    work_order_id, quotation_id, vendor_document_id, maintenance_completion_id, service_agreement_id) = 1);
alter table stored_file drop constraint stored_file_purpose_check;
alter table stored_file add constraint stored_file_purpose_check check (purpose in ('photo',
    'quotation', 'certificate', 'completion_certificate', 'document', 'evidence', 'contract'));
