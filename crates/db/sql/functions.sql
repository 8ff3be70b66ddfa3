-- PropLink's replaceable SQL: functions that migrations and triggers call.
--
-- This file is applied before the migrations on every `proplink migrate`, so its functions are
-- edited here in place rather than by ever-growing migrations. Every statement must therefore be
-- idempotent (`create or replace`, `if not exists`), and a function's signature and return type
-- must stay stable once triggers depend on it.

create schema if not exists proplink;

-- The organisation of the current tenant transaction, or NULL outside one.
-- Used by every row-level security policy (DESIGN.md §2).
create or replace function proplink.current_org() returns uuid
language sql stable parallel safe as $fn$
    select nullif(current_setting('app.organisation_id', true), '')::uuid
$fn$;

-- The canonical text of one audit event, as hashed into the chain. A JSON array keeps the
-- encoding unambiguous (no field can bleed into the next). `proplink audit verify` recomputes
-- the hash from the stored columns through this same function.
create or replace function proplink.audit_canonical(
    prev_hash text, seq bigint, organisation_id uuid, table_name text, record_id text,
    operation text, actor_id uuid, actor_kind text, actor_name text, channel text,
    request_id text, occurred_at timestamptz, changes jsonb
) returns text
language sql immutable parallel safe as $fn$
    select jsonb_build_array(
        prev_hash, seq, organisation_id, table_name, record_id, operation, actor_id, actor_kind,
        actor_name, channel, request_id,
        to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        changes
    )::text
$fn$;

-- The generic audit trigger: one per tenant table, AFTER each row.
--
-- 1. Refuses the write when the organisation is not active (read-only or closed orgs keep
--    their data readable but unchangeable, whichever role or code path tries to write).
-- 2. Appends an event with the changed columns (old -> new), the actor, channel and request
--    from the tenant transaction's settings, to the organisation's hash chain.
--
-- The chain head lives on the organisation row. The first event of a transaction takes that row
-- FOR NO KEY UPDATE, so concurrent writers in one organisation queue behind each other; the
-- primary key (organisation_id, seq) makes a fork impossible whatever the isolation level. The function runs
-- as its owner (SECURITY DEFINER) so that the server role needs no INSERT on audit_event and
-- cannot forge or edit events. Trigger arguments name columns whose values are redacted
-- (secrets such as one-time codes in e-mail bodies).
create or replace function proplink.audit_row() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
declare
    v_old jsonb;
    v_new jsonb;
    v_changes jsonb;
    v_org uuid;
    v_record text;
    v_status text;
    v_slug text;
    v_seq bigint;
    v_prev text;
    v_hash text;
    v_at timestamptz := clock_timestamp();
    v_op text := lower(tg_op);
    v_actor_id uuid := nullif(current_setting('app.actor_id', true), '')::uuid;
    v_actor_kind text := coalesce(nullif(current_setting('app.actor_kind', true), ''),
        case when session_user = 'proplink_platform' then 'platform' else 'system' end);
    v_actor_name text := nullif(current_setting('app.actor_name', true), '');
    v_channel text := coalesce(nullif(current_setting('app.channel', true), ''),
        case when session_user = 'proplink_platform' then 'platform' else 'direct' end);
    v_request text := nullif(current_setting('app.request_id', true), '');
    v_chain_key text;
    v_chain text;
begin
    if tg_op <> 'INSERT' then v_old := to_jsonb(old); end if;
    if tg_op <> 'DELETE' then v_new := to_jsonb(new); end if;
    v_org := coalesce(v_new ->> 'organisation_id', v_old ->> 'organisation_id')::uuid;
    v_record := coalesce(v_new ->> 'id', v_old ->> 'id', '');

    -- Every event takes the organisation row (writers in one organisation queue here until
    -- commit; re-taking a row this transaction already holds costs no new row version) and
    -- checks the organisation may be changed. The running head of the chain within this
    -- transaction ("seq:hash") is carried in a transaction-local setting: a session that forges
    -- it can only produce events that `proplink audit verify` rejects, or a duplicate sequence
    -- number that the primary key refuses.
    select o.status, o.slug, o.audit_seq, o.audit_head
      into v_status, v_slug, v_seq, v_prev
      from public.organisation o where o.id = v_org
      for no key update;
    if not found then
        raise exception 'organisation % does not exist', v_org using errcode = 'foreign_key_violation';
    end if;
    -- A read-only or closed organisation refuses every write, except the record of its own
    -- status changing (written by the platform role), which must never be lost. A read-only
    -- organisation's people can still sign in to read and export: signing in writes only
    -- these access tables.
    if v_status <> 'active' and tg_table_name <> 'organisation_event'
       and not (v_status = 'read_only' and tg_table_name in
                ('staff_session', 'session_handoff', 'auth_event', 'portal_session',
                 'link_session', 'one_time_code')) then
        raise exception using
            errcode = 'PL001',
            message = format('The organisation "%s" is %s: nothing in it can be changed.',
                             v_slug, replace(v_status, '_', '-')),
            hint = 'Its records can still be read. PropLink support can reactivate it.';
    end if;
    v_chain_key := 'proplink.chain_' || replace(v_org::text, '-', '');
    v_chain := nullif(current_setting(v_chain_key, true), '');
    if v_chain is not null then
        v_seq := split_part(v_chain, ':', 1)::bigint;
        v_prev := split_part(v_chain, ':', 2);
    end if;

    if tg_op = 'INSERT' then
        select coalesce(jsonb_object_agg(n.key, jsonb_build_object('new',
                   case when n.key = any(tg_argv) then '"[redacted]"'::jsonb else n.value end)), '{}')
          into v_changes
          from jsonb_each(v_new) n
         where n.value <> 'null'::jsonb and n.key <> 'organisation_id';
    elsif tg_op = 'DELETE' then
        select coalesce(jsonb_object_agg(o.key, jsonb_build_object('old',
                   case when o.key = any(tg_argv) then '"[redacted]"'::jsonb else o.value end)), '{}')
          into v_changes
          from jsonb_each(v_old) o
         where o.value <> 'null'::jsonb and o.key <> 'organisation_id';
    else
        select coalesce(jsonb_object_agg(n.key,
                   case when n.key = any(tg_argv)
                        then '{"old": "[redacted]", "new": "[redacted]"}'::jsonb
                        else jsonb_build_object('old', o.value, 'new', n.value) end), '{}')
          into v_changes
          from jsonb_each(v_new) n join jsonb_each(v_old) o on o.key = n.key
         where n.value is distinct from o.value;
        if v_changes = '{}'::jsonb then
            return null; -- nothing changed, nothing to record
        end if;
    end if;

    v_seq := v_seq + 1;
    v_hash := encode(sha256(convert_to(proplink.audit_canonical(
        v_prev, v_seq, v_org, tg_table_name, v_record, v_op, v_actor_id, v_actor_kind,
        v_actor_name, v_channel, v_request, v_at, v_changes), 'UTF8')), 'hex');

    insert into public.audit_event (organisation_id, seq, table_name, record_id, operation, changes,
                             actor_id, actor_kind, actor_name, channel, request_id, occurred_at,
                             prev_hash, hash)
    values (v_org, v_seq, tg_table_name, v_record, v_op, v_changes, v_actor_id, v_actor_kind,
            v_actor_name, v_channel, v_request, v_at, v_prev, v_hash);

    -- Carried to the next event of this transaction (a savepoint rollback restores it with the
    -- events it removes); written to the organisation once, at commit, by audit_seal().
    perform set_config(v_chain_key, v_seq || ':' || v_hash, true);
    return null;
end
$fn$;

-- Deferred to commit, once per event: the event that is the transaction's last for its
-- organisation writes the chain head back to the organisation row. Updating the head per
-- event instead would pile up one row version per event inside a long transaction, making
-- each further event slower (a 10,000-row import would crawl).
create or replace function proplink.audit_seal() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
begin
    if current_setting('proplink.chain_' || replace(new.organisation_id::text, '-', ''), true)
       = new.seq || ':' || new.hash then
        update public.organisation set audit_seq = new.seq, audit_head = new.hash
         where id = new.organisation_id;
    end if;
    return null;
end
$fn$;

-- Makes a freshly created table a tenant table: row-level security enabled and forced, the
-- tenant policy, read access for the platform role, the audit trigger and the server role's
-- grants. Every migration that creates a tenant table calls it (see ARCHITECTURE.md); the
-- schema-lint test proves the result.
--   redact: columns whose values the audit log records as "[redacted]".
--   audit_updates: false for queue bookkeeping tables whose updates are not business events.
create or replace function proplink.make_tenant_table(
    t regclass, redact text[] default '{}', audit_updates boolean default true
) returns void
language plpgsql as $fn$
declare
    v_args text := (select coalesce(string_agg(quote_literal(c), ', '), '') from unnest(redact) c);
begin
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s
                        using (organisation_id = nullif(current_setting(''app.organisation_id'', true), '''')::uuid)
                        with check (organisation_id = nullif(current_setting(''app.organisation_id'', true), '''')::uuid)', t);
    execute format('create policy platform_access on %s to proplink_platform using (true) with check (true)', t);
    execute format('create trigger audit after insert %s on %s for each row execute function proplink.audit_row(%s)',
                   case when audit_updates then 'or update or delete' else '' end, t, v_args);
    execute format('grant select, insert, update, delete on %s to proplink_app', t);
    execute format('grant select on %s to proplink_platform', t);
end
$fn$;

-- Wakes idle workers as soon as a job is queued (they also poll, so a lost notification only
-- delays a job by the poll interval).
create or replace function proplink.notify_job() returns trigger
language plpgsql as $fn$
begin
    perform pg_notify('proplink_jobs', '');
    return null;
end
$fn$;

-- Tells every PropLink process that access data changed (see `session_cache.rs`): the payload is
-- the organisation, or `*` for a person's own record, which reaches all their organisations.
-- PostgreSQL sends it on commit, once per distinct payload per transaction.
create or replace function proplink.notify_access_change() returns trigger
language plpgsql as $fn$
begin
    if tg_table_name = 'staff_user' then
        perform pg_notify('proplink_access', '*');
    else
        perform pg_notify('proplink_access', coalesce(new.organisation_id, old.organisation_id)::text);
    end if;
    return null;
end
$fn$;
