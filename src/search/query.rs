//! Searching: query analysis (jieba, pinyin, synonyms), filters and facets, highlighted hits
//! and suggestions.

#[allow(unused_imports)]
use super::*;

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
pub(super) const MAX_QUERY_CHARS: usize = 100;

pub(super) const MAX_WORDS: usize = 12;

/// The analysed query: its clauses and the terms to highlight.
pub(super) struct Analysed {
    pub(super) query: Option<Box<dyn Query>>,
    pub(super) marks: Vec<String>,
    pub(super) pinyin: Option<String>,
}

impl SearchIndex {
    /// Analyse the query text into one boolean query (or none when nothing is searchable).
    pub(super) fn analyse(&self, q: &str) -> Analysed {
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
        // Typos by sound: spans that sound like a domain word but do not occur in the index
        // as written are searched as that word too (气象色谱 → 气相色谱).
        let searcher = self.reader.searcher();
        let occurs = |span: &str| {
            analysis::term_ngrams(span).iter().all(|g| {
                searcher
                    .doc_freq(&Term::from_field_text(f.bigram, g))
                    .unwrap_or(0)
                    > 0
            })
        };
        let corrected = a.sound.correct(&norm, &occurs);
        let mut words = a.query_words(&norm);
        words.truncate(MAX_WORDS);
        if let Some(c) = &corrected {
            for w in a.query_words(c) {
                if !words.contains(&w) && words.len() < MAX_WORDS * 2 {
                    words.push(w);
                }
            }
        }
        for w in words {
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
        let mut groups = a.synonyms.matching(&norm);
        if let Some(c) = &corrected {
            groups.extend(a.synonyms.matching(c));
            groups.sort_unstable();
            groups.dedup();
        }
        for g in groups {
            clauses.push((Occur::Should, term(f.alias, &format!("syn{g}"), 3.0)));
            marks.extend(a.synonyms.groups[g].iter().cloned());
        }
        // The pinyin of each Chinese run meets the names' pinyin: homophones of a name.
        for py in a.query_pinyin(&norm).into_iter().take(MAX_WORDS) {
            clauses.push((Occur::Should, term(f.pinyin, &py, 2.0)));
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

    pub(super) fn filters(&self, p: &SearchParams) -> Vec<(Occur, Box<dyn Query>)> {
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
        let facet_set = segments::FacetCounter {
            cache: &self.segments,
        };
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
                let cache = self.segments.clone();
                let ranked = top.tweak_score(move |seg: &SegmentReader| {
                    let data = cache.of(seg).ok();
                    move |doc, score: Score| match &data {
                        Some(d) => score * d.prior[doc as usize],
                        None => score,
                    }
                });
                searcher
                    .search(&query, &(Count, ranked, facet_set))
                    .map_err(err)?
            }
        };
        let mut facets = BTreeMap::new();
        for ((_, key), counts) in segments::FIELDS.into_iter().zip(counts) {
            let mut values: Vec<FacetValue> = counts
                .into_iter()
                .map(|(value, count)| {
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

    pub(super) fn hit(
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
