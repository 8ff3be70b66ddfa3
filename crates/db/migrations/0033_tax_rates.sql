-- Tax rates per organisation (docs-spec §2.6): the five seeded treatments (standard 20 %,
-- reduced 5 %, zero, exempt, outside the scope) and the organisation's own, each with a rate in
-- basis points and the dates it applies between. Documents record the rate they used.
create table tax_rate (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    treatment text not null check (treatment in ('standard', 'reduced', 'zero', 'exempt',
        'outside_scope', 'custom')),
    name text not null check (length(btrim(name)) between 1 and 60),
    basis_points integer not null check (basis_points between 0 and 10000),
    valid_from date not null default '2000-01-01',
    valid_to date,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    check (valid_to is null or valid_to >= valid_from),
    check (treatment in ('standard', 'reduced', 'custom') or basis_points = 0)
);
create unique index tax_rate_name on tax_rate (organisation_id, lower(name));
create unique index tax_rate_seeded on tax_rate (organisation_id, treatment) where treatment <> 'custom';
select proplink.make_tenant_table('tax_rate');
