//! The public page cache (页面缓存): rendered portal pages for visitors who are not signed in,
//! each kept with the content version it was rendered at and served only while that version
//! is still current — never stale after a write, on any node.
//!
//! The version has two parts:
//! - the database's: the sum of the `page_versions` counters. Triggers on every table the
//!   cached pages read (instruments, units, services, platforms, achievements, articles,
//!   instrument photos, uploads) bump them inside the writing transaction, so no write path can
//!   forget to, and a write through another node sharing the database is seen by this node's
//!   next request (one indexed read per request);
//! - this node's search index generation, which changes whenever the index applies a change
//!   (search pages are exactly as current as the index, cached or not).
//!
//! The version is read before the page is rendered: a page is never stored under a version
//! newer than the data it shows (at worst newer data under an older version, which the next
//! request finds outdated and renders again).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use axum::body::Bytes;

use crate::{error::Result, store::Db};

/// The content version a page was rendered at: database counters and index generation.
pub type Version = (i64, u64);

/// One cached page.
pub struct Entry {
    pub version: Version,
    pub body: Bytes,
}

/// The cache of one node.
pub struct PageCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    enabled: bool,
    capacity: usize,
}

/// Pages larger than this are not kept.
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

impl PageCache {
    pub fn new(enabled: bool, capacity: usize) -> PageCache {
        PageCache {
            entries: RwLock::new(HashMap::new()),
            enabled,
            capacity: capacity.max(1),
        }
    }

    /// On unless `LABSHARE_PAGE_CACHE=0` (benchmarks compare both).
    pub fn from_env() -> PageCache {
        let enabled = std::env::var("LABSHARE_PAGE_CACHE")
            .map(|v| v != "0" && v != "off")
            .unwrap_or(true);
        PageCache::new(enabled, 2_000)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The page under `key` if it was rendered at `version`.
    pub fn get(&self, key: &str, version: Version) -> Option<Arc<Entry>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|e| e.version == version).cloned()
    }

    /// Keep a page rendered at `version`; outdated entries go first when the cache is full.
    pub fn put(&self, key: &str, version: Version, body: Bytes) {
        if body.len() > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, e| e.version == version);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key.to_string(), Arc::new(Entry { version, body }));
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The database part of the content version: the sum of the `page_versions` counters.
pub async fn db_version(db: &Db) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM page_versions")
            .fetch_one(&db.pool)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_only_at_its_version_and_a_full_cache_drops_outdated_ones() {
        let c = PageCache::new(true, 2);
        c.put("/", (1, 0), Bytes::from_static(b"a"));
        assert!(c.get("/", (1, 0)).is_some());
        assert!(c.get("/", (2, 0)).is_none());
        assert!(c.get("/", (1, 1)).is_none());
        c.put("/x", (1, 0), Bytes::from_static(b"b"));
        c.put("/y", (2, 0), Bytes::from_static(b"c"));
        assert!(c.get("/y", (2, 0)).is_some());
        assert!(c.len() <= 2);
        assert!(c.get("/", (1, 0)).is_none());
    }
}
