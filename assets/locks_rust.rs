//! Lock contention on a Rust `std::sync::Mutex` whose truth is known by construction and measured by the
//! workload itself (issue 14). A holder thread keeps the static `TABLE` mutex 4 ms at a time in `hold_long`
//! (asleep under the lock), with 2 ms rests. Three waiter threads take it again and again, each time through
//! `take_often` or `take_rarely` (`#[inline(never)]`), chosen by a per-thread random draw 3 times out of 4 and
//! 1 out of 4, hold it a few microseconds and rest 1 ms between takes. So about 3/4 of the waiters' waits
//! belong to `take_often`.
//!
//! What a contended wait is: std's futex mutex calls its `lock_contended` only when `lock`'s compare-and-swap
//! finds the lock taken, and that is where stacktop's probe sees the wait. The workload counts the same ones:
//! each take first tries `try_lock`; one that succeeds is uncontended (a take, not a wait); only when it fails
//! is `lock` called between two reads of the monotonic clock, and that time is one wait of its caller. (A lock
//! freed between the failed try and the call is taken without a wait of note: a few hundred nanoseconds
//! against waits of milliseconds.)
//!
//! Output at exit, one `key=value` line each (nanoseconds):
//!   wait lock=TABLE caller=take_often|take_rarely|hold_long takes=N waits=N wait_ns=N
//!   lock name=TABLE address=0xADDR takes=N waits=N wait_ns=N
//!
//! Build: rustc -C opt-level=2 -g -C force-frame-pointers=yes -o locks_rust assets/locks_rust.rs
//! Run:   ./locks_rust SECONDS   (wall time, default 3)
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

static TABLE: Mutex<[u64; 8]> = Mutex::new([0; 8]);
static RUNNING: AtomicBool = AtomicBool::new(true);

const WAITERS: usize = 3;
const HOLD: Duration = Duration::from_millis(4);
const HOLDER_REST: Duration = Duration::from_millis(2);
const READ_HOLD: Duration = Duration::from_micros(3);
const WAITER_REST: Duration = Duration::from_millis(1);

#[derive(Default, Clone, Copy)]
struct Tally {
    takes: u64,
    waits: u64,
    wait_ns: u64,
}

/// Takes `TABLE`, timing the take when `try_lock` finds it taken. Inlined into its caller, so that the
/// caller of std's `lock` is the function that takes the lock.
#[inline(always)]
fn take(tally: &mut Tally) -> MutexGuard<'static, [u64; 8]> {
    tally.takes += 1;
    if let Ok(guard) = TABLE.try_lock() {
        return guard;
    }
    let t0 = Instant::now();
    let guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let waited = t0.elapsed().as_nanos() as u64;
    tally.waits += 1;
    tally.wait_ns += waited;
    guard
}

fn spin(d: Duration) {
    let until = Instant::now() + d;
    let mut x = 7u64;
    while Instant::now() < until {
        for _ in 0..200 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(3));
        }
    }
}

#[inline(never)]
fn take_often(tally: &mut Tally) {
    let mut table = take(tally);
    table[1] += 3;
    spin(READ_HOLD);
    drop(table);
    black_box(());
}

#[inline(never)]
fn take_rarely(tally: &mut Tally) {
    let mut table = take(tally);
    table[2] += 5;
    spin(READ_HOLD);
    drop(table);
    black_box(());
}

#[inline(never)]
fn hold_long(tally: &mut Tally) {
    let mut table = take(tally);
    table[0] += 1;
    thread::sleep(HOLD);
    drop(table);
    black_box(());
}

/// xorshift64: a draw per take, 3 in 4 for `take_often`.
fn draw(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let holder = thread::spawn(|| {
        let mut tally = Tally::default();
        while RUNNING.load(Ordering::Relaxed) {
            hold_long(&mut tally);
            thread::sleep(HOLDER_REST);
        }
        tally
    });
    let waiters: Vec<_> = (0..WAITERS as u64)
        .map(|i| {
            thread::spawn(move || {
                let (mut often, mut rarely) = (Tally::default(), Tally::default());
                let mut rng = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i + 1);
                while RUNNING.load(Ordering::Relaxed) {
                    if draw(&mut rng) % 4 != 0 {
                        take_often(&mut often);
                    } else {
                        take_rarely(&mut rarely);
                    }
                    thread::sleep(WAITER_REST);
                }
                (often, rarely)
            })
        })
        .collect();
    thread::sleep(Duration::from_secs_f64(seconds));
    RUNNING.store(false, Ordering::Relaxed);
    let hold = holder.join().unwrap_or_default();
    let (mut often, mut rarely) = (Tally::default(), Tally::default());
    for w in waiters {
        let (o, r) = w.join().unwrap_or_default();
        for (sum, t) in [(&mut often, o), (&mut rarely, r)] {
            sum.takes += t.takes;
            sum.waits += t.waits;
            sum.wait_ns += t.wait_ns;
        }
    }
    let mut all = Tally::default();
    for (name, t) in [("take_often", often), ("take_rarely", rarely), ("hold_long", hold)] {
        println!(
            "wait lock=TABLE caller={name} takes={} waits={} wait_ns={}",
            t.takes, t.waits, t.wait_ns
        );
        all.takes += t.takes;
        all.waits += t.waits;
        all.wait_ns += t.wait_ns;
    }
    println!(
        "lock name=TABLE address={:p} takes={} waits={} wait_ns={}",
        &TABLE, all.takes, all.waits, all.wait_ns
    );
}
