-- The word backfills of 0011 and 0012 ran as the owner under forced row-level security, so on a
-- database that already had organisations they copied nothing. Done again here past it (as
-- 0009 indexes existing sites), for every organisation; the words a trigger has collected since
-- are kept.

alter table search_entry no force row level security;
alter table search_word no force row level security;
insert into search_word (organisation_id, word)
select distinct e.organisation_id, w.word
  from search_entry e, regexp_split_to_table(e.body, '\s+') w(word)
 where length(w.word) between 2 and 60
on conflict do nothing;
alter table search_entry force row level security;
alter table search_word force row level security;
