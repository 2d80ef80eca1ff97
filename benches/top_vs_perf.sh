#!/usr/bin/env bash
# `stacktop top -a` against `perf top -g`, side by side on a busy machine: each profiler's own CPU use and
# resident memory. See benches/README.md.
#
# Usage: benches/top_vs_perf.sh [--seconds S] [--every S] [--freq HZ] [--event EVENT] [--mode MODE]
#   --seconds S   how long both run (default 60; 600 for the 10-minute figures)
#   --every S     RSS and CPU are sampled every S seconds (default 60)
#   --freq HZ     sampling frequency of both (default 999)
#   --event EVENT (default cpu-clock: works without a hardware PMU)
#   --mode MODE   stacktop's --call-graph (default hybrid, its default)
#   --churn N     also start N short-lived processes (/bin/true) per second, all run long (default 0;
#                 issue 10's load is 83, 5,000 a minute): processes coming and going must not grow the RSS
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#
# The load: two copies of assets/split.c and one of assets/mutex.c (four threads), so both CPUs stay busy with
# user and kernel stacks. Both profilers run at once, each in its own tmux session (they need a terminal),
# sampling the whole machine; each also samples the other, alike. A profiler's CPU use is utime + stime of its
# process (all threads) from /proc/PID/stat over each interval, after a 5 s warm-up, in percent of one CPU.
# At the end, each of stacktop's threads over the run: its CPU and its context switches a second.
set -euo pipefail

seconds=60 every=60 freq=999 event=cpu-clock mode=hybrid churn=0
die() { echo "top_vs_perf: $*" >&2; exit 1; }
note() { echo "top_vs_perf: $*" >&2; }
while (($#)); do
    case $1 in
        --seconds) seconds=${2:?}; shift 2 ;;
        --every) every=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --event) event=${2:?}; shift 2 ;;
        --mode) mode=${2:?}; shift 2 ;;
        --churn) churn=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds >= 5)) || die "--seconds must be an integer >= 5"
[[ $every =~ ^[0-9]+$ ]] && ((every >= 1)) || die "--every must be a positive integer"
[[ $churn =~ ^[0-9]+$ ]] || die "--churn must be a number of processes per second"
command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"
command -v tmux >/dev/null || die "tmux is not installed (Debian: apt-get install tmux)"
command -v cc >/dev/null || die "cc is not installed"

repo=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-topbench.XXXXXX")
tag=topbench-$$
cleanup() {
    tmux kill-session -t "$tag-stacktop" 2>/dev/null || true
    tmux kill-session -t "$tag-perf" 2>/dev/null || true
    for pid in "${load_pids[@]:-}"; do [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
load_pids=()
trap cleanup EXIT

if [[ -n ${STACKTOP:-} ]]; then
    built=$STACKTOP
else
    note "building stacktop (cargo build --release)"
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" || die "cargo build --release failed"
    built=$target_dir/release/stacktop
fi
cp "$built" "$work/stacktop"
stacktop=$work/stacktop

cc -O2 -g -fno-omit-frame-pointer -o "$work/split" "$repo/assets/split.c"
cc -O2 -g -fno-omit-frame-pointer -pthread -o "$work/mutex" "$repo/assets/mutex.c"
run_for=$((seconds + 30))
"$work/split" "$run_for" & load_pids+=($!)
"$work/split" "$run_for" & load_pids+=($!)
"$work/mutex" "$run_for" & load_pids+=($!)
if ((churn > 0)); then
    command -v python3 >/dev/null || die "python3 is not installed (needed by --churn)"
    cat >"$work/churn.py" <<'PY'
import subprocess, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
i = 0
while time.monotonic() - start < seconds:
    subprocess.run(["/bin/true"])
    i += 1
    ahead = start + i / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
PY
    python3 "$work/churn.py" "$churn" "$run_for" & load_pids+=($!)
fi

# `exec` so the pane's process is the profiler itself.
tmux new-session -d -s "$tag-stacktop" -x 120 -y 40 \
    "exec $stacktop top -a -F $freq -e $event --call-graph $mode 2>$work/stacktop.err"
tmux new-session -d -s "$tag-perf" -x 120 -y 40 \
    "exec perf top -F $freq -g -e $event 2>$work/perf.err"
st_pid=$(tmux display-message -p -t "$tag-stacktop" '#{pane_pid}')
perf_pid=$(tmux display-message -p -t "$tag-perf" '#{pane_pid}')
hz=$(getconf CLK_TCK)

ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# stacktop's threads: tid, name, CPU ticks, context switches (which thread costs what, and how often it wakes).
threads() {
    local t
    for t in /proc/"$st_pid"/task/*; do
        echo "${t##*/} $(tr -c 'A-Za-z0-9_.\n-' _ <"$t/comm") $(ticks "$st_pid/task/${t##*/}") $(
            awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n }' "$t/status")"
    done | LC_ALL=C sort
}
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
alive() { kill -0 "$1" 2>/dev/null || die "$2 exited early: $(head -c 300 "$work/$2.err" 2>/dev/null)"; }
# perf 6.1's `perf top` can die on its own (an assertion in util/build-id.c after minutes under -a): then
# stacktop's figures go on alone and perf's columns say so.
perf_alive() { kill -0 "$perf_pid" 2>/dev/null || { ((perf_dead)) || note "perf top exited: $(head -c 200 "$work/perf.err")"; perf_dead=1; false; }; }
perf_dead=0

sleep 5
alive "$st_pid" stacktop
alive "$perf_pid" perf
echo "# stacktop top -a vs perf top -g: -F $freq -e $event, stacktop --call-graph $mode, ${seconds}s"
echo "# load: 2x split + mutex (4 threads) + $churn processes/s on $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# stacktop $(git -C "$repo" describe --always --dirty 2>/dev/null || echo "$built"); $(perf --version)"
printf '%8s  %14s  %14s  %14s  %14s\n' "time s" "stacktop CPU%" "perf CPU%" "stacktop RSS MB" "perf RSS MB"
threads >"$work/threads.start"
st_start=$(ticks "$st_pid") perf_start=$(ticks "$perf_pid") t0=$(date +%s.%N)
st_prev=$st_start perf_prev=$perf_start t_prev=$t0
elapsed=0
while ((elapsed < seconds)); do
    step=$((every < seconds - elapsed ? every : seconds - elapsed))
    sleep "$step"
    elapsed=$((elapsed + step))
    alive "$st_pid" stacktop
    if perf_alive; then perf_now=$(ticks "$perf_pid") perf_rss=$(rss_mb "$perf_pid"); else perf_now=$perf_prev perf_rss=exited; fi
    st_now=$(ticks "$st_pid") t_now=$(date +%s.%N)
    awk -v e="$elapsed" -v s0="$st_prev" -v s1="$st_now" -v p0="$perf_prev" -v p1="$perf_now" \
        -v t0="$t_prev" -v t1="$t_now" -v hz="$hz" -v sr="$(rss_mb "$st_pid")" -v pr="$perf_rss" \
        'BEGIN { d = t1 - t0; printf "%8d  %14.1f  %14.1f  %14s  %14s\n", e, (s1 - s0) / hz / d * 100, (p1 - p0) / hz / d * 100, sr, pr }'
    st_prev=$st_now perf_prev=$perf_now t_prev=$t_now
done
awk -v s0="$st_start" -v s1="$st_prev" -v p0="$perf_start" -v p1="$perf_prev" -v t0="$t0" -v t1="$t_prev" -v hz="$hz" \
    'BEGIN { d = t1 - t0; printf "%8s  %14.1f  %14.1f   (whole run, CPU%% of one CPU)\n", "all", (s1 - s0) / hz / d * 100, (p1 - p0) / hz / d * 100 }'
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# stacktop's threads over the run (CPU% of one CPU, context switches a second):"
threads >"$work/threads.end"
LC_ALL=C join "$work/threads.start" "$work/threads.end" | awk -v d="$(awk -v t0="$t0" -v t1="$t_prev" 'BEGIN { print t1 - t0 }')" -v hz="$hz" \
    '{ printf "#   %-18s %6.2f%%  %6.0f/s\n", $2, ($6 - $3) / hz / d * 100, ($7 - $4) / d }'
echo "# stacktop's screen at the end:"
tmux capture-pane -p -t "$tag-stacktop" | head -8 | sed 's/^/#   /'
if ((!perf_dead)); then
    echo "# perf top's screen at the end (its header counts lost samples too):"
    tmux capture-pane -p -t "$tag-perf" | head -4 | sed 's/^/#   /'
fi
