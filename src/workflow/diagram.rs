//! State diagrams (流程图) of a definition: Mermaid, Graphviz DOT, and an SVG rendered on the
//! server (layered by distance from the initial state) with an optional highlighted state.

use std::collections::{BTreeMap, VecDeque};

use super::def::{Definition, action_label};

fn edges(d: &Definition) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for s in d.states.values() {
        if let Some(t) = &s.task {
            for (action, tr) in &t.on {
                let label = if action == "timeout" {
                    "超时".to_string()
                } else {
                    action_label(action).to_string()
                };
                out.push((s.name.clone(), tr.to.clone(), label));
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn mermaid(d: &Definition) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str(&format!("    [*] --> {}\n", d.initial));
    for s in d.states.values() {
        out.push_str(&format!("    {}: {}\n", s.name, s.title.replace(':', "：")));
    }
    for (from, to, label) in edges(d) {
        out.push_str(&format!("    {from} --> {to}: {label}\n"));
    }
    for s in d.states.values().filter(|s| s.terminal) {
        out.push_str(&format!("    {} --> [*]\n", s.name));
    }
    out
}

pub fn dot(d: &Definition) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        d.key
    );
    out.push_str("  __start [shape=point];\n");
    out.push_str(&format!("  __start -> \"{}\";\n", d.initial));
    for s in d.states.values() {
        let shape = if s.terminal { ", peripheries=2" } else { "" };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\"{shape}];\n",
            s.name,
            s.title.replace('"', "'")
        ));
    }
    for (from, to, label) in edges(d) {
        out.push_str(&format!("  \"{from}\" -> \"{to}\" [label=\"{label}\"];\n"));
    }
    out.push_str("}\n");
    out
}

/// An SVG; `current` is drawn highlighted.
pub fn svg(d: &Definition, current: Option<&str>) -> String {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    depth.insert(d.initial.clone(), 0);
    let mut queue = VecDeque::from([d.initial.clone()]);
    let es = edges(d);
    while let Some(s) = queue.pop_front() {
        let k = depth[&s];
        for (from, to, _) in &es {
            if *from == s && !depth.contains_key(to) {
                depth.insert(to.clone(), k + 1);
                queue.push_back(to.clone());
            }
        }
    }
    let max_depth = depth.values().copied().max().unwrap_or(0);
    for s in d.states.keys() {
        depth.entry(s.clone()).or_insert(max_depth + 1);
    }
    let mut columns: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (s, k) in &depth {
        columns.entry(*k).or_default().push(s.clone());
    }
    let (w, h, gap_x, gap_y) = (140.0, 44.0, 90.0, 30.0);
    let mut pos: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut height: f64 = 0.0;
    for (k, names) in &columns {
        for (i, n) in names.iter().enumerate() {
            let x = 20.0 + *k as f64 * (w + gap_x);
            let y = 20.0 + i as f64 * (h + gap_y);
            pos.insert(n.clone(), (x, y));
            height = height.max(y + h + 20.0);
        }
    }
    let width = 40.0 + columns.len() as f64 * (w + gap_x);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}流程图\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker></defs>\n",
        esc(&d.title)
    );
    for (i, (from, to, label)) in es.iter().enumerate() {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(from), pos.get(to)) else {
            continue;
        };
        let (sx, sy) = (x1 + w, y1 + h / 2.0);
        let (ex, ey) = if x2 > x1 {
            (x2, y2 + h / 2.0)
        } else {
            (x2 + w / 2.0, y2 + if y2 >= y1 { 0.0 } else { h })
        };
        let bend = if x2 > x1 {
            0.0
        } else {
            40.0 + (i % 3) as f64 * 12.0
        };
        let (cx, cy) = ((sx + ex) / 2.0, (sy + ey) / 2.0 + bend);
        out.push_str(&format!(
            "<path d=\"M {sx} {sy} Q {cx} {cy} {ex} {ey}\" fill=\"none\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>\n<text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>\n",
            cy - 4.0,
            esc(label)
        ));
    }
    for s in d.states.values() {
        let (x, y) = pos[&s.name];
        let hl = current == Some(s.name.as_str());
        let fill = if hl {
            "#ffe08a"
        } else if s.terminal {
            "#e8f0fe"
        } else {
            "#ffffff"
        };
        let stroke_w = if hl {
            3
        } else if s.terminal {
            2
        } else {
            1
        };
        out.push_str(&format!(
            "<g class=\"state{}\" data-state=\"{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"10\" fill=\"{fill}\" stroke=\"#234\" stroke-width=\"{stroke_w}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n",
            if hl { " current" } else { "" },
            esc(&s.name),
            x + w / 2.0,
            y + h / 2.0 + 5.0,
            esc(&s.title)
        ));
    }
    out.push_str("</svg>\n");
    out
}
