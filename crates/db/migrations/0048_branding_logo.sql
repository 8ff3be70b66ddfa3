-- The organisation's logo (Settings → Organisation → Branding), shown in ResidencePort's
-- header: the image's bytes in the object store, its key and type here.
alter table organisation_profile
    add column logo_key text check (logo_key is null or length(logo_key) between 1 and 500),
    add column logo_media_type text check (logo_media_type in ('image/png', 'image/jpeg', 'image/webp')),
    add check ((logo_key is null) = (logo_media_type is null));
