//! Draws one report entry's call graph the way `perf report --stdio -g graph|fractal|folded` does.
//!
//! perf keeps call chains in a radix tree: a node holds a run of frames and is split only where paths diverge
//! or where samples end. We rebuild that shape from the `CallTree` (one node per frame) by merging a node
//! with its only child when no sample ends at it, then print with perf's rules:
//!
//! ```text
//!             |                          a single root holding all of the entry's samples is drawn as
//!             ---main                    "---" plus its frames, without a percentage
//!                |
//!                |--66.59%--c            a branch: "|--PCT--" for each child but the last, " --PCT--" for the
//!                |                       last; "|" columns continue while later siblings remain
//!                 --11.19%--a
//! ```
//! `graph` percentages are of all samples, `fractal` ones of the parent branch (hidden siblings of a fractal
//! branch are summed in a `[...]` line); branches under the threshold are hidden. Trailing spaces are trimmed.

use std::io::{self, Write};

use crate::profile::query::{
    percent, CallTree, GraphMode, GraphOptions, Weight, MAX_GRAPH_DEPTH, OTHER,
};
use crate::profile::Profile;

use super::text::{sanitize, trim_end};

/// perf's fixed left margin for call graph lines.
const MARGIN: &str = "            ";

/// A radix-tree node: a run of frames (ids in the `CallTree`), the weight through its first frame, the weight
/// of samples ending at its last frame, and the children of its last frame.
struct RNode {
    frames: Vec<usize>,
    cumul: u64,
    hit: u64,
    children: Vec<RNode>,
}

impl RNode {
    fn children_hit(&self) -> u64 {
        self.children.iter().map(|c| c.cumul).sum()
    }
}

fn compress(tree: &CallTree, id: usize) -> RNode {
    let mut frames = vec![id];
    let mut last = id;
    loop {
        let node = &tree.nodes[last];
        if node.children.len() == 1
            && node.self_weight == Weight::default()
            && !node.other
            && !node.cut
        {
            last = node.children[0];
            frames.push(last);
        } else {
            break;
        }
    }
    RNode {
        frames,
        cumul: tree.nodes[id].weight.period,
        hit: tree.nodes[last].self_weight.period,
        children: tree.nodes[last]
            .children
            .iter()
            .map(|&c| compress(tree, c))
            .collect(),
    }
}

struct Printer<'a> {
    profile: &'a Profile,
    tree: &'a CallTree,
    mode: GraphMode,
    threshold: f64,
    /// `graph` mode: hide branches under this period.
    abs_min: f64,
}

impl Printer<'_> {
    fn name(&self, id: usize) -> String {
        let node = &self.tree.nodes[id];
        if node.other {
            OTHER.to_owned()
        } else if node.cut {
            format!("[deeper than {MAX_GRAPH_DEPTH} frames, not drawn]")
        } else {
            sanitize(self.profile.func_name(&node.func)).into_owned()
        }
    }

    /// The children worth drawing, heaviest first (the tree is already sorted).
    fn visible<'n>(&self, nodes: &'n [RNode], parent_children_hit: u64) -> Vec<&'n RNode> {
        let min = match self.mode {
            GraphMode::Fractal => (parent_children_hit as f64 * self.threshold / 100.0).ceil(),
            _ => self.abs_min,
        };
        nodes.iter().filter(|n| n.cumul as f64 >= min).collect()
    }

    fn value(&self, period: u64, total: u64) -> String {
        format!("{:.2}%", percent(period, total))
    }

    fn chain_line(
        &self,
        w: &mut impl Write,
        margin: usize,
        mask: &[bool],
        first: Option<&str>,
        name: &str,
    ) -> io::Result<()> {
        let mut line = String::from(MARGIN);
        line.extend(std::iter::repeat_n(' ', margin));
        let depth = mask.len();
        for (i, &pipe) in mask.iter().enumerate() {
            line.push(if pipe { '|' } else { ' ' });
            match first {
                Some(value) if i + 1 == depth => {
                    line.push_str("--");
                    line.push_str(value);
                    line.push_str("--");
                }
                _ => line.push_str("          "),
            }
        }
        line.push_str(name);
        writeln!(w, "{}", trim_end(&line))
    }

    fn separator(&self, w: &mut impl Write, margin: usize, mask: &[bool]) -> io::Result<()> {
        let mut line = String::from(MARGIN);
        line.extend(std::iter::repeat_n(' ', margin));
        for &pipe in mask {
            line.push_str(if pipe { "|          " } else { "           " });
        }
        writeln!(w, "{}", trim_end(&line))
    }

    /// perf's `__callchain__fprintf_graph`: the children of one node at `mask.len()` levels deep.
    fn level(
        &self,
        w: &mut impl Write,
        nodes: &[RNode],
        total: u64,
        mask: &[bool],
        margin: usize,
    ) -> io::Result<()> {
        let parent_children_hit: u64 = nodes.iter().map(|n| n.cumul).sum();
        let visible = self.visible(nodes, parent_children_hit);
        let fractal = self.mode == GraphMode::Fractal;
        let depth = mask.len();
        let mut remaining = total;
        let mut new_mask = mask.to_vec();
        for (k, child) in visible.iter().enumerate() {
            remaining = remaining.saturating_sub(child.cumul);
            if k + 1 == visible.len() && (!fractal || remaining == 0) {
                new_mask[depth - 1] = false;
            }
            self.separator(w, margin, mask)?;
            let value = self.value(child.cumul, total);
            for (i, &id) in child.frames.iter().enumerate() {
                let first = (i == 0).then_some(value.as_str());
                self.chain_line(w, margin, &new_mask, first, &self.name(id))?;
            }
            let child_total = if fractal { child.children_hit() } else { total };
            let mut child_mask = new_mask.clone();
            child_mask.push(true);
            self.level(w, &child.children, child_total, &child_mask, margin)?;
        }
        if fractal && remaining != 0 && remaining != total {
            new_mask[depth - 1] = false;
            let value = self.value(remaining, total);
            self.chain_line(w, margin, &new_mask, Some(&value), "[...]")?;
        }
        Ok(())
    }
}

/// Writes the call graph of one entry. `entry` is the entry's own weight (children or self, as the report
/// is sorted); `all` is the weight of all shown samples.
pub(crate) fn write_entry_graph(
    w: &mut impl Write,
    profile: &Profile,
    tree: &CallTree,
    entry: Weight,
    all: Weight,
    opts: &GraphOptions,
) -> io::Result<()> {
    let roots: Vec<RNode> = tree.roots.iter().map(|&r| compress(tree, r)).collect();
    let printer = Printer {
        profile,
        tree,
        mode: opts.mode,
        threshold: opts.threshold,
        abs_min: all.period as f64 * opts.threshold / 100.0,
    };
    match opts.mode {
        GraphMode::None => Ok(()),
        GraphMode::Folded => write_folded_graph(w, &printer, &roots, all.period),
        GraphMode::Graph | GraphMode::Fractal => {
            let mut out = Vec::new();
            write_graph(&mut out, &printer, &roots, entry.period, all.period)?;
            if !out.is_empty() {
                w.write_all(&out)?;
                writeln!(w)?;
            }
            Ok(())
        }
    }
}

/// perf's `callchain__fprintf_graph`.
fn write_graph(
    w: &mut impl Write,
    printer: &Printer<'_>,
    roots: &[RNode],
    entry: u64,
    all: u64,
) -> io::Result<()> {
    let root_hit: u64 = roots.iter().map(|n| n.cumul).sum();
    let visible = printer.visible(roots, root_hit);
    let mut margin = 0;
    let mut level: &[RNode] = roots;
    if visible.len() == 1 && visible[0].cumul == entry {
        let only = visible[0];
        for (i, &id) in only.frames.iter().enumerate() {
            if i == 0 {
                writeln!(w, "{MARGIN}|")?;
                writeln!(w, "{MARGIN}---{}", printer.name(id))?;
                margin = 3;
            } else {
                writeln!(w, "{MARGIN}   {}", printer.name(id))?;
            }
        }
        level = &only.children;
    }
    // perf: fractal percentages of the first level are of the entry, deeper ones of the parent branch.
    let total = if printer.mode == GraphMode::Fractal {
        entry
    } else {
        all
    };
    printer.level(w, level, total, &[true], margin)
}

/// perf's `-g folded`: one line per path that samples end at, heaviest first: `PCT% a;b;c`.
fn write_folded_graph(
    w: &mut impl Write,
    printer: &Printer<'_>,
    roots: &[RNode],
    all: u64,
) -> io::Result<()> {
    fn collect<'n>(
        node: &'n RNode,
        path: &mut Vec<&'n RNode>,
        out: &mut Vec<(u64, Vec<&'n RNode>)>,
    ) {
        path.push(node);
        if node.hit > 0 {
            out.push((node.hit, path.clone()));
        }
        for c in &node.children {
            collect(c, path, out);
        }
        path.pop();
    }
    let mut lines = Vec::new();
    for r in roots {
        collect(r, &mut Vec::new(), &mut lines);
    }
    lines.retain(|(hit, _)| *hit as f64 >= printer.abs_min);
    // Stable sort: the tree order already breaks ties by name.
    lines.sort_by_key(|l| std::cmp::Reverse(l.0));
    for (hit, path) in lines {
        let names: Vec<String> = path
            .iter()
            .flat_map(|n| n.frames.iter().map(|&id| printer.name(id)))
            .collect();
        writeln!(w, "{:.2}% {}", percent(hit, all), names.join(";"))?;
    }
    Ok(())
}
