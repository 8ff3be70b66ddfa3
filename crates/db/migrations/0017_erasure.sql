-- Erasure of a contact's personal data (UK GDPR Art. 17; docs-spec §2.4 "GDPR"): identifying
-- fields are replaced with placeholders, and the audit trail survives with personal data
-- stripped, still provably untampered.
--
-- The hash chain covers each event's `changes`, so stripping a value changes what the event
-- hashes to. An erased event therefore keeps its original `hash` (the next event still links to
-- it) and gains an `audit_erasure` row holding the hash of its content as stripped. The erasure
-- itself is a `contact_erasure` row, audited like any write: its event lists every stripped
-- event with that content hash, so the list is itself in the chain. `proplink audit verify`
-- checks a stripped event against its content hash and that hash against the attesting event
-- that comes after it (db/src/audit.rs).

alter table contact add column erased_at timestamptz;

-- One row per erasure: who asked, why, and which audit events were stripped.
create table contact_erasure (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    contact_id uuid not null,
    reason text not null check (length(btrim(reason)) between 1 and 500),
    -- [{"seq": n, "content_hash": "…"}] for each audit event stripped.
    stripped_events jsonb not null,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id)
);
create index contact_erasure_contact on contact_erasure (organisation_id, contact_id);
select proplink.make_tenant_table('contact_erasure', audit_updates => false);
revoke update, delete on contact_erasure from proplink_app;

-- Each stripped audit event: the hash of its content after stripping, and the erasure that
-- attests it. Written only by proplink.strip_audit_events; not itself audited (it is part of
-- the audit log, and the erasure's own event lists the same facts).
create table audit_erasure (
    organisation_id uuid not null references organisation (id),
    seq bigint not null,
    content_hash text not null,
    erasure_id uuid not null,
    primary key (organisation_id, seq),
    foreign key (organisation_id, seq) references audit_event (organisation_id, seq)
);
select proplink.make_tenant_table('audit_erasure');
drop trigger audit on audit_erasure;
drop trigger audit_update on audit_erasure;
drop trigger audit_delete on audit_erasure;
revoke insert, update, delete on audit_erasure from proplink_app;
