//! Signed-in admin sessions kept in memory between requests, so that most requests pass the
//! admin guard without a database round trip.
//!
//! A cached session is only ever as fresh as the last change to access data that this process
//! knows of, and it is thrown away the moment one is known:
//!
//! - every tenant transaction that commits in this process marks its organisation changed,
//!   before `commit` returns (so a deactivation, a role change or a sign-out is seen by the very
//!   next request here);
//! - the platform functions that end all of a person's sessions (new password, reset, sign out
//!   everywhere) mark every organisation changed;
//! - triggers on the access tables (`membership`, `membership_scope`, `custom_role`,
//!   `organisation_profile`, `staff_session` when it ends, `staff_user`'s name, e-mail and
//!   session epoch) send `NOTIFY proplink_access`, which [`listen`] turns into the same marks,
//!   for changes made by other processes or by hand.
//!
//! Nothing is served from the cache unless the listener is connected; when its connection drops,
//! everything cached is forgotten until it is back. A cached session still expires on time (idle
//! and absolute timeouts are checked on every hit) and goes back to the database at least once
//! a minute, when its "last seen" is due to be written.
//!
//! The same marks guard a second, smaller store: each organisation's dashboard facts (counts,
//! sites, latest audit events), which are the same for every member of it (scope and
//! permissions are applied to them per request). They are reused only while nothing in the
//! organisation has changed that this process knows of, and for at most [`FACTS_MAX_AGE`]: that
//! is how late a change made by another process (or by hand) to data other than access can
//! show on a dashboard.

use crate::access::{DashboardFacts, MemberSession};
use crate::error::DbError;
use proplink_domain::OrgId;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The channel the access-table triggers notify on: the payload is an organisation id, or `*`
/// for a change that reaches every organisation (a person's own record).
pub const CHANNEL: &str = "proplink_access";

/// Beyond this many cached sessions the cache starts again (a bound on memory, not a tuning knob).
const MAX_ENTRIES: usize = 10_000;

/// The longest dashboard facts are reused (see the module documentation).
pub const FACTS_MAX_AGE: Duration = Duration::from_secs(2);

/// How long to wait before reconnecting a listener whose connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What the cache knew of changes when a session was read: an entry is used only while nothing
/// has changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    everywhere: u64,
    org: u64,
}

#[derive(Debug)]
struct Entry {
    session: MemberSession,
    epoch: Epoch,
}

#[derive(Debug)]
struct FactsEntry {
    facts: Arc<DashboardFacts>,
    epoch: Epoch,
    read_at: Instant,
}

#[derive(Debug, Default)]
pub struct SessionCache {
    listening: AtomicBool,
    everywhere: AtomicU64,
    orgs: Mutex<HashMap<OrgId, u64>>,
    entries: Mutex<HashMap<(OrgId, String), Entry>>,
    /// Keyed by organisation and how many audit events were read with the facts.
    facts: Mutex<HashMap<(OrgId, i64), FactsEntry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain data and every critical section is a single map operation, so a
    // panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionCache {
    /// What is known of changes in `org` now, or `None` when the cache must not be used (no
    /// listener connected). Take it *before* reading the session from the database.
    pub fn epoch(&self, org: OrgId) -> Option<Epoch> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let everywhere = self.everywhere.load(Ordering::Acquire);
        let org = lock(&self.orgs).get(&org).copied().unwrap_or(0);
        Some(Epoch { everywhere, org })
    }

    /// The cached session for this token, if nothing has changed since it was read, it has not
    /// timed out, and its "last seen" is not yet due.
    pub fn get(
        &self,
        org: OrgId,
        token_hash: &str,
        epoch: Epoch,
        now: OffsetDateTime,
    ) -> Option<MemberSession> {
        let mut entries = lock(&self.entries);
        let key = (org, token_hash.to_owned());
        let entry = entries.get(&key)?;
        let s = &entry.session;
        let fresh = entry.epoch == epoch
            && now < s.absolute_expires_at
            && now - s.session.last_seen_at <= crate::access::TOUCH_EVERY;
        if fresh {
            Some(s.clone())
        } else {
            entries.remove(&key);
            None
        }
    }

    /// Keeps a session read from the database under the epoch taken before reading it.
    pub fn put(&self, org: OrgId, token_hash: &str, epoch: Epoch, session: &MemberSession) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let mut session = session.clone();
        session.touched = false;
        entries.insert((org, token_hash.to_owned()), Entry { session, epoch });
    }

    /// The organisation's dashboard facts with `recent` audit events, if they were read under
    /// `epoch` (nothing changed since) and no longer than [`FACTS_MAX_AGE`] before `now`.
    pub fn dashboard_facts(
        &self,
        org: OrgId,
        recent: i64,
        epoch: Epoch,
        now: Instant,
    ) -> Option<Arc<DashboardFacts>> {
        let mut facts = lock(&self.facts);
        let key = (org, recent);
        let entry = facts.get(&key)?;
        if entry.epoch == epoch && now.saturating_duration_since(entry.read_at) <= FACTS_MAX_AGE {
            Some(Arc::clone(&entry.facts))
        } else {
            facts.remove(&key);
            None
        }
    }

    /// Keeps dashboard facts read from the database, under the epoch and instant taken before
    /// reading them.
    pub fn keep_dashboard_facts(
        &self,
        org: OrgId,
        recent: i64,
        epoch: Epoch,
        read_at: Instant,
        facts: Arc<DashboardFacts>,
    ) {
        let mut all = lock(&self.facts);
        if all.len() >= MAX_ENTRIES {
            all.clear();
        }
        all.insert(
            (org, recent),
            FactsEntry {
                facts,
                epoch,
                read_at,
            },
        );
    }

    /// Something in `org` changed: its cached sessions are no longer used.
    pub fn changed(&self, org: OrgId) {
        let mut orgs = lock(&self.orgs);
        let n = orgs.entry(org).or_insert(0);
        *n = n.wrapping_add(1);
    }

    /// Something that reaches every organisation changed (or may have, unseen).
    pub fn changed_everywhere(&self) {
        self.everywhere.fetch_add(1, Ordering::AcqRel);
        lock(&self.entries).clear();
        lock(&self.facts).clear();
    }

    fn set_listening(&self, on: bool) {
        if !on {
            self.listening.store(false, Ordering::Release);
        }
        // Whatever happened while not listening is unknown: start from nothing either way.
        self.changed_everywhere();
        if on {
            self.listening.store(true, Ordering::Release);
        }
    }

    /// Applies one notification's payload.
    fn notified(&self, payload: &str) {
        match Uuid::parse_str(payload) {
            Ok(id) => self.changed(OrgId(id)),
            Err(_) => self.changed_everywhere(),
        }
    }

    /// Whether the listener is connected (and so whether the cache is in use).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Listens for access changes made anywhere and applies them to `cache`, until `shutdown`.
/// The cache is in use only while this runs with a live connection.
pub(crate) async fn listen(pool: PgPool, cache: &SessionCache, shutdown: CancellationToken) {
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                cache.set_listening(true);
                tracing::debug!("listening for access changes");
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => {
                            cache.set_listening(false);
                            return;
                        }
                        received = listener.try_recv() => match received {
                            Ok(Some(n)) => cache.notified(n.payload()),
                            Ok(None) | Err(_) => {
                                tracing::warn!("lost the access-change listener; sessions are read from the database until it is back");
                                cache.set_listening(false);
                                break;
                            }
                        },
                    }
                }
            }
            Err(e) => {
                cache.set_listening(false);
                tracing::warn!(error = %e, "cannot listen for access changes; sessions are read from the database");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, DbError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::{FACTS_MAX_AGE, SessionCache};
    use crate::access::{Counts, DashboardFacts};
    use proplink_domain::OrgId;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use uuid::Uuid;

    #[test]
    fn epochs_move_with_changes_and_the_cache_is_off_until_listening() {
        let cache = SessionCache::default();
        let (a, b) = (OrgId(Uuid::now_v7()), OrgId(Uuid::now_v7()));
        assert_eq!(cache.epoch(a), None, "not listening: not used");
        cache.set_listening(true);
        let (a0, b0) = (cache.epoch(a), cache.epoch(b));
        assert!(a0.is_some());

        cache.notified(&a.0.to_string());
        assert_ne!(cache.epoch(a), a0, "a's change reaches a");
        assert_eq!(cache.epoch(b), b0, "and only a");

        let b1 = cache.epoch(b);
        cache.notified("*");
        assert_ne!(cache.epoch(b), b1, "a person's change reaches everyone");
        let b2 = cache.epoch(b);
        cache.notified("not an id");
        assert_ne!(
            cache.epoch(b),
            b2,
            "anything unreadable is taken as everything"
        );

        cache.set_listening(false);
        assert_eq!(cache.epoch(a), None);
    }

    #[test]
    fn dashboard_facts_last_until_a_change_or_their_age_runs_out() {
        let cache = SessionCache::default();
        cache.set_listening(true);
        let (a, b) = (OrgId(Uuid::now_v7()), OrgId(Uuid::now_v7()));
        let facts = |estates| {
            Arc::new(DashboardFacts {
                sites: vec![],
                counts: Counts {
                    estates,
                    active_members: 1,
                    invited_members: 0,
                },
                recent: vec![],
            })
        };
        let t0 = Instant::now();
        let (Some(ea), Some(eb)) = (cache.epoch(a), cache.epoch(b)) else {
            panic!("listening, so epochs are given");
        };
        cache.keep_dashboard_facts(a, 8, ea, t0, facts(3));
        cache.keep_dashboard_facts(b, 8, eb, t0, facts(5));

        let hit = cache.dashboard_facts(a, 8, ea, t0 + FACTS_MAX_AGE);
        assert_eq!(hit.map(|f| f.counts.estates), Some(3), "fresh: reused");
        assert!(
            cache.dashboard_facts(a, 0, ea, t0).is_none(),
            "read with a different number of events: not the same facts"
        );
        assert!(
            cache
                .dashboard_facts(a, 8, ea, t0 + FACTS_MAX_AGE + Duration::from_millis(1))
                .is_none(),
            "too old: read again"
        );
        assert!(
            cache.dashboard_facts(a, 8, ea, t0).is_none(),
            "and dropped once found too old"
        );

        cache.changed(b);
        let Some(now_b) = cache.epoch(b) else {
            panic!("still listening");
        };
        assert_ne!(now_b, eb);
        assert!(
            cache.dashboard_facts(b, 8, now_b, t0).is_none(),
            "a change in the organisation ends them at once"
        );

        cache.keep_dashboard_facts(a, 8, ea, t0, facts(3));
        cache.set_listening(false);
        assert!(
            cache.dashboard_facts(a, 8, ea, t0).is_none(),
            "forgotten when the listener is lost"
        );
    }
}
