-- The key one-time codes are digested with: made once per database from PostgreSQL's strong
-- random source (gen_random_uuid), shared by every server process so that a code issued by one
-- is checked by another.
insert into platform_meta (key, value)
values ('code_key', encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'))
on conflict (key) do nothing;
