-- Money, part 1 (issue 6; DESIGN §4): each site keeps its own double-entry books. A site's
-- chart of ledger accounts and its funds (service charge, reserve, ground rent, other) are kept
-- apart from every other site's: a journal line names its site, and composite foreign keys make
-- its account and fund that site's. Journals are append-only: the server role can insert them,
-- never change or delete them, so a correction is a reversing journal. The database refuses a
-- journal whose lines do not sum to zero, one with fewer than two lines, lines added to a
-- journal later, and a journal dated in a locked accounting period.

alter table reference_counter drop constraint reference_counter_kind_check;
alter table reference_counter add constraint reference_counter_kind_check
    check (kind in ('issue', 'work_order', 'ticket', 'journal'));

create table ledger_account (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    code text not null check (code ~ '^[0-9A-Z][0-9A-Z-]{0,9}$'),
    name text not null check (length(btrim(name)) between 1 and 100),
    kind text not null check (kind in ('asset', 'liability', 'equity', 'income', 'expense', 'reserve')),
    -- The account the postings table uses for this role, at most one per site (bank accounts
    -- may be several).
    control text check (control is null or control in ('debtors', 'creditors', 'bank', 'suspense',
        'vat', 'retained_earnings', 'service_charge_income', 'ground_rent_income',
        'admin_fee_income', 'reserve_contributions', 'repairs')),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    unique (organisation_id, site_id, code),
    foreign key (organisation_id, site_id) references site (organisation_id, id)
);
create unique index ledger_account_control on ledger_account (organisation_id, site_id, control)
    where control is not null and control <> 'bank';
select proplink.make_tenant_table('ledger_account');

create table fund (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    kind text not null check (kind in ('service_charge', 'reserve', 'ground_rent', 'other')),
    name text not null check (length(btrim(name)) between 1 and 100),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id),
    unique (organisation_id, site_id, name),
    foreign key (organisation_id, site_id) references site (organisation_id, id)
);
select proplink.make_tenant_table('fund');

create table accounting_period (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    starts_on date not null,
    ends_on date not null,
    locked_at timestamptz,
    locked_by text check (locked_by is null or length(locked_by) <= 200),
    created_at timestamptz not null default now(),
    primary key (organisation_id, id),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    check (ends_on >= starts_on and ends_on - starts_on < 800),
    check ((locked_at is null) = (locked_by is null)),
    constraint accounting_period_no_overlap exclude using gist (
        organisation_id with =, site_id with =, daterange(starts_on, ends_on, '[]') with &&)
);
select proplink.make_tenant_table('accounting_period');

create table journal (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    site_id uuid not null,
    reference text not null check (reference ~ '^JNL-[0-9]{4}-[0-9]{4,}$'),
    journal_date date not null check (journal_date between '2000-01-01' and '2100-12-31'),
    description text not null check (length(btrim(description)) between 1 and 300),
    -- What posted it: a manual journal, a demand, a receipt, ...
    source_type text not null check (source_type ~ '^[a-z_]{1,40}$'),
    source_id uuid,
    reverses_id uuid,
    posted_by text not null check (length(btrim(posted_by)) between 1 and 200),
    posted_at timestamptz not null default now(),
    primary key (organisation_id, id),
    unique (organisation_id, site_id, id, journal_date),
    unique (organisation_id, reference),
    foreign key (organisation_id, site_id) references site (organisation_id, id),
    foreign key (organisation_id, reverses_id) references journal (organisation_id, id)
);
-- A journal is reversed at most once.
create unique index journal_reversal on journal (organisation_id, reverses_id) where reverses_id is not null;
create index journal_source on journal (organisation_id, source_type, source_id) where source_id is not null;
select proplink.make_tenant_table('journal');

create table journal_line (
    organisation_id uuid not null references organisation (id),
    id uuid not null,
    journal_id uuid not null,
    site_id uuid not null,
    journal_date date not null,
    line_no smallint not null check (line_no between 1 and 1000),
    account_id uuid not null,
    fund_id uuid not null,
    -- Debits positive, credits negative; whole pence, never zero, at most £10bn a line.
    amount_pence bigint not null check (amount_pence <> 0 and abs(amount_pence) <= 1000000000000),
    unit_id uuid,
    contact_id uuid,
    work_order_id uuid,
    description text check (description is null or length(description) <= 300),
    primary key (organisation_id, id),
    unique (organisation_id, journal_id, line_no),
    -- The line's site, date, account and fund are its journal's site's.
    foreign key (organisation_id, site_id, journal_id, journal_date)
        references journal (organisation_id, site_id, id, journal_date),
    foreign key (organisation_id, site_id, account_id) references ledger_account (organisation_id, site_id, id),
    foreign key (organisation_id, site_id, fund_id) references fund (organisation_id, site_id, id),
    foreign key (organisation_id, unit_id) references unit (organisation_id, id),
    foreign key (organisation_id, contact_id) references contact (organisation_id, id),
    foreign key (organisation_id, work_order_id) references work_order (organisation_id, id)
);
create index journal_line_account on journal_line (organisation_id, site_id, account_id, journal_date);
create index journal_line_unit on journal_line (organisation_id, unit_id, journal_date) where unit_id is not null;
select proplink.make_tenant_table('journal_line');

-- Posted means final: the server role may add journals and lines, never change or remove them.
revoke update, delete on journal from proplink_app;
revoke update, delete on journal_line from proplink_app;

-- A journal's lines arrive in one statement: balanced, at least two, and none before them.
create function proplink.check_journal_lines() returns trigger
language plpgsql as $$
declare
    bad record;
begin
    select n.journal_id, n.total, n.lines into bad
      from (select organisation_id, journal_id, sum(amount_pence) as total, count(*) as lines
              from new_lines group by organisation_id, journal_id) n
     where n.total <> 0 or n.lines < 2
        or (select count(*) from journal_line l
             where l.organisation_id = n.organisation_id and l.journal_id = n.journal_id) <> n.lines
     limit 1;
    if found then
        raise exception 'journal % is not balanced or not written in one go (total %, % lines)',
            bad.journal_id, bad.total, bad.lines using errcode = '23514';
    end if;
    return null;
end
$$;
create trigger journal_lines_balance after insert on journal_line
    referencing new table as new_lines
    for each statement execute function proplink.check_journal_lines();

-- Every journal has its lines by the time the transaction commits.
create function proplink.check_journal_has_lines() returns trigger
language plpgsql as $$
begin
    if not exists (select from journal_line l
                    where l.organisation_id = new.organisation_id and l.journal_id = new.id) then
        raise exception 'journal % has no lines', new.reference using errcode = '23514';
    end if;
    return null;
end
$$;
create constraint trigger journal_has_lines after insert on journal
    deferrable initially deferred
    for each row execute function proplink.check_journal_has_lines();

-- Nothing is posted into a locked period of the site. The period's row is share-locked, so
-- locking it waits for postings in flight and a posting waits for a lock in flight.
create function proplink.check_journal_period() returns trigger
language plpgsql as $$
declare
    v_locked timestamptz;
begin
    select p.locked_at into v_locked from accounting_period p
     where p.organisation_id = new.organisation_id and p.site_id = new.site_id
       and new.journal_date between p.starts_on and p.ends_on
       for share;
    if v_locked is not null then
        raise exception 'the period containing % is locked', new.journal_date using errcode = '23514';
    end if;
    return new;
end
$$;
create trigger journal_period_open before insert on journal
    for each row execute function proplink.check_journal_period();
