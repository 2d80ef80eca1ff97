//! One file per subcommand: each wires the stages together and does nothing else.

pub mod annotate;
pub mod convert;
pub mod flamegraph;
pub mod record;
pub mod report;
pub mod top;
