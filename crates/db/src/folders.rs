//! Site folders and their files (docs-spec §2.13 "Files"). Every site gets the seven default
//! folders the first time its documents are opened (`ensure_defaults`, idempotent); managers
//! add, rename and archive folders and set who besides staff may see each one
//! (`proplink_domain::folders`). Files are uploaded into a folder, replaced by new versions
//! (the old ones kept, listed under the current one), and may carry an expiry date. Every
//! view, download, ZIP and share of a folder's file is recorded in `file_access`, itself
//! audited, so the audit log shows who opened what through which door.

use crate::error::DbError;
use crate::operations::{FILE_COLUMNS, FileRecord, NewFile, OpsError};
use crate::tenant::TenantTx;
use proplink_domain::folders::{
    DEFAULT_FOLDERS, FolderAccess, ResidentAudience, Viewer, check_folder_name, may_view,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Folder {
    pub id: Uuid,
    pub site_id: Uuid,
    pub site_name: String,
    pub estate_id: Option<Uuid>,
    pub name: String,
    pub default_key: Option<String>,
    pub resident_audience: String,
    pub contractor_access: bool,
    pub regulator_access: bool,
    pub archived_at: Option<OffsetDateTime>,
    /// Shared with one building's or one unit's residents only.
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    /// Current (not replaced) files in it.
    pub files: i64,
    /// Current files whose expiry date has passed or falls within 30 days.
    pub expiring: i64,
}

impl Folder {
    pub fn access(&self) -> FolderAccess {
        FolderAccess {
            residents: ResidentAudience::parse(&self.resident_audience)
                .unwrap_or(ResidentAudience::None),
            contractors: self.contractor_access,
            regulator: self.regulator_access,
        }
    }
}

const FOLDER_COLUMNS: &str = "f.id, f.site_id, s.name as site_name, s.estate_id, f.name,
    f.default_key, f.resident_audience, f.contractor_access, f.regulator_access, f.archived_at,
    f.building_id, f.unit_id,
    (select count(*) from stored_file x where x.organisation_id = f.organisation_id
        and x.folder_id = f.id and x.replaced_at is null) as files,
    (select count(*) from stored_file x where x.organisation_id = f.organisation_id
        and x.folder_id = f.id and x.replaced_at is null
        and x.expires_on < current_date + 30) as expiring";

/// Creates the site's default folders that it does not have yet (never re-creates one that was
/// renamed; an archived default stays archived).
pub async fn ensure_defaults(tx: &mut TenantTx, site: Uuid) -> Result<(), DbError> {
    for (position, f) in DEFAULT_FOLDERS.iter().enumerate() {
        sqlx::query(
            "insert into site_folder (organisation_id, id, site_id, name, default_key,
                                      resident_audience, contractor_access, regulator_access, position)
             select $1, $2, $3, $4, $5, $6, $7, $8, $9
              where not exists (select from site_folder where organisation_id = $1 and site_id = $3
                                  and default_key = $5)
                and not exists (select from site_folder where organisation_id = $1 and site_id = $3
                                  and lower(name) = lower($4) and archived_at is null)
             on conflict do nothing",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(site)
        .bind(f.name)
        .bind(f.key)
        .bind(f.access.residents.as_str())
        .bind(f.access.contractors)
        .bind(f.access.regulator)
        .bind(i32::try_from(position).unwrap_or(0) * 10)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// A site's folders in order, archived ones last when asked for.
pub async fn folders(
    tx: &mut TenantTx,
    site: Uuid,
    include_archived: bool,
) -> Result<Vec<Folder>, DbError> {
    let sql = format!(
        "select {FOLDER_COLUMNS} from site_folder f
           join site s on s.organisation_id = f.organisation_id and s.id = f.site_id
          where f.organisation_id = $1 and f.site_id = $2 and ($3 or f.archived_at is null)
          order by f.archived_at is not null, f.position, lower(f.name)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(site)
        .bind(include_archived)
        .fetch_all(tx.conn())
        .await?)
}

pub async fn find(tx: &mut TenantTx, id: Uuid) -> Result<Option<Folder>, DbError> {
    let sql = format!(
        "select {FOLDER_COLUMNS} from site_folder f
           join site s on s.organisation_id = f.organisation_id and s.id = f.site_id
          where f.organisation_id = $1 and f.id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// Refuses changes to the folders of an archived site.
async fn site_live(tx: &mut TenantTx, site: Uuid) -> Result<(), OpsError> {
    let archived: Option<bool> = sqlx::query_scalar(
        "select archived_at is not null from site where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_optional(tx.conn())
    .await?;
    match archived {
        None => Err(OpsError::NotFound),
        Some(true) => Err(OpsError::State(
            "The site is archived: restore it before changing its documents.".into(),
        )),
        Some(false) => Ok(()),
    }
}

fn name_taken(name: &str) -> OpsError {
    OpsError::Invalid(format!("This site already has a folder called {name}."))
}

async fn name_free(
    tx: &mut TenantTx,
    site: Uuid,
    name: &str,
    except: Option<Uuid>,
) -> Result<bool, DbError> {
    let taken: bool = sqlx::query_scalar(
        "select exists (select from site_folder where organisation_id = $1 and site_id = $2
                          and lower(name) = lower($3) and archived_at is null
                          and id is distinct from $4)",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(name)
    .bind(except)
    .fetch_one(tx.conn())
    .await?;
    Ok(!taken)
}

/// Adds a folder to a site, staff only until its permissions are set.
pub async fn create(tx: &mut TenantTx, site: Uuid, name: &str) -> Result<Uuid, OpsError> {
    let name = check_folder_name(name).map_err(OpsError::Invalid)?;
    site_live(tx, site).await?;
    if !name_free(tx, site, &name, None).await? {
        return Err(name_taken(&name));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into site_folder (organisation_id, id, site_id, name, position)
         values ($1, $2, $3, $4, 1000)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(site)
    .bind(&name)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::MissingReference { .. } => OpsError::NotFound,
        DbError::Duplicate { .. } => name_taken(&name),
        other => OpsError::Db(other),
    })?;
    Ok(id)
}

/// Renames a folder and sets who besides staff may see it.
pub async fn update(
    tx: &mut TenantTx,
    id: Uuid,
    name: &str,
    access: FolderAccess,
) -> Result<(), OpsError> {
    let folder = find(tx, id).await?.ok_or(OpsError::NotFound)?;
    if folder.archived_at.is_some() {
        return Err(OpsError::State(format!(
            "{} is archived: restore it first.",
            folder.name
        )));
    }
    let name = check_folder_name(name).map_err(OpsError::Invalid)?;
    site_live(tx, folder.site_id).await?;
    if !name_free(tx, folder.site_id, &name, Some(id)).await? {
        return Err(name_taken(&name));
    }
    sqlx::query(
        "update site_folder set name = $3, resident_audience = $4, contractor_access = $5,
                regulator_access = $6, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&name)
    .bind(access.residents.as_str())
    .bind(access.contractors)
    .bind(access.regulator)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Archives a folder (its files stay, readable by staff) or restores it.
pub async fn set_archived(tx: &mut TenantTx, id: Uuid, archived: bool) -> Result<(), OpsError> {
    let folder = find(tx, id).await?.ok_or(OpsError::NotFound)?;
    if folder.archived_at.is_some() == archived {
        return Err(OpsError::State(format!(
            "{} is {} archived.",
            folder.name,
            if archived { "already" } else { "not" }
        )));
    }
    if !archived && !name_free(tx, folder.site_id, &folder.name, Some(id)).await? {
        return Err(OpsError::Invalid(format!(
            "Another folder at this site is now called {}: rename it before restoring this one.",
            folder.name
        )));
    }
    sqlx::query(
        "update site_folder set archived_at = case when $3 then now() end, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(archived)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The folder's files: current versions first by name, each followed by the versions it
/// replaced when `with_versions`.
pub async fn files(
    tx: &mut TenantTx,
    folder: Uuid,
    with_versions: bool,
) -> Result<Vec<FileRecord>, DbError> {
    let sql = format!(
        "select {FILE_COLUMNS} from stored_file
          where organisation_id = $1 and folder_id = $2 and ($3 or replaced_at is null)
          order by lower(original_name), version desc, id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(folder)
        .bind(with_versions)
        .fetch_all(tx.conn())
        .await?)
}

/// Details a file carries in a folder.
#[derive(Debug, Clone, Default)]
pub struct FolderFile {
    pub expires_on: Option<Date>,
    pub shown_to_residents: bool,
}

/// Records an uploaded file in a folder (its bytes already stored). With `replaces`, it is a
/// new version of that current file: the old one is marked replaced, and the new one takes the
/// next version number.
pub async fn add_file(
    tx: &mut TenantTx,
    folder: Uuid,
    file: &NewFile,
    details: &FolderFile,
    replaces: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Uuid, OpsError> {
    let f = find(tx, folder).await?.ok_or(OpsError::NotFound)?;
    if f.archived_at.is_some() {
        return Err(OpsError::State(format!(
            "{} is archived: restore it before adding files.",
            f.name
        )));
    }
    site_live(tx, f.site_id).await?;
    let mut details = details.clone();
    let version = match replaces {
        None => 1,
        Some(old) => {
            let current: Option<(i32, Option<OffsetDateTime>, Option<Date>, bool)> =
                sqlx::query_as(
                    "select version, replaced_at, expires_on, shown_to_residents from stored_file
                      where organisation_id = $1 and id = $2 and folder_id = $3 for update",
                )
                .bind(tx.org().0)
                .bind(old)
                .bind(folder)
                .fetch_optional(tx.conn())
                .await?;
            match current {
                None => {
                    return Err(OpsError::Invalid(
                        "That file is not in this folder: open the folder again.".into(),
                    ));
                }
                Some((_, Some(_), ..)) => {
                    return Err(OpsError::State(
                        "That version has already been replaced: open the folder again and replace the current one.".into(),
                    ));
                }
                Some((v, None, expires_on, shown)) => {
                    // A new version keeps what the old one had unless told otherwise.
                    details.expires_on = details.expires_on.or(expires_on);
                    details.shown_to_residents = details.shown_to_residents || shown;
                    v + 1
                }
            }
        }
    };
    let details = &details;
    let id = Uuid::now_v7();
    let name: String = file.original_name.trim().chars().take(255).collect();
    sqlx::query(
        "insert into stored_file (organisation_id, id, sha256, size_bytes, media_type, object_key,
                                  thumbnail_key, original_name, purpose, folder_id, uploaded_by,
                                  created_at, expires_on, shown_to_residents, replaces_id, version)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&file.sha256)
    .bind(file.size_bytes)
    .bind(&file.media_type)
    .bind(&file.object_key)
    .bind(&file.thumbnail_key)
    .bind(if name.is_empty() { "upload" } else { &name })
    .bind(&file.purpose)
    .bind(folder)
    .bind(&file.uploaded_by)
    .bind(now)
    .bind(details.expires_on)
    .bind(details.shown_to_residents)
    .bind(replaces)
    .bind(version)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::Duplicate { .. } => OpsError::State(
            "That version has already been replaced: open the folder again and replace the current one.".into(),
        ),
        other => OpsError::Db(other),
    })?;
    if let Some(old) = replaces {
        sqlx::query(
            "update stored_file set replaced_at = $3 where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(old)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    Ok(id)
}

/// Changes a current file's expiry date and whether it is shown to the site's residents.
pub async fn update_file(
    tx: &mut TenantTx,
    file: Uuid,
    details: &FolderFile,
) -> Result<(), OpsError> {
    let folder: Option<(Uuid, Option<OffsetDateTime>)> = sqlx::query_as(
        "select f.site_id, f.archived_at from stored_file x
           join site_folder f on f.organisation_id = x.organisation_id and f.id = x.folder_id
          where x.organisation_id = $1 and x.id = $2",
    )
    .bind(tx.org().0)
    .bind(file)
    .fetch_optional(tx.conn())
    .await?;
    let Some((site, archived)) = folder else {
        return Err(OpsError::NotFound);
    };
    if archived.is_some() {
        return Err(OpsError::State(
            "The folder is archived: restore it before changing its files.".into(),
        ));
    }
    site_live(tx, site).await?;
    let done = sqlx::query(
        "update stored_file set expires_on = $3, shown_to_residents = $4
          where organisation_id = $1 and id = $2 and folder_id is not null and replaced_at is null",
    )
    .bind(tx.org().0)
    .bind(file)
    .bind(details.expires_on)
    .bind(details.shown_to_residents)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(OpsError::NotFound);
    }
    Ok(())
}

/// Records a view, download, ZIP, share or link opening of a folder's file (audited by the
/// table's trigger with the transaction's actor and channel).
pub async fn record_access(
    tx: &mut TenantTx,
    file: Uuid,
    action: &str,
    detail: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    // A read-only organisation (closing down) still reads its files but can write nothing,
    // the audit log included: its reads go unrecorded rather than refused.
    sqlx::query(
        "insert into file_access (organisation_id, id, file_id, action, detail, occurred_at)
         select $1, $2, $3, $4, $5, $6
          where exists (select from organisation where id = $1 and status = 'active')",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(file)
    .bind(action)
    .bind(detail.map(|d| d.chars().take(300).collect::<String>()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The current files a viewer other than staff may see at a site: those of live folders open
/// to them (and, for residents, single files shown to residents).
pub async fn visible_files(
    tx: &mut TenantTx,
    site: Uuid,
    viewer: Viewer,
) -> Result<Vec<(Folder, FileRecord)>, DbError> {
    let folders = folders(tx, site, false).await?;
    let mut out = Vec::new();
    for folder in folders {
        let access = folder.access();
        let files = files(tx, folder.id, false).await?;
        for file in files {
            if may_view(access, file.shown_to_residents, viewer) {
                out.push((folder.clone(), file));
            }
        }
    }
    Ok(out)
}

/// Whether a viewer may open this file: a current version in a live folder open to them.
pub async fn viewer_may_open(
    tx: &mut TenantTx,
    file: &FileRecord,
    site: Uuid,
    viewer: Viewer,
) -> Result<bool, DbError> {
    let Some(folder_id) = file.folder_id else {
        return Ok(false);
    };
    let Some(folder) = find(tx, folder_id).await? else {
        return Ok(false);
    };
    Ok(folder.site_id == site
        && folder.archived_at.is_none()
        && file.replaced_at.is_none()
        && may_view(folder.access(), file.shown_to_residents, viewer))
}

/// Whom among the site's residents a folder reaches: everyone on the site, one building's, or
/// one unit's. The choices: ("", "The whole site"), ("building:<id>", …), ("unit:<id>", …).
pub async fn reach_choices(
    tx: &mut TenantTx,
    site: Uuid,
) -> Result<Vec<(String, String)>, DbError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select 'building:' || b.id, 'Residents of ' || b.name || ' only'
           from building b where b.organisation_id = $1 and b.site_id = $2 and b.archived_at is null
         union all
         select * from (select 'unit:' || u.id, 'Residents of ' || u.name || ' (' || u.reference || ') only'
           from unit u where u.organisation_id = $1 and u.site_id = $2 and u.archived_at is null
          order by u.reference limit 2000) units",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?;
    let mut out = vec![(String::new(), "Residents of the whole site".to_owned())];
    out.extend(rows);
    Ok(out)
}

/// Shares a folder with the whole site's residents, or one building's or one unit's (its
/// audience still decides which of them).
pub async fn set_reach(
    tx: &mut TenantTx,
    id: Uuid,
    building: Option<Uuid>,
    unit: Option<Uuid>,
) -> Result<(), OpsError> {
    let updated = sqlx::query(
        "update site_folder set building_id = $3, unit_id = $4, updated_at = now()
          where organisation_id = $1 and id = $2
            and (building_id is distinct from $3 or unit_id is distinct from $4)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(building)
    .bind(unit)
    .execute(tx.conn())
    .await;
    match updated.map_err(DbError::from) {
        Ok(_) => Ok(()),
        Err(DbError::MissingReference { .. } | DbError::Invalid { .. }) => Err(OpsError::Invalid(
            "Choose one of this site's buildings or units, or the whole site.".into(),
        )),
        Err(e) => Err(OpsError::Db(e)),
    }
}
