//! Integration tests: one binary, so workloads are built once and perf tests run one at a time
//! (`cargo test --release -- --test-threads=1`).
//!
//! The harness is libtest-mimic's rather than libtest's, for one outcome libtest lacks: a test that finds
//! the machine without what it needs (perf_event_open, a C compiler, `perf`, `go`, root...) calls
//! [`common::skip`] and is reported as *ignored*, not as passed. With `STACKTOP_REQUIRE_PERF=1` (CI) it
//! fails instead. Each module lists its tests at its end with [`tests!`]; a test left out of the list is
//! dead code, which the build refuses (`clippy -D warnings`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

mod acquire;
mod annotate;
mod common;
mod continuation;
mod errors;
mod frameless;
mod hostile;
mod jit;
mod locks;
mod locks_recording;
mod locks_workloads;
mod offcpu;
mod offcpu_output;
mod offcpu_recording;
mod offcpu_workloads;
mod output;
mod perfdata;
mod perfdata_hostile;
mod record;
mod render;
mod render_offcpu;
mod replay;
mod symbolize;
mod top;
mod top_locks;
mod top_sampler;
mod top_weigh;
mod unwind;

/// `tests![a, b]` at the end of a module: `pub fn tests() -> Vec<Trial>` with its tests, named
/// `module::function` as libtest names them, so `cargo test module::function` still picks one.
#[macro_export]
macro_rules! tests {
    ($($test:ident),* $(,)?) => {
        pub fn tests() -> Vec<libtest_mimic::Trial> {
            let module = module_path!().trim_start_matches("it::");
            vec![$($crate::trial(format!("{module}::{}", stringify!($test)), $test)),*]
        }
    };
}

/// One test: passed, failed (a panic), or ignored (a [`common::Skipped`] panic).
pub fn trial(name: String, test: fn()) -> Trial {
    Trial::ignorable_test(name, move || match std::panic::catch_unwind(test) {
        Ok(()) => Ok(Completion::Completed),
        Err(payload) => match payload.downcast::<common::Skipped>() {
            Ok(skipped) => Ok(Completion::ignored_with(skipped.0)),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic without a message");
                Err(Failed::from(format!("test panicked: {message}")))
            }
        },
    })
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    // A skipped test unwinds with a `Skipped` payload: no "panicked at" message for it.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<common::Skipped>() {
            report(info);
        }
    }));
    let trials: Vec<Trial> = [
        acquire::tests(),
        annotate::tests(),
        continuation::tests(),
        errors::tests(),
        frameless::tests(),
        hostile::tests(),
        jit::tests(),
        locks::tests(),
        locks_recording::tests(),
        offcpu::tests(),
        offcpu_output::tests(),
        offcpu_recording::tests(),
        output::tests(),
        perfdata::tests(),
        perfdata_hostile::tests(),
        record::tests(),
        render::tests(),
        render_offcpu::tests(),
        replay::tests(),
        symbolize::tests(),
        top::tests(),
        top_locks::tests(),
        top_sampler::tests(),
        top_weigh::tests(),
        unwind::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
