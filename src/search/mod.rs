//! Full-text search (全文检索): a tantivy index under `$LABSHARE_DATA_DIR/index`, its schema
//! built from `index-config/*.yaml`, Chinese analysis in [`analysis`], kept current through
//! the `search_outbox` table and an indexer task.

pub mod analysis;
pub mod bench;
pub mod source;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tantivy::{
    DocAddress, Index, IndexReader, ReloadPolicy, Score, SegmentReader, TantivyDocument, Term,
    collector::{Count, FacetCollector, TopDocs},
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

/// One field of a document type, from `index-config/<type>.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    pub boost: f32,
    #[serde(default)]
    pub pinyin: bool,
    #[serde(default)]
    pub model: bool,
    #[serde(default)]
    pub stored: bool,
}

/// A document type's search configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeConfig {
    #[serde(rename = "type")]
    pub doc_type: String,
    pub label: String,
    #[serde(default = "one")]
    pub weight: f32,
    pub title: String,
    #[serde(default)]
    pub snippet: Vec<String>,
    pub fields: Vec<FieldConfig>,
    #[serde(default)]
    pub facets: Vec<String>,
    #[serde(default)]
    pub fast: Vec<String>,
}

fn one() -> f32 {
    1.0
}

/// Everything read from the `index-config` directory.
pub struct IndexConfig {
    pub types: Vec<TypeConfig>,
    pub synonyms: String,
    pub user_dict: String,
    /// Changes when any configuration file changes: a different one means a rebuild.
    pub fingerprint: String,
}

impl IndexConfig {
    pub fn load(dir: &Path) -> anyhow::Result<IndexConfig> {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(SCHEMA_VERSION.as_bytes());
        let mut types = Vec::new();
        for t in source::TYPES {
            let path = dir.join(format!("{t}.yaml"));
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            hash.update(text.as_bytes());
            let cfg: TypeConfig = serde_saphyr::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if cfg.doc_type != t {
                anyhow::bail!("{}: type 应为 {t}", path.display());
            }
            types.push(cfg);
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let synonyms = read("synonyms.txt");
        let user_dict = read("user-dict.txt");
        hash.update(synonyms.as_bytes());
        hash.update(user_dict.as_bytes());
        Ok(IndexConfig {
            types,
            synonyms,
            user_dict,
            fingerprint: hex::encode(hash.finalize()),
        })
    }
}

const SCHEMA_VERSION: &str = "labshare-search-1";
const META_FILE: &str = "labshare-index.json";

struct Fields {
    key: Field,
    doc_type: Field,
    id: Field,
    title: Field,
    url: Field,
    snippet: Field,
    meta: Field,
    text: Vec<(String, Field)>,
    bigram: Field,
    pinyin: Field,
    alias: Field,
    model: Field,
    f_type: Field,
    f_category: Field,
    f_city: Field,
    f_unit: Field,
    f_open: Field,
    f_band: Field,
}

fn build_schema(types: &[TypeConfig]) -> (Schema, Fields) {
    let mut b = Schema::builder();
    let tokens = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("whitespace")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let names: BTreeSet<&str> = types
        .iter()
        .flat_map(|t| t.fields.iter().map(|f| f.name.as_str()))
        .collect();
    let text = names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                b.add_text_field(&format!("t_{n}"), tokens.clone()),
            )
        })
        .collect();
    let facet = FacetOptions::default();
    let fields = Fields {
        key: b.add_text_field("key", STRING | STORED),
        doc_type: b.add_text_field("doc_type", STRING | STORED),
        id: b.add_i64_field("id", STORED | FAST),
        title: b.add_text_field("title", STORED),
        url: b.add_text_field("url", STORED),
        snippet: b.add_text_field("snippet", STORED),
        meta: b.add_text_field("meta", STORED),
        text,
        bigram: b.add_text_field("bigram", tokens.clone()),
        pinyin: b.add_text_field("pinyin", tokens.clone()),
        alias: b.add_text_field("alias", tokens.clone()),
        model: b.add_text_field("model", tokens),
        f_type: b.add_facet_field("f_type", facet.clone()),
        f_category: b.add_facet_field("f_category", facet.clone()),
        f_city: b.add_facet_field("f_city", facet.clone()),
        f_unit: b.add_facet_field("f_unit", facet.clone()),
        f_open: b.add_facet_field("f_open", facet.clone()),
        f_band: b.add_facet_field("f_band", facet),
    };
    b.add_i64_field("value", FAST);
    b.add_i64_field("newest", FAST);
    b.add_f64_field("prior", FAST);
    (b.build(), fields)
}

/// Value bands (价值区间) in fen with their labels.
pub const VALUE_BANDS: [(&str, &str, i64, i64); 5] = [
    ("lt50", "50万元以下", 0, 50_000_000),
    ("50-100", "50–100万元", 50_000_000, 100_000_000),
    ("100-200", "100–200万元", 100_000_000, 200_000_000),
    ("200-500", "200–500万元", 200_000_000, 500_000_000),
    ("ge500", "500万元以上", 500_000_000, i64::MAX),
];

fn band(value_fen: i64) -> &'static str {
    VALUE_BANDS
        .iter()
        .find(|b| value_fen >= b.2 && value_fen < b.3)
        .map(|b| b.0)
        .unwrap_or("lt50")
}

fn facet(segments: &[&str]) -> Facet {
    Facet::from_path(segments.iter().map(|s| s.replace('/', "／")))
}

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
}

/// What a query asks for.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    #[serde(default, rename = "type")]
    pub doc_type: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub open: String,
    #[serde(default)]
    pub value: String,
    /// `relevance` (default), `value` or `newest`.
    #[serde(default)]
    pub sort: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    #[serde(rename = "type")]
    pub doc_type: String,
    pub id: i64,
    pub title: String,
    /// The title with matches in `<mark>`, otherwise escaped.
    pub title_html: String,
    pub snippet: String,
    pub score: f32,
    pub url: String,
    pub type_label: String,
    pub meta: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetValue {
    pub value: String,
    pub label: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub total: usize,
    pub took_ms: u64,
    pub items: Vec<Hit>,
    pub facets: BTreeMap<String, Vec<FacetValue>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub title: String,
    pub url: String,
    #[serde(rename = "type")]
    pub doc_type: String,
    pub type_label: String,
}

/// The longest query text analysed; longer input is cut (a 10 KB query is not an error).
const MAX_QUERY_CHARS: usize = 100;
const MAX_WORDS: usize = 12;

/// The analysed query: its clauses and the terms to highlight.
struct Analysed {
    query: Option<Box<dyn Query>>,
    marks: Vec<String>,
    pinyin: Option<String>,
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
        let index = match Index::open_in_dir(dir) {
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
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            analyzer: Analyzer::new(&config.user_dict, &config.synonyms),
            types: config.types,
            dir: dir.to_path_buf(),
            fingerprint: config.fingerprint,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn type_config(&self, t: &str) -> Option<&TypeConfig> {
        self.types.iter().find(|c| c.doc_type == t)
    }

    fn type_label(&self, t: &str) -> String {
        self.type_config(t)
            .map(|c| c.label.clone())
            .unwrap_or_default()
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

    /// Build the tantivy document for a record.
    fn document(&self, rec: &Record) -> Option<TantivyDocument> {
        let cfg = self.type_config(&rec.doc_type)?;
        let f = &self.fields;
        let a = &self.analyzer;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, format!("{}:{}", rec.doc_type, rec.id));
        doc.add_text(f.doc_type, &rec.doc_type);
        doc.add_i64(f.id, rec.id);
        let text = |name: &str| rec.text.get(name).map(String::as_str).unwrap_or("");
        doc.add_text(f.title, text(&cfg.title));
        doc.add_text(f.url, &rec.url);
        let snippet: Vec<&str> = cfg
            .snippet
            .iter()
            .map(|n| text(n))
            .filter(|s| !s.is_empty())
            .collect();
        doc.add_text(f.snippet, snippet.join(" "));
        let stored: BTreeMap<&str, &str> = cfg
            .fields
            .iter()
            .filter(|fc| fc.stored)
            .map(|fc| (fc.name.as_str(), text(&fc.name)))
            .collect();
        let meta = serde_json::json!({
            "fields": stored, "city": rec.city, "unit": rec.unit, "open": rec.open,
            "value_fen": rec.value_fen, "category_label": rec.category_label,
            "service_count": rec.service_count,
        });
        doc.add_text(f.meta, meta.to_string());
        let mut all_norm = String::new();
        let mut bigrams = Vec::new();
        let mut pinyin = BTreeSet::new();
        let mut models = Vec::new();
        for fc in &cfg.fields {
            let norm = a.norm.text(text(&fc.name));
            let Some((_, field)) = f.text.iter().find(|(n, _)| *n == fc.name) else {
                continue;
            };
            doc.add_text(*field, a.index_words(&norm).join(" "));
            analysis::ngrams(&norm, &mut bigrams);
            if fc.pinyin {
                a.pinyin_tokens(&norm, &mut pinyin);
            }
            if fc.model {
                models.extend(analysis::model_tokens(&norm));
            }
            all_norm.push_str(&norm);
            all_norm.push('\n');
        }
        let groups = a.synonyms.matching(&all_norm);
        let alias: Vec<String> = groups.iter().map(|g| format!("syn{g}")).collect();
        for g in &groups {
            for m in &a.synonyms.groups[*g] {
                if !m.is_ascii() {
                    a.pinyin_tokens(m, &mut pinyin);
                }
            }
        }
        doc.add_text(f.bigram, bigrams.join(" "));
        doc.add_text(f.pinyin, pinyin.into_iter().collect::<Vec<_>>().join(" "));
        doc.add_text(f.alias, alias.join(" "));
        doc.add_text(f.model, models.join(" "));
        doc.add_facet(f.f_type, facet(&[&rec.doc_type]));
        if cfg.facets.iter().any(|x| x == "category") && !rec.category.is_empty() {
            let segs: Vec<&str> = rec.category.iter().map(String::as_str).collect();
            doc.add_facet(f.f_category, facet(&segs));
        }
        if cfg.facets.iter().any(|x| x == "city") && !rec.city.is_empty() {
            doc.add_facet(f.f_city, facet(&[&rec.city]));
        }
        if cfg.facets.iter().any(|x| x == "unit") && !rec.unit.is_empty() {
            doc.add_facet(f.f_unit, facet(&[&rec.unit]));
        }
        if cfg.facets.iter().any(|x| x == "open") {
            doc.add_facet(f.f_open, facet(&[if rec.open { "1" } else { "0" }]));
        }
        if cfg.facets.iter().any(|x| x == "value_band") {
            doc.add_facet(f.f_band, facet(&[band(rec.value_fen)]));
        }
        let schema = self.index.schema();
        let has = |n: &str| cfg.fast.iter().any(|x| x == n);
        let field = |n: &str| schema.get_field(n).expect("fixed field");
        doc.add_i64(field("value"), if has("value") { rec.value_fen } else { 0 });
        doc.add_i64(field("newest"), if has("newest") { rec.newest } else { 0 });
        // Business signals: open to the public and a record of services rendered rank higher.
        let mut prior = cfg.weight as f64;
        if has("open") && rec.open {
            prior *= 1.1;
        }
        if has("service_count") {
            prior *= 1.0 + 0.1 * ((1 + rec.service_count.max(0)) as f64).ln() / 5.0;
        }
        doc.add_f64(field("prior"), prior);
        Some(doc)
    }

    /// Rebuild everything from the database (with a progress callback: done, total).
    pub async fn rebuild(&self, db: &Db, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<u64> {
        let _guard = self.write_lock.lock().await;
        let mut records = Vec::new();
        for t in source::TYPES {
            records.extend(source::load_all(db, t).await?);
        }
        let total = records.len() as u64;
        let mut writer = self
            .index
            .writer_with_num_threads::<TantivyDocument>(2, 200_000_000)
            .map_err(anyhow::Error::from)?;
        writer.delete_all_documents().map_err(anyhow::Error::from)?;
        // Analysis is the expensive part: build documents on two threads, chunk by chunk.
        let mut done = 0u64;
        for chunk in records.chunks(2_000) {
            let half = chunk.len().div_ceil(2);
            let docs: Vec<TantivyDocument> = std::thread::scope(|s| {
                let parts: Vec<_> = chunk
                    .chunks(half.max(1))
                    .map(|part| {
                        s.spawn(move || {
                            part.iter()
                                .filter_map(|r| self.document(r))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            for doc in docs {
                writer.add_document(doc).map_err(anyhow::Error::from)?;
            }
            done += chunk.len() as u64;
            progress(done, total);
        }
        writer.commit().map_err(anyhow::Error::from)?;
        writer.wait_merging_threads().map_err(anyhow::Error::from)?;
        self.reader.reload().map_err(anyhow::Error::from)?;
        progress(total, total);
        std::fs::write(
            self.dir.join(META_FILE),
            serde_json::json!({"fingerprint": self.fingerprint, "built": true}).to_string(),
        )
        .map_err(anyhow::Error::from)?;
        // Everything queued before the rebuild is now reflected.
        Ok(total)
    }

    /// Rebuild at start-up when the index is empty while the database has public records,
    /// when it was built with another configuration, or when a build did not finish.
    pub async fn rebuild_if_stale(&self, db: &Db) -> Result<bool> {
        let public = source::count_public(db).await?;
        let stale = !self.built() || (self.num_docs() == 0 && public > 0);
        if stale {
            let n = self.rebuild(db, &|_, _| {}).await?;
            tracing::info!(documents = n, "search index rebuilt");
        }
        Ok(stale)
    }

    /// Apply up to `limit` outbox rows; returns how many rows were applied.
    pub async fn apply_outbox(&self, db: &Db, limit: i64) -> Result<usize> {
        let rows =
            sqlx::query("SELECT id, doc_type, doc_id FROM search_outbox ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&db.pool)
                .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let max_id: i64 = rows
            .iter()
            .map(|r| r.get::<i64, _>("id"))
            .max()
            .unwrap_or(0);
        let wanted: BTreeSet<(String, i64)> = rows
            .iter()
            .map(|r| (r.get::<String, _>("doc_type"), r.get::<i64, _>("doc_id")))
            .collect();
        let mut docs = Vec::new();
        for (t, id) in &wanted {
            docs.push((t.clone(), *id, source::load_one(db, t, *id).await?));
        }
        {
            let _guard = self.write_lock.lock().await;
            let mut writer = self
                .index
                .writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
                .map_err(anyhow::Error::from)?;
            for (t, id, rec) in &docs {
                writer.delete_term(Term::from_field_text(self.fields.key, &format!("{t}:{id}")));
                if let Some(doc) = rec.as_ref().and_then(|r| self.document(r)) {
                    writer.add_document(doc).map_err(anyhow::Error::from)?;
                }
            }
            writer.commit().map_err(anyhow::Error::from)?;
            self.reader.reload().map_err(anyhow::Error::from)?;
        }
        sqlx::query("DELETE FROM search_outbox WHERE id <= $1")
            .bind(max_id)
            .execute(&db.pool)
            .await?;
        Ok(rows.len())
    }

    /// Analyse the query text into one boolean query (or none when nothing is searchable).
    fn analyse(&self, q: &str) -> Analysed {
        let a = &self.analyzer;
        let f = &self.fields;
        let q: String = q.chars().take(MAX_QUERY_CHARS).collect();
        let norm = a.norm.text(&q);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut marks: Vec<String> = Vec::new();
        let boosts: BTreeMap<&str, f32> =
            self.types
                .iter()
                .flat_map(|t| t.fields.iter())
                .fold(BTreeMap::new(), |mut m, fc| {
                    let e = m.entry(fc.name.as_str()).or_insert(0.0f32);
                    *e = e.max(fc.boost);
                    m
                });
        let term = |field: Field, t: &str, boost: f32| -> Box<dyn Query> {
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, t),
                    IndexRecordOption::WithFreqs,
                )),
                boost,
            ))
        };
        for w in a.query_words(&norm).into_iter().take(MAX_WORDS) {
            for (name, field) in &f.text {
                clauses.push((Occur::Should, term(*field, &w, boosts[name.as_str()])));
            }
            if w.chars().any(analysis::is_cjk) {
                let grams: Vec<(Occur, Box<dyn Query>)> = analysis::term_ngrams(&w)
                    .iter()
                    .map(|g| (Occur::Must, term(f.bigram, g, 1.0)))
                    .collect();
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(BooleanQuery::new(grams)), 0.5)),
                ));
            }
            marks.push(w);
        }
        for m in analysis::model_tokens(&norm).into_iter().take(MAX_WORDS) {
            clauses.push((Occur::Should, term(f.model, &m, 4.0)));
            for (name, field) in &f.text {
                clauses.push((Occur::Should, term(*field, &m, boosts[name.as_str()] * 0.5)));
            }
        }
        for g in a.synonyms.matching(&norm) {
            clauses.push((Occur::Should, term(f.alias, &format!("syn{g}"), 3.0)));
            marks.extend(a.synonyms.groups[g].iter().cloned());
        }
        let compact: String = norm.chars().filter(|c| !c.is_whitespace()).collect();
        let pinyin = if compact.len() >= 2 && compact.chars().all(|c| c.is_ascii_lowercase()) {
            clauses.push((Occur::Should, term(f.pinyin, &compact, 4.0)));
            Some(compact)
        } else {
            None
        };
        let query: Option<Box<dyn Query>> = if clauses.is_empty() {
            None
        } else {
            Some(Box::new(BooleanQuery::new(clauses)))
        };
        Analysed {
            query,
            marks,
            pinyin,
        }
    }

    fn filters(&self, p: &SearchParams) -> Vec<(Occur, Box<dyn Query>)> {
        let f = &self.fields;
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add = |field: Field, value: Facet| {
            out.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_facet(field, &value),
                    IndexRecordOption::Basic,
                )),
            ));
        };
        if !p.doc_type.is_empty() {
            add(f.f_type, facet(&[&p.doc_type]));
        }
        if !p.category.is_empty() {
            let c = p.category.as_str();
            if c.len() == 6 && c.chars().all(|x| x.is_ascii_digit()) {
                let major = crate::catalog::major_code(c);
                if major == c {
                    add(f.f_category, facet(&[c]));
                } else {
                    add(f.f_category, facet(&[&major, c]));
                }
            } else {
                add(f.f_category, facet(&[c]));
            }
        }
        if !p.city.is_empty() {
            add(f.f_city, facet(&[&p.city]));
        }
        if !p.unit.is_empty() {
            add(f.f_unit, facet(&[&p.unit]));
        }
        if p.open == "1" || p.open == "0" {
            add(f.f_open, facet(&[&p.open]));
        }
        if !p.value.is_empty() {
            add(f.f_band, facet(&[&p.value]));
        }
        out
    }

    /// Run a search: `offset`/`limit` page through the ranked hits.
    pub fn search(&self, p: &SearchParams, offset: usize, limit: usize) -> Result<SearchResult> {
        let started = Instant::now();
        let analysed = self.analyse(&p.q);
        let has_text = !p.q.trim().is_empty();
        let mut clauses = self.filters(p);
        match analysed.query {
            Some(q) => clauses.push((Occur::Must, q)),
            None if has_text => {
                // Only punctuation or symbols: nothing can match.
                return Ok(SearchResult {
                    total: 0,
                    took_ms: started.elapsed().as_millis() as u64,
                    items: vec![],
                    facets: BTreeMap::new(),
                });
            }
            None => clauses.push((Occur::Must, Box::new(AllQuery))),
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let fc = |name: &str| {
            let mut c = FacetCollector::for_field(name);
            c.add_facet(Facet::root());
            c
        };
        let facet_set = (
            (fc("f_type"), fc("f_category"), fc("f_city")),
            (fc("f_open"), fc("f_band"), fc("f_unit")),
        );
        let limit = limit.clamp(1, 100);
        let offset = offset.min(10_000);
        let top = TopDocs::with_limit(limit).and_offset(offset);
        let err = |e: tantivy::TantivyError| AppError::Internal(e.into());
        // One pass collects the count, the page and every facet.
        let (total, hits, counts) = match p.sort.as_str() {
            "value" | "newest" => {
                let field = if p.sort == "value" { "value" } else { "newest" };
                let (n, docs, counts) = searcher
                    .search(
                        &query,
                        &(
                            Count,
                            top.order_by_fast_field::<i64>(field, tantivy::Order::Desc),
                            facet_set,
                        ),
                    )
                    .map_err(err)?;
                let docs: Vec<(f32, DocAddress)> = docs
                    .into_iter()
                    .map(|(v, d)| (v.unwrap_or(0) as f32, d))
                    .collect();
                (n, docs, counts)
            }
            _ => {
                let ranked = top.tweak_score(move |seg: &SegmentReader| {
                    let prior = seg
                        .fast_fields()
                        .f64("prior")
                        .ok()
                        .map(|c| c.first_or_default_col(1.0));
                    move |doc, score: Score| match &prior {
                        Some(col) => score * col.get_val(doc) as f32,
                        None => score,
                    }
                });
                searcher
                    .search(&query, &(Count, ranked, facet_set))
                    .map_err(err)?
            }
        };
        let ((c_type, c_category, c_city), (c_open, c_band, c_unit)) = counts;
        let mut facets = BTreeMap::new();
        for (key, counts) in [
            ("type", c_type),
            ("category", c_category),
            ("city", c_city),
            ("open", c_open),
            ("value", c_band),
            ("unit", c_unit),
        ] {
            let mut values: Vec<FacetValue> = counts
                .get(Facet::root())
                .map(|(fct, count)| {
                    let value = fct
                        .to_path()
                        .last()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    let label = match key {
                        "type" => self.type_label(&value),
                        "category"
                            if value.len() == 6 && value.chars().all(|x| x.is_ascii_digit()) =>
                        {
                            crate::catalog::class_label(&value)
                        }
                        "open" => if value == "1" {
                            "对外开放"
                        } else {
                            "内部共享"
                        }
                        .into(),
                        "value" => VALUE_BANDS
                            .iter()
                            .find(|b| b.0 == value)
                            .map(|b| b.1.to_string())
                            .unwrap_or_default(),
                        _ => value.clone(),
                    };
                    FacetValue {
                        value,
                        label,
                        count,
                    }
                })
                .collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
            values.truncate(20);
            facets.insert(key.to_string(), values);
        }
        let mut items = Vec::new();
        for (score, addr) in hits {
            let doc: TantivyDocument = searcher.doc(addr).map_err(err)?;
            items.push(self.hit(&doc, score, &analysed.marks, analysed.pinyin.as_deref()));
        }
        Ok(SearchResult {
            total,
            took_ms: started.elapsed().as_millis() as u64,
            items,
            facets,
        })
    }

    fn hit(
        &self,
        doc: &TantivyDocument,
        score: f32,
        marks: &[String],
        pinyin: Option<&str>,
    ) -> Hit {
        let f = &self.fields;
        let get = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let doc_type = get(f.doc_type);
        let title = get(f.title);
        let mut marks = marks.to_vec();
        if let Some(py) = pinyin {
            marks.extend(analysis::pinyin_matches(&self.analyzer.norm, &title, py));
        }
        marks.retain(|m| !m.is_empty());
        let norm = &self.analyzer.norm;
        Hit {
            id: doc.get_first(f.id).and_then(|v| v.as_i64()).unwrap_or(0),
            title_html: analysis::highlight(norm, &title, &marks, 0),
            snippet: analysis::highlight(norm, &get(f.snippet), &marks, 120),
            score,
            url: get(f.url),
            type_label: self.type_label(&doc_type),
            meta: serde_json::from_str(&get(f.meta)).unwrap_or_default(),
            doc_type,
            title,
        }
    }

    /// As-you-type suggestions: the best titles for the text typed so far, with pinyin and
    /// model-number prefixes for ASCII input.
    pub fn suggest(&self, q: &str, limit: usize) -> Result<Vec<Suggestion>> {
        let q: String = q.chars().take(MAX_QUERY_CHARS).collect();
        let norm = self.analyzer.norm.text(q.trim());
        if norm.is_empty() {
            return Ok(vec![]);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(query) = self.analyse(&norm).query {
            clauses.push((Occur::Should, query));
        }
        let compact: String = norm.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if !compact.is_empty()
            && compact.len() == norm.chars().filter(|c| !c.is_whitespace()).count()
        {
            for field in [self.fields.pinyin, self.fields.model] {
                if let Ok(rq) = RegexQuery::from_pattern(&format!("{compact}.*"), field) {
                    clauses.push((Occur::Should, Box::new(rq)));
                }
            }
        }
        let mut chars = norm.chars().filter(|c| analysis::is_cjk(*c));
        if let (Some(c), None) = (chars.next(), chars.next()) {
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.bigram, &c.to_string()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if clauses.is_empty() {
            return Ok(vec![]);
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let docs = searcher
            .search(&query, &TopDocs::with_limit(limit * 5).order_by_score())
            .map_err(|e| AppError::Internal(e.into()))?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (_, addr) in docs {
            let doc: TantivyDocument = searcher
                .doc(addr)
                .map_err(|e| AppError::Internal(e.into()))?;
            let get = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let title = get(self.fields.title);
            if seen.insert(title.clone()) {
                let doc_type = get(self.fields.doc_type);
                out.push(Suggestion {
                    title,
                    url: get(self.fields.url),
                    type_label: self.type_label(&doc_type),
                    doc_type,
                });
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Queue a record for (re)indexing; call it inside the write transaction that changed it.
pub async fn enqueue(conn: &mut sqlx::AnyConnection, doc_type: &str, id: i64) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    sqlx::query("INSERT INTO search_outbox (doc_type, doc_id, created_at) VALUES ($1, $2, $3)")
        .bind(doc_type)
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The indexer task: applies outbox rows in batches, several times a second.
pub fn spawn_indexer(index: Arc<SearchIndex>, db: Db) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match index.apply_outbox(&db, 500).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => {
                    e.log();
                    tracing::warn!("search indexer: batch failed, will retry");
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}
