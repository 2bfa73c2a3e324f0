//! Text analysis (文本分析): normalisation, segmentation, bigrams, pinyin, model numbers,
//! synonyms and highlighting. Every normalisation step maps one character to one character,
//! so positions found in the normalised text are positions in the original text too.

use std::collections::{BTreeSet, HashMap};

use jieba_rs::Jieba;
use pinyin::ToPinyin;

/// Common traditional characters of the instrument domain and everyday text → simplified.
const TRAD: &str = "顯显鏡镜譜谱儀仪質质電电聯联測测試试熱热學学機机氣气離离線线衝冲擊击掃扫描描雷雷際际態态\
    實实驗验檢检側侧標标準准線线體体積积導导發发射射頻频數数據据處处產产業业開开關关門门們们這这個个\
    為为與与書书東东車车長长風风飛飞馬马魚鱼鳥鸟點点熱热萬万術术應应變变動动陽阳陰阴雲云廠厂區区圖图\
    價价錢钱類类統统計计紅红綠绿藍蓝黃黄銅铜鐵铁鋼钢鋁铝鍍镀礦矿場场墊垫壓压層层結结構构複复雜杂純纯\
    細细織织組组經经絡络纖纤維维網网絲丝軟软輕轻載载轉转輸输邊边運运進进過过選选連连遠远適适還还遞递\
    譯译讀读說说話话語语認认識识議议記记設设計计評评證证誤误調调諧谐響响聲声顏颜頭头題题願愿風风蘭兰\
    藥药蘇苏華华萬万葉叶衛卫術术衝冲極极樣样楊杨權权歷历氫氢氧氧氮氮碳碳鈉钠鉀钾鈣钙鎂镁鋅锌鎳镍鉻铬\
    錳锰鈷钴鉛铅錫锡鋰锂矽硅離离顆颗粒粒徑径濾滤燈灯爐炉燒烧營营環环現现瑪玛畫画當当療疗發发盤盘眾众\
    硬硬確确禮礼穩稳窮穷競竞筆笔範范築筑簡简糧粮紀纪約约納纳紙纸線线練练縣县總总績绩繪绘罰罚義义習习\
    聖圣聞闻職职腦脑興兴舊旧艙舱藝艺蟲虫術术裝装製制複复覽览觀观規规視视覺觉訊讯訓训許许診诊詢询該该\
    詳详語语誌志請请諾诺謝谢貨货質质購购費费資资賽赛贊赞趨趋車车軌轨較较輔辅辦办農农邏逻鄭郑醫医釋释\
    針针鈕钮銷销鋒锋錄录鍵键長长閃闪閱阅陳陈陸陆險险隊队隨随雙双雞鸡電电靈灵韓韩頁页項项順顺預预領领\
    頻频顧顾飼饲館馆驅驱驗验體体髮发鬥斗鹽盐麥麦齊齐齒齿龍龙";

/// The normaliser: full-width → half-width, lower case, traditional → simplified.
pub struct Normalizer {
    trad: HashMap<char, char>,
}

impl Default for Normalizer {
    fn default() -> Self {
        let chars: Vec<char> = TRAD.chars().filter(|c| !c.is_whitespace()).collect();
        let trad = chars
            .chunks(2)
            .filter(|p| p.len() == 2)
            .map(|p| (p[0], p[1]))
            .collect();
        Normalizer { trad }
    }
}

impl Normalizer {
    /// Normalise one character (always to exactly one character).
    pub fn char(&self, c: char) -> char {
        let c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        let c = if c.is_uppercase() {
            c.to_lowercase().next().unwrap_or(c)
        } else {
            c
        };
        *self.trad.get(&c).unwrap_or(&c)
    }

    pub fn text(&self, s: &str) -> String {
        s.chars().map(|c| self.char(c)).collect()
    }
}

pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// A token worth indexing: letters, digits or CJK; lower-case already.
fn keep(word: &str) -> bool {
    word.chars().any(|c| c.is_alphanumeric())
}

/// The analyser shared by the indexer and the query side.
pub struct Analyzer {
    pub norm: Normalizer,
    jieba: Jieba,
    pub synonyms: Synonyms,
    /// The domain vocabulary by sound, for typos by sound (同音字/近音字).
    pub sound: SoundVocabulary,
}

impl Analyzer {
    pub fn new(user_dict: &str, synonyms: &str) -> Analyzer {
        let mut jieba = Jieba::new();
        for line in user_dict.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let word = parts.next().unwrap_or_default();
            let freq = parts.next().and_then(|f| f.parse::<usize>().ok());
            jieba.add_word(word, freq.or(Some(20_000)), parts.next());
        }
        let norm = Normalizer::default();
        let synonyms = Synonyms::parse(synonyms, &norm);
        let mut words: Vec<String> = user_dict
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .map(|w| norm.text(w))
            .collect();
        words.extend(synonyms.groups.iter().flatten().cloned());
        let sound = SoundVocabulary::new(&words);
        Analyzer {
            norm,
            jieba,
            synonyms,
            sound,
        }
    }

    /// Full pinyin (no tones, no separators) of every CJK run of at least two characters:
    /// the query-side form of the `pinyin` field, so a homophone typo still meets the name.
    pub fn query_pinyin(&self, normalized: &str) -> Vec<String> {
        cjk_runs(normalized)
            .iter()
            .filter(|r| r.len() >= 2)
            .filter_map(|r| {
                let syl = syllables(r)?;
                Some(syl.iter().map(|s| s.0).collect::<String>())
            })
            .collect()
    }

    /// Index-time words (jieba search mode) of normalised text.
    pub fn index_words(&self, normalized: &str) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.jieba.cut_for_search(normalized, true) {
            if keep(t.word) {
                out.push(t.word.trim().to_string());
            }
        }
        out.extend(ascii_joins(normalized));
        out
    }

    /// Query-time words (jieba precise mode) of normalised text.
    pub fn query_words(&self, normalized: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.jieba.cut(normalized, true) {
            let w = t.word.trim();
            if keep(w) && !out.iter().any(|o| o == w) {
                out.push(w.to_string());
            }
        }
        out
    }

    /// Pinyin tokens (full and initials) for a short text such as a title: every run of two to
    /// eight consecutive CJK characters inside each CJK run, so `扫描电镜` inside a longer name
    /// still matches `saomiaodianjing` and `smdj`.
    pub fn pinyin_tokens(&self, normalized: &str, out: &mut BTreeSet<String>) {
        for run in cjk_runs(normalized) {
            let py: Vec<(&'static str, &'static str)> = run
                .iter()
                .map(|c| match c.to_pinyin() {
                    Some(p) => (p.plain(), p.first_letter()),
                    None => ("", ""),
                })
                .collect();
            for i in 0..py.len() {
                for j in (i + 2)..=(i + 8).min(py.len()) {
                    let full: String = py[i..j].iter().map(|p| p.0).collect();
                    let ini: String = py[i..j].iter().map(|p| p.1).collect();
                    out.insert(full);
                    out.insert(ini);
                }
            }
        }
    }
}

/// Runs of CJK characters.
fn cjk_runs(s: &str) -> Vec<Vec<char>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for c in s.chars() {
        if is_cjk(c) {
            cur.push(c);
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Each character's toneless pinyin and its 近音 form, or `None` when one has no reading.
fn syllables(chars: &[char]) -> Option<Vec<(&'static str, String)>> {
    chars
        .iter()
        .map(|c| {
            c.to_pinyin()
                .map(|p| (p.plain(), fuzzy_syllable(p.plain())))
        })
        .collect()
}

/// A syllable's near-sound form: zh/z, ch/c, sh/s and n/l initials, -ng/-n finals merged
/// (the usual 模糊音 of Mandarin input methods).
fn fuzzy_syllable(s: &str) -> String {
    let mut out = s.to_string();
    for (a, b) in [("zh", "z"), ("ch", "c"), ("sh", "s")] {
        if let Some(rest) = out.strip_prefix(a) {
            out = format!("{b}{rest}");
            break;
        }
    }
    if out.len() > 1 && out.starts_with('n') {
        out.replace_range(0..1, "l");
    }
    if out.len() > 2 && out.ends_with("ng") {
        out.pop();
    }
    out
}

/// Domain words (user dictionary and synonym members) indexed by their near-sound pinyin.
#[derive(Default)]
pub struct SoundVocabulary {
    /// Near-sound key → (word, exact pinyin key).
    by_sound: HashMap<String, Vec<(Vec<char>, String)>>,
    words: std::collections::HashSet<String>,
}

/// The longest run checked as one word.
const SOUND_MAX_CHARS: usize = 10;

impl SoundVocabulary {
    pub fn new(words: &[String]) -> SoundVocabulary {
        let mut v = SoundVocabulary::default();
        for w in words {
            for run in cjk_runs(w) {
                if run.len() < 2 || run.len() > SOUND_MAX_CHARS {
                    continue;
                }
                let Some(syl) = syllables(&run) else { continue };
                let word: String = run.iter().collect();
                if !v.words.insert(word) {
                    continue;
                }
                let exact = syl.iter().map(|s| s.0).collect::<Vec<_>>().join("-");
                let fuzzy = syl
                    .iter()
                    .map(|s| s.1.as_str())
                    .collect::<Vec<_>>()
                    .join("-");
                v.by_sound.entry(fuzzy).or_default().push((run, exact));
            }
        }
        v
    }

    /// The text with typos by sound replaced (`气象色谱` → `气相色谱`), or `None` when nothing
    /// was replaced. A span is replaced only when it is not a domain word itself, sounds like
    /// one (the same pinyin, or a near sound) and does not occur in the index as written
    /// (`occurs`), so correct words and names are never rewritten.
    pub fn correct(&self, normalized: &str, occurs: &dyn Fn(&str) -> bool) -> Option<String> {
        let chars: Vec<char> = normalized.chars().collect();
        let mut out = String::new();
        let mut changed = false;
        let mut i = 0;
        'outer: while i < chars.len() {
            if !is_cjk(chars[i]) {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let run_end = (i..chars.len())
                .find(|k| !is_cjk(chars[*k]))
                .unwrap_or(chars.len());
            for len in (2..=(run_end - i).min(SOUND_MAX_CHARS)).rev() {
                let span = &chars[i..i + len];
                let text: String = span.iter().collect();
                if self.words.contains(&text) {
                    out.push_str(&text);
                    i += len;
                    continue 'outer;
                }
                let Some(syl) = syllables(span) else { continue };
                let fuzzy = syl
                    .iter()
                    .map(|s| s.1.as_str())
                    .collect::<Vec<_>>()
                    .join("-");
                let Some(candidates) = self.by_sound.get(&fuzzy) else {
                    continue;
                };
                if occurs(&text) {
                    continue;
                }
                let exact = syl.iter().map(|s| s.0).collect::<Vec<_>>().join("-");
                // Prefer the same pinyin, then the most characters in common.
                let best = candidates.iter().max_by_key(|(w, key)| {
                    let same = w.iter().zip(span).filter(|(a, b)| a == b).count();
                    (*key == exact, same)
                });
                if let Some((w, _)) = best {
                    out.extend(w.iter());
                    changed = true;
                    i += len;
                    continue 'outer;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        changed.then_some(out)
    }
}

/// CJK unigrams and bigrams of normalised text (the recall field).
pub fn ngrams(normalized: &str, out: &mut Vec<String>) {
    for run in cjk_runs(normalized) {
        for (i, c) in run.iter().enumerate() {
            out.push(c.to_string());
            if let Some(n) = run.get(i + 1) {
                out.push(format!("{c}{n}"));
            }
        }
    }
}

/// The bigrams a query term must all match (or its single character).
pub fn term_ngrams(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() == 1 {
        return vec![word.to_string()];
    }
    chars.windows(2).map(|w| w.iter().collect()).collect()
}

/// ASCII alphanumeric words of normalised text, in order.
pub fn ascii_words(normalized: &str) -> Vec<String> {
    normalized
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Concatenations of adjacent ASCII words (`gc-ms` → `gcms`, `sigma 300` → `sigma300`).
pub fn ascii_joins(normalized: &str) -> Vec<String> {
    let words = ascii_words(normalized);
    let mut out = Vec::new();
    for i in 0..words.len() {
        for j in (i + 2)..=(i + 3).min(words.len()) {
            out.push(words[i..j].concat());
        }
    }
    out
}

/// A model number's canonical forms: the whole model without separators, each word, and
/// adjacent joins (`7890B-5977B` → `7890b5977b`, `7890b`, `5977b`).
pub fn model_tokens(normalized: &str) -> Vec<String> {
    let mut out = ascii_words(normalized);
    out.extend(ascii_joins(normalized));
    let all: String = normalized.chars().filter(|c| c.is_alphanumeric()).collect();
    if !all.is_empty() {
        out.push(all);
    }
    out
}

/// Synonym groups from `synonyms.txt`: `电镜 = 电子显微镜 = SEM`, one group a line.
pub struct Synonyms {
    /// Normalised members of each group; ASCII members are stored without separators.
    pub groups: Vec<Vec<String>>,
}

impl Synonyms {
    pub fn parse(text: &str, norm: &Normalizer) -> Synonyms {
        let mut groups = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let members: Vec<String> = line
                .split(['=', ','])
                .map(|m| canonical_member(&norm.text(m.trim())))
                .filter(|m| !m.is_empty())
                .collect();
            if members.len() > 1 {
                groups.push(members);
            }
        }
        Synonyms { groups }
    }

    /// Group numbers whose members occur in the text: CJK members as substrings, ASCII members
    /// as a whole word or a join of adjacent words.
    pub fn matching(&self, normalized: &str) -> Vec<usize> {
        let compact: String = normalized.chars().filter(|c| c.is_alphanumeric()).collect();
        let words = ascii_words(normalized);
        let mut ascii: BTreeSet<String> = words.iter().cloned().collect();
        // Multi-word English terms (`high performance liquid chromatography`) match as joins.
        for i in 0..words.len() {
            for j in (i + 2)..=(i + 6).min(words.len()) {
                ascii.insert(words[i..j].concat());
            }
        }
        let mut hits = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            let hit = g.iter().any(|m| {
                if m.is_ascii() {
                    ascii.contains(m)
                } else {
                    compact.contains(m.as_str())
                }
            });
            if hit {
                hits.push(i);
            }
        }
        hits
    }
}

fn canonical_member(m: &str) -> String {
    if m.is_ascii() {
        m.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
    } else {
        m.chars().filter(|c| c.is_alphanumeric()).collect()
    }
}

/// HTML-escape one character into `out`.
fn escape_into(c: char, out: &mut String) {
    match c {
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        _ => out.push(c),
    }
}

/// Highlight `terms` (normalised) in `original`: HTML-escaped text with `<mark>` around the
/// matches, cut to about `width` characters around the first match (`width == 0`: whole text).
pub fn highlight(norm: &Normalizer, original: &str, terms: &[String], width: usize) -> String {
    let orig: Vec<char> = original.chars().collect();
    let normed: Vec<char> = orig.iter().map(|c| norm.char(*c)).collect();
    let mut marked = vec![false; orig.len()];
    for term in terms {
        let t: Vec<char> = term.chars().collect();
        if t.is_empty() || t.len() > normed.len() {
            continue;
        }
        let ascii = term.is_ascii();
        for i in 0..=(normed.len() - t.len()) {
            if normed[i..i + t.len()] == t[..] {
                // ASCII terms match at word starts only (`sem` is not inside `assembly`).
                if ascii && i > 0 && normed[i - 1].is_ascii_alphanumeric() {
                    continue;
                }
                marked[i..i + t.len()].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    let (start, end) = if width == 0 || orig.len() <= width {
        (0, orig.len())
    } else {
        let first = marked.iter().position(|m| *m).unwrap_or(0);
        let start = first.saturating_sub(width / 4);
        (start, (start + width).min(orig.len()))
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut open = false;
    for i in start..end {
        if marked[i] && !open {
            out.push_str("<mark>");
            open = true;
        } else if !marked[i] && open {
            out.push_str("</mark>");
            open = false;
        }
        escape_into(orig[i], &mut out);
    }
    if open {
        out.push_str("</mark>");
    }
    if end < orig.len() {
        out.push('…');
    }
    out
}

/// CJK substrings of `title` whose pinyin (full or initials) equals `query` — the words a
/// pinyin query matched, for highlighting.
pub fn pinyin_matches(norm: &Normalizer, title: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in cjk_runs(&norm.text(title)) {
        for i in 0..run.len() {
            let mut full = String::new();
            let mut ini = String::new();
            for j in i..run.len().min(i + 8) {
                if let Some(p) = run[j].to_pinyin() {
                    full.push_str(p.plain());
                    ini.push_str(p.first_letter());
                }
                if full == query || ini == query {
                    out.push(run[i..=j].iter().collect());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_width_case_and_traditional() {
        let n = Normalizer::default();
        assert_eq!(n.text("ＺＥＩＳＳ 顯微鏡"), "zeiss 显微镜");
        assert_eq!(n.text("顯微鏡").chars().count(), 3);
    }

    #[test]
    fn highlights_escaped_with_marks() {
        let n = Normalizer::default();
        let h = highlight(&n, "<b>扫描电镜</b> SEM", &["电镜".into(), "sem".into()], 0);
        assert_eq!(
            h,
            "&lt;b&gt;扫描<mark>电镜</mark>&lt;/b&gt; <mark>SEM</mark>"
        );
    }

    #[test]
    fn model_numbers_canonicalise() {
        let n = Normalizer::default();
        assert!(model_tokens(&n.text("Sigma 300")).contains(&"sigma300".to_string()));
        assert!(model_tokens(&n.text("SIGMA-300")).contains(&"sigma300".to_string()));
        assert!(model_tokens(&n.text("7890B-5977B")).contains(&"7890b".to_string()));
    }

    #[test]
    fn typos_by_sound_are_corrected_to_domain_words_only() {
        let a = Analyzer::new(
            "气相色谱 60000 n\n拉曼 30000 n\n扫描电镜 50000 n\n透射电镜 50000 n",
            "",
        );
        let never = |_: &str| false;
        assert_eq!(
            a.sound.correct("气象色谱", &never).as_deref(),
            Some("气相色谱")
        );
        assert_eq!(
            a.sound.correct("拉慢光谱", &never).as_deref(),
            Some("拉曼光谱")
        );
        assert_eq!(
            a.sound.correct("扫瞄电镜", &never).as_deref(),
            Some("扫描电镜")
        );
        // A near sound (jin/jing) too.
        assert_eq!(
            a.sound.correct("透射电金", &never).as_deref(),
            Some("透射电镜")
        );
        // Correct words, words found in the index and other text stay as they are.
        assert_eq!(a.sound.correct("气相色谱 7890B", &never), None);
        assert_eq!(a.sound.correct("气象色谱", &|_| true), None);
        assert_eq!(a.sound.correct("自动气象站", &never), None);
    }

    #[test]
    fn pinyin_of_runs() {
        let a = Analyzer::new("", "");
        let mut out = BTreeSet::new();
        a.pinyin_tokens("扫描电镜", &mut out);
        assert!(out.contains("saomiaodianjing"));
        assert!(out.contains("smdj"));
        assert_eq!(
            pinyin_matches(&a.norm, "扫描电镜", "smdj"),
            vec!["扫描电镜"]
        );
    }
}
