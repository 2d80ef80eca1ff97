//! Queries over a profile: top functions, callers and callees.
