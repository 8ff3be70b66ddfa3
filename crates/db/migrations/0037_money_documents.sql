-- Money documents as PDFs (issue 6): each demand, invoice, credit note, receipt and statement
-- rendered is stored in the object store against its record with the content's SHA-256, and
-- kept: a PDF once issued is never replaced, only joined by a newer rendering. E-mails carry
-- stored files as attachments.

create table money_document (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    record_type text not null check (record_type in ('debtor_invoice', 'credit_note', 'receipt',
        'statement')),
    -- The invoice, credit note or receipt; for a statement, its unit.
    record_id uuid not null,
    site_id uuid not null,
    unit_id uuid not null,
    period_from date,
    period_to date,
    sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes bigint not null check (size_bytes between 1 and 52428800),
    object_key text not null check (length(object_key) between 1 and 500),
    renderer text not null check (renderer in ('typst', 'gotenberg')),
    created_by text not null check (length(btrim(created_by)) between 1 and 200),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id, unit_id) references unit (organisation_id, site_id, id),
    check ((record_type = 'statement') = (period_from is not null and period_to is not null)),
    check (period_to is null or period_to >= period_from)
);
create index money_document_record on money_document (organisation_id, record_type, record_id, created_at desc);
select proplink.make_tenant_table('money_document');
revoke update, delete on money_document from proplink_app;

create table email_attachment (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    message_id uuid not null,
    filename text not null check (filename ~ '^[A-Za-z0-9][A-Za-z0-9._ -]{0,120}$'),
    media_type text not null check (media_type in ('application/pdf')),
    sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes bigint not null check (size_bytes between 1 and 20971520),
    object_key text not null check (length(object_key) between 1 and 500),
    primary key (organisation_id, id),
    foreign key (organisation_id, message_id) references email_message (organisation_id, id)
);
create index email_attachment_message on email_attachment (organisation_id, message_id);
select proplink.make_tenant_table('email_attachment');
revoke update, delete on email_attachment from proplink_app;
