-- Site folders and file permissions (docs-spec §2.13 "Files"): each site's shared documents in
-- folders (seven by default, more as the organisation likes), permissions set per folder for
-- residents (all, leaseholders, directors), contractors with a live ContractorPort session at
-- the site, and the Building Safety Regulator; staff see every folder of the sites their
-- access covers. Files are versioned (a new version replaces the current one, the old stays
-- listed under it) and may carry an expiry date.
create table site_folder (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    name text not null check (length(btrim(name)) between 1 and 80 and name !~ '[/\\[:cntrl:]]'),
    -- The default folder it is (site_documents, compliance, ...), if it is one.
    default_key text check (default_key is null or default_key ~ '^[a-z_0-9]{1,40}$'),
    resident_audience text not null default 'none'
        check (resident_audience in ('none', 'residents', 'leaseholders', 'directors')),
    contractor_access boolean not null default false,
    regulator_access boolean not null default false,
    position integer not null default 100 check (position between 0 and 10000),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id)
);
create unique index site_folder_default on site_folder (organisation_id, site_id, default_key)
    where default_key is not null;
create unique index site_folder_name on site_folder (organisation_id, site_id, lower(name))
    where archived_at is null;
select proplink.make_tenant_table('site_folder');

alter table stored_file
    add column folder_id uuid,
    add column expires_on date,
    -- The version this one replaced, and when this one was itself replaced.
    add column replaces_id uuid,
    add column replaced_at timestamptz,
    add column version integer not null default 1 check (version between 1 and 10000),
    -- One file opened to the site's residents although its folder is not.
    add column shown_to_residents boolean not null default false,
    add foreign key (organisation_id, folder_id) references site_folder (organisation_id, id),
    add foreign key (organisation_id, replaces_id) references stored_file (organisation_id, id),
    drop constraint stored_file_one_owner,
    add constraint stored_file_one_owner
        check (num_nonnulls(issue_id, work_order_id, quotation_id, vendor_document_id,
            maintenance_completion_id, service_agreement_id, folder_id) = 1),
    add constraint stored_file_versions_in_folders
        check ((replaces_id is null and version = 1) or (folder_id is not null and version > 1));
create index stored_file_folder on stored_file (organisation_id, folder_id, created_at)
    where folder_id is not null;
-- Stored files stay append-only, but for what a folder's file may change: its expiry date,
-- whether residents see it, and when a new version replaced it.
grant update (expires_on, shown_to_residents, replaced_at) on stored_file to proplink_app;
-- One current version of a file: nothing replaces the same version twice.
create unique index stored_file_one_successor on stored_file (organisation_id, replaces_id)
    where replaces_id is not null;

-- Every view and download of a folder's file, and every share, by whom and through which
-- door (docs-spec §2.13: "File views/downloads appear at Settings → Audit logs → File access").
-- Each row is itself audited, so the audit log holds the trail; rows are never changed.
create table file_access (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    file_id uuid not null,
    action text not null check (action in ('view', 'download', 'zip', 'share', 'link_open')),
    detail text check (detail is null or length(detail) <= 300),
    occurred_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, file_id) references stored_file (organisation_id, id)
);
create index file_access_file on file_access (organisation_id, file_id, occurred_at);
select proplink.make_tenant_table('file_access');
