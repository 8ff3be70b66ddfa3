-- The search box looks words up before it measures likeness (see db/src/search.rs): each typed
-- word stands for the index words it begins and its spelling neighbours. A site-scoped member's
-- entries are then matched on those words; for everything in scope a typed prefix is completed
-- to its shortest word before the nearest-first trigram scan. (A GIN index on the body's words
-- would not help: under row-level security `&&` is not leakproof, so PostgreSQL will not use it
-- as an index condition.)
--
-- search_word therefore now holds every word of the index (references, postcodes, e-mail
-- addresses too), and the trigram index for typo correction covers the letters-only ones.

create or replace function proplink.collect_search_words() returns trigger
language plpgsql as $fn$
begin
    insert into search_word (organisation_id, word)
    select distinct n.organisation_id, w.word
      from new_rows n, regexp_split_to_table(n.body, '\s+') w(word)
     where length(w.word) between 2 and 60
    on conflict do nothing;
    return null;
end
$fn$;

insert into search_word (organisation_id, word)
select distinct e.organisation_id, w.word
  from search_entry e, regexp_split_to_table(e.body, '\s+') w(word)
 where length(w.word) between 2 and 60
on conflict do nothing;

drop index search_word_trgm;
create index search_word_trgm on search_word using gist (organisation_id, word gist_trgm_ops)
    where word ~ '^[[:alpha:]]{3,40}$';
drop index search_word_initial;
create index search_word_initial on search_word (organisation_id, left(word, 1), length(word))
    where word ~ '^[[:alpha:]]{3,40}$';
