-- Contractor documents say who entered them: one a contractor uploads on ContractorPort counts
-- for the compliance check only once staff have verified it (a contractor must not clear their
-- own block with any PDF). The vendor performance card reads a vendor's work orders by vendor.
alter table vendor_document add column source text not null default 'staff'
    check (source in ('staff', 'contractor'));
create index work_order_vendor on work_order (organisation_id, vendor_id) where vendor_id is not null;
