-- The audit chain's head is written back to the organisation once per transaction, at commit
-- (see proplink.audit_seal in sql/functions.sql), instead of once per event.
create constraint trigger audit_seal after insert on audit_event
    deferrable initially deferred
    for each row execute function proplink.audit_seal();
