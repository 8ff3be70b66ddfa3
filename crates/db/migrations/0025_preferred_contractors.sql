-- Preferred contractors (docs-spec §2.7 "preferred lists"): organisation-wide, for a site, for
-- a service category, or both. A ranking, not a restriction: preferred contractors are listed
-- first, with a star, when inviting to quote.
create table vendor_preference (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    vendor_id uuid not null,
    site_id uuid,
    trade text check (trade is null or trade in ('plumbing', 'electrical', 'heating_gas', 'roofing',
        'fire_safety', 'lifts', 'cleaning', 'gardening', 'pest_control', 'locksmiths',
        'general_repairs', 'decoration', 'building_work')),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id) on delete cascade,
    foreign key (organisation_id, site_id) references site (organisation_id, id) on delete cascade
);
create unique index vendor_preference_once on vendor_preference
    (organisation_id, vendor_id, coalesce(site_id, '00000000-0000-0000-0000-000000000000'), coalesce(trade, ''));
select proplink.make_tenant_table('vendor_preference');
