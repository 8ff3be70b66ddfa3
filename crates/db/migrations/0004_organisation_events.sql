-- What PropLink's operators do to an organisation itself (creating it, changing its status) is
-- recorded in that organisation's own audit chain, as the platform role.
create table organisation_event (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    kind text not null check (kind in ('created', 'status_changed')),
    detail jsonb not null default '{}',
    occurred_at timestamptz not null default now(),
    primary key (organisation_id, id)
);
select proplink.make_tenant_table('organisation_event');
grant insert on organisation_event to proplink_platform;
