//! perf_event_open: counters, ring buffers and the typed record stream. All kernel-facing `unsafe` lives here.

pub mod record;
