//! The callers/callees screen's state: the function's call tree (`function_tree`, as `report --callers`),
//! flattened to the rows its expanded nodes show. It weighs what the table weighs (the app's view), except
//! a lock's trees (`locks.rs`), which weigh their own view.

use std::collections::HashSet;

use super::app::{App, FuncRef, Screen};
use super::locks::LockTree;
use crate::profile::query::{function_tree, CallTree, Direction, FuncKey, Matcher, Weight};
use crate::profile::Profile;
use crate::render::sanitize;
use crate::render::text::short_module;

/// One visible line of a callers/callees tree.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeRow {
    pub depth: usize,
    pub symbol: String,
    pub module: String,
    /// Percent of the function's samples, and of all samples.
    pub of_function: f64,
    pub of_all: f64,
    /// The node's weight: period, or nanoseconds in a time view.
    pub weight: u64,
    pub has_children: bool,
    pub expanded: bool,
    /// Names from the root to this node: the key of the expanded set.
    pub path: Vec<FuncRef>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TreeView {
    /// The function at the root (a lock's tree: the heaviest of its roots, the probed functions).
    pub func: FuncRef,
    pub direction: Direction,
    pub expanded: HashSet<Vec<FuncRef>>,
    pub rows: Vec<TreeRow>,
    pub selected: usize,
    /// Samples with the function on their stack, percent of all.
    pub function_pct: f64,
    /// Their weight: period, or nanoseconds in a time view.
    pub function_weight: u64,
    /// A lock's waiters or holders: the tree of that lock's waits, rooted at the functions on top of their
    /// stacks, in its own view.
    pub lock: Option<LockTree>,
    /// The user expanded or collapsed a node. Until then a lock's tree opens its chains of single callers by
    /// itself at each refresh (the callers that tell waiters apart are a few frames below the probe).
    pub touched: bool,
}

impl TreeView {
    pub fn new(func: FuncRef, direction: Direction, lock: Option<LockTree>) -> TreeView {
        TreeView {
            expanded: HashSet::from([vec![func.clone()]]),
            func,
            direction,
            rows: Vec::new(),
            selected: 0,
            function_pct: 0.0,
            function_weight: 0,
            lock,
            touched: false,
        }
    }
}

impl App {
    /// Opens the callers tree of the selected row's function.
    pub fn open_tree(&mut self, direction: Direction) {
        let Some(row) = self.selected_row() else {
            return;
        };
        let mut tree = TreeView::new(row.func.clone(), direction, None);
        self.fill_tree(&mut tree);
        self.screens.push(Screen::Tree(tree));
    }

    /// The tree of `tree.func`, flattened to the rows its expanded set shows (a lock's trees are filled by
    /// [`App::fill_lock_view`]).
    pub fn fill_tree(&self, tree: &mut TreeView) {
        let profile = self.profile();
        let mut filter = self.filter();
        // The tree is about one function wherever it is called from: the module limit selects rows only.
        filter.modules.clear();
        let matcher = Matcher::Exact(tree.func.name.clone());
        let mut calltree = function_tree(profile, &filter, &matcher, tree.direction);
        // Only the function's own module: a same-named static function elsewhere is another function.
        calltree
            .roots
            .retain(|&r| profile.module_name(&calltree.nodes[r].func.module) == tree.func.module);
        show(profile, &calltree, tree);
    }

    pub fn tree_mut(&mut self) -> Option<&mut TreeView> {
        match self.screens.last_mut() {
            Some(Screen::Tree(t)) => Some(t),
            Some(Screen::Lock(lock)) => Some(lock.focused_mut()),
            _ => None,
        }
    }

    /// Refills the open tree after its expanded set or direction changed.
    pub fn refill_tree(&mut self) {
        match self.screens.pop() {
            Some(Screen::Tree(mut tree)) => {
                self.fill_tree(&mut tree);
                self.screens.push(Screen::Tree(tree));
            }
            Some(Screen::Lock(mut lock)) => {
                self.fill_lock_view(&mut lock);
                self.screens.push(Screen::Lock(lock));
            }
            Some(other) => self.screens.push(other),
            None => {}
        }
    }
}

/// Makes `tree`'s rows from `calltree`: its percentages, and the rows its expanded set shows, the selection
/// kept on the same path.
pub(super) fn show(profile: &Profile, calltree: &CallTree, tree: &mut TreeView) {
    let of_function = calltree.roots_weight();
    tree.function_pct = of_function.percent_of(calltree.total);
    tree.function_weight = of_function.period;
    let selected_path = tree.rows.get(tree.selected).map(|r| r.path.clone());
    let mut rows = Vec::new();
    for &root in &calltree.roots {
        flatten(
            profile,
            calltree,
            root,
            0,
            &mut Vec::new(),
            &tree.expanded,
            of_function,
            &mut rows,
        );
    }
    tree.rows = rows;
    tree.selected = selected_path
        .and_then(|p| tree.rows.iter().position(|r| r.path == p))
        .unwrap_or(tree.selected)
        .min(tree.rows.len().saturating_sub(1));
}

/// The paths to expand so that each root shows its callers down its chain of single children, and the
/// children of the first node with several.
pub(super) fn single_chains(profile: &Profile, calltree: &CallTree) -> HashSet<Vec<FuncRef>> {
    let mut expanded = HashSet::new();
    for &root in &calltree.roots {
        let mut node = root;
        let mut path = vec![func_ref(profile, &calltree.nodes[node].func, false)];
        loop {
            expanded.insert(path.clone());
            match calltree.nodes[node].children.as_slice() {
                &[only] => {
                    node = only;
                    let n = &calltree.nodes[node];
                    path.push(func_ref(profile, &n.func, n.other));
                }
                _ => break,
            }
        }
    }
    expanded
}

#[allow(clippy::too_many_arguments)]
fn flatten(
    profile: &Profile,
    tree: &CallTree,
    id: usize,
    depth: usize,
    path: &mut Vec<FuncRef>,
    expanded: &HashSet<Vec<FuncRef>>,
    of_function: Weight,
    out: &mut Vec<TreeRow>,
) {
    let node = &tree.nodes[id];
    let func = func_ref(profile, &node.func, node.other);
    path.push(func.clone());
    let open = expanded.contains(path);
    out.push(TreeRow {
        depth,
        symbol: sanitize(&func.name).into_owned(),
        module: sanitize(short_module(&func.module)).into_owned(),
        of_function: node.weight.percent_of(of_function),
        of_all: node.weight.percent_of(tree.total),
        weight: node.weight.period,
        has_children: !node.children.is_empty(),
        expanded: open,
        path: path.clone(),
    });
    if open {
        for &child in &node.children {
            flatten(
                profile,
                tree,
                child,
                depth + 1,
                path,
                expanded,
                of_function,
                out,
            );
        }
    }
    path.pop();
}

pub(super) fn func_ref(profile: &Profile, key: &FuncKey, other: bool) -> FuncRef {
    if other {
        return FuncRef {
            name: crate::profile::query::OTHER.to_owned(),
            module: String::new(),
        };
    }
    FuncRef {
        name: profile.func_name(key).to_owned(),
        module: profile.module_name(&key.module).to_owned(),
    }
}
