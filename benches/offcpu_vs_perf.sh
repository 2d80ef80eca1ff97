#!/usr/bin/env bash
# What off-CPU recording costs a switch-heavy program: stacktop with off-CPU time (its default for a command),
# stacktop with --no-off-cpu, and perf recording context switches, side by side. See benches/README.md.
#
# Usage: benches/offcpu_vs_perf.sh [--runs N] [--rounds N] [--freq HZ] [--event EVENT] [--mode MODE]
#                                  [--variants LIST] [--keep]
#   --runs N       interleaved rounds (default 5)
#   --rounds N     hand-overs of the workload / 2 (default 400000: about 0.8 s unrecorded here, 1M switches/s)
#   --freq HZ      stacktop's CPU sampling frequency (default 999)
#   --event EVENT  stacktop's CPU event (default cpu-clock: works without a hardware PMU)
#   --mode MODE    stacktop's --call-graph (default hybrid, its default)
#   --variants L   comma-separated, from: stacktop, nooffcpu, stacktop_fp, perf_g, perf_g_cpu, perf_dwarf
#                  (default: all)
#   --keep         keep the temporary directory with the raw measurements (data.tsv)
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#
# The workload, benches/pingpong.c, is two threads pinned to CPU 0 handing a token back and forth through two
# pipes: every hand-over is a context switch. It prints its own wall and CPU time, so start-up and the
# profilers' work after it exits are left out. Each round runs it unrecorded and under every variant, in an
# order rotated from round to round; the slowdown is each run's wall time over that round's unrecorded one.
#   stacktop     stacktop record --call-graph MODE (off-CPU on: a context-switch sample at every switch-out
#                with a stack copy, switch records, and the CPU samples at -F)
#   nooffcpu     stacktop record --no-off-cpu (CPU samples only)
#   stacktop_fp  stacktop record --call-graph fp (off-CPU on, frame-pointer chains: no stack copies)
#   perf_g       perf record -e context-switches -c 1 -g --switch-events (no CPU samples)
#   perf_g_cpu   the same plus CPU samples as stacktop takes them (-e EVENT/freq=HZ/ beside it): like for like
#   perf_dwarf   perf record -e context-switches -c 1 --call-graph dwarf --switch-events (8 KiB copies)
# Lost: stacktop's count of lost samples and records (its last line); perf's lost samples of the
# context-switches event (`perf report --stats`, LOST_SAMPLES), plus its PERF_RECORD_LOST count.
set -euo pipefail

runs=5 rounds=400000 freq=999 event=cpu-clock mode=hybrid keep=0
variants=stacktop,nooffcpu,stacktop_fp,perf_g,perf_g_cpu,perf_dwarf
die() { echo "offcpu_vs_perf: $*" >&2; exit 1; }
note() { echo "offcpu_vs_perf: $*" >&2; }

while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --event) event=${2:?}; shift 2 ;;
        --mode) mode=${2:?}; shift 2 ;;
        --variants) variants=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1)) || die "--runs must be a positive integer"
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds >= 1)) || die "--rounds must be a positive integer"
[[ $freq =~ ^[0-9]+$ ]] && ((freq >= 1)) || die "--freq must be a positive integer"
IFS=, read -r -a tools <<<"$variants"
for t in "${tools[@]}"; do
    case $t in stacktop | nooffcpu | stacktop_fp | perf_g | perf_g_cpu | perf_dwarf) ;; *) die "unknown variant '$t'" ;; esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-offcpu.XXXXXX")
if ((keep)); then trap 'note "files kept in $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
data=$work/data.tsv # round, tool, metric, value

command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"
command -v python3 >/dev/null || die "python3 is needed for the summary"
command -v cc >/dev/null || die "cc is not installed"
if [[ -n ${STACKTOP:-} ]]; then
    [[ -x $STACKTOP ]] || die "STACKTOP=$STACKTOP is not an executable"
    built=$STACKTOP
else
    note "building stacktop (cargo build --release)"
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" || die "cargo build --release failed"
    built=$target_dir/release/stacktop
fi
stacktop=$work/stacktop
cp "$built" "$stacktop"
version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
[[ -n ${STACKTOP:-} ]] && version=$STACKTOP
cc -O2 -g -fno-omit-frame-pointer -pthread -o "$work/pingpong" "$repo/benches/pingpong.c"
"$work/pingpong" 10000 >/dev/null

put() { printf '%s\t%s\t%s\t%s\n' "$round" "$1" "$2" "$3" >>"$data"; }

# One run of the workload under TOOL: its wall and CPU time, switches per second, what was captured and lost.
run() {
    local tool=$1 out=$work/out.$1 err=$work/err.$1 times
    local st=("$stacktop" record -e "$event" -F "$freq" -o "$out")
    local pf=(perf record -q -e context-switches -c 1 --switch-events -o "$out")
    case $tool in
        none) times=$("$work/pingpong" "$rounds") ;;
        stacktop) times=$("${st[@]}" --call-graph "$mode" -- "$work/pingpong" "$rounds" 2>"$err") ;;
        nooffcpu) times=$("${st[@]}" --call-graph "$mode" --no-off-cpu -- "$work/pingpong" "$rounds" 2>"$err") ;;
        stacktop_fp) times=$("${st[@]}" --call-graph fp -- "$work/pingpong" "$rounds" 2>"$err") ;;
        perf_g) times=$("${pf[@]}" -g -- "$work/pingpong" "$rounds" 2>"$err") ;;
        perf_g_cpu)
            times=$(perf record -q -e "$event/freq=$freq/" -e context-switches/period=1/ -g --switch-events \
                -o "$out" -- "$work/pingpong" "$rounds" 2>"$err") ;;
        perf_dwarf) times=$("${pf[@]}" --call-graph dwarf -- "$work/pingpong" "$rounds" 2>"$err") ;;
    esac || die "$tool failed: $(tail -3 "$err" 2>/dev/null)"
    read -r wall cpu rate <<<"$times"
    put "$tool" wall "$wall"
    put "$tool" cpu "$cpu"
    put "$tool" rate "$rate"
    case $tool in
        none) ;;
        stacktop | nooffcpu | stacktop_fp)
            # "stacktop: wrote F (N samples, M switch-outs, L lost, T throttled)"
            local line
            line=$(grep 'stacktop: wrote' "$err" | tail -1)
            put "$tool" captured "$(grep -oE '[0-9]+ switch-outs' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
            put "$tool" lost "$(grep -oE '[0-9]+ lost' <<<"$line" | grep -oE '[0-9]+' || echo 0)"
            put "$tool" dropped "$(grep -oE '[0-9]+ of the lost samples were dropped' "$err" | grep -oE '^[0-9]+' || echo 0)"
            ;;
        perf_*)
            local stats
            stats=$(perf report -i "$out" --stats 2>/dev/null || true)
            put "$tool" captured "$(awk '/context-switches.* stats:/ {s = 1} s && /SAMPLE events:/ {print $3; exit}' <<<"$stats")"
            put "$tool" lost "$(awk '/context-switches.* stats:/ {s = 1} s && /LOST_SAMPLES events:/ {print $3; exit}' <<<"$stats" | grep . || echo 0)"
            put "$tool" lost_records "$(awk '/^ *LOST events:/ {print $3; exit}' <<<"$stats" | grep . || echo 0)"
            ;;
    esac
    rm -f "$out"
}


load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "$runs rounds of: none ${tools[*]}; pingpong $rounds rounds"
for ((round = 1; round <= runs; round++)); do
    note "round $round/$runs"
    for tool in $(rotated "$round" none "${tools[@]}"); do run "$tool"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$data" "${tools[@]}" <<EOF
import statistics, sys
sys.path.insert(0, "$repo/benches")
from table import print_table, spread
from collections import defaultdict

path, tools = sys.argv[1], sys.argv[2:]
label = {"none": "unrecorded", "stacktop": "stacktop ($mode)", "nooffcpu": "stacktop --no-off-cpu",
         "stacktop_fp": "stacktop --call-graph fp", "perf_g": "perf -g", "perf_g_cpu": "perf -g + ${event}",
         "perf_dwarf": "perf --call-graph dwarf"}
runs = defaultdict(dict)
for line in open(path):
    rnd, tool, metric, value = line.rstrip("\n").split("\t")
    runs[tool, metric][int(rnd)] = float(value or 0)
for tool in tools:
    for kind in "wall", "cpu":
        base, rec = runs["none", kind], runs[tool, kind]
        runs[tool, kind + "_x"] = {r: rec[r] / base[r] for r in rec if base.get(r)}

def cell(tool, metric, fmt):
    return spread(runs[tool, metric].values(), fmt)

rows = [("wall", "workload wall (s)", "{:.3f}"), ("wall_x", "  slowdown (x unrecorded)", "{:.2f}"),
        ("cpu", "workload CPU (s)", "{:.3f}"), ("cpu_x", "  CPU slowdown (x unrecorded)", "{:.2f}"),
        ("rate", "switches per second", "{:.0f}"), ("captured", "switch-out samples kept", "{:.0f}"),
        ("lost", "lost (samples; stacktop: and records)", "{:.0f}"),
        ("dropped", "  stacktop: of them dropped (unwinding behind)", "{:.0f}"),
        ("lost_records", "  perf: PERF_RECORD_LOST", "{:.0f}")]
columns = ["none"] + tools
table = [["metric"] + [label[t] for t in columns]]
for metric, title, fmt in rows:
    table.append([title] + [cell(t, metric, fmt) for t in columns])
print()
print("stacktop ${version} vs $(perf --version); pingpong ${rounds} rounds ($((2 * rounds)) switches), ${runs} interleaved rounds")
print("stacktop: -e ${event} -F ${freq}; load average ${load_start} at start, ${load_end} at end (on $(nproc) CPUs)")
print("cells: median [min..max] over the rounds")
print()
print_table(table)
EOF
