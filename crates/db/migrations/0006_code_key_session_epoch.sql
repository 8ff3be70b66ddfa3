-- The key one-time codes are digested with: made once per database from PostgreSQL's strong
-- random source (gen_random_uuid), shared by every server process so that a code issued by one
-- is checked by another.
insert into platform_meta (key, value)
values ('code_key', encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'))
on conflict (key) do nothing;

-- "Sessions valid after" starts at the epoch, not -infinity: every timestamp the server reads
-- must be one a Rust date can hold.
alter table staff_user alter column sessions_valid_after set default '1970-01-01 00:00:00+00';
update staff_user set sessions_valid_after = '1970-01-01 00:00:00+00'
 where sessions_valid_after = '-infinity';
alter table staff_user add constraint staff_user_sessions_valid_after_finite
    check (isfinite(sessions_valid_after));
