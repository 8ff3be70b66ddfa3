-- Changes to who may do what are announced on `proplink_access`, so each process can drop the
-- signed-in sessions it keeps in memory (`session_cache.rs`). A session's "last seen" is not
-- announced (it changes nothing cached); its ending is.
create trigger access_changed after insert or update or delete on membership
    for each row execute function proplink.notify_access_change();
create trigger access_changed after insert or update or delete on membership_scope
    for each row execute function proplink.notify_access_change();
create trigger access_changed after insert or update or delete on custom_role
    for each row execute function proplink.notify_access_change();
create trigger access_changed after insert or update or delete on organisation_profile
    for each row execute function proplink.notify_access_change();
create trigger access_changed after update of ended_at, absolute_expires_at or delete on staff_session
    for each row execute function proplink.notify_access_change();
create trigger access_changed after update of email, name, sessions_valid_after or delete on staff_user
    for each row execute function proplink.notify_access_change();
