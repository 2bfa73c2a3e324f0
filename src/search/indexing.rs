//! Keeping the index current: documents from records, full rebuilds, and applying the change
//! log (`search_outbox`) that write transactions fill — see [`super::sync`].

#[allow(unused_imports)]
use super::*;

/// Queue a record for (re)indexing; call it inside the write transaction that changed it.
pub async fn enqueue(conn: &mut crate::store::Conn, doc_type: &str, id: i64) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    sqlx::query("INSERT INTO search_outbox (doc_type, doc_id, created_at) VALUES ($1, $2, $3)")
        .bind(doc_type)
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The indexer task: applies the change log in batches five times a second, reports this
/// node's cursor and prunes the log every few seconds.
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
            if let Err(e) = index.report_and_prune(&db).await {
                e.log();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Give the heap a rebuild freed (the writer's arenas, the analysed pages) back to the system:
/// glibc keeps freed memory in its arenas, and a server's resident memory would otherwise stay
/// at the build's peak for the rest of its life.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl SearchIndex {
    /// Build the tantivy document for a record.
    pub(super) fn document(&self, rec: &Record) -> Option<TantivyDocument> {
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
        // Everything in the log up to here is covered by the records read below.
        let head = sync::head(db).await?;
        let total = source::count_public(db).await?;
        // A modest writer budget: memory, not indexing speed, is the limit at a million records.
        let mut writer = self
            .index
            .writer_with_num_threads::<TantivyDocument>(2, 96_000_000)
            .map_err(anyhow::Error::from)?;
        writer.delete_all_documents().map_err(anyhow::Error::from)?;
        // Records are read page by page (flat memory); analysis, the expensive part, runs on
        // two threads per page.
        let mut done = 0u64;
        for t in source::TYPES {
            let mut after = 0i64;
            loop {
                let chunk = source::load_page(db, t, after, 4_000).await?;
                let Some(last) = chunk.last() else { break };
                after = last.id;
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
                progress(done, total.max(done));
            }
        }
        let total = done;
        let mut prepared = writer.prepare_commit().map_err(anyhow::Error::from)?;
        prepared.set_payload(&payload(head));
        prepared.commit().map_err(anyhow::Error::from)?;
        writer.wait_merging_threads().map_err(anyhow::Error::from)?;
        {
            let mut st = self.sync.state.lock().await;
            st.cursor = head;
            st.applied_above.clear();
        }
        self.reader.reload().map_err(anyhow::Error::from)?;
        self.documents_changed();
        release_freed_memory();
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

    /// Apply up to `limit` log rows this node has not applied; returns how many were new.
    /// A node whose cursor fell below what was pruned rebuilds instead.
    pub async fn apply_outbox(&self, db: &Db, limit: i64) -> Result<usize> {
        let cursor = self.sync.state.lock().await.cursor;
        if cursor < sync::pruned_through(db).await? {
            tracing::warn!(
                cursor,
                "search index is behind the pruned change log: rebuilding"
            );
            self.rebuild(db, &|_, _| {}).await?;
            return Ok(1);
        }
        let rows = sync::changes_after(db, cursor, limit).await?;
        let now = chrono::Utc::now().timestamp();
        let fresh: Vec<&sync::Change> = {
            let st = self.sync.state.lock().await;
            rows.iter()
                .filter(|r| !st.applied_above.contains(&r.id))
                .collect()
        };
        let next_cursor = sync::advance(cursor, &rows, now);
        if fresh.is_empty() {
            if (rows.len() as i64) < limit {
                self.sync
                    .caught_up
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            self.save_cursor(next_cursor, now).await?;
            return Ok(0);
        }
        let wanted: BTreeSet<(String, i64)> = fresh
            .iter()
            .map(|r| (r.doc_type.clone(), r.doc_id))
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
            let mut prepared = writer.prepare_commit().map_err(anyhow::Error::from)?;
            prepared.set_payload(&payload(next_cursor));
            prepared.commit().map_err(anyhow::Error::from)?;
            self.reader.reload().map_err(anyhow::Error::from)?;
            self.documents_changed();
        }
        let mut st = self.sync.state.lock().await;
        st.applied_above.extend(fresh.iter().map(|r| r.id));
        st.cursor = st.cursor.max(next_cursor);
        let c = st.cursor;
        st.applied_above.retain(|id| *id > c);
        st.last_payload = now;
        Ok(fresh.len())
    }

    /// Move the durable cursor without new documents (at most every few seconds: each move is
    /// an index commit).
    async fn save_cursor(&self, next: i64, now: i64) -> Result<()> {
        // Lock order, as in `rebuild`: the writer, then the sync state.
        let _guard = self.write_lock.lock().await;
        let mut st = self.sync.state.lock().await;
        if next <= st.cursor || now - st.last_payload < sync::REPORT_EVERY_SECS {
            return Ok(());
        }
        let mut writer = self
            .index
            .writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
            .map_err(anyhow::Error::from)?;
        let mut prepared = writer.prepare_commit().map_err(anyhow::Error::from)?;
        prepared.set_payload(&payload(next));
        prepared.commit().map_err(anyhow::Error::from)?;
        st.cursor = next;
        st.applied_above.retain(|id| *id > next);
        st.last_payload = now;
        Ok(())
    }

    /// Tell the other nodes how far this one is, and prune what every live node has applied.
    pub async fn report_and_prune(&self, db: &Db) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        let (node, cursor) = {
            let mut st = self.sync.state.lock().await;
            if now - st.last_report < sync::REPORT_EVERY_SECS {
                return Ok(());
            }
            st.last_report = now;
            (st.node_id.clone(), st.cursor)
        };
        sync::report(db, &node, cursor, now).await?;
        sync::prune(db, now).await?;
        Ok(())
    }
}

fn payload(cursor: i64) -> String {
    serde_json::to_string(&sync::Payload { cursor }).unwrap_or_default()
}
