//! Property tests (proptest) of the three parsers that take input from outside: workflow
//! YAML (`def::parse`), the search query path (the index's `search`/`suggest` and the HTTP
//! endpoint) and the xlsx instrument import. None may panic; refusals are clear errors.
//! Each property runs a fixed number of cases — 256 unless `PROPTEST_CASES` says otherwise
//! — so CI stays fast.

use std::{collections::BTreeSet, time::Duration};

use labshare::{search::SearchParams, spreadsheets, workflow::def};
use proptest::{prelude::*, test_runner::TestRunner};

use crate::common::{TestApp, certified_unit, spawn_app};

/// The number of cases per property: `PROPTEST_CASES`, or 256.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Counts the cases a property ran, for the figures in docs/security.md (`--nocapture`).
#[derive(Default)]
struct Tally(std::sync::atomic::AtomicUsize);

impl Tally {
    fn one(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // A failing case is reported as found; shrinking it stays bounded.
        max_shrink_iters: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn workflow_files() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// One edit of a text: delete, duplicate or replace a span, insert text, swap two lines.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, String),
    Replace(usize, usize, String),
    SwapLines(usize, usize),
}

/// Text that looks like YAML: keys, indentation, flow collections, anchors, tags, quotes.
fn yamlish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}: [a-z0-9_ ]{0,12}\n",
        "\n {0,8}- [a-z_]{1,10}",
        "[{}\\[\\],:&*!|>'\"#%@`\\-? \n\t]{1,8}",
        "[一-龥]{1,6}",
        Just("on:\n".to_string()),
        Just("  to: ".to_string()),
        Just("assignees: { permission: unit.review }\n".to_string()),
        Just("guard: \"".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("!!binary ".to_string()),
        Just("9999999999999999999999".to_string()),
        Just("deadline: 99999999999 working days\n".to_string()),
        any::<String>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 0..80usize).prop_map(|(a, n)| Edit::Delete(a, n)),
        (pos, 0..80usize).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (pos, yamlish()).prop_map(|(a, s)| Edit::Insert(a, s)),
        (pos, 0..20usize, yamlish()).prop_map(|(a, n, s)| Edit::Replace(a, n, s)),
        (pos, pos).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

/// The nearest char boundary at or before `i` (modulo the length).
fn boundary(s: &str, i: usize) -> usize {
    if s.is_empty() {
        return 0;
    }
    let mut i = i % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, e: &Edit) -> String {
    let span = |a: usize, n: usize| {
        let a = boundary(text, a);
        (a, boundary(text, (a + n).min(text.len())).max(a))
    };
    match e {
        Edit::Delete(a, n) => {
            let (a, b) = span(*a, *n);
            format!("{}{}", &text[..a], &text[b..])
        }
        Edit::Duplicate(a, n) => {
            let (a, b) = span(*a, *n);
            format!("{}{}", &text[..b], &text[a..])
        }
        Edit::Insert(a, s) => {
            let a = boundary(text, *a);
            format!("{}{s}{}", &text[..a], &text[a..])
        }
        Edit::Replace(a, n, s) => {
            let (a, b) = span(*a, *n);
            format!("{}{s}{}", &text[..a], &text[b..])
        }
        Edit::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            lines.join("\n")
        }
    }
}

/// Parse `source` as workflow file `file`: it must not panic, and a refusal names at least
/// one problem with a line number.
fn parse_is_total(
    file: &str,
    source: &str,
    roles: &BTreeSet<String>,
    catalog: &labshare::workflow::hooks::Catalog,
) -> Result<(), TestCaseError> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        def::parse(file, source, roles, catalog)
    }));
    match outcome {
        Err(_) => Err(TestCaseError::fail(format!(
            "def::parse panicked on {source:?}"
        ))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(problems)) => {
            prop_assert!(!problems.is_empty(), "a refusal without a problem");
            prop_assert!(problems.iter().all(|p| p.line >= 1), "{problems:?}");
            Ok(())
        }
    }
}

#[test]
fn the_workflow_parser_never_panics_on_arbitrary_or_mutated_files() {
    let files = workflow_files();
    assert!(files.len() >= 10, "{} workflow files", files.len());
    let roles = def::builtin_roles();
    let catalog = labshare::server::workflow_catalog();
    // A fresh runner per property: a runner counts its cases across runs.
    let mut runner = TestRunner::new(config());
    let tally = Tally::default();
    // Arbitrary text, and text made of YAML-looking pieces.
    runner
        .run(
            &prop_oneof![
                any::<String>(),
                prop::collection::vec(yamlish(), 0..30).prop_map(|v| v.concat())
            ],
            |source| {
                tally.one();
                parse_is_total("arbitrary.yaml", &source, &roles, &catalog)
            },
        )
        .unwrap();
    // The shipped files with one to eight edits each.
    let n = files.len();
    TestRunner::new(config())
        .run(
            &(0..n, prop::collection::vec(edit(), 1..8)),
            |(i, edits)| {
                tally.one();
                let (name, text) = &files[i];
                let mutated = edits.iter().fold(text.clone(), |t, e| apply(&t, e));
                parse_is_total(name, &mutated, &roles, &catalog)
            },
        )
        .unwrap();
    println!("proptest: workflow parser, {} cases", tally.get());
}

/// A search query made of the characters people and attackers type: Chinese, pinyin, model
/// numbers, tantivy's query syntax, unusual Unicode.
fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9一-龥 ]{0,30}",
        "[\"*:()\\[\\]{}^~!?/\\\\+\\-&|<>= ]{0,20}",
        "[ａ-ｚ０-９\u{3000}\u{202E}\u{200B}\u{FEFF}\u{0301}]{0,10}",
        Just("气相色谱 AND OR NOT".to_string()),
        Just("heci gongzhen".to_string()),
        Just("长".repeat(2000)),
    ]
}

fn filter_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("instrument".to_string()),
        Just("unit".to_string()),
        Just("010100".to_string()),
        Just("许昌市".to_string()),
        Just("1".to_string()),
        Just("100w-500w".to_string()),
        Just("value".to_string()),
        Just("newest".to_string()),
        any::<String>(),
    ]
}

fn search_params() -> impl Strategy<Value = SearchParams> {
    (
        query_text(),
        (filter_text(), filter_text(), filter_text(), filter_text()),
        (filter_text(), filter_text(), filter_text()),
    )
        .prop_map(
            |(q, (doc_type, category, city, unit), (open, value, sort))| SearchParams {
                q,
                doc_type,
                category,
                city,
                unit,
                open,
                value,
                sort,
            },
        )
}

/// An app whose index holds a few approved instruments (Arrange).
async fn indexed_app() -> TestApp {
    let app = spawn_app().await;
    app.create_user("prop_mgr", "unit_manager").await;
    let token = app.token("prop_mgr").await;
    let unit = certified_unit(&app, &token, "许昌属性测试大学", 600, "managing", "other").await;
    let names = [
        ("核磁共振波谱仪", "AVANCE NEO 600"),
        ("气相色谱质谱联用仪", "7890B-5977B"),
        ("场发射扫描电子显微镜", "Sigma 300"),
        ("X射线衍射仪", "D8 Advance"),
    ];
    let mut tx = app.db.begin_write().await.unwrap();
    for (name, model) in names {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO instruments (unit_id, name, model, category_code, value_fen, review_status, open_to_public, created_at, updated_at) \
             VALUES ($1, $2, $3, '010100', 250000000, 'approved', 1, 0, 0) RETURNING id",
        )
        .bind(unit)
        .bind(name)
        .bind(model)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        labshare::search::enqueue(&mut tx, "instrument", id)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let started = std::time::Instant::now();
    while app.state.app.search.num_docs() < names.len() as u64 {
        assert!(started.elapsed() < Duration::from_secs(10), "not indexed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_path_never_panics_or_fails_on_arbitrary_queries_filters_and_pages() {
    let app = indexed_app().await;
    let index = app.state.app.search.clone();
    let handle = tokio::runtime::Handle::current();
    // A fresh runner per property: a runner counts its cases across runs.
    let mut runner = TestRunner::new(config());
    let tally = Tally::default();
    // The query function, within the bounds the HTTP layer allows (page ≤ 500, size ≤ 100).
    tokio::task::block_in_place(|| {
        runner
            .run(
                &(search_params(), 0..50_000usize, 1..=100usize),
                |(p, offset, limit)| {
                    tally.one();
                    let r = index.search(&p, offset, limit);
                    prop_assert!(r.is_ok(), "{p:?} {offset} {limit}: {:?}", r.err());
                    let s = index.suggest(&p.q, limit.min(20));
                    prop_assert!(s.is_ok(), "suggest {:?}: {:?}", p.q, s.err());
                    Ok(())
                },
            )
            .unwrap()
    });
    // The HTTP endpoint and the portal page, with any text as the page number and size.
    let client = app.client.clone();
    let base = app.base.clone();
    let page_text = prop_oneof![
        any::<String>(),
        "-?[0-9]{1,30}",
        Just("18446744073709551616".to_string()),
        Just("0".to_string()),
    ];
    tokio::task::block_in_place(|| {
        TestRunner::new(config())
            .run(
                &(search_params(), page_text.clone(), page_text),
                |(p, page, per_page)| {
                    tally.one();
                    let enc = |s: &str| -> String {
                        let cut: String = s.chars().take(300).collect();
                        url::form_urlencoded::byte_serialize(cut.as_bytes()).collect()
                    };
                    let query = format!(
                        "q={}&type={}&category={}&city={}&sort={}&page={}&per_page={}",
                        enc(&p.q),
                        enc(&p.doc_type),
                        enc(&p.category),
                        enc(&p.city),
                        enc(&p.sort),
                        enc(&page),
                        enc(&per_page)
                    );
                    for path in ["/api/v1/search", "/search"] {
                        let url = format!("{base}{path}?{query}");
                        let status = handle
                            .block_on(async { client.get(&url).send().await.map(|r| r.status()) })
                            .map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
                        prop_assert!(status.as_u16() < 500, "{url}: {status}");
                    }
                    Ok(())
                },
            )
            .unwrap()
    });
    println!("proptest: search path, {} cases", tally.get());
}

/// A cell of an import sheet: a plausible value for some column, a number, or any text.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Number(f64),
}

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        any::<String>().prop_map(Cell::Text),
        prop_oneof![
            Just("场发射扫描电子显微镜".to_string()),
            Just("010100".to_string()),
            Just("1250000.00".to_string()),
            Just("是".to_string()),
            Just("2024-02-30".to_string()),
            Just("=1/0".to_string()),
            Just("-0".to_string()),
            Just("9".repeat(40)),
        ]
        .prop_map(Cell::Text),
        any::<f64>()
            .prop_filter("a finite number", |n| n.is_finite())
            .prop_map(Cell::Number),
        prop_oneof![
            Just(1e308),
            Just(-1e308),
            Just(2_958_466.0),
            Just(-1.0),
            Just(0.5)
        ]
        .prop_map(Cell::Number),
    ]
}

fn sheet(rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, (h, _)) in spreadsheets::COLUMNS.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match v {
                Cell::Text(s) => ws.write_string(r, c, s).map(|_| ()),
                Cell::Number(n) => ws.write_number(r, c, *n).map(|_| ()),
            }
            .unwrap();
        }
    }
    wb.save_to_buffer().unwrap()
}

/// Import `bytes`: no panic; a refusal names at least one problem.
fn import_is_total(bytes: &[u8]) -> Result<(), TestCaseError> {
    let outcome = std::panic::catch_unwind(|| spreadsheets::parse_instruments(bytes, 1));
    match outcome {
        Err(_) => Err(TestCaseError::fail(format!(
            "parse_instruments panicked on {} bytes",
            bytes.len()
        ))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(problems)) => {
            prop_assert!(!problems.is_empty());
            prop_assert!(
                problems.iter().all(|p| !p.message.is_empty()),
                "{problems:?}"
            );
            Ok(())
        }
    }
}

#[test]
fn the_xlsx_import_never_panics_on_mutated_files_or_random_cells() {
    // A fresh runner per property: a runner counts its cases across runs.
    let mut runner = TestRunner::new(config());
    let tally = Tally::default();
    // Random cells under the template's headers.
    let width = spreadsheets::COLUMNS.len() + 2;
    runner
        .run(
            &prop::collection::vec(prop::collection::vec(cell(), 0..width), 0..6),
            |rows| {
                tally.one();
                import_is_total(&sheet(&rows))
            },
        )
        .unwrap();
    // The real template (and a filled sheet) with bytes flipped, cut, inserted.
    let template = spreadsheets::instrument_template().unwrap();
    let filled = sheet(&[spreadsheets::COLUMNS
        .iter()
        .map(|_| Cell::Text("1".into()))
        .collect()]);
    let byte_edit = (any::<usize>(), any::<u8>(), 0..4u8);
    TestRunner::new(config())
        .run(
            &(any::<bool>(), prop::collection::vec(byte_edit, 1..16)),
            |(use_template, edits)| {
                tally.one();
                let mut bytes = if use_template {
                    template.clone()
                } else {
                    filled.clone()
                };
                for (pos, b, op) in edits {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = pos % bytes.len();
                    match op {
                        0 => bytes[i] = b,
                        1 => bytes.truncate(i),
                        2 => bytes.insert(i, b),
                        _ => {
                            bytes.remove(i);
                        }
                    }
                }
                import_is_total(&bytes)
            },
        )
        .unwrap();
    println!("proptest: xlsx import, {} cases", tally.get());
}
