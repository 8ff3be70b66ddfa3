-- Reverting an import within 7 days (docs-spec §2.20 "Revert within 7 days").
--
-- An import's writes are audited with the request id "import:<run id>" (set for the import's
-- statements only, db/src/import.rs), so its events say exactly what it created, changed and
-- removed. Reverting undoes them newest first from those events (proplink.undo_event), in one
-- transaction that is itself audited, and is refused when a record has changed since.

alter table import_run drop constraint import_run_status_check;
alter table import_run add constraint import_run_status_check
    check (status in ('previewed', 'queued', 'running', 'committed', 'failed', 'cancelled',
                      'reverted'));
alter table import_run add column reverted_at timestamptz;

-- Finds an import's events without reading the whole log.
create index audit_event_import on audit_event (organisation_id, request_id, seq)
    where request_id like 'import:%';
