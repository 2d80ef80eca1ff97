#!/usr/bin/env bash
# The sustained sampling rate: the highest -F at which `stacktop record -a` (its default mode) and
# `perf record -a -g` lose no sample on a busy machine, each with its default ring size. See benches/README.md.
#
# Usage: benches/sustained_rate.sh [--seconds S] [--freqs "F1 F2 .."] [--burners N] [--only stacktop|perf]
#   --seconds S     length of each recording (default 20)
#   --freqs LIST    the frequencies tried, lowest first (default "1000 2000 4000 8000 12000 16000 25000 35000 50000")
#   --burners N     threads of the CPU burner added to the load (default 16)
#   --mode MODE     stacktop's --call-graph (default: its default, hybrid)
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#
# The load, the same for every run: two copies of assets/split.c and one of assets/mutex.c (top_vs_perf.sh's
# load) plus an N-thread burner (benches/burner.c), on every CPU. At each frequency each tool records the whole
# machine for S seconds under a fresh copy of that load, one tool after the other (each would otherwise sample
# the other and take its CPU), in alternating order. A run "holds" the rate when it lost no sample: stacktop's
# count is the kernel's lost records plus the samples it dropped itself when unwinding fell behind; perf's is
# its LOST_SAMPLES count. Throttled samples (the kernel skipping interrupts it finds too costly) are shown
# apart. stacktop's "fp-walked" column counts the samples it walked by frame pointers alone while its backlog
# was over half full (kept, with their leaf and most callers; see `Pipeline::keep_up`). A frequency above kernel.perf_event_max_sample_rate is refused by both. The result line gives each
# tool's highest frequency that held, with every lower one held too.
set -euo pipefail

seconds=20 freqs="1000 2000 4000 8000 12000 16000 25000 35000 50000" burners=16 mode= only=
die() { echo "sustained_rate: $*" >&2; exit 1; }
note() { echo "sustained_rate: $*" >&2; }
while (($#)); do
    case $1 in
        --seconds) seconds=${2:?}; shift 2 ;;
        --freqs) freqs=${2:?}; shift 2 ;;
        --burners) burners=${2:?}; shift 2 ;;
        --mode) mode=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds >= 1)) || die "--seconds must be a positive integer"
[[ $burners =~ ^[0-9]+$ ]] || die "--burners must be a number of threads"
for f in $freqs; do [[ $f =~ ^[0-9]+$ ]] || die "--freqs must list integers, not '$f'"; done
command -v cc >/dev/null || die "cc is not installed"
[[ $only == stacktop ]] || command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"

repo=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-rate.XXXXXX")
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
cc -O2 -g -fno-omit-frame-pointer -o "$work/split" "$repo/assets/split.c"
cc -O2 -g -fno-omit-frame-pointer -pthread -o "$work/mutex" "$repo/assets/mutex.c"

start_load() {
    local run_for=$((seconds + 10))
    "$work/split" "$run_for" >/dev/null & load_pids+=($!)
    "$work/split" "$run_for" >/dev/null & load_pids+=($!)
    "$work/mutex" "$run_for" >/dev/null & load_pids+=($!)
    ((burners == 0)) || { "$work/burner" "$burners" "$run_for" & load_pids+=($!); }
    sleep 1
}

# Each prints: samples lost throttled (or "refused - -" when the tool would not record at that rate).
run_stacktop() {
    local freq=$1 args=(record -a -F "$1" --duration "$seconds" -o "$work/stacktop.pb.gz")
    [[ -n $mode ]] && args+=(--call-graph "$mode")
    start_load
    "$stacktop" "${args[@]}" 2>"$work/stacktop.err" || true
    stop_load
    local line
    line=$(grep -o 'wrote .*' "$work/stacktop.err" | tail -1 || true)
    if [[ -z $line ]]; then
        note "stacktop at $freq Hz: $(tail -1 "$work/stacktop.err")"
        echo "refused - - -"
        return
    fi
    # wrote FILE (N samples[, ...], L lost, T throttled)
    local shed
    shed=$(sed -n 's/^stacktop: \([0-9]*\) samples were walked by frame pointers alone.*/\1/p' "$work/stacktop.err")
    echo "$(sed -n 's/.*(\([0-9]*\) samples.*/\1/p' <<<"$line") $(sed -n 's/.* \([0-9]*\) lost.*/\1/p' <<<"$line") $(sed -n 's/.* \([0-9]*\) throttled.*/\1/p' <<<"$line") ${shed:-0}"
}

run_perf() {
    local freq=$1
    rm -f "$work/perf.data"
    start_load
    perf record -a -g -F "$freq" -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>"$work/perf.err" || true
    stop_load
    if [[ ! -s $work/perf.data ]]; then
        note "perf at $freq Hz: $(grep -v '^\s*$' "$work/perf.err" | tail -1)"
        echo "refused - - -"
        return
    fi
    local stats
    stats=$(perf report -i "$work/perf.data" --stats 2>/dev/null || true)
    echo "$(awk '/ SAMPLE events:/ {print $3; exit}' <<<"$stats") $(awk '/LOST_SAMPLES events:/ {print $3; exit}' <<<"$stats" | grep . || echo 0) $(awk '/ THROTTLE events:/ {print $3; exit}' <<<"$stats" | grep . || echo 0) -"
}

tools=(stacktop perf)
[[ -n $only ]] && tools=("$only")
echo "# record -a under load: 2x split + mutex + ${burners}-thread burner on $(nproc) CPUs, ${seconds} s per run"
echo "# stacktop $(git -C "$repo" describe --always --dirty 2>/dev/null || echo "$stacktop")${mode:+ --call-graph $mode}; $(perf --version 2>/dev/null || true); kernel.perf_event_max_sample_rate $(cat /proc/sys/kernel/perf_event_max_sample_rate)"
printf '%8s  %-8s  %10s  %10s  %10s  %10s\n' "-F" tool samples lost throttled "fp-walked"
declare -A best=() failed=()
round=0
for freq in $freqs; do
    order=("${tools[@]}")
    ((round++ % 2 == 0)) || order=($(printf '%s\n' "${tools[@]}" | tac))
    for tool in "${order[@]}"; do
        read -r samples lost throttled shed < <("run_$tool" "$freq")
        printf '%8s  %-8s  %10s  %10s  %10s  %10s\n' "$freq" "$tool" "$samples" "$lost" "$throttled" "$shed"
        if [[ $lost == 0 ]]; then
            [[ -n ${failed[$tool]:-} ]] || best[$tool]=$freq
        else
            failed[$tool]=1
        fi
    done
done
echo "# max sample rate after the runs: $(cat /proc/sys/kernel/perf_event_max_sample_rate) (the kernel lowers it when sampling interrupts take too long)"
for tool in "${tools[@]}"; do
    echo "sustained rate, $tool: ${best[$tool]:-below the lowest tried} Hz"
done
