-- Settings → Tickets (docs-spec §2.7): each category's default priority, default assignee,
-- service-level overrides and whether residents may choose it on ResidencePort; categories
-- the organisation adds, renames, reorders and archives; and routing rules that assign and
-- prioritise new tickets by site, category, sender's domain or a word in the subject (first
-- match wins). The eight standard categories need no row until the organisation changes one.
create function proplink.standard_ticket_categories() returns text[]
language sql immutable parallel safe as $$
    select array['maintenance', 'complaint', 'query', 'antisocial_behaviour', 'compliance',
        'insurance', 'account', 'other']::text[]
$$;

create table ticket_category (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    key text not null check (key ~ '^[a-z0-9][a-z0-9_]{0,59}$'),
    name text not null check (length(btrim(name)) between 1 and 60),
    default_priority text check (default_priority is null
        or default_priority in ('low', 'medium', 'high', 'urgent')),
    default_assignee_id uuid,
    -- Service-level overrides for every priority in the category: whole clock hours (urgent
    -- style) or working days.
    response_hours integer check (response_hours is null or response_hours between 1 and 720),
    response_working_days integer check (response_working_days is null
        or response_working_days between 1 and 60),
    resolution_hours integer check (resolution_hours is null or resolution_hours between 1 and 720),
    resolution_working_days integer check (resolution_working_days is null
        or resolution_working_days between 1 and 250),
    on_residenceport boolean not null default true,
    position integer not null default 100 check (position between 0 and 10000),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, key),
    foreign key (organisation_id, default_assignee_id) references membership (organisation_id, id),
    check (num_nonnulls(response_hours, response_working_days) <= 1),
    check (num_nonnulls(resolution_hours, resolution_working_days) <= 1)
);
create unique index ticket_category_name on ticket_category (organisation_id, lower(name));
select proplink.make_tenant_table('ticket_category');

create table ticket_routing_rule (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    position integer not null check (position between 0 and 100000),
    -- Conditions (all that are set must match; at least one is set).
    site_id uuid,
    category text check (category is null or category ~ '^[a-z0-9][a-z0-9_]{0,59}$'),
    sender_domain text check (sender_domain is null or sender_domain ~ '^[a-z0-9.-]{1,253}$'),
    subject_keyword text check (subject_keyword is null or length(btrim(subject_keyword)) between 1 and 60),
    -- Actions (at least one).
    assign_to_id uuid,
    set_priority text check (set_priority is null or set_priority in ('low', 'medium', 'high', 'urgent')),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id) on delete cascade,
    foreign key (organisation_id, assign_to_id) references membership (organisation_id, id),
    check (num_nonnulls(site_id, category, sender_domain, subject_keyword) >= 1),
    check (num_nonnulls(assign_to_id, set_priority) >= 1)
);
create index ticket_routing_rule_order on ticket_routing_rule (organisation_id, position);
select proplink.make_tenant_table('ticket_routing_rule');

-- A ticket's category is a standard one or the organisation's own.
create function proplink.check_ticket_category() returns trigger
language plpgsql as $$
begin
    if new.category = any (proplink.standard_ticket_categories())
       or (tg_op = 'UPDATE' and new.category is not distinct from old.category) then
        return new;
    end if;
    if nullif(current_setting('app.organisation_id', true), '') is not null
       and new.organisation_id::text <> current_setting('app.organisation_id', true) then
        return new;
    end if;
    if not exists (select from ticket_category c
                    where c.organisation_id = new.organisation_id and c.key = new.category) then
        raise exception 'unknown ticket category %', new.category using errcode = '23503';
    end if;
    return new;
end
$$;
alter table ticket drop constraint ticket_category_check,
    add constraint ticket_category_check check (category ~ '^[a-z0-9][a-z0-9_]{0,59}$');
create trigger ticket_category_known before insert or update of category on ticket
    for each row execute function proplink.check_ticket_category();
