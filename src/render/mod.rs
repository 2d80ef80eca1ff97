//! Outputs that read a `&Profile` and write to `impl Write`: the stdio report (`report`), the callers and
//! callees trees (`calltree`), a function's annotated disassembly (`annotate`), folded stacks (`folded`) and the flamegraph SVG (`flamegraph`).
//!
//! Every figure comes from the queries in `profile::query`, which the TUI reads too. Names from binaries are
//! untrusted: every text output passes them through `text::sanitize`. Write errors (a closed pipe included)
//! are returned to the caller, who decides what a broken pipe means.

pub mod annotate;
pub mod calltree;
pub mod flamegraph;
pub mod folded;
mod graph;
pub mod locks;
pub mod report;
pub mod text;

pub use annotate::{write_annotation, AnnotateOptions};
pub use calltree::{write_calltree, write_calltree_section, CalltreeOptions};
pub use flamegraph::{write_flamegraph, FlamegraphOptions};
pub use folded::{folded_lines, write_folded, FoldedOptions};
pub use locks::{write_locks, LocksOptions};
pub use report::{write_report, ReportOptions};
pub use text::{sanitize, sanitize_message};
