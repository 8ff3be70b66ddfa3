-- At most one Direct Debit collection on its way per demand: two sweeps (or a sweep and a
-- mandate's activation) racing for the same demand find the second refused.
create unique index resident_payment_one_collection on resident_payment (organisation_id, invoice_id)
    where method = 'direct_debit' and status in ('pending', 'submitted');
