//! Text helpers shared by the text outputs (and the TUI): sanitizing untrusted names, the metadata header.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::profile::query::Weight;
use crate::profile::{Meta, ModuleUnwind, Profile, Values, Weigh};

/// Makes a name from a binary safe to print: control characters (ESC, newline, DEL, C1 controls...) become
/// visible escapes (`\x1b`, `\n`, `\t`, `\r`, `\x7f`, `\u{9b}`), and so do the bidirectional overrides
/// that can make text display in another order than it reads (`\u{202e}`) and the two noncharacters XML 1.0
/// forbids (`\u{fffe}`, `\u{ffff}`); a backslash becomes `\\` so escapes cannot be forged. Everything else,
/// including non-ASCII text, is kept. Borrowed when nothing changes.
///
/// What comes out is inert on a terminal and valid XML 1.0 character data (once `&` and `<` are escaped), for
/// every input: the SVG and the terminal outputs can share it.
pub fn sanitize(name: &str) -> Cow<'_, str> {
    escape(name, true)
}

/// Like [`sanitize`], for a whole message (an error with its cause chain) rather than one name: a backslash
/// stays as it is, so paths and regular expressions read as typed; what a name in it could do to the terminal
/// is undone all the same. Newlines are escaped too, so the message stays on one line.
pub fn sanitize_message(message: &str) -> Cow<'_, str> {
    escape(message, false)
}

fn escape(text: &str, backslash: bool) -> Cow<'_, str> {
    let changes = |c: char| needs_escape(c) || (backslash && c == '\\');
    if !text.chars().any(changes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' if backslash => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{fffe}' | '\u{ffff}')
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// The file name of a module path, as perf's "Shared Object" column shows it (`[kernel.kallsyms]` as is).
pub fn short_module(path: &str) -> &str {
    if path.starts_with('[') {
        return path;
    }
    path.rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(path)
}

/// What was recorded and how, as `#` comment lines: event, frequency, samples, lost and throttled samples,
/// unwinding mode and notes. `shown` is the weight of the samples that passed the filters.
pub fn write_header(w: &mut impl Write, profile: &Profile, shown: Weight) -> io::Result<()> {
    let meta = &profile.meta;
    let event = if meta.event.is_empty() {
        "unknown"
    } else {
        meta.event.as_str()
    };
    // What the view weighs (`all`), and the CPU samples whatever the view (`cpu`).
    let all = Weight {
        period: profile.total_period(),
        count: profile.total_count(),
    };
    let view = profile.weighed.as_ref().map_or(Weigh::Cpu, |w| w.by);
    let totals = profile
        .weighed
        .as_ref()
        .map_or_else(|| profile.totals(), |w| w.totals);
    writeln!(w, "#")?;
    if meta.frequency > 0 {
        writeln!(
            w,
            "# Samples: {} of event '{}' at {} Hz",
            totals.count,
            sanitize(event),
            meta.frequency
        )?;
    } else {
        writeln!(
            w,
            "# Samples: {} of event '{}'",
            totals.count,
            sanitize(event)
        )?;
    }
    let unit = if meta.period_unit.is_empty() {
        "events"
    } else {
        meta.period_unit.as_str()
    };
    writeln!(
        w,
        "# Event count (approx.): {} {}",
        totals.period,
        sanitize(unit)
    )?;
    write_off_cpu(w, meta, &totals, unit == "nanoseconds")?;
    write_lock_summary(w, meta, &totals)?;
    if view.is_time() {
        writeln!(
            w,
            "# Weight: {view} ({}); times in ms, percentages of {} ms",
            view_description(view),
            ms(all.period)
        )?;
    }
    writeln!(w, "# Lost samples: {}", meta.lost)?;
    writeln!(w, "# Throttled: {}", meta.throttled)?;
    let mode = if meta.call_graph.is_empty() {
        "unknown"
    } else {
        meta.call_graph.as_str()
    };
    writeln!(w, "# Unwinding: {}", sanitize(mode))?;
    if !meta.command_line.is_empty() {
        writeln!(w, "# Command line: {}", sanitize(&meta.command_line))?;
    }
    for note in &meta.notes {
        writeln!(w, "# Note: {}", sanitize(note))?;
    }
    write_unwind_quality(w, profile)?;
    if shown != all {
        if view.is_time() {
            writeln!(
                w,
                "# Shown after filters: {} {}, {} ms",
                shown.count,
                view.count_noun(),
                ms(shown.period)
            )?;
        } else {
            writeln!(
                w,
                "# Shown after filters: {} samples, event count {}",
                shown.count, shown.period
            )?;
        }
    }
    writeln!(w, "#")
}

/// Nanoseconds as milliseconds, one decimal.
pub fn ms(nanos: u64) -> String {
    format!("{:.1}", nanos as f64 / 1e6)
}

/// What a view weighs, in words.
pub fn view_description(view: Weigh) -> &'static str {
    match view {
        Weigh::Cpu => "CPU samples",
        Weigh::OffCpu => "time off CPU, blocked and runnable",
        Weigh::Blocked => "time off CPU after giving it up: locks, I/O, sleeps",
        Weigh::Runnable => "time off CPU after a preemption, waiting for a CPU",
        Weigh::Wall => "CPU and off-CPU time",
        Weigh::LockWait => "contended lock waits, at the waiters' stacks",
        Weigh::LockHold => {
            "contended lock waits, at the stacks that released the lock to the waiters"
        }
    }
}

/// The lock waits' totals, what was probed, and the waits whose ends or holders were not seen, when lock
/// contention was recorded (`--locks`).
fn write_lock_summary(w: &mut impl Write, meta: &Meta, totals: &Values) -> io::Result<()> {
    let locks = &meta.locks;
    if !locks.enabled && totals.contentions == 0 && totals.caused_contentions == 0 {
        return Ok(());
    }
    writeln!(
        w,
        "# Locks: {} contended waits, {} ms waited; {} ms charged to the holders that released the lock",
        totals.contentions,
        ms(totals.delay),
        ms(totals.caused_delay)
    )?;
    for probe in &locks.probes {
        writeln!(w, "# Lock probes: {}", sanitize(probe))?;
    }
    let mut unseen = Vec::new();
    if locks.open_at_stop > 0 {
        unseen.push(format!(
            "{} still waiting at the stop (charged up to it)",
            locks.open_at_stop
        ));
    }
    if locks.unmatched_ends > 0 {
        unseen.push(format!(
            "{} ends whose start was not seen (not charged)",
            locks.unmatched_ends
        ));
    }
    if locks.no_holder > 0 {
        unseen.push(format!(
            "{} with no release seen (charged to no holder)",
            locks.no_holder
        ));
    }
    if !unseen.is_empty() {
        writeln!(w, "# Lock waits: {}", unseen.join("; "))?;
    }
    Ok(())
}

/// The off-CPU totals and the intervals whose ends were not seen as such, when off-CPU time was recorded.
fn write_off_cpu(w: &mut impl Write, meta: &Meta, totals: &Values, clock: bool) -> io::Result<()> {
    let off = &meta.off_cpu;
    if !off.enabled && totals.switches == 0 && totals.blocked == 0 && totals.runnable == 0 {
        return Ok(());
    }
    let mut line = format!(
        "# Off-CPU: {} switch-outs; blocked {} ms, runnable {} ms",
        totals.switches,
        ms(totals.blocked),
        ms(totals.runnable)
    );
    if clock {
        let wall = totals
            .period
            .saturating_add(totals.blocked)
            .saturating_add(totals.runnable);
        line.push_str(&format!(
            "; CPU {} ms; wall {} ms",
            ms(totals.period),
            ms(wall)
        ));
    }
    writeln!(w, "{line}")?;
    let mut ends = Vec::new();
    if off.open_at_stop > 0 {
        ends.push(format!(
            "{} ended at the recording's stop",
            off.open_at_stop
        ));
    }
    if off.ended_at_exit > 0 {
        ends.push(format!("{} at their thread's exit", off.ended_at_exit));
    }
    if off.blocked_at_attach > 0 {
        ends.push(format!(
            "{} began when the recording attached (the thread was off CPU already)",
            off.blocked_at_attach
        ));
    }
    if off.unknown_length > 0 {
        ends.push(format!(
            "{} of unknown length not counted (switch records lost)",
            off.unknown_length
        ));
    }
    if !ends.is_empty() {
        writeln!(w, "# Off-CPU intervals: {}", ends.join("; "))?;
    }
    Ok(())
}

/// Per thread: CPU, blocked, runnable and wall time (CPU as samples when the event is not a clock), for the
/// report sorted by thread.
pub fn write_threads(w: &mut impl Write, profile: &Profile) -> io::Result<()> {
    let Some(weighed) = &profile.weighed else {
        return Ok(());
    };
    let locks = profile.meta.locks.enabled
        || weighed.totals.contentions > 0
        || weighed.totals.caused_contentions > 0;
    if !profile.meta.off_cpu.enabled && weighed.totals.switches == 0 && !locks {
        return Ok(());
    }
    let clock = profile.meta.period_unit == "nanoseconds";
    // With lock waits, two more columns: the time each thread waited for locks, and the wait it caused others.
    let lock_titles = if locks {
        format!(" {:>12} {:>12}", "lock wait", "lock caused")
    } else {
        String::new()
    };
    writeln!(
        w,
        "# Per thread (ms): {:>12} {:>12} {:>12} {:>12} {:>9} {:>11}{lock_titles}  pid/tid command",
        if clock { "CPU" } else { "CPU samples" },
        "blocked",
        "runnable",
        "wall",
        "samples",
        "switch-outs"
    )?;
    let mut threads: Vec<_> = weighed.threads.iter().collect();
    let wall = |v: &Values| {
        v.period
            .saturating_add(v.blocked)
            .saturating_add(v.runnable)
    };
    threads.sort_by(|a, b| wall(&b.1 .1).cmp(&wall(&a.1 .1)).then(a.0.cmp(b.0)));
    for ((pid, tid), (comm, v)) in threads {
        let cpu = if clock {
            ms(v.period)
        } else {
            v.count.to_string()
        };
        let wall = if clock { ms(wall(v)) } else { "-".to_owned() };
        let lock_values = if locks {
            format!(" {:>12} {:>12}", ms(v.delay), ms(v.caused_delay))
        } else {
            String::new()
        };
        writeln!(
            w,
            "# {:>16} {cpu:>12} {:>12} {:>12} {wall:>12} {:>9} {:>11}{lock_values}  {pid}/{tid} {}",
            "",
            ms(v.blocked),
            ms(v.runnable),
            v.count,
            v.switches,
            sanitize(profile.str(*comm))
        )?;
    }
    writeln!(w, "#")
}

/// The continuation's line: how many walks that ran off their copy it completed, and why the others not.
fn write_continuation(w: &mut impl Write, c: &crate::profile::ContinuationStats) -> io::Result<()> {
    if c.ran_off == 0 {
        return Ok(());
    }
    let not = c.ran_off.saturating_sub(c.completed());
    let why = match c.reasons() {
        r if r.is_empty() => r,
        r => format!(": {r}"),
    };
    // Recordings made before the thread cache was taken out say how many of its stacks they hold.
    let cached = match c.from_cache {
        0 => String::new(),
        n => format!(
            " ({} from memory, {n} from the thread cache)",
            c.from_memory
        ),
    };
    writeln!(
        w,
        "# Unwind continuation: {} of {} walks that ran off their stack copy were continued in the live \
         process{cached}; {not} {} not{why}",
        c.completed(),
        c.ran_off,
        if not == 1 { "was" } else { "were" }
    )?;
    for (pid, why, n) in c.processes.iter().take(5) {
        writeln!(
            w,
            "#   continuation off for pid {pid}: {} ({n} walk{})",
            why.describe(),
            if *n == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}

/// Removes trailing spaces (graph drawing pads lines; golden files and terminals do not need it).
pub(crate) fn trim_end(line: &str) -> &str {
    line.trim_end_matches(' ')
}

/// The unwind-quality summary, only when a problem was found: so a user knows when a caller tree cannot be
/// trusted, and why.
fn write_unwind_quality(w: &mut impl Write, profile: &Profile) -> io::Result<()> {
    let meta = &profile.meta;
    let short = meta.short_copies;
    if meta.truncated == 0
        && meta.fell_back == 0
        && meta.frameless == 0
        && meta.unwind_modules.is_empty()
        && short.samples == 0
        && meta.continuation.ran_off == 0
    {
        return Ok(());
    }
    let samples = profile.total_count().max(1);
    let pct = |n: u64| n as f64 * 100.0 / samples as f64;
    if meta.truncated > 0 {
        writeln!(
            w,
            "# Unwind quality: {} samples ({:.1}%) have stacks cut before their root (they end in [truncated]); \
             their callers are missing",
            meta.truncated,
            pct(meta.truncated)
        )?;
    }
    if meta.fell_back > 0 {
        writeln!(
            w,
            "# Unwind quality: {} samples ({:.1}%) could not be joined to the frame-pointer chain; only their \
             table-walked frames were kept",
            meta.fell_back,
            pct(meta.fell_back)
        )?;
    }
    // Two binaries with one file name (a program and its copy elsewhere) are told apart by their paths.
    let short_count = |short: &str| {
        meta.unwind_modules
            .iter()
            .filter(|m| short_module(&m.path) == short)
            .count()
    };
    let shown_name = |m: &ModuleUnwind| {
        let short = short_module(&m.path);
        let shown = if short_count(short) > 1 {
            m.path.as_str()
        } else {
            short
        };
        shown.to_owned()
    };
    if let Some(warning) = frameless_warning(meta, profile.total_count()) {
        writeln!(
            w,
            "# Unwind quality: {} samples ({:.1}%) have frame-pointer stacks through code without frame \
             pointers, where a function's caller is skipped or the callers above it are garbage \
             ([unknown] [unmapped]+0x...):",
            meta.frameless,
            pct(meta.frameless)
        )?;
        for m in &warning.modules {
            writeln!(
                w,
                "#   {}: {} samples ({:.1}%)",
                sanitize(&shown_name(m)),
                m.frameless,
                pct(m.frameless)
            )?;
        }
        if warning.others > 0 {
            writeln!(
                w,
                "#   other code: {} samples ({:.1}%)",
                warning.others,
                pct(warning.others)
            )?;
        }
        writeln!(w, "#   {}", warning.advice.long())?;
    }
    for m in meta
        .unwind_modules
        .iter()
        .filter(|m| m.fell_back + m.broken > 0)
    {
        let shown = shown_name(m);
        let shown = shown.as_str();
        let lacks = match (m.frame_pointers, m.tables) {
            (true, true) => "has frame pointers and unwind tables",
            (false, true) => "no frame pointers, has unwind tables",
            (true, false) => "frame pointers, no unwind tables",
            (false, false) => "no frame pointers, no unwind tables",
        };
        writeln!(
            w,
            "#   {}: {lacks}; walks stopped inside it in {} samples ({} fell back)",
            sanitize(shown),
            m.fell_back + m.broken,
            m.fell_back
        )?;
    }
    if short.samples > 0 {
        let past = if meta.continuation.ran_off > 0 {
            "; the continuation in live memory reads past it (below)"
        } else {
            ""
        };
        let copied = if short.min_copied == short.max_copied {
            format!("{}", short.min_copied)
        } else {
            format!("{} to {}", short.min_copied, short.max_copied)
        };
        writeln!(
            w,
            "# Unwind quality: {} samples ({:.1}%) were cut where the kernel copied {copied} of the {} bytes \
             of stack asked: it stops at a stack page it cannot read in the sampling interrupt (one never \
             touched, as under a large stack buffer), so a bigger copy would not help{past}",
            short.samples,
            pct(short.samples),
            short.asked
        )?;
    }
    write_continuation(w, &meta.continuation)?;
    // A bigger copy helps only where the kernel copied all it was asked for.
    if meta.fell_back > 0 && short.samples == 0 {
        writeln!(
            w,
            "#   A frameless function in the middle of a stack (a callback called through qsort, say) hides \
             its callers from frame pointers; a larger stack copy (--call-graph hybrid,BYTES) or dwarf mode \
             walks it with the tables"
        )?;
    }
    Ok(())
}

/// The warning about frame-pointer stacks through code without frame pointers: the modules charged, worst
/// first, and what to do.
#[derive(Debug)]
pub struct FramelessWarning<'a> {
    /// Percent of all samples.
    pub percent: f64,
    /// Modules charged with at least [`FRAMELESS_MODULE_PERCENT`] of the samples, worst first.
    pub modules: Vec<&'a ModuleUnwind>,
    /// Samples charged to the other modules, or to none (garbage above JIT code, say).
    pub others: u64,
    pub advice: Advice,
}

/// What to record with instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// stacktop's fp mode.
    Stacktop,
    /// `perf record -g` (the recording's command line is perf's).
    Perf,
}

impl Advice {
    pub fn long(self) -> &'static str {
        match self {
            Advice::Stacktop => {
                "For the right callers record with --call-graph hybrid (the default) or dwarf: they walk such \
                 code with its unwind tables"
            }
            Advice::Perf => {
                "For the right callers record with perf record --call-graph dwarf, or with stacktop record \
                 (--call-graph hybrid, its default): they walk such code with its unwind tables"
            }
        }
    }

    fn short(self) -> &'static str {
        match self {
            Advice::Stacktop => "use --call-graph hybrid or dwarf",
            Advice::Perf => "use perf record --call-graph dwarf",
        }
    }
}

impl FramelessWarning<'_> {
    /// The warning in one line, for the row under the flamegraph and `top`'s header.
    pub fn one_line(&self) -> String {
        let mut names: Vec<&str> = self
            .modules
            .iter()
            .take(3)
            .map(|m| short_module(&m.path))
            .collect();
        if self.modules.len() > 3 {
            names.push("...");
        }
        let names = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", sanitize(&names.join(", ")))
        };
        format!(
            "{:.1}% of stacks cross code without frame pointers{names}: callers wrong; {}",
            self.percent,
            self.advice.short()
        )
    }
}

/// Below this share of all samples, stacks through code without frame pointers earn no warning: a program
/// built with frame pointers still meets a little code without them (the dynamic loader at its start, libc's
/// system-call wrappers), and nearly all its stacks are right.
pub const FRAMELESS_PERCENT: f64 = 1.0;

/// The least share of all samples for a module to be named in the warning.
pub const FRAMELESS_MODULE_PERCENT: f64 = 0.5;

/// The warning about `meta`'s frame-pointer stacks through code without frame pointers, out of `samples`
/// samples, when it is at least [`FRAMELESS_PERCENT`] of them.
pub fn frameless_warning(meta: &Meta, samples: u64) -> Option<FramelessWarning<'_>> {
    let samples = samples.max(1) as f64;
    let share = |n: u64| n as f64 * 100.0 / samples;
    if meta.frameless == 0 || share(meta.frameless) < FRAMELESS_PERCENT {
        return None;
    }
    let mut modules: Vec<&ModuleUnwind> = meta
        .unwind_modules
        .iter()
        .filter(|m| m.frameless > 0 && share(m.frameless) >= FRAMELESS_MODULE_PERCENT)
        .collect();
    modules.sort_by(|a, b| b.frameless.cmp(&a.frameless).then(a.path.cmp(&b.path)));
    let named: u64 = modules.iter().map(|m| m.frameless).sum();
    // perf's chains are the kernel's, as fp mode's are: the fix is perf's own dwarf mode, or stacktop.
    let by_perf = meta
        .command_line
        .split_whitespace()
        .next()
        .is_some_and(|program| short_module(program) == "perf");
    Some(FramelessWarning {
        percent: share(meta.frameless),
        modules,
        others: meta.frameless.saturating_sub(named),
        advice: if by_perf {
            Advice::Perf
        } else {
            Advice::Stacktop
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwind_quality_is_summarized_only_when_something_went_wrong() {
        let mut profile = Profile::new(Meta::default());
        let comm = profile.intern("app");
        profile.add_sample(&[], 1, 1, comm, 200, 200);
        let header = |p: &Profile| {
            let mut out = Vec::new();
            write_header(
                &mut out,
                p,
                Weight {
                    period: 200,
                    count: 200,
                },
            )
            .unwrap_or_default();
            String::from_utf8_lossy(&out).into_owned()
        };
        assert!(!header(&profile).contains("Unwind quality"));
        profile.meta.truncated = 10;
        profile.meta.fell_back = 4;
        profile.meta.unwind_modules = vec![ModuleUnwind {
            path: "/usr/lib/libjit\x1b.so".into(),
            frame_pointers: false,
            tables: false,
            fell_back: 4,
            broken: 1,
            frameless: 0,
        }];
        let text = header(&profile);
        assert!(text.contains("10 samples (5.0%) have stacks cut"), "{text}");
        assert!(
            text.contains("4 samples (2.0%) could not be joined"),
            "{text}"
        );
        assert!(
            text.contains("libjit\\x1b.so: no frame pointers, no unwind tables; walks stopped inside it in 5 samples (4 fell back)"),
            "{text}"
        );
        assert!(text.contains("qsort"), "{text}");
        // Two modules with one file name: each by its path.
        let twin = |path: &str| ModuleUnwind {
            path: path.into(),
            frame_pointers: true,
            tables: true,
            fell_back: 1,
            broken: 0,
            frameless: 0,
        };
        profile.meta.unwind_modules = vec![twin("/opt/a/server"), twin("/opt/b/server")];
        let text = header(&profile);
        assert!(
            text.contains("#   /opt/a/server: ") && text.contains("#   /opt/b/server: "),
            "{text}"
        );
    }

    fn frameless_module(path: &str, frameless: u64) -> ModuleUnwind {
        ModuleUnwind {
            path: path.into(),
            frame_pointers: false,
            tables: true,
            fell_back: 0,
            broken: 0,
            frameless,
        }
    }

    /// A profile of 1000 samples in fp mode whose chains went wrong in `modules`' code.
    fn fp_profile(command_line: &str, modules: &[(&str, u64)]) -> Profile {
        let mut profile = Profile::new(Meta {
            call_graph: "fp".into(),
            command_line: command_line.into(),
            frameless: modules.iter().map(|m| m.1).sum(),
            unwind_modules: modules
                .iter()
                .map(|&(path, n)| frameless_module(path, n))
                .collect(),
            ..Meta::default()
        });
        let comm = profile.intern("app");
        profile.add_sample(&[], 1, 1, comm, 1000, 1000);
        profile
    }

    fn header_of(profile: &Profile) -> String {
        let mut out = Vec::new();
        let all = Weight {
            period: profile.total_period(),
            count: profile.total_count(),
        };
        write_header(&mut out, profile, all).unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn frameless_code_is_warned_of_with_its_modules_and_what_to_do() {
        let profile = fp_profile(
            "stacktop record --call-graph fp -- ./app",
            &[
                ("/usr/lib/x86_64-linux-gnu/libc.so.6", 700),
                ("/opt/app/libz.so", 50),
                ("/opt/app/rare.so", 3),
            ],
        );
        let text = header_of(&profile);
        assert!(
            text.contains("# Unwind quality: 753 samples (75.3%) have frame-pointer stacks through code without frame pointers"),
            "{text}"
        );
        let libc = text.find("#   libc.so.6: 700 samples (70.0%)");
        let libz = text.find("#   libz.so: 50 samples (5.0%)");
        assert!(libc.is_some() && libz > libc, "worst first:\n{text}");
        // Under half a percent a module is not named, but counted.
        assert!(!text.contains("rare.so"), "{text}");
        assert!(text.contains("#   other code: 3 samples (0.3%)"), "{text}");
        assert!(
            text.contains("record with --call-graph hybrid (the default) or dwarf"),
            "{text}"
        );
        let warning = frameless_warning(&profile.meta, 1000).map(|w| w.one_line());
        assert_eq!(
            warning.as_deref(),
            Some("75.3% of stacks cross code without frame pointers (libc.so.6, libz.so): callers wrong; use --call-graph hybrid or dwarf")
        );

        // A perf.data file of `perf record -g`: perf's own remedy.
        let perf = fp_profile(
            "/usr/bin/perf record -g ./app",
            &[("/usr/lib/x86_64-linux-gnu/libc.so.6", 700)],
        );
        let text = header_of(&perf);
        assert!(
            text.contains("record with perf record --call-graph dwarf"),
            "{text}"
        );
        assert!(!text.contains("other code"), "{text}");
    }

    #[test]
    fn a_little_frameless_code_is_no_warning() {
        // A program with frame pointers meets the dynamic loader and a system-call wrapper now and then.
        let profile = fp_profile(
            "stacktop record --call-graph fp -- ./app",
            &[("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 9)],
        );
        let text = header_of(&profile);
        assert!(!text.contains("Unwind quality"), "{text}");
        assert!(frameless_warning(&profile.meta, 1000).is_none());
        assert!(frameless_warning(&profile.meta, 900).is_some());
    }

    #[test]
    fn sanitize_escapes_controls_only() {
        assert!(matches!(sanitize("main"), Cow::Borrowed("main")));
        assert_eq!(sanitize("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(sanitize("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(sanitize("del\x7f"), "del\\x7f");
        assert_eq!(sanitize("csi\u{9b}"), "csi\\u{9b}");
        assert_eq!(sanitize("back\\x1b"), "back\\\\x1b");
        assert_eq!(sanitize("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(
            sanitize("operator<<(std::ostream&) é"),
            "operator<<(std::ostream&) é"
        );
    }

    #[test]
    fn sanitize_message_keeps_backslashes_and_one_line() {
        assert_eq!(
            sanitize_message("no function \x1b]0;x\x07 in C:\\dir\nnext"),
            "no function \\x1b]0;x\\x07 in C:\\dir\\nnext"
        );
        assert!(matches!(sanitize_message("a\\d("), Cow::Borrowed("a\\d(")));
    }

    /// Every character: what comes out holds no control or bidi character, and only XML 1.0 characters
    /// (`Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`).
    #[test]
    fn output_is_inert_and_xml_for_every_char() {
        let xml = |c: char| matches!(c as u32, 0x9 | 0xa | 0xd | 0x20..=0xd7ff | 0xe000..=0xfffd | 0x10000..=0x10ffff);
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let text = format!("a{c}b");
            for out in [sanitize(&text), sanitize_message(&text)] {
                assert!(
                    out.chars()
                        .all(|o| xml(o) && !o.is_control() && !is_bidi_control(o)),
                    "{c:?} -> {out:?}"
                );
            }
        }
        assert_eq!(sanitize("a\u{fffe}\u{ffff}"), "a\\u{fffe}\\u{ffff}");
        assert_eq!(sanitize("\u{61c}x"), "\\u{61c}x");
    }

    #[test]
    fn the_continuation_line_names_the_thread_cache_only_for_recordings_that_used_it() {
        let line = |from_cache: u64| {
            let mut stats = crate::profile::ContinuationStats {
                ran_off: 20,
                from_memory: 15,
                from_cache,
                ..Default::default()
            };
            stats.not_completed[0] = 5 - from_cache;
            let mut out = Vec::new();
            write_continuation(&mut out, &stats).expect("a Vec takes every write");
            String::from_utf8(out).expect("the line is UTF-8")
        };
        let now = line(0);
        assert!(
            now.starts_with(
                "# Unwind continuation: 15 of 20 walks that ran off their stack copy were continued in the \
                 live process; 5 were not: 5 "
            ),
            "{now}"
        );
        let older = line(3);
        assert!(
            older.starts_with(
                "# Unwind continuation: 18 of 20 walks that ran off their stack copy were continued in the \
                 live process (15 from memory, 3 from the thread cache); 2 were not"
            ),
            "{older}"
        );
        assert!(write_continuation(&mut Vec::new(), &Default::default()).is_ok());
    }

    #[test]
    fn short_module_names() {
        assert_eq!(
            short_module("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "libc.so.6"
        );
        assert_eq!(short_module("[kernel.kallsyms]"), "[kernel.kallsyms]");
        assert_eq!(short_module("app"), "app");
    }
}
