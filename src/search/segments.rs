//! What a query reads for every matching document, kept per segment: the facet values'
//! first levels (分面统计) and the ranking prior.
//!
//! At a million records these per-document reads were half of a broad query (profiled with
//! `perf`): the prior's f64 column decodes through a monotonic mapping on every read, and
//! tantivy's `FacetCollector` walks every segment's facet dictionary on every query (to map
//! values to the level asked for) and takes one collector — one dispatch per matching document
//! — per field. Segments never change, so here a tantivy [`Warmer`] prepares each new segment
//! once when the reader reloads: the prior as a plain array, each facet value's first level as
//! a slot, and one collector counts all six fields from the ordinal columns. The facet counter
//! is ours because tantivy has no collector that counts several facet fields at one level.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use tantivy::{
    DocId, Score, Searcher, SearcherGeneration, SegmentOrdinal, SegmentReader, Warmer,
    collector::{Collector, SegmentCollector},
    columnar::{Column, ColumnIndex},
    index::SegmentId,
};

/// The facet fields counted, with the key each is reported under, in the order of
/// [`FacetCounts`].
pub(super) const FIELDS: [(&str, &str); 6] = [
    ("f_type", "type"),
    ("f_category", "category"),
    ("f_city", "city"),
    ("f_open", "open"),
    ("f_band", "value"),
    ("f_unit", "unit"),
];

/// Counts per field (in [`FIELDS`] order): first-level value → matching documents.
pub(super) type FacetCounts = Vec<BTreeMap<String, u64>>;

/// One segment's facet field: the value ordinal column and, for each ordinal, the index of its
/// first-level value in `values`.
struct SegmentField {
    ords: Column<u64>,
    slot_of: Vec<u32>,
    values: Vec<String>,
}

/// What one segment's queries read per document.
pub(super) struct SegmentData {
    /// The ranking prior of each document (1.0 where none was indexed).
    pub(super) prior: Vec<f32>,
    /// The facet fields in [`FIELDS`] order (None: no document of the segment has it).
    fields: Vec<Option<SegmentField>>,
}

/// The data of the searcher's segments, prepared as the reader reloads.
#[derive(Default)]
pub(super) struct SegmentCache {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentData>>>,
}

impl SegmentCache {
    /// A segment's data, prepared now if the warmer has not yet seen it.
    pub(super) fn of(&self, seg: &SegmentReader) -> tantivy::Result<Arc<SegmentData>> {
        let id = seg.segment_id();
        if let Some(found) = self.lock().get(&id) {
            return Ok(found.clone());
        }
        let data = Arc::new(prepare(seg)?);
        self.lock().insert(id, data.clone());
        Ok(data)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentData>>> {
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Warmer for SegmentCache {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for seg in searcher.segment_readers() {
            self.of(seg)?;
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        self.lock()
            .retain(|id, _| live.iter().any(|g| g.segments().contains_key(id)));
    }
}

fn prepare(seg: &SegmentReader) -> tantivy::Result<SegmentData> {
    let prior = match seg.fast_fields().f64("prior") {
        Ok(col) => (0..seg.max_doc())
            .map(|doc| col.first(doc).unwrap_or(1.0) as f32)
            .collect(),
        Err(_) => vec![1.0; seg.max_doc() as usize],
    };
    let mut fields = Vec::with_capacity(FIELDS.len());
    for (name, _) in FIELDS {
        fields.push(match seg.fast_fields().str(name)? {
            Some(col) => {
                let mut slot_of = Vec::with_capacity(col.num_terms());
                let mut values: Vec<String> = Vec::new();
                let mut stream = col.dictionary().stream()?;
                while stream.advance() {
                    // A facet's bytes are its segments joined by 0: the first one is counted.
                    let key = stream.key();
                    let first = key.split(|b| *b == 0).next().unwrap_or_default();
                    let first = String::from_utf8_lossy(first);
                    if values.last().map(String::as_str) != Some(first.as_ref()) {
                        values.push(first.into_owned());
                    }
                    slot_of.push((values.len() - 1) as u32);
                }
                Some(SegmentField {
                    ords: col.ords().clone(),
                    slot_of,
                    values,
                })
            }
            None => None,
        });
    }
    Ok(SegmentData { prior, fields })
}

/// Counts the first-level values of the six facet fields over the matching documents.
pub(super) struct FacetCounter<'a> {
    pub(super) cache: &'a SegmentCache,
}

pub(super) struct SegmentCounts {
    data: Arc<SegmentData>,
    counts: Vec<Vec<u64>>,
}

impl Collector for FacetCounter<'_> {
    type Fruit = FacetCounts;
    type Child = SegmentCounts;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        seg: &SegmentReader,
    ) -> tantivy::Result<SegmentCounts> {
        let data = self.cache.of(seg)?;
        let counts = data
            .fields
            .iter()
            .map(|f| vec![0; f.as_ref().map_or(0, |f| f.values.len())])
            .collect();
        Ok(SegmentCounts { data, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetCounts>) -> tantivy::Result<FacetCounts> {
        let mut out: FacetCounts = vec![BTreeMap::new(); FIELDS.len()];
        for fruit in fruits {
            for (into, from) in out.iter_mut().zip(fruit) {
                for (value, n) in from {
                    *into.entry(value).or_insert(0) += n;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentCounts {
    type Fruit = FacetCounts;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (field, counts) in self.data.fields.iter().zip(self.counts.iter_mut()) {
            let Some(f) = field else { continue };
            match &f.ords.index {
                // Every document has one value: read it directly.
                ColumnIndex::Full => {
                    counts[f.slot_of[f.ords.values.get_val(doc) as usize] as usize] += 1;
                }
                _ => {
                    // Ordinals are sorted, so values of one first level are adjacent.
                    let mut last = u32::MAX;
                    for ord in f.ords.values_for_doc(doc) {
                        let slot = f.slot_of[ord as usize];
                        if slot != last {
                            counts[slot as usize] += 1;
                            last = slot;
                        }
                    }
                }
            }
        }
    }

    fn harvest(self) -> FacetCounts {
        self.data
            .fields
            .iter()
            .zip(self.counts)
            .map(|(field, counts)| match field {
                Some(f) => f
                    .values
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(v, n)| (v.clone(), n))
                    .collect(),
                None => BTreeMap::new(),
            })
            .collect()
    }
}
