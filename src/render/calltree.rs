//! The `--callers SYM` / `--callees SYM` report: the tree from SYM toward its callers (or callees), every
//! node with its share of SYM's samples and of all samples.
//!
//! ```text
//! #  of c  of all  Samples  Callers of c
//!  100.00%  88.63%     2353  c
//!   75.05%  66.52%     1766  |-- main
//!   75.05%  66.52%     1766  |   __libc_start_call_main
//!   24.95%  22.11%      587  `-- rec
//! ```
//! A node with a single child of the same weight continues at the same indentation (perf's chains), so long
//! call chains do not march off the right edge; a branch starts with `|--` or `` `-- ``.

use std::io::{self, Write};

use crate::profile::query::{
    close_matches, function_tree, percent, CallTree, Direction, Filter, Matcher, Weight, OTHER,
};
use crate::profile::Profile;

use super::text::{ms, sanitize, short_module, write_header};

#[derive(Clone, Debug)]
pub struct CalltreeOptions {
    pub matcher: Matcher,
    pub direction: Direction,
    /// `filter.percent_limit` folds nodes under that share of all samples into `[other]`.
    pub filter: Filter,
    /// Show each node's module after its name (`main [app]`).
    pub show_module: bool,
}

/// Writes the header, then the tree; says so when no sample has the function on its stack.
pub fn write_calltree(
    w: &mut impl Write,
    profile: &Profile,
    opts: &CalltreeOptions,
) -> io::Result<()> {
    let tree = function_tree(profile, &opts.filter, &opts.matcher, opts.direction);
    write_header(w, profile, tree.total)?;
    write_tree(w, profile, opts, tree)
}

/// The tree of [`write_calltree`] without the header (a section of a longer report: the locks view's).
pub fn write_calltree_section(
    w: &mut impl Write,
    profile: &Profile,
    opts: &CalltreeOptions,
) -> io::Result<()> {
    let tree = function_tree(profile, &opts.filter, &opts.matcher, opts.direction);
    write_tree(w, profile, opts, tree)
}

fn write_tree(
    w: &mut impl Write,
    profile: &Profile,
    opts: &CalltreeOptions,
    mut tree: CallTree,
) -> io::Result<()> {
    let what = match opts.direction {
        Direction::Callers => "Callers",
        Direction::Callees => "Callees",
    };
    let sym = sanitize(&opts.matcher.to_string()).into_owned();
    let of_sym = tree.roots_weight();
    if tree.roots.is_empty() {
        // perf prints some names otherwise (`___pthread_mutex_lock`, `__GI_...`): the close ones may be it.
        let close = close_matches(profile, &opts.matcher.to_string());
        if close.is_empty() {
            writeln!(w, "# No sample has {sym} on its stack.")?;
        } else {
            let close: Vec<String> = close.iter().map(|n| sanitize(n).into_owned()).collect();
            writeln!(
                w,
                "# No sample has {sym} on its stack. Close names: {}",
                close.join(", ")
            )?;
        }
        return Ok(());
    }
    let time = profile.weighed.as_ref().is_some_and(|v| v.by.is_time());
    if time {
        writeln!(
            w,
            "# {what} of {sym}: {} ms in {} {}, {:.2}% of all (each counted once, at the \
             outermost {sym})",
            ms(of_sym.period),
            of_sym.count,
            profile
                .weighed
                .as_ref()
                .map_or("samples", |v| v.by.count_noun()),
            percent(of_sym.period, tree.total.period)
        )?;
    } else {
        writeln!(
            w,
            "# {what} of {sym}: {} samples, {:.2}% of all (each sample counted once, at the outermost {sym})",
            of_sym.count,
            percent(of_sym.period, tree.total.period)
        )?;
    }
    writeln!(w, "#")?;
    if opts.filter.percent_limit > 0.0 {
        let min = (tree.total.period as f64 * opts.filter.percent_limit / 100.0).ceil() as u64;
        tree.fold_below(min);
    }
    let sym_title = format!("of {sym}");
    let sym_width = sym_title.chars().count().max(7);
    // The third column: samples, or in a time view milliseconds.
    let amount_width = if time {
        tree.nodes
            .iter()
            .map(|n| ms(n.weight.period).len())
            .max()
            .unwrap_or(0)
            .max(7)
    } else {
        7
    };
    let amount_title = if time { "ms" } else { "Samples" };
    writeln!(
        w,
        "# {sym_title:>sym_width$}   of all  {amount_title:>amount_width$}  {what} of {sym}"
    )?;
    let printer = TreePrinter {
        profile,
        tree: &tree,
        of_sym,
        sym_width,
        amount_width,
        time,
        show_module: opts.show_module,
    };
    for &root in &tree.roots {
        printer.node(w, root, "", "")?;
    }
    Ok(())
}

struct TreePrinter<'a> {
    profile: &'a Profile,
    tree: &'a CallTree,
    of_sym: Weight,
    sym_width: usize,
    amount_width: usize,
    time: bool,
    show_module: bool,
}

impl TreePrinter<'_> {
    /// Draws `id` and its subtree. `lead` goes before this node's name; `cont` before its descendants' lines.
    /// Depth-first with a stack of its own rather than by recursion: an imported stack may be many thousands
    /// of frames deep.
    fn node(&self, w: &mut impl Write, id: usize, lead: &str, cont: &str) -> io::Result<()> {
        let mut todo = vec![(id, lead.to_owned(), cont.to_owned())];
        while let Some((id, lead, cont)) = todo.pop() {
            let node = &self.tree.nodes[id];
            self.line(w, id, &lead)?;
            if let [only] = node.children[..] {
                if self.tree.nodes[only].weight == node.weight {
                    todo.push((only, cont.clone(), cont));
                    continue;
                }
            }
            // Pushed last child first, so the first is drawn first.
            for (i, &child) in node.children.iter().enumerate().rev() {
                let last = i + 1 == node.children.len();
                let (branch, more) = if last {
                    ("`-- ", "    ")
                } else {
                    ("|-- ", "|   ")
                };
                todo.push((child, format!("{cont}{branch}"), format!("{cont}{more}")));
            }
        }
        Ok(())
    }

    fn line(&self, w: &mut impl Write, id: usize, lead: &str) -> io::Result<()> {
        let node = &self.tree.nodes[id];
        let name = if node.other {
            OTHER.to_owned()
        } else if self.show_module {
            let module = short_module(self.profile.module_name(&node.func.module));
            let name = sanitize(self.profile.func_name(&node.func));
            // `[kernel.kallsyms]`, `[unknown]`: bracketed already.
            if module.starts_with('[') && module.ends_with(']') {
                format!("{name} {}", sanitize(module))
            } else {
                format!("{name} [{}]", sanitize(module))
            }
        } else {
            sanitize(self.profile.func_name(&node.func)).into_owned()
        };
        writeln!(
            w,
            "  {:>width$}  {:>7}  {:>amount$}  {lead}{name}",
            format!("{:.2}%", percent(node.weight.period, self.of_sym.period)),
            format!(
                "{:.2}%",
                percent(node.weight.period, self.tree.total.period)
            ),
            if self.time {
                ms(node.weight.period)
            } else {
                node.weight.count.to_string()
            },
            width = self.sym_width,
            amount = self.amount_width,
        )
    }
}
