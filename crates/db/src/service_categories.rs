//! Vendor service categories (docs-spec §2.7; Settings → Vendor service categories): the 13
//! standard categories, each with any documents the organisation requires on top of the
//! standard ones, and the organisation's own categories with the documents they require.
//! Work orders, maintenance events and preferred lists store a category's key; a trigger
//! refuses a key that is neither standard nor the organisation's own. An organisation's own
//! category is archived, never deleted, so older work keeps its name and requirements.

use crate::error::DbError;
use crate::operations::OpsError;
use crate::tenant::TenantTx;
use proplink_domain::operations::{DocumentType, ServiceCategory, Trade, custom_category_key};
use uuid::Uuid;

type Row = (String, Option<String>, Vec<String>, bool);

fn documents(keys: &[String]) -> Vec<DocumentType> {
    keys.iter().filter_map(|k| DocumentType::parse(k)).collect()
}

fn build(rows: Vec<Row>, include_archived: bool) -> Vec<ServiceCategory> {
    let mut out: Vec<ServiceCategory> = Trade::ALL
        .iter()
        .map(|t| {
            let extra = rows
                .iter()
                .find(|r| r.0 == t.as_str())
                .map(|r| documents(&r.2))
                .unwrap_or_default();
            ServiceCategory::standard(*t, &extra)
        })
        .collect();
    let mut own: Vec<ServiceCategory> = rows
        .into_iter()
        .filter_map(|(key, name, docs, archived)| {
            let name = name?;
            (include_archived || !archived)
                .then(|| ServiceCategory::custom(&key, &name, &documents(&docs), archived))
        })
        .collect();
    own.sort_by_key(|c| c.name.to_lowercase());
    out.extend(own);
    out
}

/// Every category: the standard 13 in their order, then the organisation's own by name
/// (archived ones only when asked for).
pub async fn all(
    tx: &mut TenantTx,
    include_archived: bool,
) -> Result<Vec<ServiceCategory>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(
        "select key, name, required_documents, archived_at is not null
           from vendor_service_category where organisation_id = $1",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?;
    Ok(build(rows, include_archived))
}

/// One category by key, archived or not; `None` when the organisation has no such category.
pub async fn find(tx: &mut TenantTx, key: &str) -> Result<Option<ServiceCategory>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(
        "select key, name, required_documents, archived_at is not null
           from vendor_service_category where organisation_id = $1 and key = $2",
    )
    .bind(tx.org().0)
    .bind(key)
    .fetch_all(tx.conn())
    .await?;
    Ok(build(rows, true).into_iter().find(|c| c.key == key))
}

/// A category new work may use: one that exists and is not archived.
pub async fn for_new_work(tx: &mut TenantTx, key: &str) -> Result<ServiceCategory, OpsError> {
    match find(tx, key).await? {
        Some(c) if !c.archived => Ok(c),
        Some(c) => Err(OpsError::Invalid(format!(
            "The {} category is archived: choose another or restore it in Settings.",
            c.name
        ))),
        None => Err(OpsError::Invalid(
            "Choose the trade (service category) from the list.".into(),
        )),
    }
}

/// A category's name for display ("Heating and gas"), or its key if it has gone.
pub async fn name_of(tx: &mut TenantTx, key: &str) -> Result<String, DbError> {
    Ok(find(tx, key)
        .await?
        .map_or_else(|| key.to_owned(), |c| c.name))
}

fn distinct(required: &[DocumentType]) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = Vec::new();
    for d in required {
        if !keys.contains(&d.as_str()) {
            keys.push(d.as_str());
        }
    }
    keys
}

/// Adds an organisation's own category with the documents it requires; returns its key.
pub async fn add(
    tx: &mut TenantTx,
    name: &str,
    required: &[DocumentType],
) -> Result<String, OpsError> {
    let key = custom_category_key(name).map_err(OpsError::Invalid)?;
    if let Some(existing) = find(tx, &key).await? {
        return Err(OpsError::Invalid(format!(
            "There is already a category called {}{}.",
            existing.name,
            if existing.archived { " (archived)" } else { "" }
        )));
    }
    sqlx::query(
        "insert into vendor_service_category (organisation_id, id, key, name, required_documents)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(&key)
    .bind(name.trim())
    .bind(distinct(required))
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::Duplicate { .. } => OpsError::Invalid(format!(
            "There is already a category called {}.",
            name.trim()
        )),
        other => OpsError::Db(other),
    })?;
    Ok(key)
}

/// Sets the documents a category requires: for a standard category, those on top of its own
/// (Gas Safe stays required for gas work whatever is chosen); for the organisation's own, all.
pub async fn set_requirements(
    tx: &mut TenantTx,
    key: &str,
    required: &[DocumentType],
) -> Result<(), OpsError> {
    let Some(category) = find(tx, key).await? else {
        return Err(OpsError::NotFound);
    };
    // A standard category's own single requirements are always there: saving them again as
    // extras would only make the page show them unticked.
    let own: Vec<DocumentType> = category
        .standard
        .map(|t| {
            t.required_documents()
                .iter()
                .filter(|kinds| kinds.len() == 1)
                .map(|kinds| kinds[0])
                .collect()
        })
        .unwrap_or_default();
    let extra: Vec<DocumentType> = required
        .iter()
        .copied()
        .filter(|d| !own.contains(d))
        .collect();
    let keys = distinct(&extra);
    if category.standard.is_some() {
        sqlx::query(
            "insert into vendor_service_category (organisation_id, id, key, required_documents)
             values ($1, $2, $3, $4)
             on conflict (organisation_id, key)
             do update set required_documents = excluded.required_documents, updated_at = now()",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(key)
        .bind(keys)
        .execute(tx.conn())
        .await?;
    } else {
        sqlx::query(
            "update vendor_service_category set required_documents = $3, updated_at = now()
              where organisation_id = $1 and key = $2",
        )
        .bind(tx.org().0)
        .bind(key)
        .bind(keys)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// Archives (or restores) one of the organisation's own categories. Standard ones stay.
/// Returns how many live planned-maintenance events still raise work orders in it (they go on
/// doing so: archiving stops new choices, not work already planned).
pub async fn set_archived(tx: &mut TenantTx, key: &str, archived: bool) -> Result<i64, OpsError> {
    let Some(category) = find(tx, key).await? else {
        return Err(OpsError::NotFound);
    };
    if category.standard.is_some() {
        return Err(OpsError::Invalid(format!(
            "{} is a standard category and cannot be archived.",
            category.name
        )));
    }
    if category.archived == archived {
        return Err(OpsError::State(if archived {
            format!("{} is already archived.", category.name)
        } else {
            format!("{} is not archived.", category.name)
        }));
    }
    sqlx::query(
        "update vendor_service_category
            set archived_at = case when $3 then now() end, updated_at = now()
          where organisation_id = $1 and key = $2",
    )
    .bind(tx.org().0)
    .bind(key)
    .bind(archived)
    .execute(tx.conn())
    .await?;
    let planned: i64 = sqlx::query_scalar(
        "select count(*) from maintenance_event
          where organisation_id = $1 and trade = $2 and archived_at is null",
    )
    .bind(tx.org().0)
    .bind(key)
    .fetch_one(tx.conn())
    .await?;
    Ok(planned)
}
