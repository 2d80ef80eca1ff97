//! The TUI's state. Key handling (`input.rs`) only changes it, drawing (`view.rs`) only reads it, so both are
//! tested without a terminal. The rows on screen come from the profile queries the report uses
//! (`top_functions`, `callers_of`, `callees_of`), recomputed when data arrives or a setting changes.

use regex::{Regex, RegexBuilder};

pub use crate::pipeline::live::{Status, Update};
use crate::profile::query::{top_functions, Filter, SortKey, Weight};
use crate::profile::{Meta, Profile, SampleSet};
use crate::render::sanitize;
use crate::render::text::short_module;

pub use super::annotate::{hottest_line, note, AnnotateView, Annotation, Annotator};
pub use super::tree::{TreeRow, TreeView};

/// Decay per refresh: the old samples keep 7/8 of their weight (perf top's factor).
pub const DECAY: (u64, u64) = (7, 8);

/// The column the table is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    SelfPct,
    Total,
    Command,
    Module,
    Symbol,
}

impl SortColumn {
    pub fn next(self) -> SortColumn {
        match self {
            SortColumn::SelfPct => SortColumn::Total,
            SortColumn::Total => SortColumn::Command,
            SortColumn::Command => SortColumn::Module,
            SortColumn::Module => SortColumn::Symbol,
            SortColumn::Symbol => SortColumn::SelfPct,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortColumn::SelfPct => "self",
            SortColumn::Total => "total",
            SortColumn::Command => "command",
            SortColumn::Module => "module",
            SortColumn::Symbol => "symbol",
        }
    }
}

/// A function as the UI names it across refreshes (profile ids change when the decayed profile is rebuilt).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncRef {
    pub name: String,
    /// Module path as recorded.
    pub module: String,
}

/// One row of the main table, already sanitized for the terminal.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    pub self_pct: f64,
    pub total_pct: f64,
    pub comm: String,
    pub module: String,
    pub symbol: String,
    pub func: FuncRef,
    pub kernel: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    Tree(TreeView),
    Annotate(AnnotateView),
}

/// A line being typed at the bottom of the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// `/`: symbol filter.
    Filter,
    /// `t`: command name, pid or tid.
    Limit,
}

/// A restriction to one command, process or thread (`t`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    Comm(String),
    /// A process by name (see [`crate::profile::Profile::process_is`]).
    Process(String),
    Pid(u32),
    Tid(u32),
}

/// Work the event loop must do for the app (the app itself does no I/O).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Annotate(FuncRef),
}

pub struct App {
    pub status: Status,
    /// Every stack seen, interned once, with the sums of the mode shown: decaying (`old * 7/8 + new` each
    /// refresh, as perf top does) or cumulative.
    profile: Profile,
    /// The sums of the other mode, over the same stacks (see [`Profile::swap_samples`]).
    other_sums: SampleSet,
    /// Refreshes received while paused, applied on resume.
    held: Vec<Update>,
    cumulative_mode: bool,
    pub paused: bool,
    /// No more data will come (target ended, or a recorded profile).
    pub ended: bool,
    pub sort: SortColumn,
    pub symbol_filter: Option<String>,
    symbol_regex: Option<Regex>,
    pub limit: Option<Limit>,
    pub module_limit: Option<String>,
    pub hide_kernel: bool,
    pub rows: Vec<TableRow>,
    /// Samples (period) shown in the table's denominator.
    pub total: Weight,
    pub selected: usize,
    /// The selection's rule as rows reorder at each refresh. `false`: it stays on the first row, the hottest
    /// whatever it is (at start, after Home, and after the filters, limits or sort change), so the row
    /// highlighted is the one a user reads as "the top". `true` once the user moved it: it follows the function
    /// (and command) they moved to, so Enter opens what they picked even if it moved since.
    pub follow: bool,
    /// Screens opened over the table (Esc pops one).
    pub screens: Vec<Screen>,
    pub help: bool,
    pub prompt: Option<(Prompt, String)>,
    /// A message in the footer until the next key (bad regex, a refresh that could not be applied), wrapped to
    /// the screen's width.
    pub message: Option<String>,
    pub quit: bool,
    pub requests: Vec<Request>,
    /// Rows a page key moves (set by the view from the terminal height).
    pub page: usize,
}

impl App {
    /// A live app, empty until the first update.
    pub fn live(status: Status) -> App {
        App {
            status,
            profile: Profile::default(),
            other_sums: SampleSet::default(),
            held: Vec::new(),
            cumulative_mode: false,
            paused: false,
            ended: false,
            sort: SortColumn::SelfPct,
            symbol_filter: None,
            symbol_regex: None,
            limit: None,
            module_limit: None,
            hide_kernel: false,
            rows: Vec::new(),
            total: Weight::default(),
            selected: 0,
            follow: false,
            screens: Vec::new(),
            help: false,
            prompt: None,
            message: None,
            quit: false,
            requests: Vec::new(),
            page: 10,
        }
    }

    /// A recorded profile, frozen and cumulative.
    pub fn frozen(profile: Profile, mut status: Status) -> App {
        status.ended.get_or_insert_with(|| "recorded".to_owned());
        let mut app = App::live(status);
        app.profile = profile;
        app.cumulative_mode = true;
        app.ended = true;
        app.refresh();
        app
    }

    /// The profile the screens read, with the sums of the mode shown.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Whether the cumulative sums are shown (else the decaying ones).
    pub fn cumulative_mode(&self) -> bool {
        self.cumulative_mode
    }

    /// Shows the cumulative sums (`true`) or the decaying ones.
    pub fn set_cumulative_mode(&mut self, cumulative: bool) {
        if cumulative != self.cumulative_mode {
            self.profile.swap_samples(&mut self.other_sums);
            self.cumulative_mode = cumulative;
        }
    }

    pub fn meta(&self) -> &Meta {
        &self.profile.meta
    }

    /// Takes one refresh from the sampler. While paused it is held, so the screen stays still.
    pub fn update(&mut self, update: Update) {
        if self.paused {
            self.held.push(update);
            return;
        }
        self.absorb(update);
        self.refresh();
    }

    fn absorb(&mut self, update: Update) {
        let Update { delta, status } = update;
        // While merging, the profile holds the decaying sums and `other_sums` the cumulative ones.
        let cumulative_shown = self.cumulative_mode;
        self.set_cumulative_mode(false);
        // A stack below a hundred-thousandth of the recent total cannot show in a 0.01% column: dropped from
        // the decaying sums (its stack stays interned for the cumulative ones).
        let floor = self.profile.total_period() / 100_000;
        self.profile.scale_samples(DECAY.0, DECAY.1, floor);
        if let Err(e) = self.profile.apply_delta(delta, Some(&mut self.other_sums)) {
            self.message = Some(format!("{e}; restart stacktop top"));
        }
        // The whole run, frozen, once the target ended.
        self.ended |= status.ended.is_some();
        self.set_cumulative_mode(cumulative_shown || self.ended);
        self.status = status;
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused {
            for update in std::mem::take(&mut self.held) {
                self.absorb(update);
            }
            self.refresh();
        }
    }

    pub fn filter(&self) -> Filter {
        let mut filter = Filter {
            hide_kernel: self.hide_kernel,
            ..Filter::default()
        };
        match &self.limit {
            Some(Limit::Comm(c)) => filter.comms.push(c.clone()),
            Some(Limit::Process(p)) => filter.processes.push(p.clone()),
            Some(Limit::Pid(p)) => filter.pids.push(*p),
            Some(Limit::Tid(t)) => filter.tids.push(*t),
            None => {}
        }
        if let Some(m) = &self.module_limit {
            filter.modules.push(m.clone());
        }
        filter
    }

    /// Recomputes the table and the open tree from the current profile and settings. The selection stays on
    /// the first row, or in `follow` mode on the same function while it is listed (else at the same place).
    pub fn refresh(&mut self) {
        let followed = self
            .rows
            .get(self.selected)
            .filter(|_| self.follow)
            .map(|r| (r.func.clone(), r.comm.clone()));
        let filter = self.filter();
        let profile = &self.profile;
        let children = self.sort == SortColumn::Total;
        let top = top_functions(profile, &filter, &SortKey::DEFAULT, children);
        let mut rows: Vec<TableRow> = top
            .rows
            .iter()
            .filter_map(|r| {
                let sym = r.key.sym?;
                let name = profile.func_name(&sym);
                if let Some(re) = &self.symbol_regex {
                    if !re.is_match(name) {
                        return None;
                    }
                }
                let module = profile.module_name(&sym.module);
                Some(TableRow {
                    self_pct: r.self_.percent_of(top.total),
                    total_pct: r.total.percent_of(top.total),
                    comm: sanitize(r.key.comm.map_or("", |c| profile.str(c))).into_owned(),
                    module: sanitize(short_module(module)).into_owned(),
                    symbol: sanitize(name).into_owned(),
                    func: FuncRef {
                        name: name.to_owned(),
                        module: module.to_owned(),
                    },
                    kernel: sym.module.kernel,
                })
            })
            .collect();
        // top_functions sorts hottest first with ties by name; the text columns re-sort stably.
        match self.sort {
            SortColumn::SelfPct | SortColumn::Total => {}
            SortColumn::Command => rows.sort_by(|a, b| a.comm.cmp(&b.comm)),
            SortColumn::Module => rows.sort_by(|a, b| a.module.cmp(&b.module)),
            SortColumn::Symbol => rows.sort_by(|a, b| a.symbol.cmp(&b.symbol)),
        }
        self.total = top.total;
        self.rows = rows;
        let at = match followed {
            Some((func, comm)) => self
                .rows
                .iter()
                .position(|r| r.func == func && r.comm == comm)
                .unwrap_or(self.selected),
            None if self.follow => self.selected,
            None => 0,
        };
        self.selected = at.min(self.rows.len().saturating_sub(1));
        let mut screens = std::mem::take(&mut self.screens);
        for screen in &mut screens {
            if let Screen::Tree(tree) = screen {
                self.fill_tree(tree);
            }
        }
        self.screens = screens;
    }

    pub fn selected_row(&self) -> Option<&TableRow> {
        self.rows.get(self.selected)
    }

    /// Moves the selection to row `at`; `follow` as [`App::follow`] says.
    pub fn select(&mut self, at: usize, follow: bool) {
        self.selected = at.min(self.rows.len().saturating_sub(1));
        self.follow = follow;
    }

    /// Sets the symbol filter: a regular expression (case-insensitive, anywhere in the name), or the literal
    /// text when it is not a valid expression. Empty clears it.
    pub fn set_symbol_filter(&mut self, text: &str) {
        if text.is_empty() {
            self.symbol_filter = None;
            self.symbol_regex = None;
        } else {
            let re = RegexBuilder::new(text)
                .case_insensitive(true)
                .build()
                .or_else(|_| {
                    RegexBuilder::new(&regex::escape(text))
                        .case_insensitive(true)
                        .build()
                });
            match re {
                Ok(re) => {
                    self.symbol_filter = Some(text.to_owned());
                    self.symbol_regex = Some(re);
                }
                Err(e) => self.message = Some(format!("bad filter: {e}")),
            }
        }
        self.select(0, false);
        self.refresh();
    }

    /// Sets the `t` limit from typed text: a number is a process id if some sample has it as pid, else a thread
    /// id; anything else is a thread's name if some sample has it, else a process's name (memcached's threads
    /// are `mc-worker`...). Empty clears it.
    pub fn set_limit(&mut self, text: &str) {
        let text = text.trim();
        self.limit = if text.is_empty() {
            None
        } else if let Ok(n) = text.parse::<u32>() {
            if self.profile().samples.iter().any(|g| g.pid == n) {
                Some(Limit::Pid(n))
            } else {
                Some(Limit::Tid(n))
            }
        } else {
            let profile = self.profile();
            if profile.samples.iter().any(|g| profile.str(g.comm) == text) {
                Some(Limit::Comm(text.to_owned()))
            } else {
                Some(Limit::Process(text.to_owned()))
            }
        };
        self.select(0, false);
        self.refresh();
    }

    /// `d`: limit to the selected row's module, or lift the limit.
    pub fn toggle_module_limit(&mut self) {
        self.module_limit = match (&self.module_limit, self.selected_row()) {
            (Some(_), _) => None,
            (None, Some(row)) => Some(row.func.module.clone()),
            (None, None) => None,
        };
        self.select(0, false);
        self.refresh();
    }
}
