-- A payment line no longer stores its journals (issue 7 benchmark, `proplink bench payables`).
--
-- Posting a run of 5,000 bills updated 5,000 payment lines only to copy onto each the journal
-- that its site's posting had just made: 5,000 row versions and 5,000 audit events holding
-- nothing the journal does not say already. A posting journal names its source, so a line's
-- journals are found from the line's payment and site:
--
-- * posted: the site's journal whose source is the payment's run ('payment_run'), or the
--   payment itself ('supplier_payment') for a single payment;
-- * reversed: the site's journal whose source is the payment's reversal
--   ('supplier_payment_reversal').
--
-- Each of these is one journal per site (`proplink.supplier_payment_line_journals` below finds
-- them). The journals already copied onto lines agree with that rule (the payables tests checked
-- it on every posting), so the columns go without losing anything.
--
-- A payment line is then written once and never changed; only a line of a run awaiting
-- approval is deleted, when its bill is taken out of the run.

drop trigger supplier_payment_line_guard_update on supplier_payment_line;
alter table supplier_payment_line drop column journal_id, drop column reversal_journal_id;

create or replace function proplink.guard_supplier_payment_line() returns trigger
language plpgsql as $$
declare
    v_status text;
    v_run_status text;
begin
    if coalesce(new.organisation_id, old.organisation_id) is distinct from
       nullif(current_setting('app.organisation_id', true), '')::uuid then
        return coalesce(new, old);
    end if;
    if tg_op = 'DELETE' then
        select p.status, r.status into v_status, v_run_status
          from supplier_payment p
          left join payment_run r on r.organisation_id = p.organisation_id and r.id = p.payment_run_id
         where p.organisation_id = old.organisation_id and p.id = old.payment_id;
        if v_status is distinct from 'scheduled' or v_run_status is distinct from 'scheduled' then
            raise exception 'payment line %: only a line of a run awaiting approval is removed', old.id
                using errcode = 'check_violation';
        end if;
        return old;
    end if;
    raise exception 'payment line %: its figures do not change', old.id
        using errcode = 'check_violation';
end $$;

create trigger supplier_payment_line_guard_update before update on supplier_payment_line
    for each row execute function proplink.guard_supplier_payment_line();

-- New lines, all at once: each goes to a scheduled payment of a run awaiting approval, or to a
-- single payment not yet posted. (A line naming a payment this organisation does not have is
-- left to the foreign key, which has refused it already.)
create or replace function proplink.guard_supplier_payment_line_insert() returns trigger
language plpgsql as $$
declare
    v_org uuid := nullif(current_setting('app.organisation_id', true), '')::uuid;
begin
    if exists (
        select from (select distinct payment_id from added where organisation_id = v_org) n
          join supplier_payment p on p.organisation_id = v_org and p.id = n.payment_id
          left join payment_run r on r.organisation_id = p.organisation_id and r.id = p.payment_run_id
         where not ((p.status = 'scheduled' and r.status = 'scheduled')
                    or (p.payment_run_id is null and p.status = 'paid'
                        and not exists (select from journal j
                                         where j.organisation_id = v_org
                                           and j.source_type = 'supplier_payment'
                                           and j.source_id = p.id)))) then
        raise exception 'payment line: a line is added only to a payment not yet approved or posted'
            using errcode = 'check_violation';
    end if;
    return null;
end $$;

-- A site's posting journal and reversal journal for a payment (NULL while not posted or not
-- reversed). Runs as the caller, so row-level security applies as to any query.
create function proplink.supplier_payment_line_journals(
    p_organisation uuid, p_payment uuid, p_site uuid,
    out journal_id uuid, out reversal_journal_id uuid
)
language sql stable as $$
    select (select j.id from journal j
             where j.organisation_id = p.organisation_id and j.site_id = p_site
               and ((j.source_type = 'payment_run' and j.source_id = p.payment_run_id)
                    or (j.source_type = 'supplier_payment' and j.source_id = p.id))
               and j.reverses_id is null),
           (select j.id from journal j
             where j.organisation_id = p.organisation_id and j.site_id = p_site
               and j.source_type = 'supplier_payment_reversal' and j.source_id = p.id)
      from supplier_payment p
     where p.organisation_id = p_organisation and p.id = p_payment
$$;

-- The format of the bank file made for a run: a run sent as BACS Standard 18 is debited as one
-- contra, so its posting credits the bank once per site and fund rather than per payment.
alter table payment_run add column file_format text
    check (file_format is null or file_format in ('bacs_std18', 'csv'));
-- Once the run is paid its posting followed that format, which then stays as it was.
create function proplink.guard_payment_run_format() returns trigger
language plpgsql as $$
begin
    raise exception 'payment run % is paid: the format it was posted for does not change', old.number
        using errcode = 'check_violation';
end $$;
create trigger payment_run_format_guard before update of file_format on payment_run
    for each row when (old.status = 'paid' and new.file_format is distinct from old.file_format)
    execute function proplink.guard_payment_run_format();
