//! The index configuration (`index-config/`: types, fields, boosts) and the tantivy schema
//! built from it.

#[allow(unused_imports)]
use super::*;

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

pub(super) fn one() -> f32 {
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
        // Chinese synonym groups, then the English class terms (`synonyms-en.txt`).
        let synonyms = format!("{}\n{}", read("synonyms.txt"), read("synonyms-en.txt"));
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

pub(super) const SCHEMA_VERSION: &str = "labshare-search-2";

pub(super) const META_FILE: &str = "labshare-index.json";

pub(super) struct Fields {
    pub(super) key: Field,
    pub(super) doc_type: Field,
    pub(super) id: Field,
    pub(super) title: Field,
    pub(super) url: Field,
    pub(super) snippet: Field,
    pub(super) meta: Field,
    pub(super) text: Vec<(String, Field)>,
    pub(super) bigram: Field,
    pub(super) pinyin: Field,
    pub(super) alias: Field,
    pub(super) model: Field,
    pub(super) f_type: Field,
    pub(super) f_category: Field,
    pub(super) f_city: Field,
    pub(super) f_unit: Field,
    pub(super) f_open: Field,
    pub(super) f_band: Field,
}

pub(super) fn build_schema(types: &[TypeConfig]) -> (Schema, Fields) {
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
        // A synonym group matched is a yes/no signal: no length normalisation, so a record in
        // many groups (Chinese and English ones) is not ranked below one in few.
        alias: b.add_text_field(
            "alias",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("whitespace")
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
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

pub(super) fn band(value_fen: i64) -> &'static str {
    VALUE_BANDS
        .iter()
        .find(|b| value_fen >= b.2 && value_fen < b.3)
        .map(|b| b.0)
        .unwrap_or("lt50")
}

pub(super) fn facet(segments: &[&str]) -> Facet {
    Facet::from_path(segments.iter().map(|s| s.replace('/', "／")))
}
