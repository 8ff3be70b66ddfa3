-- Portfolio and people: estates → sites → buildings → floors → units → spaces; contacts with
-- their e-mails, phones and roles; management-company officers; leases (who held which unit
-- when) and occupancy; vendors with encrypted bank details; CSV import runs; and one search
-- index over all of them. Every table follows DESIGN.md §2 (composite keys and foreign keys,
-- RLS, audit), and the search index is kept by triggers, so no write path can forget it.

-- Trusted extensions (the database's owner may create them): trigram matching for search, and
-- GiST over plain equality for the "no two holdings of one unit overlap" rule.
create extension if not exists pg_trgm;
create extension if not exists btree_gist;

-- ---------------------------------------------------------------------------------------------
-- Contacts come first: estates, sites and vendors point at them.

create table contact (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    kind text not null default 'person' check (kind in ('person', 'company')),
    -- An optional reference from the organisation's old system, the key re-imports match on.
    reference text check (reference is null or length(btrim(reference)) between 1 and 40),
    title text check (title is null or length(title) <= 20),
    first_name text check (first_name is null or length(first_name) <= 100),
    last_name text check (last_name is null or length(last_name) <= 100),
    company_name text check (company_name is null or length(company_name) <= 200),
    company_number text check (company_number is null or company_number ~ '^[A-Z0-9]{8}$'),
    display_name text not null check (length(btrim(display_name)) between 1 and 300),
    address_line_1 text check (address_line_1 is null or length(address_line_1) <= 200),
    address_line_2 text check (address_line_2 is null or length(address_line_2) <= 200),
    city text check (city is null or length(city) <= 100),
    postcode text check (postcode is null or postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    country text not null default 'United Kingdom' check (length(country) between 1 and 100),
    correspondence text not null default 'email' check (correspondence in ('email', 'post')),
    notes text check (notes is null or length(notes) <= 2000),
    -- Set when this record was merged into another; the merged record stays for history.
    merged_into_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, merged_into_id) references contact (organisation_id, id),
    check (merged_into_id is null or merged_into_id <> id),
    check (kind = 'company' and company_name is not null or kind = 'person' and last_name is not null)
);
create unique index contact_reference on contact (organisation_id, lower(reference))
    where reference is not null;
create index contact_name on contact (organisation_id, lower(display_name), id);
create index contact_merged_into on contact (organisation_id, merged_into_id)
    where merged_into_id is not null;
select proplink.make_tenant_table('contact');

create table contact_email (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    contact_id uuid not null,
    email text not null check (email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 254),
    position smallint not null default 0,
    primary key (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id) on delete cascade
);
create unique index contact_email_once on contact_email (organisation_id, contact_id, lower(email));
create index contact_email_lookup on contact_email (organisation_id, lower(email));
select proplink.make_tenant_table('contact_email');

create table contact_phone (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    contact_id uuid not null,
    phone text not null check (phone ~ '^\+?[0-9]{10,15}$'),
    position smallint not null default 0,
    primary key (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id) on delete cascade
);
create unique index contact_phone_once on contact_phone (organisation_id, contact_id, phone);
select proplink.make_tenant_table('contact_phone');

create table contact_role (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    contact_id uuid not null,
    role text not null check (role in ('leaseholder', 'tenant', 'freeholder', 'director',
                                       'vendor', 'staff', 'other')),
    primary key (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id) on delete cascade
);
create unique index contact_role_once on contact_role (organisation_id, contact_id, role);
select proplink.make_tenant_table('contact_role');

-- People holding positions (director, secretary) in a company contact, such as an RMC.
create table company_officer (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    company_id uuid not null,
    person_id uuid not null,
    position text not null default 'director' check (position in ('director', 'secretary', 'other')),
    appointed_on date,
    resigned_on date,
    primary key (organisation_id, id),
    foreign key (organisation_id, company_id) references contact (organisation_id, id) on delete cascade,
    foreign key (organisation_id, person_id) references contact (organisation_id, id) on delete cascade,
    check (company_id <> person_id),
    check (resigned_on is null or appointed_on is null or resigned_on >= appointed_on)
);
create index company_officer_company on company_officer (organisation_id, company_id);
create index company_officer_person on company_officer (organisation_id, person_id);
select proplink.make_tenant_table('company_officer');

-- ---------------------------------------------------------------------------------------------
-- Properties.

alter table estate
    add column address_line_1 text check (address_line_1 is null or length(address_line_1) <= 200),
    add column address_line_2 text check (address_line_2 is null or length(address_line_2) <= 200),
    add column city text check (city is null or length(city) <= 100),
    add column postcode text check (postcode is null or postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    add column freeholder_id uuid,
    add column updated_at timestamptz not null default now(),
    add foreign key (organisation_id, freeholder_id) references contact (organisation_id, id);

alter table site
    add column address_line_1 text check (address_line_1 is null or length(address_line_1) <= 200),
    add column address_line_2 text check (address_line_2 is null or length(address_line_2) <= 200),
    add column city text check (city is null or length(city) <= 100),
    add column postcode text check (postcode is null or postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    add column latitude double precision check (latitude is null or latitude between 49 and 61),
    add column longitude double precision check (longitude is null or longitude between -9 and 3),
    add column geocoded_at timestamptz,
    add column modules text[] not null default '{bm}'
        check (modules <@ array['bm', 'fm', 'lt', 'hrb']::text[]),
    -- The landlord (Landlord and Tenant Act 1987 ss.47–48): a name and an address in England and
    -- Wales must be on record before a demand can be issued (checked where demands are issued;
    -- the England-and-Wales test is the postcode's, in Rust).
    add column landlord_name text check (landlord_name is null or length(btrim(landlord_name)) between 1 and 200),
    add column landlord_address_line_1 text check (landlord_address_line_1 is null or length(landlord_address_line_1) <= 200),
    add column landlord_address_line_2 text check (landlord_address_line_2 is null or length(landlord_address_line_2) <= 200),
    add column landlord_city text check (landlord_city is null or length(landlord_city) <= 100),
    add column landlord_postcode text check (landlord_postcode is null or landlord_postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    add column management_company_id uuid,
    add column management_company_kind text check (management_company_kind in ('rmc', 'rtm')),
    add column notes text check (notes is null or length(notes) <= 2000),
    add column updated_at timestamptz not null default now(),
    add foreign key (organisation_id, management_company_id) references contact (organisation_id, id),
    add check ((management_company_id is null) = (management_company_kind is null));

create table building (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    reference text not null check (reference ~ '^[A-Za-z0-9][A-Za-z0-9 ./-]{0,29}$'),
    name text not null check (length(btrim(name)) between 1 and 200),
    height_cm integer check (height_cm is null or height_cm between 0 and 100000),
    storeys integer check (storeys is null or storeys between 1 and 200),
    residential_units integer check (residential_units is null or residential_units between 0 and 10000),
    build_year integer check (build_year is null or build_year between 1600 and 2100),
    construction_type text check (construction_type in ('concrete', 'timber_frame', 'masonry', 'steel', 'other')),
    -- The Building Safety Act 2022 test for a higher-risk building in occupation: at least 18 m
    -- or at least 7 storeys, and at least 2 residential units. An override needs its reason.
    hrb_override boolean,
    hrb_override_reason text,
    is_hrb boolean not null generated always as (
        coalesce(hrb_override,
                 (coalesce(height_cm, 0) >= 1800 or coalesce(storeys, 0) >= 7)
                 and coalesce(residential_units, 0) >= 2)) stored,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    check ((hrb_override is null) = (hrb_override_reason is null)),
    check (hrb_override_reason is null or length(btrim(hrb_override_reason)) between 1 and 500)
);
create index site_management_company on site (organisation_id, management_company_id)
    where management_company_id is not null;

create unique index building_reference on building (organisation_id, site_id, lower(reference));
create unique index building_on_site on building (organisation_id, site_id, id);
select proplink.make_tenant_table('building');

create table floor (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    building_id uuid not null,
    name text not null check (length(btrim(name)) between 1 and 40),
    position integer not null default 0,
    primary key (organisation_id, id),
    foreign key (organisation_id, building_id) references building (organisation_id, id) on delete cascade
);
create unique index floor_name on floor (organisation_id, building_id, lower(name));
create unique index floor_in_building on floor (organisation_id, building_id, id);
select proplink.make_tenant_table('floor');

create table unit (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    building_id uuid,
    floor_id uuid,
    reference text not null check (reference ~ '^[A-Za-z0-9][A-Za-z0-9 ./-]{0,29}$'),
    name text not null check (length(btrim(name)) between 1 and 200),
    unit_type text not null default 'flat'
        check (unit_type in ('flat', 'house', 'commercial', 'parking', 'storage', 'other')),
    status text not null default 'active' check (status in ('active', 'vacant', 'void')),
    address_line_1 text check (address_line_1 is null or length(address_line_1) <= 200),
    address_line_2 text check (address_line_2 is null or length(address_line_2) <= 200),
    city text check (city is null or length(city) <= 100),
    postcode text check (postcode is null or postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    uprn text check (uprn is null or uprn ~ '^[0-9]{1,12}$'),
    -- Hundredths of a square metre: apportionment later divides by these exactly.
    area_cm2 bigint check (area_cm2 is null or area_cm2 between 0 and 100000000),
    parking_spaces integer check (parking_spaces is null or parking_spaces between 0 and 99),
    list_key text collate "C" not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    -- A unit's building is on the unit's own site, and its floor is in that building.
    foreign key (organisation_id, site_id, building_id) references building (organisation_id, site_id, id),
    foreign key (organisation_id, building_id, floor_id) references floor (organisation_id, building_id, id),
    check (floor_id is null or building_id is not null)
);
create unique index unit_reference on unit (organisation_id, site_id, lower(reference));
create index unit_list on unit (organisation_id, list_key, id);
-- The live list: a page and the count come from this index alone (index-only scans).
create index unit_list_live on unit (organisation_id, list_key, id)
    include (site_id, building_id, unit_type) where archived_at is null;
create index unit_site_list on unit (organisation_id, site_id, list_key, id);

-- The unit list's order, "site reference, then unit reference", kept on the unit so that a page
-- of 100,000 units is read from one index instead of sorted.
create or replace function proplink.unit_list_key() returns trigger
language plpgsql as $fn$
begin
    -- A site this organisation cannot see leaves the key blank; the foreign key refuses the row.
    new.list_key := coalesce((select lower(s.reference) from site s
                               where s.organisation_id = new.organisation_id and s.id = new.site_id), '')
                    || chr(1) || lower(new.reference);
    return new;
end
$fn$;
create trigger list_key before insert or update of site_id, reference on unit
    for each row execute function proplink.unit_list_key();

create or replace function proplink.site_reference_moved() returns trigger
language plpgsql as $fn$
begin
    update unit set site_id = site_id
     where organisation_id = new.organisation_id and site_id = new.id;
    return null;
end
$fn$;
create trigger units_follow_reference after update of reference on site
    for each row when (old.reference is distinct from new.reference)
    execute function proplink.site_reference_moved();
create index unit_building on unit (organisation_id, building_id) where building_id is not null;
select proplink.make_tenant_table('unit');

create table space (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    building_id uuid,
    floor_id uuid,
    name text not null check (length(btrim(name)) between 1 and 200),
    kind text not null default 'other' check (kind in ('stairwell', 'corridor', 'bin_store', 'roof',
        'plant_room', 'car_park', 'garden', 'reception', 'lift', 'other')),
    notes text check (notes is null or length(notes) <= 2000),
    created_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, site_id, building_id) references building (organisation_id, site_id, id),
    foreign key (organisation_id, building_id, floor_id) references floor (organisation_id, building_id, id),
    check (floor_id is null or building_id is not null)
);
create unique index space_name on space (organisation_id, site_id, lower(name));
select proplink.make_tenant_table('space');

-- ---------------------------------------------------------------------------------------------
-- Leases and occupancy.

-- One row per period a set of holders held a unit's lease. A change of ownership ends the
-- current row on its effective date and starts another, so history is kept; two periods of one
-- unit never overlap (the exclusion constraint). `ends_on` is exclusive: the new owner's
-- `starts_on`.
create table lease (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    unit_id uuid not null,
    starts_on date not null,
    ends_on date,
    term_start date,
    term_years integer check (term_years is null or term_years between 1 and 999),
    ground_rent_pence bigint check (ground_rent_pence is null or ground_rent_pence between 0 and 100000000),
    ground_rent_review text check (ground_rent_review is null or length(ground_rent_review) <= 200),
    -- The date the landlord's address-for-service notice (LTA 1987 s.48) was given.
    s48_notice_on date,
    notes text check (notes is null or length(notes) <= 2000),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, unit_id) references unit (organisation_id, id) on delete cascade,
    check (ends_on is null or ends_on > starts_on),
    constraint lease_no_overlap exclude using gist (
        organisation_id with =, unit_id with =, daterange(starts_on, ends_on, '[)') with &&)
);
create index lease_unit on lease (organisation_id, unit_id, starts_on desc);
select proplink.make_tenant_table('lease');

create table lease_holder (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    lease_id uuid not null,
    contact_id uuid not null,
    position smallint not null default 0,
    primary key (organisation_id, id),
    foreign key (organisation_id, lease_id) references lease (organisation_id, id) on delete cascade,
    foreign key (organisation_id, contact_id) references contact (organisation_id, id)
);
create unique index lease_holder_once on lease_holder (organisation_id, lease_id, contact_id);
create index lease_holder_contact on lease_holder (organisation_id, contact_id);
select proplink.make_tenant_table('lease_holder');

create table occupancy (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    unit_id uuid not null,
    contact_id uuid not null,
    kind text not null default 'tenant' check (kind in ('tenant', 'occupier')),
    starts_on date not null,
    ends_on date,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, unit_id) references unit (organisation_id, id) on delete cascade,
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    check (ends_on is null or ends_on > starts_on),
    constraint occupancy_no_overlap exclude using gist (
        organisation_id with =, unit_id with =, contact_id with =,
        daterange(starts_on, ends_on, '[)') with &&)
);
create index occupancy_unit on occupancy (organisation_id, unit_id, starts_on desc);
create index occupancy_contact on occupancy (organisation_id, contact_id);
select proplink.make_tenant_table('occupancy');

-- Which sites a contact is connected to (held or occupied a unit there, or officer of a site's
-- management company): what site-scoped staff may see of the directory.
create view contact_site with (security_invoker = true) as
    select l.organisation_id, h.contact_id, u.site_id
      from lease_holder h
      join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
      join unit u on u.organisation_id = l.organisation_id and u.id = l.unit_id
    union all
    select o.organisation_id, o.contact_id, u.site_id
      from occupancy o
      join unit u on u.organisation_id = o.organisation_id and u.id = o.unit_id
    union all
    select s.organisation_id, s.management_company_id, s.id
      from site s where s.management_company_id is not null
    union all
    select s.organisation_id, f.person_id, s.id
      from site s join company_officer f
        on f.organisation_id = s.organisation_id and f.company_id = s.management_company_id;
grant select on contact_site to proplink_app, proplink_platform;

-- ---------------------------------------------------------------------------------------------
-- Vendors (contractors and suppliers). Bank details are sealed in Rust (AES-256-GCM with the
-- data key, never stored here) and only their last digits are kept in the clear, for masking.

create table vendor (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    name text not null check (length(btrim(name)) between 1 and 200),
    trade text not null check (length(btrim(trade)) between 1 and 100),
    contact_name text check (contact_name is null or length(contact_name) <= 200),
    email text check (email is null or email ~ '^[^@\s]+@[^@\s]+$'),
    phone text check (phone is null or phone ~ '^\+?[0-9]{10,15}$'),
    company_number text check (company_number is null or company_number ~ '^[A-Z0-9]{8}$'),
    vat_number text check (vat_number is null or vat_number ~ '^GB([0-9]{9}|[0-9]{12}|GD[0-9]{3}|HA[0-9]{3})$'),
    address_line_1 text check (address_line_1 is null or length(address_line_1) <= 200),
    address_line_2 text check (address_line_2 is null or length(address_line_2) <= 200),
    city text check (city is null or length(city) <= 100),
    postcode text check (postcode is null or postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    bank_account_name text check (bank_account_name is null or length(bank_account_name) <= 200),
    bank_sealed bytea,
    bank_last_digits text check (bank_last_digits is null or bank_last_digits ~ '^[0-9]{2}/[0-9]{4}$'),
    notes text check (notes is null or length(notes) <= 2000),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    archived_at timestamptz,
    primary key (organisation_id, id),
    check ((bank_sealed is null) = (bank_last_digits is null))
);
create unique index vendor_name on vendor (organisation_id, lower(name));
-- The audit log keeps the sealed bytes out of its change sets.
select proplink.make_tenant_table('vendor', array['bank_sealed']);

-- ---------------------------------------------------------------------------------------------
-- CSV imports: one row per uploaded file, from preview to commit. The file itself is kept for
-- the job that commits a large one.

create table import_run (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    kind text not null check (kind in ('sites', 'buildings', 'units', 'contacts', 'leases')),
    file_name text not null check (length(file_name) between 1 and 255),
    file_bytes bytea not null,
    row_count integer not null check (row_count >= 0),
    status text not null default 'previewed'
        check (status in ('previewed', 'queued', 'running', 'committed', 'failed', 'cancelled')),
    created_count integer not null default 0,
    updated_count integer not null default 0,
    unchanged_count integer not null default 0,
    processed_rows integer not null default 0,
    error text,
    created_by text not null,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    primary key (organisation_id, id)
);
create index import_run_recent on import_run (organisation_id, created_at desc);
-- Progress updates are not audit events; the run's creation and its outcome are.
select proplink.make_tenant_table('import_run', array['file_bytes'], false);
create trigger audit_outcome after update of status on import_run
    for each row when (old.status is distinct from new.status)
    execute function proplink.audit_row('file_bytes');

-- ---------------------------------------------------------------------------------------------
-- One search index over contacts, units, sites, buildings and vendors, kept by triggers.

create table search_entry (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    kind text not null check (kind in ('contact', 'unit', 'site', 'building', 'vendor')),
    -- The site a unit, building or site belongs to (null for contacts and vendors).
    site_id uuid,
    title text not null,
    detail text not null default '',
    body text not null,
    archived boolean not null default false,
    primary key (organisation_id, id)
);
create index search_entry_trgm on search_entry using gist (organisation_id, body gist_trgm_ops);
create index search_entry_site on search_entry (organisation_id, site_id) where site_id is not null;
create index search_entry_kind on search_entry (organisation_id, kind);
select proplink.make_tenant_table('search_entry');
-- Derived from audited tables and rebuilt by their triggers: auditing it too would only repeat
-- their events (lint.rs lists the exemption).
drop trigger audit on search_entry;

create or replace function proplink.search_text(variadic parts text[]) returns text
language sql immutable parallel safe as $fn$
    select lower(array_to_string(array_remove(parts, null), ' '))
$fn$;

-- The index is kept by statement-level triggers over transition tables: one set-based
-- upsert per statement, so an import of 5,000 rows indexes them in one go.
create or replace function proplink.index_sites() returns trigger
language plpgsql as $fn$
begin
    if tg_op = 'DELETE' then
        delete from search_entry e using old_rows o
         where e.organisation_id = o.organisation_id and e.id = o.id;
        return null;
    end if;
    insert into search_entry (organisation_id, id, kind, site_id, title, detail, body, archived)
    select n.organisation_id, n.id, 'site', n.id, n.name, concat_ws(', ', n.reference, n.postcode),
           proplink.search_text(n.name, n.reference, n.address_line_1, n.city, n.postcode),
           n.archived_at is not null
      from new_rows n
    on conflict (organisation_id, id) do update
       set title = excluded.title, detail = excluded.detail, body = excluded.body,
           archived = excluded.archived;
    return null;
end
$fn$;

create or replace function proplink.index_buildings() returns trigger
language plpgsql as $fn$
begin
    if tg_op = 'DELETE' then
        delete from search_entry e using old_rows o
         where e.organisation_id = o.organisation_id and e.id = o.id;
        return null;
    end if;
    insert into search_entry (organisation_id, id, kind, site_id, title, detail, body, archived)
    select n.organisation_id, n.id, 'building', n.site_id, n.name, n.reference,
           proplink.search_text(n.name, n.reference), n.archived_at is not null
      from new_rows n
    on conflict (organisation_id, id) do update
       set title = excluded.title, detail = excluded.detail, body = excluded.body,
           archived = excluded.archived, site_id = excluded.site_id;
    return null;
end
$fn$;

create or replace function proplink.index_units() returns trigger
language plpgsql as $fn$
begin
    if tg_op = 'DELETE' then
        delete from search_entry e using old_rows o
         where e.organisation_id = o.organisation_id and e.id = o.id;
        return null;
    end if;
    insert into search_entry (organisation_id, id, kind, site_id, title, detail, body, archived)
    select n.organisation_id, n.id, 'unit', n.site_id, n.name,
           concat_ws(', ', n.reference, n.address_line_1, n.postcode),
           proplink.search_text(n.name, n.reference, n.address_line_1, n.postcode, n.uprn),
           n.archived_at is not null
      from new_rows n
    on conflict (organisation_id, id) do update
       set title = excluded.title, detail = excluded.detail, body = excluded.body,
           archived = excluded.archived, site_id = excluded.site_id;
    return null;
end
$fn$;

create or replace function proplink.index_vendors() returns trigger
language plpgsql as $fn$
begin
    if tg_op = 'DELETE' then
        delete from search_entry e using old_rows o
         where e.organisation_id = o.organisation_id and e.id = o.id;
        return null;
    end if;
    insert into search_entry (organisation_id, id, kind, site_id, title, detail, body, archived)
    select n.organisation_id, n.id, 'vendor', null, n.name, concat_ws(', ', n.trade, n.postcode),
           proplink.search_text(n.name, n.trade, n.contact_name, n.email, n.phone, n.postcode),
           n.archived_at is not null
      from new_rows n
    on conflict (organisation_id, id) do update
       set title = excluded.title, detail = excluded.detail, body = excluded.body,
           archived = excluded.archived;
    return null;
end
$fn$;

-- A contact's entry carries its e-mails and phones, so it is rebuilt when they change.
create or replace function proplink.index_contact_ids(ids uuid[]) returns void
language sql as $fn$
    insert into search_entry (organisation_id, id, kind, site_id, title, detail, body, archived)
    select c.organisation_id, c.id, 'contact', null, c.display_name,
           concat_ws(', ', em.first, c.postcode),
           proplink.search_text(c.display_name, c.company_name, c.reference, em.every, ph.every,
                                c.postcode),
           c.archived_at is not null or c.merged_into_id is not null
      from contact c
      left join lateral (select string_agg(e.email, ' ' order by e.position) as every,
                                (array_agg(e.email order by e.position))[1] as first
                           from contact_email e
                          where e.organisation_id = c.organisation_id and e.contact_id = c.id) em on true
      left join lateral (select string_agg(p.phone, ' ' order by p.position) as every
                           from contact_phone p
                          where p.organisation_id = c.organisation_id and p.contact_id = c.id) ph on true
     where c.organisation_id = nullif(current_setting('app.organisation_id', true), '')::uuid
       and c.id = any(ids)
    on conflict (organisation_id, id) do update
       set title = excluded.title, detail = excluded.detail, body = excluded.body,
           archived = excluded.archived
     where (search_entry.title, search_entry.detail, search_entry.body, search_entry.archived)
           is distinct from (excluded.title, excluded.detail, excluded.body, excluded.archived)
$fn$;

-- An import writes a batch's contacts, e-mails and phones in three statements; it sets
-- `proplink.contact_index = 'batch'` for those and indexes the batch once at the end (each
-- rewrite of an entry is another GiST insertion, and they slow as the index grows).
create or replace function proplink.index_contacts() returns trigger
language plpgsql as $fn$
begin
    if tg_table_name = 'contact' and tg_op = 'DELETE' then
        delete from search_entry e using old_rows o
         where e.organisation_id = o.organisation_id and e.id = o.id;
        return null;
    end if;
    if current_setting('proplink.contact_index', true) = 'batch' then
        return null;
    end if;
    if tg_table_name = 'contact' then
        perform proplink.index_contact_ids(array(select id from new_rows));
    elsif tg_op = 'DELETE' then
        perform proplink.index_contact_ids(array(select distinct contact_id from old_rows));
    else
        perform proplink.index_contact_ids(array(select distinct contact_id from new_rows));
    end if;
    return null;
end
$fn$;

create procedure proplink.search_triggers(t regclass, f text)
language plpgsql as $fn$
begin
    execute format('create trigger search_index_insert after insert on %s
                        referencing new table as new_rows for each statement execute function %s()', t, f);
    execute format('create trigger search_index_update after update on %s
                        referencing new table as new_rows for each statement execute function %s()', t, f);
    execute format('create trigger search_index_delete after delete on %s
                        referencing old table as old_rows for each statement execute function %s()', t, f);
end
$fn$;
call proplink.search_triggers('site', 'proplink.index_sites');
call proplink.search_triggers('building', 'proplink.index_buildings');
call proplink.search_triggers('unit', 'proplink.index_units');
call proplink.search_triggers('vendor', 'proplink.index_vendors');
call proplink.search_triggers('contact', 'proplink.index_contacts');
call proplink.search_triggers('contact_email', 'proplink.index_contacts');
call proplink.search_triggers('contact_phone', 'proplink.index_contacts');
drop procedure proplink.search_triggers(regclass, text);

-- Existing sites are indexed now (as the owner, past row-level security, for every organisation).
alter table site no force row level security;
alter table search_entry no force row level security;
insert into search_entry (organisation_id, id, kind, site_id, title, detail, body, archived)
select organisation_id, id, 'site', id, name, reference,
       proplink.search_text(name, reference), archived_at is not null
  from site;
alter table site force row level security;
alter table search_entry force row level security;
