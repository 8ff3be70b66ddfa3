-- Payables at scale, continued (issue 7 benchmark, `proplink bench payables`): a payment run
-- writes each of its bills twice and a payment line and a journal line for each, so every
-- per-row cost on those writes counts thousands of times.
--
-- * A supplier's invoice number is unique through the stored normalised key added in 0043
--   rather than through an expression index over the same value: one index fewer to keep on
--   every write to a bill, and no lower(btrim()) per row. The key is exactly the old
--   expression, so what is refused does not change.
-- * The guards of bills and payment lines are only called when a write could break one of
--   their rules (a WHEN clause, evaluated without calling into PL/pgSQL); the functions and
--   what they refuse are unchanged.

drop index bill_supplier_reference_key;
drop index bill_supplier_reference;
create unique index bill_supplier_reference on bill (organisation_id, vendor_id, supplier_reference_key)
    where status <> 'voided';

drop trigger bill_guard on bill;
create trigger bill_guard before delete on bill
    for each row execute function proplink.guard_bill();
create trigger bill_guard_update before update on bill
    for each row
    when ((old.status <> 'draft' and (
              new.site_id, new.vendor_id, new.work_order_id, new.supplier_reference,
              new.issue_date, new.due_date, new.incurred_on, new.net_pence, new.vat_pence,
              new.total_pence, new.document_key)
          is distinct from (
              old.site_id, old.vendor_id, old.work_order_id, old.supplier_reference,
              old.issue_date, old.due_date, old.incurred_on, old.net_pence, old.vat_pence,
              old.total_pence, old.document_key))
          or (old.journal_id is not null and new.journal_id is distinct from old.journal_id))
    execute function proplink.guard_bill();

drop trigger bill_totals on bill;
create trigger bill_totals before update of status on bill
    for each row when (old.status = 'draft' and new.status <> 'draft')
    execute function proplink.check_bill_totals();

drop trigger supplier_payment_line_guard on supplier_payment_line;
create trigger supplier_payment_line_guard before delete on supplier_payment_line
    for each row execute function proplink.guard_supplier_payment_line();
create trigger supplier_payment_line_guard_update before update on supplier_payment_line
    for each row
    when ((new.payment_id, new.bill_id, new.site_id, new.fund_id, new.amount_pence)
              is distinct from (old.payment_id, old.bill_id, old.site_id, old.fund_id, old.amount_pence)
          or (old.journal_id is not null and new.journal_id is distinct from old.journal_id)
          or (old.reversal_journal_id is not null
              and new.reversal_journal_id is distinct from old.reversal_journal_id))
    execute function proplink.guard_supplier_payment_line();
