//! `stacktop top`: the live view. The engine's live sampler (`pipeline::live`) hands the UI one update per
//! refresh; the UI appends it to its copy of the profile and adds the samples to a decaying and a cumulative
//! sum (`tui::App`). The UI sleeps until a key, an update or an annotation arrives (keys are read on a thread
//! of their own). `top -i FILE` shows a recorded profile frozen. `--weight` picks the first view (`w` switches).

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::acquire::{CommandOutput, Target, TOP_HYBRID_STACK_BYTES};
use crate::annotate::{annotate, ElfCode};
use crate::cli::{self, TopArgs};
use crate::pipeline::import::load_profile;
use crate::pipeline::live::{Sampler, Status};
use crate::profile::query::{Filter, Matcher};
use crate::profile::Profile;
use crate::tui::{self, Annotator, App, FuncRef, Limit};

pub fn run(args: TopArgs) -> Result<ExitCode> {
    if let Some(path) = &args.input {
        let profile = load_profile(path)?;
        let status = recorded_status(&profile, &path.display().to_string());
        let mut app = App::frozen(profile, status);
        app.limit = limit(&args);
        app.start_view(args.weight);
        tui::run(app, None, Some(annotator())).context("terminal")?;
        return Ok(ExitCode::SUCCESS);
    }
    if !(args.delay.is_finite() && args.delay >= 0.05) {
        bail!("--delay must be at least 0.05 seconds, got {}", args.delay);
    }
    let duration = cli::duration(args.duration)?;
    let mut config = args.sampling.session_config(TOP_HYBRID_STACK_BYTES)?;
    // A launched command would draw over the screen: its output goes to a file named in the header.
    let output_file = match config.target {
        Target::Command(_) => Some(command_output_file()?),
        _ => None,
    };
    config.command_output = output_file
        .clone()
        .map_or(CommandOutput::Null, CommandOutput::File);
    let sampler = Sampler::start_with(
        config,
        Duration::from_secs_f64(args.delay),
        duration,
        !args.sampling.no_continue,
    )?;
    let mut app = App::live(sampler.status.clone());
    app.limit = limit(&args);
    app.message = sampler.notes.first().cloned();
    app.start_view(args.weight);
    let (updates, handle) = sampler.into_parts();
    let ui = tui::run(app, Some(updates), Some(annotator()));
    // Ends the reader (SIGTERM to a launched command) whatever the UI's outcome.
    let stopped = handle.stop();
    // The command's output: gone when there was none, else said where it is.
    if let Some(path) = &output_file {
        match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => {
                let _ = std::fs::remove_file(path);
            }
            Ok(_) => eprintln!(
                "stacktop: the command's output is in {}",
                crate::render::sanitize(&path.display().to_string())
            ),
            Err(_) => {}
        }
    }
    stopped?;
    ui.context("terminal")?;
    Ok(ExitCode::SUCCESS)
}

/// The limit `--comm` or `--process` starts with.
fn limit(args: &TopArgs) -> Option<Limit> {
    match (&args.comm, &args.process) {
        (Some(comm), _) => Some(Limit::Comm(comm.clone())),
        (None, Some(process)) => Some(Limit::Process(process.clone())),
        (None, None) => None,
    }
}

/// A new file for a launched command's output, created exclusively under an unpredictable name: a
/// predictable name in the shared temporary directory could be planted as a symlink by another user, and
/// root's `top` would then append the command's output to whatever it points to.
fn command_output_file() -> Result<std::path::PathBuf> {
    let (_, path) = tempfile::Builder::new()
        .prefix(&format!("stacktop-top-{}-", std::process::id()))
        .suffix(".out")
        .tempfile()
        .and_then(|f| f.keep().map_err(|e| e.error))
        .context("cannot create a file for the command's output in the temporary directory")?;
    Ok(path)
}

/// The `a` key: `annotate::annotate` over the profile on screen, limited to the function's module; the TUI
/// draws the annotation as it is. One `ElfCode` (and its symbolizer caches) serves every call.
pub fn annotator() -> Arc<Annotator> {
    let code = Mutex::new(ElfCode::new());
    Arc::new(move |profile: &Profile, func: &FuncRef| {
        let filter = Filter {
            modules: vec![func.module.clone()],
            ..Filter::default()
        };
        let mut code = code.lock().unwrap_or_else(|e| e.into_inner());
        annotate(profile, &Matcher::exact(&func.name), &filter, &mut *code)
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)))
    })
}

/// The header of a recorded profile.
pub fn recorded_status(profile: &Profile, file: &str) -> Status {
    let meta = &profile.meta;
    let seconds = meta.duration_nanos as f64 / 1e9;
    let samples = profile.total_count();
    Status {
        event: meta.event.clone(),
        frequency: meta.frequency,
        target: crate::render::sanitize(&format!("file: {file}")).into_owned(),
        call_graph: meta.call_graph.clone(),
        output_file: None,
        samples_per_sec: if seconds > 0.0 {
            samples as f64 / seconds
        } else {
            0.0
        },
        samples,
        lost: meta.lost,
        throttled: meta.throttled,
        cpu_percent: 0.0,
        ended: Some("recorded".to_owned()),
        unwind_warning: crate::render::text::frameless_warning(meta, samples).map(|w| w.one_line()),
    }
}
