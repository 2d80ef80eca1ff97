//! A Rust workload with a generic function and closures, built in both symbol manglings so the demangled
//! names can be checked exactly: `burn::<Heavy>` does 3 units per round, `burn::<Light>` 1, and a closure run
//! through `apply` 2.
//!
//! Build (legacy mangling is the default on stable):
//!        rustc -C opt-level=2 -g -C force-frame-pointers=yes -o rustwork_legacy assets/rustwork.rs
//!        rustc -C opt-level=2 -g -C force-frame-pointers=yes -C symbol-mangling-version=v0 -o rustwork_v0 assets/rustwork.rs
//! Run:   ./rustwork_v0 SECONDS
use std::hint::black_box;
use std::time::{Duration, Instant};

trait Work {
    const UNITS: u64;
    const SEED: u64;
}
struct Heavy;
struct Light;
impl Work for Heavy {
    const UNITS: u64 = 3;
    const SEED: u64 = 31;
}
impl Work for Light {
    const UNITS: u64 = 1;
    const SEED: u64 = 37;
}

const ITER: u64 = 200_000;

#[inline(never)]
fn burn<W: Work>(x: u64) -> u64 {
    let mut x = black_box(x) + W::SEED;
    for _ in 0..W::UNITS * ITER {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(W::SEED));
    }
    x
}

#[inline(never)]
fn apply<F: Fn(u64) -> u64>(f: F, x: u64) -> u64 {
    f(black_box(x))
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut x = 1u64;
    while Instant::now() < end {
        x = burn::<Heavy>(x);
        x = burn::<Light>(x);
        x = apply(
            #[inline(never)]
            |mut y| {
                for _ in 0..2 * ITER {
                    y = black_box(y.wrapping_mul(6364136223846793005).wrapping_add(41));
                }
                y
            },
            x,
        );
    }
    println!("{}", black_box(x) & 1);
}
