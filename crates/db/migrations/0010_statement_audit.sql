-- Audit triggers become statement-level (proplink.audit_stmt over transition tables) instead of
-- one call per row: the same events in the same hash chain, at a fraction of the cost per row
-- (see sql/functions.sql). Existing row-level `audit` triggers are replaced with the same
-- operations and redacted columns; make_tenant_table creates the new kind from now on.

do $mig$
declare
    t record;
begin
    for t in
        select tr.tgrelid::regclass as tbl, tr.tgname,
               (tr.tgtype & 16) <> 0 as on_update,
               array_remove(string_to_array(encode(tr.tgargs, 'escape'), '\000'), '') as args
          from pg_trigger tr join pg_proc f on f.oid = tr.tgfoid
         where tr.tgname = 'audit' and f.proname = 'audit_row' and (tr.tgtype & 1) = 1
           and not tr.tgisinternal
    loop
        execute format('drop trigger audit on %s', t.tbl);
        perform proplink.make_audit_triggers(t.tbl, t.args, t.on_update);
    end loop;
end
$mig$;

-- The search index is derived from audited tables and never audited itself (0009 dropped its
-- insert trigger; a database created from scratch also got the update and delete ones).
drop trigger if exists audit_update on search_entry;
drop trigger if exists audit_delete on search_entry;

-- Only the last event of each audited statement queues the deferred seal (audit_append marks it
-- in `proplink.audit_last`): a 100,000-row import queues a handful of seal events, not 100,000.
drop trigger audit_seal on audit_event;
create constraint trigger audit_seal after insert on audit_event
    deferrable initially deferred
    for each row
    when (current_setting('proplink.audit_last', true) = new.organisation_id::text || ':' || new.seq)
    execute function proplink.audit_seal();
