-- A bill is "scheduled" because a payment run holds it, and that is read from the run rather
-- than copied onto the bill (issue 7 benchmark, `proplink bench payables`).
--
-- Scheduling a run of 5,000 bills wrote every bill only to say what its new payment line
-- already says: 5,000 row versions and 5,000 audit events, about a quarter of the run's time.
-- From now on:
--
-- * a bill's stored status stays 'approved' while it is in a run; it is scheduled when one of
--   its payment lines belongs to a payment still 'scheduled' (a run awaiting approval, or
--   approved and not yet paid). `bills::SELECT` and every status filter read it that way, so
--   screens, lists and refusals still say "Scheduled";
-- * cancelling a run, or taking a bill out of one, writes no bill: its payment is cancelled or
--   its line deleted, and the bill reads as approved again;
-- * a held bill goes back to approved when released, and is still scheduled then if its run
--   still holds it;
-- * the bill's history keeps the step in words from its payment line's events ("put it in a
--   payment run", "took it out of a payment run"), found through the index below.
--
-- Bills stored as scheduled by earlier releases are moved to approved (their lines say the
-- rest), and the stored states no longer allow 'scheduled'.

update bill set status = 'approved' where status = 'scheduled';
update bill set held_from = 'approved' where held_from = 'scheduled';

alter table bill drop constraint bill_status_check;
alter table bill add constraint bill_status_check
    check (status in ('draft', 'awaiting_approval', 'approved', 'paid', 'held', 'voided'));
alter table bill drop constraint bill_held_from_check;
alter table bill add constraint bill_held_from_check
    check (held_from is null or held_from = 'approved');

-- A bill's payment lines come and go (a line is deleted when its bill leaves a run awaiting
-- approval), so their events are found by the bill they name: only payment-line events are
-- indexed, by the bill of their insert or delete (a line is never updated).
create index audit_event_payment_line_bill on audit_event
    (organisation_id, (coalesce(changes #>> '{bill_id,new}', changes #>> '{bill_id,old}')), seq)
    where table_name = 'supplier_payment_line';
