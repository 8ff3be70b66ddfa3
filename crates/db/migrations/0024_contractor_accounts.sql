-- Contractors who work regularly can be given a ContractorPort account (e-mail + one-time
-- code) listing their open work orders in this organisation (issue 5).
alter table portal_account drop constraint portal_account_portal_check;
alter table portal_account add constraint portal_account_portal_check
    check (portal in ('residenceport', 'buildingthread', 'facility_report', 'contractorport'));
