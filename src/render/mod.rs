//! Outputs that read a `&Profile` and write to `impl Write`: stdio report, folded stacks, flamegraph SVG.
