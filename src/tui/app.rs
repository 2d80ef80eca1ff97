//! The TUI's state. Key handling (`input.rs`) only changes it, drawing (`view.rs`) only reads it, so both are
//! tested without a terminal. The rows on screen come from the profile queries the report uses
//! (`top_functions`, `callers_of`, `callees_of`), recomputed when data arrives or a setting changes.
//!
//! What is weighed (`w`, `--weight`: CPU samples, off-CPU time or both) is a projection: the sums keep every
//! value, and the profile the screens read holds a copy of the shown sums projected onto the view
//! ([`Profile::weigh`], as the report and the flamegraph weigh), made again when the sums or the view change.
//! The locks screens (`locks.rs`) read the sums themselves, and their trees weigh views of their own.

use regex::{Regex, RegexBuilder};

pub use crate::pipeline::live::{Status, Update};
use crate::profile::query::{top_functions, Filter, SortKey, Weight};
use crate::profile::{Meta, Profile, SampleSet, Values, Weigh};
use crate::render::sanitize;
use crate::render::text::short_module;

pub use super::annotate::{hottest_line, note, AnnotateView, Annotation, Annotator};
pub use super::locks::{LockSort, LockTableRow, LockTree, LockView, LocksView, Side};
pub use super::tree::{TreeRow, TreeView};

/// Decay per refresh: the old samples keep 7/8 of their weight (perf top's factor, at its pace with the
/// default `--delay` of 2 s).
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
    /// The function's self and total weight in the view: the period of its CPU samples, or nanoseconds in a
    /// time view (off-CPU, wall).
    pub self_weight: u64,
    pub total_weight: u64,
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
    /// The locks table (`L`).
    Locks(LocksView),
    /// A lock's waiters and holders.
    Lock(LockView),
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
    /// Every stack seen, interned once. Its sample groups are the shown sums projected onto `view`: what every
    /// screen (and the annotator) reads.
    pub(super) profile: Profile,
    /// The sums of the mode shown, with every value (CPU and off-CPU), over the profile's stacks: decaying
    /// (`old * 7/8 + new` each refresh, as perf top does) or cumulative.
    pub(super) sums: SampleSet,
    /// The sums of the other mode, over the same stacks (see [`Profile::swap_samples`]).
    other_sums: SampleSet,
    /// What the screens weigh.
    view: Weigh,
    /// Every value of the shown sums, for the header.
    pub totals: Values,
    /// Off-CPU time has been seen in this session (the decaying sums may lose it again).
    off_cpu_seen: bool,
    /// Lock waits have been seen in this session.
    pub(super) locks_seen: bool,
    /// A recorded profile (`top -i`), not a live session.
    pub(super) recorded: bool,
    /// Whether the session records off-CPU time and lock waits is known: a recorded profile, or a live one's
    /// first update has come (its profile's `meta.off_cpu` and `meta.locks` say).
    pub(super) informed: bool,
    /// The shown sums projected onto the lock views a lock's screen weighs (other than `view`), made when
    /// first needed and dropped when the sums change.
    pub(super) lock_sets: Vec<(Weigh, SampleSet)>,
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
    /// The locks table, whichever screen is open (empty without lock recording).
    pub lock_rows: Vec<LockTableRow>,
    pub lock_sort: LockSort,
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
            sums: SampleSet::default(),
            other_sums: SampleSet::default(),
            view: Weigh::Cpu,
            totals: Values::default(),
            off_cpu_seen: false,
            locks_seen: false,
            recorded: false,
            informed: false,
            lock_sets: Vec::new(),
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
            lock_rows: Vec::new(),
            lock_sort: LockSort::default(),
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
        app.profile.swap_samples(&mut app.sums);
        app.cumulative_mode = true;
        app.ended = true;
        app.recorded = true;
        app.informed = true;
        app.project();
        app.refresh();
        app
    }

    /// The profile the screens read: the sums of the mode shown, weighed in the view.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// What the screens weigh.
    pub fn view(&self) -> Weigh {
        self.view
    }

    /// Whether the session has off-CPU time to show: it records switch-outs, or some came.
    pub fn off_cpu_available(&self) -> bool {
        self.off_cpu_seen || self.profile.meta.off_cpu.enabled
    }

    /// The view to start with (`--weight`). A view of off-CPU time or lock waits in a session without any
    /// falls back to CPU with a message as soon as that is known (a live session's first update).
    pub fn start_view(&mut self, view: Weigh) {
        self.view = view;
        self.project();
        self.refresh();
    }

    /// Why the session has nothing to show in `view` (and how to get it), once that is known.
    fn unavailable(&self, view: Weigh) -> Option<&'static str> {
        if !self.informed {
            None
        } else if view.is_lock() {
            (!self.locks_available()).then(|| self.no_locks())
        } else if view.is_time() {
            (!self.off_cpu_available()).then(|| self.no_off_cpu())
        } else {
            None
        }
    }

    /// `w`: the next view the session has, in the order CPU, off-CPU, wall, lock wait, lock hold (blocked and
    /// runnable go on to wall). With none but CPU, a message says how to record off-CPU time.
    pub fn next_view(&mut self) {
        const CYCLE: [Weigh; 5] = [
            Weigh::Cpu,
            Weigh::OffCpu,
            Weigh::Wall,
            Weigh::LockWait,
            Weigh::LockHold,
        ];
        let from = match self.view {
            Weigh::Blocked | Weigh::Runnable => Weigh::OffCpu,
            view => view,
        };
        let at = CYCLE.iter().position(|&w| w == from).unwrap_or(0);
        let next = (1..=CYCLE.len())
            .map(|i| CYCLE[(at + i) % CYCLE.len()])
            .find(|&w| self.unavailable(w).is_none())
            .unwrap_or(Weigh::Cpu);
        if next == Weigh::Cpu && self.view == Weigh::Cpu {
            self.set_view(Weigh::OffCpu);
        } else {
            self.set_view(next);
        }
    }

    /// Any view (`w`): the table from the top, the open trees and annotations weighed anew. A view of
    /// off-CPU time or lock waits in a session that records none is refused with a message saying how to
    /// record it.
    pub fn set_view(&mut self, view: Weigh) {
        if let Some(why) = self.unavailable(view) {
            self.message = Some(why.to_owned());
            return;
        }
        if view == self.view {
            return;
        }
        self.view = view;
        self.project();
        self.select(0, false);
        self.refresh();
        for screen in &mut self.screens {
            if let Screen::Annotate(annotate) = screen {
                annotate.result = None;
                annotate.selected = 0;
                self.requests.push(Request::Annotate(annotate.func.clone()));
            }
        }
    }

    /// Why there is no off-CPU view, and how to get one.
    fn no_off_cpu(&self) -> &'static str {
        if self.recorded {
            "no off-CPU time in this profile: record with --off-cpu to weigh off-CPU or wall time"
        } else {
            "off-CPU recording is off: start top with --off-cpu to weigh off-CPU or wall time"
        }
    }

    /// Makes the profile's sample groups the shown sums weighed in the view, and sums the header's totals.
    fn project(&mut self) {
        let mut copy = self.sums.clone();
        self.profile.swap_samples(&mut copy);
        self.totals = self.profile.totals();
        self.lock_sets.clear();
        let t = self.totals;
        let off_cpu = t.switches > 0 || t.blocked > 0 || t.runnable > 0;
        let locks =
            t.contentions > 0 || t.delay > 0 || t.caused_contentions > 0 || t.caused_delay > 0;
        self.off_cpu_seen |= off_cpu;
        self.locks_seen |= locks;
        if let Some(why) = self.unavailable(self.view) {
            self.view = Weigh::Cpu;
            self.tell(why);
        }
        // Locks screens opened before the first update in a session without lock recording.
        let lock_screen = |s: &Screen| matches!(s, Screen::Locks(_) | Screen::Lock(_));
        if self.informed && !self.locks_available() && self.screens.iter().any(lock_screen) {
            self.screens.retain(|s| !lock_screen(s));
            self.tell(self.no_locks());
        }
        // Without off-CPU or lock values the CPU projection is the copy itself.
        if off_cpu || locks || self.view != Weigh::Cpu {
            self.profile.weigh(self.view, false);
        }
    }

    /// Adds `why` to the footer's message.
    fn tell(&mut self, why: &str) {
        self.message = Some(match self.message.take() {
            Some(earlier) => format!("{earlier}; {why}"),
            None => why.to_owned(),
        });
    }

    /// Whether the cumulative sums are shown (else the decaying ones).
    pub fn cumulative_mode(&self) -> bool {
        self.cumulative_mode
    }

    /// Shows the cumulative sums (`true`) or the decaying ones.
    pub fn set_cumulative_mode(&mut self, cumulative: bool) {
        if cumulative != self.cumulative_mode {
            std::mem::swap(&mut self.sums, &mut self.other_sums);
            self.cumulative_mode = cumulative;
            self.project();
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
        // While merging, the profile holds the decaying sums (its projection waits in `sums`) and
        // `other_sums` the cumulative ones.
        if self.cumulative_mode {
            std::mem::swap(&mut self.sums, &mut self.other_sums);
        }
        self.profile.swap_samples(&mut self.sums);
        // A stack below a hundred-thousandth of the recent total of each kind cannot show in a 0.01% column:
        // dropped from the decaying sums (its stack stays interned for the cumulative ones).
        let recent = self.profile.totals();
        let floor = Values {
            period: recent.period / 100_000,
            blocked: recent.blocked / 100_000,
            runnable: recent.runnable / 100_000,
            delay: recent.delay / 100_000,
            caused_delay: recent.caused_delay / 100_000,
            ..Values::default()
        };
        self.profile.scale_values(DECAY.0, DECAY.1, floor);
        if let Err(e) = self.profile.apply_delta(delta, Some(&mut self.other_sums)) {
            self.message = Some(format!("{e}; restart stacktop top"));
        }
        self.profile.swap_samples(&mut self.sums);
        // The whole run, frozen, once the target ended.
        self.ended |= status.ended.is_some();
        self.cumulative_mode |= self.ended;
        if self.cumulative_mode {
            std::mem::swap(&mut self.sums, &mut self.other_sums);
        }
        self.status = status;
        self.informed = true;
        self.project();
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
                    self_weight: r.self_.period,
                    total_weight: r.total.period,
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
        self.make_lock_rows();
        let mut screens = std::mem::take(&mut self.screens);
        for screen in &mut screens {
            match screen {
                Screen::Tree(tree) => self.fill_tree(tree),
                Screen::Locks(view) => self.follow_lock(view),
                Screen::Lock(view) => self.fill_lock_view(view),
                Screen::Annotate(_) => {}
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
            // The sums with every value: a thread that only waited is as much a thread in the CPU view.
            if self.sums.groups().iter().any(|g| g.pid == n) {
                Some(Limit::Pid(n))
            } else {
                Some(Limit::Tid(n))
            }
        } else {
            let profile = self.profile();
            if self
                .sums
                .groups()
                .iter()
                .any(|g| profile.str(g.comm) == text)
            {
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
