-- The name an invitation was sent with. Until the person accepts, the organisation sees this
-- name, not the one on their PropLink account (which would tell it whether the address already
-- has an account, and what that person calls themselves elsewhere).
alter table invitation add column invitee_name text
    check (invitee_name is null or length(btrim(invitee_name)) between 1 and 200);
