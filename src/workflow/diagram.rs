//! State diagrams (流程图) of a definition: Mermaid, Graphviz DOT, and an SVG rendered on the
//! server (layered by distance from the initial state) with an optional highlighted state.

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
    svg_with_path(d, current, &[])
}

/// An SVG of the layered layout (`super::layout`): `current` highlighted, and the states of
/// `path` (a dry run's or an instance's visited states, in order) with the edges between
/// consecutive ones drawn as the path taken.
pub fn svg_with_path(d: &Definition, current: Option<&str>, path: &[String]) -> String {
    let l = super::layout::layout(d);
    let on_path = |from: &str, to: &str| path.windows(2).any(|w| w[0] == from && w[1] == to);
    let (width, height) = (l.width.ceil(), l.height.ceil());
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}流程图\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker>\
         <marker id=\"arrow-path\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#c2410c\"/></marker></defs>\n",
        esc(&d.title)
    );
    for e in &l.edges {
        let taken = on_path(&e.from, &e.to);
        let pts: Vec<String> = e
            .points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let (stroke, sw, marker, class) = if taken {
            ("#c2410c", 3, "arrow-path", " taken")
        } else {
            ("#555", 1, "arrow", "")
        };
        let b = e.label_box;
        out.push_str(&format!(
            "<g class=\"edge{class}\" data-from=\"{}\" data-to=\"{}\"><polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{sw}\" marker-end=\"url(#{marker})\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff\" opacity=\"0.9\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text></g>\n",
            esc(&e.from),
            esc(&e.to),
            pts.join(" "),
            b.x,
            b.y,
            b.w,
            b.h,
            b.x + b.w / 2.0,
            b.y + b.h - 4.5,
            esc(&e.label)
        ));
    }
    for n in &l.nodes {
        let hl = current == Some(n.name.as_str());
        let visited = path.contains(&n.name);
        let fill = if hl {
            "#ffe08a"
        } else if visited {
            "#fde7d9"
        } else if n.terminal {
            "#e8f0fe"
        } else {
            "#ffffff"
        };
        let stroke_w = if hl {
            3
        } else if n.terminal || visited {
            2
        } else {
            1
        };
        let r = n.rect;
        out.push_str(&format!(
            "<g class=\"state{}{}\" data-state=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"10\" fill=\"{fill}\" stroke=\"#234\" stroke-width=\"{stroke_w}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n",
            if hl { " current" } else { "" },
            if visited { " visited" } else { "" },
            esc(&n.name),
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + r.w / 2.0,
            r.y + r.h / 2.0 + 5.0,
            esc(&n.title)
        ));
    }
    out.push_str("</svg>\n");
    out
}
