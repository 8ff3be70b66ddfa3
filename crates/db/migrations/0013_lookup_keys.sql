-- Lower-case lookup keys as stored columns, for the lookups an import makes by reference and by
-- e-mail. Row-level security lets only leakproof operators use an index, and lower() is not
-- leakproof, so under the server role the expression indexes on lower(reference) and
-- lower(email) were never used: each batch of an import scanned every contact (137 ms per
-- batch at 150,000 contacts), and a plan that expected a few rows could repeat that scan once
-- per key until the statement timed out. A plain column compared with = (leakproof) can use
-- its index. The keys are derived, so the audit leaves them out ("-column" trigger argument).

alter table contact add column reference_key text generated always as (lower(reference)) stored;
create index contact_reference_key on contact (organisation_id, reference_key)
    where reference_key is not null;

alter table contact_email add column email_key text generated always as (lower(email)) stored;
create index contact_email_key on contact_email (organisation_id, email_key);

drop trigger audit on contact;
drop trigger audit_update on contact;
drop trigger audit_delete on contact;
select proplink.make_audit_triggers('contact', array['-reference_key']);

drop trigger audit on contact_email;
drop trigger audit_update on contact_email;
drop trigger audit_delete on contact_email;
select proplink.make_audit_triggers('contact_email', array['-email_key']);
