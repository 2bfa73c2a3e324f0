//! Full-text search (全文检索): a tantivy index under `$LABSHARE_DATA_DIR/index`, its schema
//! built from `index-config/*.yaml`, Chinese analysis in [`analysis`], kept current through
//! the `search_outbox` change log that every node applies from its own cursor ([`sync`]).

pub mod analysis;
pub mod bench;
mod config;
mod indexing;
mod query;
mod segments;
pub mod source;
pub mod sync;

pub use config::*;
pub use indexing::*;
pub use query::*;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tantivy::{
    DocAddress, Index, IndexReader, ReloadPolicy, Score, SegmentReader, TantivyDocument, Term,
    collector::{Count, TopDocs},
    query::{AllQuery, BooleanQuery, BoostQuery, Occur, Query, RegexQuery, TermQuery},
    schema::{
        FAST, Facet, FacetOptions, Field, IndexRecordOption, STORED, STRING, Schema,
        TextFieldIndexing, TextOptions, Value,
    },
};

use crate::{
    error::{AppError, Result},
    store::Db,
};
use analysis::Analyzer;
use source::Record;

/// Value bands (价值区间) in fen with their labels.
pub const VALUE_BANDS: [(&str, &str, i64, i64); 5] = [
    ("lt50", "50万元以下", 0, 50_000_000),
    ("50-100", "50–100万元", 50_000_000, 100_000_000),
    ("100-200", "100–200万元", 100_000_000, 200_000_000),
    ("200-500", "200–500万元", 200_000_000, 500_000_000),
    ("ge500", "500万元以上", 500_000_000, i64::MAX),
];

/// The search index: the tantivy index, its reader and the analysis it was built with.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    analyzer: Analyzer,
    types: Vec<TypeConfig>,
    dir: PathBuf,
    fingerprint: String,
    /// One writer at a time inside this process.
    write_lock: tokio::sync::Mutex<()>,
    /// This node's place in the change log.
    sync: sync::Sync,
    /// What queries read per document, prepared per segment as the reader reloads.
    segments: Arc<segments::SegmentCache>,
    /// Bumped after every commit that changed documents, once the reader sees them.
    changes: std::sync::atomic::AtomicU64,
}

impl SearchIndex {
    /// Open (or create) the index under `dir` with the configuration in `config_dir`. A
    /// configuration different from the one the index was built with recreates it empty.
    pub fn open(dir: &Path, config_dir: &Path) -> anyhow::Result<SearchIndex> {
        let config = IndexConfig::load(config_dir)?;
        let (schema, fields) = build_schema(&config.types);
        std::fs::create_dir_all(dir)?;
        let meta_path = dir.join(META_FILE);
        let built_with = std::fs::read_to_string(&meta_path).unwrap_or_default();
        let mut index = match Index::open_in_dir(dir) {
            Ok(index) if built_with.contains(&config.fingerprint) => index,
            _ => {
                for entry in std::fs::read_dir(dir)? {
                    let path = entry?.path();
                    if path.is_file() {
                        std::fs::remove_file(path)?;
                    }
                }
                let index = Index::create_in_dir(dir, schema)?;
                std::fs::write(
                    &meta_path,
                    serde_json::json!({"fingerprint": config.fingerprint, "built": false})
                        .to_string(),
                )?;
                index
            }
        };
        // A query's segments are searched on every core at once: the latency of a broad query
        // over a million records, not throughput, is what a person waits for.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores > 1 {
            index.set_multithread_executor(cores.min(4))?;
        }
        let segments = Arc::new(segments::SegmentCache::default());
        let warmer: std::sync::Weak<dyn tantivy::Warmer> = Arc::downgrade(&segments) as _;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .warmers(vec![warmer])
            .try_into()?;
        let cursor = index
            .load_metas()?
            .payload
            .and_then(|p| serde_json::from_str::<sync::Payload>(&p).ok())
            .map(|p| p.cursor)
            .unwrap_or(0);
        let node_id = sync::node_id(dir)?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            analyzer: Analyzer::new(&config.user_dict, &config.synonyms),
            types: config.types,
            dir: dir.to_path_buf(),
            fingerprint: config.fingerprint,
            write_lock: tokio::sync::Mutex::new(()),
            sync: sync::Sync::new(node_id, cursor),
            changes: std::sync::atomic::AtomicU64::new(0),
            segments,
        })
    }

    /// Whether this node has applied the whole change log since it started (`/readyz`).
    pub fn is_caught_up(&self) -> bool {
        self.sync.is_caught_up()
    }

    /// This node's id in `search_nodes`.
    pub async fn node_id(&self) -> String {
        self.sync.state.lock().await.node_id.clone()
    }

    /// Changes in the log this node has not applied yet.
    pub async fn backlog(&self, db: &Db) -> Result<i64> {
        let (cursor, applied) = {
            let st = self.sync.state.lock().await;
            (st.cursor, st.applied_above.len() as i64)
        };
        // Rows above the cursor that were applied are still in the log (it is never pruned
        // above a live node's cursor).
        Ok((sync::backlog(db, cursor).await? - applied).max(0))
    }

    fn type_config(&self, t: &str) -> Option<&TypeConfig> {
        self.types.iter().find(|c| c.doc_type == t)
    }

    fn type_label(&self, t: &str) -> String {
        self.type_config(t)
            .map(|c| c.label.clone())
            .unwrap_or_default()
    }

    /// Changes whenever this node's index applies a change to its documents (the page cache
    /// keys on it); cursor-only commits leave it alone.
    pub fn generation(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn documents_changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the last full build finished with this configuration.
    fn built(&self) -> bool {
        std::fs::read_to_string(self.dir.join(META_FILE))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .map(|v| v["built"] == true && v["fingerprint"] == self.fingerprint.as_str())
            .unwrap_or(false)
    }
}
