-- Guards for site folders' files (review of 0029): the access log is append-only, and the
-- columns the server role may update on stored_file change only as a folder's file may: its
-- expiry and whether residents see it while it is current, and "replaced" once, never undone.
revoke update, delete on file_access from proplink_app;

create function proplink.guard_stored_file_update() returns trigger
language plpgsql as $$
begin
    if old.folder_id is null then
        raise exception 'only a folder''s files change after upload' using errcode = '42501';
    end if;
    if old.replaced_at is not null then
        raise exception 'a replaced version does not change' using errcode = '42501';
    end if;
    return new;
end
$$;
create trigger stored_file_guard before update on stored_file
    for each row execute function proplink.guard_stored_file_update();
