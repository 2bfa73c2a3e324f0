//! A layered layout of a flow's state graph (Sugiyama style) with labels that never
//! overlap: states are put in layers by their distance from the initial state and ordered
//! in each layer by the barycentre of their neighbours; an edge between neighbouring layers
//! is drawn through its label, which is placed in the gap between the two layers and packed
//! so that no two labels in one gap overlap; every other edge (backwards, within a layer or
//! across several layers) runs along its own horizontal lane below the states, with its
//! label on the lane — one lane per edge, so those labels cannot overlap either.

use std::collections::{BTreeMap, VecDeque};

use super::def::{Definition, action_label};

pub const NODE_W: f64 = 140.0;
pub const NODE_H: f64 = 44.0;
const GAP_X: f64 = 110.0;
const GAP_Y: f64 = 34.0;
const MARGIN: f64 = 20.0;
pub const LABEL_H: f64 = 18.0;
const LANE_GAP: f64 = 26.0;

/// An axis-aligned box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

#[derive(Clone, Debug)]
pub struct NodeBox {
    pub name: String,
    pub title: String,
    pub terminal: bool,
    pub rect: Rect,
}

#[derive(Clone, Debug)]
pub struct EdgePath {
    pub from: String,
    pub to: String,
    pub action: String,
    pub label: String,
    /// A polyline through the label's centre.
    pub points: Vec<(f64, f64)>,
    pub label_box: Rect,
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<NodeBox>,
    pub edges: Vec<EdgePath>,
}

/// Width of a label: CJK characters are about one em, others about half.
pub fn label_width(s: &str) -> f64 {
    let w: f64 = s
        .chars()
        .map(|c| if c.is_ascii() { 7.5 } else { 13.5 })
        .sum();
    w + 8.0
}

fn edge_list(d: &Definition) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for s in d.states.values() {
        if let Some(t) = &s.task {
            // In the order the step offers its actions.
            let mut on: Vec<(&String, &super::def::Transition)> = t.on.iter().collect();
            on.sort_by_key(|(a, _)| t.actions.iter().position(|x| x == *a).unwrap_or(usize::MAX));
            for (action, tr) in on {
                let label = if action == "timeout" {
                    "超时".to_string()
                } else {
                    action_label(action).to_string()
                };
                out.push((s.name.clone(), tr.to.clone(), action.clone(), label));
            }
        }
    }
    out
}

pub fn layout(d: &Definition) -> Layout {
    let es = edge_list(d);
    // Layers: distance from the initial state; unreachable states after the last layer.
    let mut layer: BTreeMap<String, usize> = BTreeMap::new();
    layer.insert(d.initial.clone(), 0);
    let mut queue = VecDeque::from([d.initial.clone()]);
    while let Some(s) = queue.pop_front() {
        let k = layer[&s];
        for (from, to, _, _) in &es {
            if *from == s && !layer.contains_key(to) && d.states.contains_key(to) {
                layer.insert(to.clone(), k + 1);
                queue.push_back(to.clone());
            }
        }
    }
    let last = layer.values().copied().max().unwrap_or(0);
    for s in d.states.keys() {
        layer.entry(s.clone()).or_insert(last + 1);
    }
    let n_layers = layer.values().copied().max().unwrap_or(0) + 1;
    let mut layers: Vec<Vec<String>> = vec![Vec::new(); n_layers];
    for (s, k) in &layer {
        layers[*k].push(s.clone());
    }
    // Order within layers: barycentre of the neighbours in the layer before, a few sweeps.
    for _ in 0..4 {
        for k in 1..n_layers {
            let prev: BTreeMap<&str, usize> = layers[k - 1]
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            let mut keyed: Vec<(f64, usize, String)> = layers[k]
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let ps: Vec<f64> = es
                        .iter()
                        .filter(|(f, t, _, _)| t == n && prev.contains_key(f.as_str()))
                        .map(|(f, _, _, _)| prev[f.as_str()] as f64)
                        .collect();
                    let bc = if ps.is_empty() {
                        i as f64
                    } else {
                        ps.iter().sum::<f64>() / ps.len() as f64
                    };
                    (bc, i, n.clone())
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[k] = keyed.into_iter().map(|(_, _, n)| n).collect();
        }
    }
    let mut pos: BTreeMap<String, Rect> = BTreeMap::new();
    let mut bottom: f64 = MARGIN;
    for (k, names) in layers.iter().enumerate() {
        for (i, n) in names.iter().enumerate() {
            let r = Rect {
                x: MARGIN + k as f64 * (NODE_W + GAP_X),
                y: MARGIN + i as f64 * (NODE_H + GAP_Y),
                w: NODE_W,
                h: NODE_H,
            };
            bottom = bottom.max(r.y + r.h);
            pos.insert(n.clone(), r);
        }
    }
    let mut edges = Vec::new();
    // Labels in each gap, packed top to bottom.
    let mut gaps: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut lanes: Vec<usize> = Vec::new();
    for (i, (from, to, _, _)) in es.iter().enumerate() {
        let (Some(lf), Some(lt)) = (layer.get(from), layer.get(to)) else {
            continue;
        };
        if !pos.contains_key(to) {
            continue;
        }
        if *lt == lf + 1 {
            gaps.entry(*lf).or_default().push(i);
        } else {
            lanes.push(i);
        }
    }
    let mut placed: BTreeMap<usize, EdgePath> = BTreeMap::new();
    for (k, ids) in &gaps {
        let mut want: Vec<(f64, usize)> = ids
            .iter()
            .map(|i| {
                let (f, t) = (&pos[&es[*i].0], &pos[&es[*i].1]);
                ((f.y + t.y + NODE_H) / 2.0, *i)
            })
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let gap_x = MARGIN + *k as f64 * (NODE_W + GAP_X) + NODE_W;
        let mut next_free = f64::MIN;
        for (cy, i) in want {
            let (from, to, action, label) = &es[i];
            let top = (cy - LABEL_H / 2.0).max(next_free);
            next_free = top + LABEL_H + 2.0;
            let w = label_width(label).min(GAP_X - 10.0);
            let lb = Rect {
                x: gap_x + (GAP_X - w) / 2.0,
                y: top,
                w,
                h: LABEL_H,
            };
            bottom = bottom.max(lb.y + lb.h);
            let (f, t) = (pos[from], pos[to]);
            let mid = (lb.x + lb.w / 2.0, lb.y + lb.h / 2.0);
            placed.insert(
                i,
                EdgePath {
                    from: from.clone(),
                    to: to.clone(),
                    action: action.clone(),
                    label: label.clone(),
                    points: vec![
                        (f.x + f.w, f.y + f.h / 2.0),
                        (lb.x, mid.1),
                        (lb.x + lb.w, mid.1),
                        (t.x, t.y + t.h / 2.0),
                    ],
                    label_box: lb,
                },
            );
        }
    }
    // Lanes below everything else, one per edge; ports spread along the node's bottom.
    let mut lane_y = bottom + LANE_GAP;
    let mut ports: BTreeMap<String, usize> = BTreeMap::new();
    let mut port = |n: &str| {
        let c = ports.entry(n.to_string()).or_insert(0);
        *c += 1;
        *c
    };
    for i in lanes {
        let (from, to, action, label) = &es[i];
        let (f, t) = (pos[from], pos[to]);
        let (pf, pt) = (port(from), port(to));
        let sx = f.x + (f.w * (pf as f64) / 8.0).min(f.w - 6.0);
        let ex = t.x + t.w - (t.w * (pt as f64) / 8.0).min(t.w - 6.0);
        let w = label_width(label);
        let mid_x = (sx + ex) / 2.0;
        let lb = Rect {
            x: mid_x - w / 2.0,
            y: lane_y - LABEL_H / 2.0,
            w,
            h: LABEL_H,
        };
        placed.insert(
            i,
            EdgePath {
                from: from.clone(),
                to: to.clone(),
                action: action.clone(),
                label: label.clone(),
                points: vec![(sx, f.y + f.h), (sx, lane_y), (ex, lane_y), (ex, t.y + t.h)],
                label_box: lb,
            },
        );
        lane_y += LANE_GAP;
    }
    edges.extend(placed.into_values());
    let nodes = d
        .states
        .values()
        .map(|s| NodeBox {
            name: s.name.clone(),
            title: s.title.clone(),
            terminal: s.terminal,
            rect: pos[&s.name],
        })
        .collect();
    let width = MARGIN * 2.0 + n_layers as f64 * (NODE_W + GAP_X) - GAP_X;
    let min_x = edges.iter().map(|e| e.label_box.x).fold(0.0_f64, f64::min);
    let max_x = edges
        .iter()
        .map(|e| e.label_box.x + e.label_box.w)
        .fold(width, f64::max);
    Layout {
        width: max_x - min_x.min(0.0) + MARGIN,
        height: lane_y + MARGIN,
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No two labels overlap, and no label covers a state, for every shipped flow.
    #[test]
    fn labels_never_overlap_in_any_shipped_flow() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let catalog = crate::server::workflow_catalog();
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let src = std::fs::read_to_string(&p).unwrap();
            let d = super::super::def::parse(
                &file,
                &src,
                &super::super::def::builtin_roles(),
                &catalog,
            )
            .unwrap();
            let l = layout(&d);
            assert_eq!(
                l.edges.len(),
                edge_list(&d).len(),
                "{file}: every edge drawn"
            );
            for (i, a) in l.edges.iter().enumerate() {
                for b in &l.edges[i + 1..] {
                    assert!(
                        !a.label_box.overlaps(&b.label_box),
                        "{file}: labels `{}` ({}→{}) and `{}` ({}→{}) overlap",
                        a.label,
                        a.from,
                        a.to,
                        b.label,
                        b.from,
                        b.to
                    );
                }
                for node in &l.nodes {
                    assert!(
                        !a.label_box.overlaps(&node.rect),
                        "{file}: label `{}` covers state {}",
                        a.label,
                        node.name
                    );
                }
            }
            for (i, a) in l.nodes.iter().enumerate() {
                for b in &l.nodes[i + 1..] {
                    assert!(!a.rect.overlaps(&b.rect), "{file}: states overlap");
                }
            }
            n += 1;
        }
        assert!(n >= 10);
    }
}
