-- Operations (issue 5; docs-spec §2.7, §2.10 ContractorPort, §2.13 files): issues found on
-- site, work orders instructed to contractors, their invitations, quotations and progress,
-- contractors' compliance documents, and the uploaded files all of these carry.
--
-- Every table is a tenant table (DESIGN.md §2). States are checked here as well as in Rust,
-- so a hand edit cannot leave a work order in a state the application does not know.

-- Gap-free yearly reference numbers per organisation (WO-2026-0042, ISS-2026-0007). The row
-- is locked by the upsert, so two requests never draw the same number; a rolled-back request
-- gives its number back. Not audited: the record that takes the number is.
create table reference_counter (
    organisation_id uuid not null references organisation (id),
    kind text not null check (kind in ('issue', 'work_order')),
    year integer not null check (year between 2000 and 2999),
    last_number integer not null check (last_number > 0),
    primary key (organisation_id, kind, year)
);
select proplink.make_tenant_table('reference_counter');
drop trigger audit on reference_counter;
drop trigger audit_update on reference_counter;
drop trigger audit_delete on reference_counter;

-- Works-approval limits (docs-spec §2.2 roles): the most a member may approve on one
-- quotation, VAT included. Null means the role's default (domain::operations::
-- default_works_limit_pence: none for the Owner and Administrators, £5,000 for Managers, ...).
alter table membership add column works_approval_limit_pence bigint
    check (works_approval_limit_pence is null or works_approval_limit_pence between 0 and 1000000000);

-- ---------------------------------------------------------------------------------------------
-- Issues: a problem seen at a unit or a communal space.

create table issue (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    reference text not null check (reference ~ '^ISS-[0-9]{4}-[0-9]{4,}$'),
    site_id uuid not null,
    building_id uuid,
    unit_id uuid,
    space_id uuid,
    title text not null check (length(btrim(title)) between 1 and 200),
    description text check (description is null or length(description) <= 5000),
    category text not null check (category in ('water_leak', 'lighting', 'fire_safety', 'security',
        'cleanliness', 'lift', 'heating', 'structural', 'pests', 'other')),
    priority text not null check (priority in ('low', 'medium', 'high', 'urgent')),
    status text not null default 'open' check (status in ('open', 'triaged', 'in_progress',
        'resolved', 'reopened', 'closed')),
    closed_reason text check (closed_reason is null or closed_reason in ('duplicate', 'not_actionable')),
    duplicate_of uuid,
    status_note text check (status_note is null or length(status_note) <= 2000),
    reporter_kind text not null check (reporter_kind in ('resident', 'staff', 'site_manager', 'contractor')),
    reporter_contact_id uuid,
    reporter_name text not null check (length(btrim(reporter_name)) between 1 and 200),
    reporter_email text check (reporter_email is null or reporter_email ~ '^[^@\s]+@[^@\s]+$'),
    channel text not null check (channel in ('admin', 'residenceport', 'facility_report',
        'contractorport', 'phone', 'email')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    resolved_at timestamptz,
    closed_at timestamptz,
    primary key (organisation_id, id),
    unique (organisation_id, reference),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, building_id) references building (organisation_id, id),
    foreign key (organisation_id, unit_id) references unit (organisation_id, id),
    foreign key (organisation_id, space_id) references space (organisation_id, id),
    foreign key (organisation_id, reporter_contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, duplicate_of) references issue (organisation_id, id),
    check ((status = 'closed') = (closed_reason is not null)),
    check (duplicate_of is null or closed_reason = 'duplicate'),
    check (duplicate_of is distinct from id),
    check (num_nonnulls(unit_id, space_id) <= 1)
);
-- The queue: newest first, by state, per site.
create index issue_queue on issue (organisation_id, created_at desc, id desc);
create index issue_status_queue on issue (organisation_id, status, created_at desc, id desc);
create index issue_site_queue on issue (organisation_id, site_id, created_at desc, id desc);
select proplink.make_tenant_table('issue');

-- ---------------------------------------------------------------------------------------------
-- Work orders.

create table work_order (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    reference text not null check (reference ~ '^WO-[0-9]{4}-[0-9]{4,}$'),
    site_id uuid not null,
    building_id uuid,
    unit_id uuid,
    space_id uuid,
    title text not null check (length(btrim(title)) between 1 and 200),
    scope text not null check (length(btrim(scope)) between 1 and 10000),
    trade text not null check (trade in ('plumbing', 'electrical', 'heating_gas', 'roofing',
        'fire_safety', 'lifts', 'cleaning', 'gardening', 'pest_control', 'locksmiths',
        'general_repairs', 'decoration', 'building_work')),
    priority text not null check (priority in ('low', 'medium', 'high', 'urgent')),
    cost_code text check (cost_code is null or cost_code ~ '^[A-Za-z0-9][A-Za-z0-9 ./-]{0,29}$'),
    not_to_exceed_pence bigint check (not_to_exceed_pence is null
        or not_to_exceed_pence between 1 and 1000000000),
    target_start date,
    target_completion date,
    access_notes text check (access_notes is null or length(access_notes) <= 2000),
    -- The member who raised it: told when a quotation arrives or the work is completed.
    manager_name text not null check (length(btrim(manager_name)) between 1 and 200),
    manager_email text check (manager_email is null or manager_email ~ '^[^@\s]+@[^@\s]+$'),
    status text not null default 'draft' check (status in ('draft', 'invited', 'quoted', 'declined',
        'approved', 'in_progress', 'completed', 'invoiced', 'closed', 'cancelled')),
    vendor_id uuid,
    approved_quotation_id uuid,
    approved_pence bigint check (approved_pence is null or approved_pence >= 0),
    final_cost_pence bigint check (final_cost_pence is null or final_cost_pence between 0 and 1000000000),
    rating smallint check (rating is null or rating between 1 and 5),
    rating_note text check (rating_note is null or length(rating_note) <= 2000),
    cancelled_reason text check (cancelled_reason is null or length(btrim(cancelled_reason)) between 1 and 500),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    started_at timestamptz,
    completed_at timestamptz,
    closed_at timestamptz,
    primary key (organisation_id, id),
    unique (organisation_id, reference),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, building_id) references building (organisation_id, id),
    foreign key (organisation_id, unit_id) references unit (organisation_id, id),
    foreign key (organisation_id, space_id) references space (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    check (num_nonnulls(unit_id, space_id) <= 1),
    check (target_completion is null or target_start is null or target_completion >= target_start),
    check ((status = 'cancelled') = (cancelled_reason is not null)),
    -- Approved work has a contractor and an agreed price.
    check (status in ('draft', 'invited', 'quoted', 'declined', 'cancelled')
        or (vendor_id is not null and approved_pence is not null)),
    check (status <> 'closed' or rating is not null)
);
create index work_order_list on work_order (organisation_id, created_at desc, id desc);
create index work_order_status_list on work_order (organisation_id, status, created_at desc, id desc);
create index work_order_site_list on work_order (organisation_id, site_id, created_at desc, id desc);
select proplink.make_tenant_table('work_order');

-- Several issues can feed one work order; closing it resolves them.
create table work_order_issue (
    organisation_id uuid not null references organisation (id),
    work_order_id uuid not null,
    issue_id uuid not null,
    primary key (organisation_id, work_order_id, issue_id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id),
    foreign key (organisation_id, issue_id) references issue (organisation_id, id)
);
create index work_order_issue_by_issue on work_order_issue (organisation_id, issue_id);
select proplink.make_tenant_table('work_order_issue');

-- A contractor invited to quote. Its ContractorPort link is a signed_link for this invitation.
create table work_order_invitation (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    work_order_id uuid not null,
    vendor_id uuid not null,
    email text not null check (email ~ '^[^@\s]+@[^@\s]+$'),
    link_id uuid,
    status text not null default 'invited' check (status in ('invited', 'accepted', 'declined',
        'quoted', 'awarded', 'not_awarded', 'withdrawn')),
    decline_reason text check (decline_reason is null or length(decline_reason) <= 1000),
    -- A contractor whose required documents were missing or expired, invited anyway.
    compliance_override text check (compliance_override is null
        or length(btrim(compliance_override)) between 1 and 500),
    invited_at timestamptz not null default now(),
    responded_at timestamptz,
    primary key (organisation_id, id),
    unique (organisation_id, work_order_id, vendor_id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    foreign key (organisation_id, link_id) references signed_link (organisation_id, id)
);
create index work_order_invitation_vendor on work_order_invitation (organisation_id, vendor_id, status);
select proplink.make_tenant_table('work_order_invitation');

create table quotation (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    work_order_id uuid not null,
    invitation_id uuid not null,
    vendor_id uuid not null,
    kind text not null check (kind in ('fixed', 'estimate')),
    net_pence bigint not null check (net_pence between 1 and 1000000000),
    vat_pence bigint not null check (vat_pence >= 0 and vat_pence <= net_pence),
    valid_until date not null,
    notes text check (notes is null or length(notes) <= 5000),
    status text not null default 'submitted' check (status in ('submitted', 'approved', 'rejected',
        'not_awarded', 'withdrawn')),
    decision_reason text check (decision_reason is null or length(decision_reason) <= 1000),
    decided_by text,
    decided_at timestamptz,
    submitted_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id),
    foreign key (organisation_id, invitation_id) references work_order_invitation (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    check (status <> 'rejected' or decision_reason is not null)
);
create index quotation_work_order on quotation (organisation_id, work_order_id);
-- One live quotation per invitation: a new one withdraws the old.
create unique index quotation_live on quotation (organisation_id, invitation_id)
    where status = 'submitted';
select proplink.make_tenant_table('quotation');

alter table work_order add foreign key (organisation_id, approved_quotation_id)
    references quotation (organisation_id, id);

-- The work order's timeline beyond its state: attendance, notes, progress from either side.
create table work_order_update (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    work_order_id uuid not null,
    kind text not null check (kind in ('attendance', 'note', 'started', 'materials_ordered', 'completed')),
    body text check (body is null or length(body) <= 5000),
    author_name text not null check (length(btrim(author_name)) between 1 and 200),
    occurred_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id)
);
create index work_order_update_order on work_order_update (organisation_id, work_order_id, occurred_at);
select proplink.make_tenant_table('work_order_update');
revoke update, delete on work_order_update from proplink_app;

-- ---------------------------------------------------------------------------------------------
-- Contractors' insurance and certificates (docs-spec §2.7 "insurance and certifications").

create table vendor_document (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    vendor_id uuid not null,
    doc_type text not null check (doc_type in ('public_liability', 'employers_liability',
        'professional_indemnity', 'gas_safe', 'niceic', 'napit', 'bafe', 'f_gas',
        'asbestos_licence', 'chas', 'safecontractor', 'other')),
    reference_number text not null check (length(btrim(reference_number)) between 1 and 100),
    issuer text check (issuer is null or length(issuer) <= 200),
    sum_insured_pence bigint check (sum_insured_pence is null or sum_insured_pence between 1 and 100000000000),
    expires_on date not null,
    verified_at timestamptz,
    verified_by text,
    created_at timestamptz not null default now(),
    superseded_at timestamptz,
    primary key (organisation_id, id),
    foreign key (organisation_id, vendor_id) references vendor (organisation_id, id),
    check ((verified_at is null) = (verified_by is null))
);
create index vendor_document_vendor on vendor_document (organisation_id, vendor_id, doc_type);
select proplink.make_tenant_table('vendor_document');

-- ---------------------------------------------------------------------------------------------
-- Uploaded files (DESIGN.md §8): the bytes live in object storage under their content hash;
-- this row is the upload (its name, who it belongs to) and the only way to reach the bytes.

create table stored_file (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes bigint not null check (size_bytes between 1 and 20971520),
    media_type text not null check (media_type in ('image/jpeg', 'image/png', 'image/webp',
        'image/heic', 'image/heif', 'application/pdf')),
    object_key text not null,
    thumbnail_key text,
    original_name text not null check (length(original_name) between 1 and 255),
    purpose text not null check (purpose in ('photo', 'quotation', 'certificate',
        'completion_certificate', 'document')),
    issue_id uuid,
    work_order_id uuid,
    quotation_id uuid,
    vendor_document_id uuid,
    uploaded_by text not null,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, issue_id) references issue (organisation_id, id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id),
    foreign key (organisation_id, quotation_id) references quotation (organisation_id, id),
    foreign key (organisation_id, vendor_document_id) references vendor_document (organisation_id, id),
    constraint stored_file_one_owner
        check (num_nonnulls(issue_id, work_order_id, quotation_id, vendor_document_id) = 1)
);
create index stored_file_issue on stored_file (organisation_id, issue_id) where issue_id is not null;
create index stored_file_work_order on stored_file (organisation_id, work_order_id) where work_order_id is not null;
create index stored_file_quotation on stored_file (organisation_id, quotation_id) where quotation_id is not null;
create index stored_file_vendor_document on stored_file (organisation_id, vendor_document_id)
    where vendor_document_id is not null;
select proplink.make_tenant_table('stored_file');
revoke update, delete on stored_file from proplink_app;
