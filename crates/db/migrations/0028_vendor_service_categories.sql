-- Vendor service categories (docs-spec §2.7, Settings → Vendor service categories): an
-- organisation adds its own categories, each requiring certificate and insurance types, and may
-- require more documents of the 13 standard ones. A standard category's row holds only its
-- extra requirements (its name and own requirements live in code); an organisation's own
-- category's row holds its name and every requirement. Categories are archived, never deleted,
-- so old work orders keep their category.
create function proplink.standard_service_categories() returns text[]
language sql immutable parallel safe as $$
    select array['plumbing', 'electrical', 'heating_gas', 'roofing', 'fire_safety', 'lifts',
        'cleaning', 'gardening', 'pest_control', 'locksmiths', 'general_repairs', 'decoration',
        'building_work']::text[]
$$;

create table vendor_service_category (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    key text not null check (key ~ '^[a-z0-9][a-z0-9_]{0,59}$'),
    name text check (name is null or length(btrim(name)) between 1 and 60),
    required_documents text[] not null default '{}' check (required_documents <@ array[
        'public_liability', 'employers_liability', 'professional_indemnity', 'gas_safe', 'niceic',
        'napit', 'bafe', 'f_gas', 'asbestos_licence', 'chas', 'safecontractor', 'other']::text[]),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, key),
    -- A standard category has no name of its own here and cannot be archived.
    check ((key = any (proplink.standard_service_categories())) = (name is null)),
    check (name is not null or archived_at is null)
);
select proplink.make_tenant_table('vendor_service_category');

-- Work orders, maintenance events and preferred lists name a standard category or one of the
-- organisation's own (checked by a trigger, as a foreign key cannot cover the standard ones).
create function proplink.check_service_category() returns trigger
language plpgsql as $$
begin
    if new.trade is null or new.trade = any (proplink.standard_service_categories())
       or (tg_op = 'UPDATE' and new.trade is not distinct from old.trade) then
        return new;
    end if;
    -- A row labelled with another organisation than the session's: row-level security refuses
    -- it after this trigger, with its own error; this check could not see that organisation.
    if nullif(current_setting('app.organisation_id', true), '') is not null
       and new.organisation_id::text <> current_setting('app.organisation_id', true) then
        return new;
    end if;
    if not exists (select from vendor_service_category c
                    where c.organisation_id = new.organisation_id and c.key = new.trade
                      and c.name is not null) then
        raise exception 'unknown service category %', new.trade using errcode = '23503';
    end if;
    return new;
end
$$;

alter table work_order drop constraint work_order_trade_check,
    add constraint work_order_trade_check check (trade ~ '^[a-z0-9][a-z0-9_]{0,59}$');
alter table maintenance_event drop constraint maintenance_event_trade_check,
    add constraint maintenance_event_trade_check
        check (trade is null or trade ~ '^[a-z0-9][a-z0-9_]{0,59}$');
alter table vendor_preference drop constraint vendor_preference_trade_check,
    add constraint vendor_preference_trade_check
        check (trade is null or trade ~ '^[a-z0-9][a-z0-9_]{0,59}$');
create trigger work_order_service_category before insert or update of trade on work_order
    for each row execute function proplink.check_service_category();
create trigger maintenance_event_service_category before insert or update of trade on maintenance_event
    for each row execute function proplink.check_service_category();
create trigger vendor_preference_service_category before insert or update of trade on vendor_preference
    for each row execute function proplink.check_service_category();
