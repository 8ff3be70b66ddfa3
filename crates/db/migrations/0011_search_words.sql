-- The search box's typo tolerance and phone prefixes (see db/src/search.rs).
--
-- search_word: the distinct words (letters only, 3 to 40 of them) of an organisation's search
-- index. A query word that begins no known word is replaced by the nearest known word within
-- one or two edits ("jnoes" → "jones"), and the ordinary nearest-first search then runs on
-- that. Without it a typo made the trigram scan explore most of the index before giving up
-- (p99 120–160 ms at 250,000 entries). Words are only added: a word whose last record went
-- away costs nothing but a correction that finds no record.

create extension if not exists fuzzystrmatch;

create table search_word (
    organisation_id uuid not null references organisation (id),
    word text collate "C" not null,
    primary key (organisation_id, word)
);
create index search_word_trgm on search_word using gist (organisation_id, word gist_trgm_ops);
create index search_word_initial on search_word (organisation_id, left(word, 1), length(word));
select proplink.make_tenant_table('search_word');
-- Derived from the search index, which is derived from audited tables (lint.rs lists it).
drop trigger audit on search_word;
drop trigger audit_update on search_word;
drop trigger audit_delete on search_word;

create or replace function proplink.collect_search_words() returns trigger
language plpgsql as $fn$
begin
    insert into search_word (organisation_id, word)
    select distinct n.organisation_id, w.word
      from new_rows n, regexp_split_to_table(n.body, '\s+') w(word)
     where w.word ~ '^[[:alpha:]]{3,40}$'
    on conflict do nothing;
    return null;
end
$fn$;
create trigger collect_words_insert after insert on search_entry
    referencing new table as new_rows for each statement
    execute function proplink.collect_search_words();
create trigger collect_words_update after update on search_entry
    referencing new table as new_rows for each statement
    execute function proplink.collect_search_words();

insert into search_word (organisation_id, word)
select distinct e.organisation_id, w.word
  from search_entry e, regexp_split_to_table(e.body, '\s+') w(word)
 where w.word ~ '^[[:alpha:]]{3,40}$'
on conflict do nothing;

-- Phone numbers by prefix ("07700 9"): an exact prefix, not a likeness.
create index contact_phone_prefix on contact_phone (organisation_id, phone text_pattern_ops);
