//! Integration tests: one binary, so workloads are built once and perf tests run one at a time
//! (`cargo test -- --test-threads=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acquire;
mod annotate;
mod common;
mod errors;
mod hostile;
mod output;
mod perfdata;
mod perfdata_hostile;
mod record;
mod render;
mod symbolize;
mod top;
mod top_sampler;
mod unwind;
