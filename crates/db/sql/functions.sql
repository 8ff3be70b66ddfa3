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

-- The canonical text of one audit event, as hashed into the chain (audit_append writes the same
-- expression out in full: keep the two alike). A JSON array keeps the
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

-- Appends audit events to the organisation's hash chain: one event per row written by one
-- statement on one table (or a single row, from `audit_row`). `p_old` and `p_new` hold the rows
-- as JSON, aligned by position (NULL where the operation has no old or no new row).
--
-- 1. Refuses the write when the organisation is not active (read-only or closed orgs keep
--    their data readable but unchangeable, whichever role or code path tries to write).
-- 2. Appends an event per row with the changed columns (old -> new), the actor, channel and
--    request from the tenant transaction's settings, in the rows' order.
--
-- The chain head lives on the organisation row. The first event of a transaction takes that row
-- FOR NO KEY UPDATE, so concurrent writers in one organisation queue behind each other; the
-- primary key (organisation_id, seq) makes a fork impossible whatever the isolation level. The
-- function runs as its owner (SECURITY DEFINER) so that the server role needs no INSERT on
-- audit_event and cannot forge or edit events. `p_redact` names columns whose values are
-- recorded as "[redacted]" (secrets such as one-time codes in e-mail bodies); a name written
-- "-column" is left out altogether (a lookup key derived from another column).
create or replace function proplink.audit_append(
    p_table text, p_op text, p_old jsonb[], p_new jsonb[], p_redact text[]
) returns void
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
declare
    v_org uuid;
    v_status text;
    v_slug text;
    v_seq bigint;
    v_prev text;
    v_hash text;
    v_at timestamptz;
    v_actor_id uuid := nullif(current_setting('app.actor_id', true), '')::uuid;
    v_actor_kind text := coalesce(nullif(current_setting('app.actor_kind', true), ''),
        case when session_user = 'proplink_platform' then 'platform' else 'system' end);
    v_actor_name text := nullif(current_setting('app.actor_name', true), '');
    v_channel text := coalesce(nullif(current_setting('app.channel', true), ''),
        case when session_user = 'proplink_platform' then 'platform' else 'direct' end);
    v_request text := nullif(current_setting('app.request_id', true), '');
    v_chain_key text;
    v_chain text;
    v_seqs bigint[];
    v_records text[];
    v_changes jsonb[];
    v_times timestamptz[];
    v_prevs text[];
    v_hashes text[];
    v_redact text[] := coalesce(p_redact, '{}'); -- a trigger without arguments passes NULL
    r record;
begin
    -- Only the audit triggers may append (see the revoke below: the server roles cannot even
    -- call this; the check is a second lock on the same door).
    if pg_trigger_depth() = 0 then
        raise exception 'audit events are written only by the audit triggers'
            using errcode = 'insufficient_privilege';
    end if;
    for v_org in
        select distinct coalesce(x.n ->> 'organisation_id', x.o ->> 'organisation_id')::uuid
          from unnest(p_old, p_new) x(o, n)
    loop
        -- Every statement takes the organisation row (writers in one organisation queue here
        -- until commit; re-taking a row this transaction already holds costs no new row
        -- version) and checks the organisation may be changed. The running head of the chain
        -- within this transaction ("seq:hash") is carried in a transaction-local setting: a
        -- session that forges it can only produce events that `proplink audit verify` rejects,
        -- or a duplicate sequence number that the primary key refuses.
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
        if v_status <> 'active' and p_table <> 'organisation_event'
           and not (v_status = 'read_only' and p_table in
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

        v_seqs := '{}'; v_records := '{}'; v_changes := '{}'; v_times := '{}';
        v_prevs := '{}'; v_hashes := '{}';
        for r in
            -- Each row's changes are built as JSON text and parsed once: three to four times
            -- faster than jsonb_object_agg over jsonb_build_object, and the same value.
            select coalesce(x.n ->> 'id', x.o ->> 'id', '') as record,
                   case p_op
                   when 'insert' then
                       (select coalesce('{' || string_agg(to_json(c.key)::text || ':{"new":' ||
                                   case when c.key = any(p_redact) then '"[redacted]"' else c.value::text end
                                   || '}', ',') || '}', '{}')::jsonb
                          from jsonb_each(x.n) c
                         where c.value <> 'null'::jsonb and c.key <> 'organisation_id'
                           and not ('-' || c.key) = any(v_redact))
                   when 'delete' then
                       (select coalesce('{' || string_agg(to_json(c.key)::text || ':{"old":' ||
                                   case when c.key = any(p_redact) then '"[redacted]"' else c.value::text end
                                   || '}', ',') || '}', '{}')::jsonb
                          from jsonb_each(x.o) c
                         where c.value <> 'null'::jsonb and c.key <> 'organisation_id'
                           and not ('-' || c.key) = any(v_redact))
                   else
                       (select coalesce('{' || string_agg(to_json(c.key)::text || ':' ||
                                   case when c.key = any(p_redact)
                                        then '{"old":"[redacted]","new":"[redacted]"}'
                                        else '{"old":' || b.value::text || ',"new":' || c.value::text || '}' end,
                                   ',') || '}', '{}')::jsonb
                          from jsonb_each(x.n) c
                          cross join lateral (select x.o -> c.key as value) b
                         where c.value is distinct from b.value
                           and not ('-' || c.key) = any(v_redact))
                   end as changes
              from unnest(p_old, p_new) with ordinality x(o, n, i)
             where coalesce(x.n ->> 'organisation_id', x.o ->> 'organisation_id')::uuid = v_org
             order by x.i
        loop
            -- An update that changed nothing is not an event.
            continue when p_op = 'update' and r.changes = '{}'::jsonb;
            v_seq := v_seq + 1;
            v_at := clock_timestamp();
            -- audit_canonical's text, written out: called as a function it costs a query per
            -- event. The audit test checks the two agree (verify recomputes through the
            -- function).
            v_hash := encode(sha256(convert_to(jsonb_build_array(
                v_prev, v_seq, v_org, p_table, r.record, p_op, v_actor_id, v_actor_kind,
                v_actor_name, v_channel, v_request,
                to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                r.changes)::text, 'UTF8')), 'hex');
            v_seqs := v_seqs || v_seq;
            v_records := v_records || r.record;
            v_changes := v_changes || r.changes;
            v_times := v_times || v_at;
            v_prevs := v_prevs || v_prev;
            v_hashes := v_hashes || v_hash;
            v_prev := v_hash;
        end loop;
        continue when cardinality(v_seqs) = 0;

        -- Only this statement's last event queues the deferred seal (see audit_seal and the
        -- WHEN clause of its trigger), so a 100,000-row import queues a handful, not 100,000.
        perform set_config('proplink.audit_last', v_org || ':' || v_seq, true);
        insert into public.audit_event (organisation_id, seq, table_name, record_id, operation,
                                        changes, actor_id, actor_kind, actor_name, channel,
                                        request_id, occurred_at, prev_hash, hash)
        select v_org, e.seq, p_table, e.record, p_op, e.changes, v_actor_id, v_actor_kind,
               v_actor_name, v_channel, v_request, e.at, e.prev, e.hash
          from unnest(v_seqs, v_records, v_changes, v_times, v_prevs, v_hashes)
               e(seq, record, changes, at, prev, hash)
         order by e.seq;
        -- Carried to the next event of this transaction (a savepoint rollback restores it with
        -- the events it removes); written to the organisation once, at commit, by audit_seal().
        perform set_config(v_chain_key, v_seq || ':' || v_prev, true);
    end loop;
end
$fn$;

-- Nobody but the owner (through the triggers) may call it: as SECURITY DEFINER it could
-- otherwise append well-formed events to any organisation's chain.
revoke execute on function proplink.audit_append(text, text, jsonb[], jsonb[], text[]) from public;

-- The audit trigger of a tenant table: statement-level, one per operation (INSERT, UPDATE,
-- DELETE), reading the statement's rows from its transition tables `old_rows` / `new_rows`.
-- One call per statement instead of one per row is what lets a 100,000-row import be audited
-- row by row at import speed. Updated rows are paired old with new by primary key. Trigger
-- arguments name redacted columns.
create or replace function proplink.audit_stmt() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
declare
    v_old jsonb[];
    v_new jsonb[];
    v_pk text[];
    v_old_sorted jsonb[];
    v_old_keys jsonb[];
    v_new_sorted jsonb[];
    v_new_keys jsonb[];
    v_new_at bigint[];
begin
    if tg_op = 'INSERT' then
        select array_agg(to_jsonb(n)) into v_new from new_rows n;
    elsif tg_op = 'DELETE' then
        select array_agg(to_jsonb(o)) into v_old from old_rows o;
    else
        select array_agg(a.attname::text order by k.ord) into v_pk
          from pg_catalog.pg_constraint c
          cross join unnest(c.conkey) with ordinality k(attnum, ord)
          join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
         where c.conrelid = tg_relid and c.contype = 'p';
        -- PostgreSQL captures each updated row's old and new versions together, so the two
        -- transition tables normally pair by position. Pairing is checked by primary key, and
        -- done by primary key (both sides sorted, then zipped) if positions ever disagree. No
        -- join: a plan cached from a one-row update would pair a large one in quadratic time.
        select array_agg(to_jsonb(o)) into v_old from old_rows o;
        select array_agg(to_jsonb(n)) into v_new from new_rows n;
        if exists (select from unnest(v_old, v_new) x(o, n)
                    where x.o is null or x.n is null
                       or exists (select from unnest(v_pk) c
                                   where (x.o -> c) is distinct from (x.n -> c))) then
            select array_agg(s.j order by s.k), array_agg(s.k order by s.k)
              into v_old_sorted, v_old_keys
              from (select u.j, (select jsonb_agg(u.j -> c) from unnest(v_pk) c) as k
                      from unnest(v_old) u(j)) s;
            select array_agg(s.j order by s.k), array_agg(s.k order by s.k),
                   array_agg(s.i order by s.k)
              into v_new_sorted, v_new_keys, v_new_at
              from (select u.j, u.i, (select jsonb_agg(u.j -> c) from unnest(v_pk) c) as k
                      from unnest(v_new) with ordinality u(j, i)) s;
            -- An update that changed a primary key cannot be paired by it: the rows stay paired
            -- in the order PostgreSQL captured them.
            if v_old_keys = v_new_keys then
                select array_agg(x.o order by x.i), array_agg(x.n order by x.i)
                  into v_old, v_new
                  from unnest(v_old_sorted, v_new_sorted, v_new_at) x(o, n, i);
            end if;
        end if;
    end if;
    if coalesce(cardinality(v_old), 0) + coalesce(cardinality(v_new), 0) > 0 then
        perform proplink.audit_append(tg_table_name, lower(tg_op), coalesce(v_old, '{}'),
                                      coalesce(v_new, '{}'), tg_argv);
    end if;
    return null;
end
$fn$;

-- The same audit as a row-level trigger, for the few triggers that need a row-level WHEN clause
-- (an import run's status changing). Events are identical to the statement-level trigger's.
create or replace function proplink.audit_row() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
begin
    perform proplink.audit_append(
        tg_table_name, lower(tg_op),
        array[case when tg_op <> 'INSERT' then to_jsonb(old) end],
        array[case when tg_op <> 'DELETE' then to_jsonb(new) end],
        tg_argv);
    return null;
end
$fn$;

-- Deferred to commit, once per audited statement (the trigger's WHEN clause queues only each
-- statement's last event): the event that is the transaction's last for its organisation writes
-- the chain head back to the organisation row. Updating the head per event instead would pile up
-- one row version per event inside a long transaction, making each further event slower.
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

-- Creates a tenant table's audit triggers (see audit_stmt): `audit` on insert and, unless
-- audit_updates is false, `audit_update` and `audit_delete`. Each is statement-level over
-- transition tables, which PostgreSQL allows for one operation per trigger.
create or replace function proplink.make_audit_triggers(
    t regclass, redact text[] default '{}', audit_updates boolean default true
) returns void
language plpgsql as $fn$
declare
    v_args text := (select coalesce(string_agg(quote_literal(c), ', '), '') from unnest(redact) c);
begin
    execute format('create trigger audit after insert on %s referencing new table as new_rows
                    for each statement execute function proplink.audit_stmt(%s)', t, v_args);
    if audit_updates then
        execute format('create trigger audit_update after update on %s
                        referencing old table as old_rows new table as new_rows
                        for each statement execute function proplink.audit_stmt(%s)', t, v_args);
        execute format('create trigger audit_delete after delete on %s referencing old table as old_rows
                        for each statement execute function proplink.audit_stmt(%s)', t, v_args);
    end if;
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
begin
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s
                        using (organisation_id = nullif(current_setting(''app.organisation_id'', true), '''')::uuid)
                        with check (organisation_id = nullif(current_setting(''app.organisation_id'', true), '''')::uuid)', t);
    execute format('create policy platform_access on %s to proplink_platform using (true) with check (true)', t);
    perform proplink.make_audit_triggers(t, redact, audit_updates);
    execute format('grant select, insert, update, delete on %s to proplink_app', t);
    execute format('grant select on %s to proplink_platform', t);
end
$fn$;

-- Refreshes the planner's statistics of the named tenant tables, for the server role (which
-- does not own them) after a large import. Only tables of the public schema with an
-- organisation_id column are accepted.
create or replace function proplink.refresh_statistics(tables text[]) returns void
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
declare
    v_table text;
begin
    foreach v_table in array tables loop
        if not exists (select from pg_class c
                         join pg_namespace n on n.oid = c.relnamespace
                         join pg_attribute a on a.attrelid = c.oid
                        where n.nspname = 'public' and c.relname = v_table and c.relkind = 'r'
                          and a.attname = 'organisation_id' and not a.attisdropped) then
            raise exception 'not a tenant table: %', v_table using errcode = 'invalid_parameter_value';
        end if;
        -- A table another import is analysing is left to that one (no waiting on its lock).
        execute format('analyze (skip_locked) public.%I', v_table);
    end loop;
end
$fn$;

revoke execute on function proplink.refresh_statistics(text[]) from public;
grant execute on function proplink.refresh_statistics(text[]) to proplink_app;

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

-- For an erasure (migration 0017): replaces with "[erased]" every value of the named columns in
-- the audit events of the named records of the current organisation, and records each changed
-- event's new content hash in audit_erasure under `p_erasure`. `p_targets` is
-- [{"table": t, "record": id, "columns": [c, …]}, …]. Returns [{"seq", "content_hash"}, …], for
-- the erasure's own (audited) row to carry into the chain. Events already stripped are left as
-- they are. Runs as the owner: the server role cannot change audit events itself.
create or replace function proplink.strip_audit_events(p_erasure uuid, p_targets jsonb)
returns jsonb
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $fn$
declare
    v_org uuid := nullif(current_setting('app.organisation_id', true), '')::uuid;
    v_stripped jsonb;
begin
    if v_org is null then
        raise exception 'strip_audit_events needs a tenant transaction';
    end if;
    with target as (
        select t ->> 'table' as table_name, t ->> 'record' as record_id,
               array(select jsonb_array_elements_text(t -> 'columns')) as columns
          from jsonb_array_elements(p_targets) t
    ), stripped as (
        update audit_event e
           set changes = (select jsonb_object_agg(c.key,
                                     case when c.key = any(t.columns) and jsonb_typeof(c.value) = 'object'
                                          then (select jsonb_object_agg(v.key, to_jsonb('[erased]'::text))
                                                  from jsonb_each(c.value) v)
                                          when c.key = any(t.columns) then to_jsonb('[erased]'::text)
                                          else c.value end)
                            from jsonb_each(e.changes) c)
          from target t
         where e.organisation_id = v_org and e.table_name = t.table_name
           and e.record_id = t.record_id
           and exists (select from jsonb_object_keys(e.changes) k where k = any(t.columns))
           and not exists (select from audit_erasure a
                            where a.organisation_id = e.organisation_id and a.seq = e.seq)
        returning e.*
    ), attested as (
        insert into audit_erasure (organisation_id, seq, content_hash, erasure_id)
        select s.organisation_id, s.seq,
               encode(sha256(convert_to(proplink.audit_canonical(
                   s.prev_hash, s.seq, s.organisation_id, s.table_name, s.record_id, s.operation,
                   s.actor_id, s.actor_kind, s.actor_name, s.channel, s.request_id, s.occurred_at,
                   s.changes), 'UTF8')), 'hex'),
               p_erasure
          from stripped s
        returning seq, content_hash
    )
    select coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'content_hash', content_hash)
                              order by seq), '[]'::jsonb)
      into v_stripped
      from attested;
    return v_stripped;
end
$fn$;
-- Only the server role, for an erasure; never the platform role or anyone else.
revoke execute on function proplink.strip_audit_events(uuid, jsonb) from public;
grant execute on function proplink.strip_audit_events(uuid, jsonb) to proplink_app;

-- Undoes one audited write, for reverting an import (migration 0018): an insert is deleted, an
-- update sets the changed columns back to their old values, a delete is inserted again with its
-- old values. Only the import tables are accepted, and only their real, non-generated columns
-- are written (the JSON keys are checked against the catalogue). Runs as the caller, so
-- row-level security and the audit triggers apply as to any write.
create or replace function proplink.undo_event(
    p_table text, p_record text, p_operation text, p_changes jsonb
) returns void
language plpgsql set search_path = pg_catalog, public, pg_temp as $fn$
declare
    v_org uuid := nullif(current_setting('app.organisation_id', true), '')::uuid;
    v_old jsonb;
    v_columns text;
    v_done integer;
    v_fk record;
    v_used boolean;
begin
    if p_table not in ('estate', 'site', 'building', 'floor', 'unit', 'contact', 'contact_email',
                       'contact_phone', 'contact_role', 'lease', 'lease_holder') then
        raise exception 'undo_event: % is not an import table', p_table;
    end if;
    if p_operation = 'insert' then
        -- A later record pointing at this one stops the revert, even where the key would
        -- cascade (a lease added to an imported unit must not vanish with it).
        for v_fk in
            select c.conname, c.conrelid::regclass::text as child,
                   string_agg(quote_ident(ca.attname), ', ' order by k.ord) as child_columns,
                   string_agg('p.' || quote_ident(pa.attname), ', ' order by k.ord) as parent_columns
              from pg_constraint c
             cross join lateral unnest(c.conkey, c.confkey) with ordinality k(child_key, parent_key, ord)
              join pg_attribute ca on ca.attrelid = c.conrelid and ca.attnum = k.child_key
              join pg_attribute pa on pa.attrelid = c.confrelid and pa.attnum = k.parent_key
             where c.contype = 'f' and c.confrelid = ('public.' || quote_ident(p_table))::regclass
             group by c.conname, c.conrelid
        loop
            execute format('select exists (select from %s ch where (%s) = (select %s from public.%I p
                                                                         where p.organisation_id = $1 and p.id = $2))',
                           v_fk.child, v_fk.child_columns, v_fk.parent_columns, p_table)
               into v_used using v_org, p_record::uuid;
            if v_used then
                raise exception 'undo_event: % % is used by %', p_table, p_record, v_fk.child
                    using errcode = 'foreign_key_violation', constraint = v_fk.conname;
            end if;
        end loop;
        execute format('delete from public.%I where organisation_id = $1 and id = $2', p_table)
           using v_org, p_record::uuid;
        get diagnostics v_done = row_count;
        if v_done <> 1 then
            raise exception 'undo_event: % % is no longer there', p_table, p_record
                using errcode = 'P0002';
        end if;
        return;
    end if;
    -- The old values of the columns the event names that are real, writable columns.
    select jsonb_object_agg(c.key, c.value -> 'old'),
           string_agg(quote_ident(c.key), ', ' order by c.key)
      into v_old, v_columns
      from jsonb_each(p_changes) c
      join pg_attribute a on a.attrelid = ('public.' || quote_ident(p_table))::regclass
                         and a.attname = c.key and a.attnum > 0 and not a.attisdropped
                         and a.attgenerated = ''
     where c.key not in ('organisation_id', 'id') and jsonb_typeof(c.value) = 'object'
       and c.value ? 'old';
    if v_old is null then
        return;
    end if;
    if exists (select from jsonb_each(v_old) o where o.value in ('"[redacted]"', '"[erased]"')) then
        raise exception 'undo_event: % % holds values that were never stored in the log',
            p_table, p_record using errcode = 'P0001';
    end if;
    if p_operation = 'update' then
        execute format('update public.%1$I set (%2$s) = (select %2$s from jsonb_populate_record(null::public.%1$I, $3))
                         where organisation_id = $1 and id = $2', p_table, v_columns)
           using v_org, p_record::uuid, v_old;
    else
        execute format('insert into public.%1$I (organisation_id, id, %2$s)
                        select $1, $2, %2$s from jsonb_populate_record(null::public.%1$I, $3)',
                       p_table, v_columns)
           using v_org, p_record::uuid, v_old;
    end if;
    get diagnostics v_done = row_count;
    if v_done <> 1 then
        raise exception 'undo_event: % % is no longer there', p_table, p_record
            using errcode = 'P0002';
    end if;
end
$fn$;
