//! stacktop: a sampling profiler for Linux that answers "who calls the hot function".
//!
//! Stages, each a module that meets the next at plain data types; no stage imports a later one:
//! `acquire` (perf_event rings -> records) -> `process` (address spaces over time) -> `unwind` (stacks) ->
//! `symbolize` (frames, inlines, file:line) -> `profile` (call tree) -> `render` / `format`. `annotate` reads a
//! profile and a function's code (through the symbolizer's module loading) for `render` and the TUI.

pub mod acquire;
pub mod addr;
pub mod annotate;
pub mod arch;
pub mod cli;
pub mod cmd;
pub mod format;
pub mod pipeline;
pub mod process;
pub mod profile;
pub mod render;
pub mod symbolize;
pub mod tui;
pub mod unwind;
