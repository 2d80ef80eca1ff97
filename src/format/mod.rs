//! Profile files in and out: pprof.
