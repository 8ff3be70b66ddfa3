-- The search box finds entries by their words through an index row-level security lets it use
-- (see db/src/search.rs).
--
-- search_posting: one row per word of each search entry's body ("smith" → the entries holding
-- it). Its primary key is a plain btree on (organisation, word, entry), looked up with `=`:
-- text equality is leakproof, so PostgreSQL uses the index under forced row-level security.
-- (A GIN index on the words would answer the same question, but `&&` is not leakproof, and the
-- nearest-first trigram scan it replaces took 120–410 ms for common words at 250,000 entries.)
--
-- Kept by statement-level triggers on search_entry, like search_word; derived from audited
-- tables, so not audited itself (lint.rs lists the exemption).

create table search_posting (
    organisation_id uuid not null references organisation (id),
    word text collate "C" not null,
    entry_id uuid not null,
    primary key (organisation_id, word, entry_id)
);
select proplink.make_tenant_table('search_posting');
drop trigger audit on search_posting;
drop trigger audit_update on search_posting;
drop trigger audit_delete on search_posting;

-- The words of a body, as the search index splits them: on white space, 2 to 60 characters.
create or replace function proplink.search_words(body text) returns setof text
language sql immutable parallel safe as $fn$
    select distinct w from regexp_split_to_table(body, '\s+') w where length(w) between 2 and 60
$fn$;

-- One function per operation: each reads only the transition tables its trigger has.
create or replace function proplink.post_search_words_insert() returns trigger
language plpgsql as $fn$
begin
    insert into search_posting (organisation_id, word, entry_id)
    select n.organisation_id, w.word, n.id
      from new_rows n, proplink.search_words(n.body) w(word)
    on conflict do nothing;
    return null;
end
$fn$;

create or replace function proplink.post_search_words_update() returns trigger
language plpgsql as $fn$
begin
    delete from search_posting p
     using (select o.organisation_id, o.id, w.word
              from old_rows o, proplink.search_words(o.body) w(word)
            except
            select n.organisation_id, n.id, w.word
              from new_rows n, proplink.search_words(n.body) w(word)) gone
     where p.organisation_id = gone.organisation_id and p.word = gone.word
       and p.entry_id = gone.id;
    insert into search_posting (organisation_id, word, entry_id)
    select n.organisation_id, w.word, n.id
      from new_rows n, proplink.search_words(n.body) w(word)
    on conflict do nothing;
    return null;
end
$fn$;

create or replace function proplink.post_search_words_delete() returns trigger
language plpgsql as $fn$
begin
    delete from search_posting p
     using (select o.organisation_id, o.id, w.word
              from old_rows o, proplink.search_words(o.body) w(word)) gone
     where p.organisation_id = gone.organisation_id and p.word = gone.word
       and p.entry_id = gone.id;
    return null;
end
$fn$;

create trigger post_words_insert after insert on search_entry
    referencing new table as new_rows for each statement
    execute function proplink.post_search_words_insert();
create trigger post_words_update after update on search_entry
    referencing old table as old_rows new table as new_rows for each statement
    execute function proplink.post_search_words_update();
create trigger post_words_delete after delete on search_entry
    referencing old table as old_rows for each statement
    execute function proplink.post_search_words_delete();

-- Existing entries, past forced row-level security (as 0014 does for the words).
alter table search_entry no force row level security;
alter table search_posting no force row level security;
insert into search_posting (organisation_id, word, entry_id)
select e.organisation_id, w.word, e.id
  from search_entry e, proplink.search_words(e.body) w(word)
on conflict do nothing;
alter table search_entry force row level security;
alter table search_posting force row level security;
