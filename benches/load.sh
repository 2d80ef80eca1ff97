#!/usr/bin/env bash
# `stacktop record -a` against `perf record -a -g` under heavy load: a 64-thread burner plus thousands of
# short-lived processes, at a high sampling frequency. Prints, for each tool, samples kept, samples lost,
# how long the run took against --duration, and peak RSS. See benches/README.md.
#
# Usage: benches/load.sh [--seconds S] [--freq HZ] [--procs N] [--threads N] [--mode MODE] [--only stacktop|perf]
#   --seconds S   recording length (default 60)
#   --freq HZ     sampling frequency of both (default 25000; kernel.perf_event_max_sample_rate is the most
#                 either accepts)
#   --procs N     short-lived processes started during the run (default 5000)
#   --threads N   burner threads (default 64)
#   --mode MODE   stacktop's --call-graph (default: its default, hybrid)
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#
# The two tools run one after the other under the same load (started afresh for each), not at once: each
# would otherwise sample the other and take its CPU.
set -euo pipefail

seconds=60 freq=25000 procs=5000 threads=64 mode= only=
die() { echo "load: $*" >&2; exit 1; }
note() { echo "load: $*" >&2; }
while (($#)); do
    case $1 in
        --seconds) seconds=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --procs) procs=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --mode) mode=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
command -v cc >/dev/null || die "cc is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
[[ -x /usr/bin/time ]] || { note "installing GNU time"; apt-get install -y -qq time >/dev/null; }
[[ $only == stacktop ]] || command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"

repo=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-load.XXXXXX")
load_pids=()
stop_load() {
    for pid in "${load_pids[@]:-}"; do [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    load_pids=()
}
trap 'stop_load; rm -rf "$work"' EXIT

if [[ -n ${STACKTOP:-} ]]; then
    stacktop=$STACKTOP
else
    note "building stacktop (cargo build --release)"
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" || die "cargo build --release failed"
    stacktop=$target_dir/release/stacktop
fi
cc -O2 -g -fno-omit-frame-pointer -pthread -o "$work/burner" "$repo/benches/burner.c"
cat >"$work/churn.py" <<'PY'
import subprocess, sys, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
for i in range(n):
    subprocess.run(["/bin/true"])
    # Spread the processes over the run.
    ahead = start + seconds * (i + 1) / n - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
PY

start_load() {
    "$work/burner" "$threads" "$((seconds + 10))" & load_pids+=($!)
    python3 "$work/churn.py" "$procs" "$seconds" & load_pids+=($!)
    sleep 2
}

# Prints: tool samples lost wall_seconds max_rss_mb
run_stacktop() {
    local args=(record -a -F "$freq" --duration "$seconds" -o "$work/stacktop.pb.gz")
    [[ -n $mode ]] && args+=(--call-graph "$mode")
    start_load
    /usr/bin/time -f 'wall %e rss %M' -o "$work/stacktop.time" "$stacktop" "${args[@]}" 2>"$work/stacktop.err" || true
    stop_load
    local line samples lost
    line=$(grep -o 'wrote .*' "$work/stacktop.err" | tail -1)
    samples=$(sed -n 's/.*(\([0-9]*\) samples.*/\1/p' <<<"$line")
    lost=$(sed -n 's/.* \([0-9]*\) lost.*/\1/p' <<<"$line")
    read -r _ wall _ rss <"$work/stacktop.time"
    echo "stacktop ${samples:-?} ${lost:-?} $wall $((rss / 1024))"
    grep -v 'wrote' "$work/stacktop.err" | sed 's/^/  /' >&2 || true
}

run_perf() {
    start_load
    /usr/bin/time -f 'wall %e rss %M' -o "$work/perf.time" \
        perf record -a -g -F "$freq" -o "$work/perf.data" -- sleep "$seconds" 2>"$work/perf.err" || true
    stop_load
    local stats samples lost
    stats=$(perf report -i "$work/perf.data" --stats 2>/dev/null || true)
    samples=$(awk '/SAMPLE events:/ {print $3; exit}' <<<"$stats")
    lost=$(awk '/LOST_SAMPLES events:/ {print $3; exit}' <<<"$stats")
    read -r _ wall _ rss <"$work/perf.time"
    echo "perf ${samples:-?} ${lost:-0} $wall $((rss / 1024))"
}

note "$seconds s at -F $freq, $threads burner threads, $procs short-lived processes"
{
    echo "tool samples lost wall_s rss_mb"
    [[ $only == perf ]] || run_stacktop
    [[ $only == stacktop ]] || run_perf
} | column -t | tee "$work/result.txt"
if [[ -z $only ]]; then
    awk 'NR==2 {s=$2} NR==3 {p=$2} END {if (p > 0) printf "stacktop kept %.1f%% as many samples as perf\n", 100*s/p}' "$work/result.txt"
fi
