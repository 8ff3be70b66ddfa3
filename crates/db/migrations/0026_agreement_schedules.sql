-- A service agreement's schedule (docs-spec §2.7 "Schedule → Add schedule"): a recurring
-- maintenance event tied to the agreement, whose work orders go to the agreement's vendor on
-- each date (raised by the operations sweep).
alter table maintenance_event add column service_agreement_id uuid;
alter table maintenance_event add foreign key (organisation_id, service_agreement_id)
    references service_agreement (organisation_id, id);
create index maintenance_event_agreement on maintenance_event (organisation_id, service_agreement_id)
    where service_agreement_id is not null;
