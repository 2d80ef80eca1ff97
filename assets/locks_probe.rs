//! Rust std's `Mutex` contended, known by construction and measured by the workload itself. A holder thread
//! keeps `static TABLE: Mutex<u64>` for 2 ms bursts (`hold_table`, spinning), then sleeps 0.5 ms without it.
//! Three waiter threads take it again and again, each time through `take_often` or `take_rarely`, chosen by a
//! per-thread random draw 3 times out of 4 and 1 out of 4, and sleep 0.3 ms between takes. So about 3/4 of the
//! waiters' time inside `lock()` belongs to `take_often`.
//!
//! The workload measures, itself, each caller's time inside `Mutex::lock` (a monotonic clock read just before
//! and just after the call) and number of calls, and prints them at exit, one line each (nanoseconds):
//!   lock caller=take_often calls=N lock_ns=N
//!   lock caller=take_rarely calls=N lock_ns=N
//!
//! Built as a release build is by default (no frame pointers: the walks go by the unwind tables):
//!        rustc -C opt-level=2 -g -o locks_probe assets/locks_probe.rs
//! Run:   ./locks_probe SECONDS   (wall time, default 2)
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static TABLE: Mutex<u64> = Mutex::new(0);
static OFTEN_NS: AtomicU64 = AtomicU64::new(0);
static OFTEN_CALLS: AtomicU64 = AtomicU64::new(0);
static RARELY_NS: AtomicU64 = AtomicU64::new(0);
static RARELY_CALLS: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn hold_table(burst: Duration) {
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let until = Instant::now() + burst;
    let mut x = *guard;
    while Instant::now() < until {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(13));
        }
    }
    *guard = x;
    drop(guard);
    black_box(());
}

/// Takes the lock once, timing `lock()`; returns the nanoseconds it took.
#[inline(always)]
fn take_timed() -> u64 {
    let start = Instant::now();
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let waited = start.elapsed().as_nanos() as u64;
    *guard = guard.wrapping_add(1);
    drop(guard);
    waited
}

#[inline(never)]
fn take_often() {
    OFTEN_NS.fetch_add(take_timed(), Ordering::Relaxed);
    OFTEN_CALLS.fetch_add(1, Ordering::Relaxed);
    black_box(());
}

#[inline(never)]
fn take_rarely() {
    RARELY_NS.fetch_add(take_timed(), Ordering::Relaxed);
    RARELY_CALLS.fetch_add(1, Ordering::Relaxed);
    black_box(());
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let holder = std::thread::spawn(move || {
        while Instant::now() < end {
            hold_table(Duration::from_millis(2));
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    let waiters: Vec<_> = (0..3u64)
        .map(|i| {
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (i + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
                while Instant::now() < end {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if rng % 4 == 0 {
                        take_rarely();
                    } else {
                        take_often();
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
            })
        })
        .collect();
    let _ = holder.join();
    for w in waiters {
        let _ = w.join();
    }
    println!(
        "lock caller=take_often calls={} lock_ns={}",
        OFTEN_CALLS.load(Ordering::Relaxed),
        OFTEN_NS.load(Ordering::Relaxed)
    );
    println!(
        "lock caller=take_rarely calls={} lock_ns={}",
        RARELY_CALLS.load(Ordering::Relaxed),
        RARELY_NS.load(Ordering::Relaxed)
    );
}
