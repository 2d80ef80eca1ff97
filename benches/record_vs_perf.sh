#!/usr/bin/env bash
# stacktop against perf, side by side, on the same workload, event and frequency. See benches/README.md for
# what each number means and how it is measured.
#
# Usage: benches/record_vs_perf.sh [--mode fp|hybrid|dwarf] [--runs N] [--freq HZ] [--seconds S]
#                                  [--workload split|mutex] [--event EVENT] [--keep]
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout with cargo.
#
# Every round runs, in an order rotated from round to round:
#   1. the fixed-work workload unrecorded, under each perf variant and under stacktop  (wall time, overhead)
#   2. each profiler attached with -p to a running timed workload for S seconds         (profiler CPU, file size)
#   3. each profiler's report and flamegraph of the file recorded in step 2              (post-processing time)
set -euo pipefail

mode=fp runs=5 freq=999 seconds=3 workload=split event=cpu-clock keep=0
die() { echo "record_vs_perf: $*" >&2; exit 1; }
note() { echo "record_vs_perf: $*" >&2; }

while (($#)); do
    case $1 in
        --mode) mode=${2:?}; shift 2 ;;
        --runs) runs=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --workload) workload=${2:?}; shift 2 ;;
        --event) event=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
workload=$(basename "$workload" .c) # accept assets/split.c as well as split
case $mode in fp | hybrid | dwarf) ;; *) die "--mode must be fp, hybrid or dwarf, got '$mode'" ;; esac
case $workload in split | mutex) ;; *) die "--workload must be split or mutex, got '$workload'" ;; esac
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1)) || die "--runs must be a positive integer"
[[ $freq =~ ^[0-9]+$ ]] && ((freq >= 1)) || die "--freq must be a positive integer"
[[ $seconds =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--seconds must be a number"

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-bench.XXXXXX")
if ((keep)); then trap 'note "files kept in $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
data=$work/data.tsv # one measurement a line: round, tool, metric, value

# ---------------------------------------------------------------------------------------------------- tools
command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"
command -v python3 >/dev/null || die "python3 is needed for the summary"
if [[ ! -x /usr/bin/time ]]; then
    # GNU time gives the rusage of the profiler process alone; bash's `time` keyword cannot be pointed at one pid.
    if ((EUID == 0)) && command -v apt-get >/dev/null; then
        note "installing GNU time (/usr/bin/time)"
        apt-get install -y -qq time >/dev/null || die "apt-get install time failed"
    else
        die "/usr/bin/time is missing (Debian: apt-get install time)"
    fi
fi

if [[ -n ${STACKTOP:-} ]]; then
    [[ -x $STACKTOP ]] || die "STACKTOP=$STACKTOP is not an executable"
    built=$STACKTOP
else
    note "building stacktop (cargo build --release)"
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" || die "cargo build --release failed"
    built=$target_dir/release/stacktop
fi
# A private copy: other builds into a shared target directory cannot swap the binary in the middle of a run.
stacktop=$work/stacktop
cp "$built" "$stacktop"
"$stacktop" --help >/dev/null 2>&1 || die "$built does not run"
version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
[[ -n ${STACKTOP:-} ]] && version="$STACKTOP"

# The flamegraph pipeline on perf's side: inferno's CLI, installed under the target directory when missing;
# else Brendan Gregg's FlameGraph scripts; else perf script alone, which the summary says.
tools_bin=$target_dir/bench-tools/bin
export PATH=$tools_bin:$PATH
if ! command -v inferno-collapse-perf >/dev/null || ! command -v inferno-flamegraph >/dev/null; then
    note "installing inferno's CLI into $target_dir/bench-tools (once)"
    CARGO_HOME=$target_dir/bench-tools/cargo-home CARGO_TARGET_DIR=$target_dir/bench-tools/build \
        cargo install --quiet --locked --root "$target_dir/bench-tools" inferno >&2 ||
        note "cargo install inferno failed"
fi
if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    fg_tool="perf script | inferno-collapse-perf | inferno-flamegraph"
    perf_flamegraph() { perf script -i "$1" 2>/dev/null | inferno-collapse-perf | inferno-flamegraph >"$2"; }
elif command -v stackcollapse-perf.pl >/dev/null && command -v flamegraph.pl >/dev/null; then
    fg_tool="perf script | stackcollapse-perf.pl | flamegraph.pl"
    perf_flamegraph() { perf script -i "$1" 2>/dev/null | stackcollapse-perf.pl | flamegraph.pl >"$2"; }
else
    fg_tool="perf script alone (no inferno or FlameGraph scripts: perf's flamegraph time is a lower bound)"
    perf_flamegraph() { perf script -i "$1" >/dev/null 2>&1; }
fi

# ------------------------------------------------------------------------------------------------ workloads
cflags=(-O2 -g -pthread -I "$repo/assets")
cc "${cflags[@]}" -fno-omit-frame-pointer -o "$work/fixed_work" "$repo/benches/fixed_work.c"
cc "${cflags[@]}" -fno-omit-frame-pointer -o "$work/timed" "$repo/assets/$workload.c"
cc "${cflags[@]}" -fomit-frame-pointer -o "$work/fixed_work_nofp" "$repo/benches/fixed_work.c"

# Rounds of fixed work that take about S seconds unrecorded, from a short timed run (after one warm-up).
case $workload in split) probe_rounds=100 ;; mutex) probe_rounds=100000 ;; esac
"$work/fixed_work" "$workload" "$probe_rounds" >/dev/null
read -r probe_wall _ < <("$work/fixed_work" "$workload" "$probe_rounds")
rounds=$(python3 -c "print(max(1, round($probe_rounds * $seconds / $probe_wall)))")

# ------------------------------------------------------------------------------------------------ profilers
# Tools are stacktop plus perf with the same unwinding; hybrid has no perf counterpart, so it faces both.
case $mode in
    fp) perfs=(perf_fp) ;;
    dwarf) perfs=(perf_dwarf) ;;
    hybrid) perfs=(perf_fp perf_dwarf) ;;
esac
profilers=(stacktop "${perfs[@]}")

# record_cmd TOOL OUT: the profiler's record command line, in the array `cmd`, up to its target.
record_cmd() {
    case $1 in
        stacktop) cmd=("$stacktop" record -e "$event" -F "$freq" --call-graph "$mode" -o "$2") ;;
        perf_fp) cmd=(perf record -e "$event" -F "$freq" -g -o "$2") ;;
        perf_dwarf) cmd=(perf record -e "$event" -F "$freq" --call-graph dwarf -o "$2") ;;
    esac
}

# Does stacktop really unwind in this mode, rather than only accept the flag? Record the fixed work built
# without frame pointers: a DWARF-based unwinder finds main above the leaf hot_a, a frame-pointer walk cannot.
record_cmd stacktop "$work/probe.pb.gz"
"${cmd[@]}" -- "$work/fixed_work_nofp" split 100 >/dev/null 2>"$work/probe.err" ||
    die "stacktop record --call-graph $mode failed, so this mode is not supported yet: $(tail -1 "$work/probe.err")"
if [[ $mode != fp ]]; then
    "$stacktop" report -i "$work/probe.pb.gz" --folded >"$work/probe.folded"
    reached=$(awk '/;hot_a( |;)/ { all += $NF; if (/(^|;)main;hot_a/) main += $NF }
                   END { printf "%d", all ? 100 * main / all : 0 }' "$work/probe.folded")
    ((reached >= 50)) || die "stacktop accepts --call-graph $mode but does not unwind with it yet:" \
        "only $reached% of hot_a's samples in a binary without frame pointers reach main (want >= 50%)"
fi

# ------------------------------------------------------------------------------------------------- measuring
put() { printf '%s\t%s\t%s\t%s\n' "$round" "$1" "$2" "$3" >>"$data"; }
now() { echo "$EPOCHREALTIME"; }
since() { python3 -c "print(f'{$(now) - $1:.6f}')"; }
samples_in() { grep -oE '\(([0-9]+) samples' "$1" | grep -oE '[0-9]+' | tail -1 || echo 0; }

# Fixed work, unrecorded or launched under TOOL: the workload's own wall and CPU time (it prints them), and the
# wall time of the whole record command.
launch_run() {
    local tool=$1 t0 times
    t0=$(now)
    if [[ $tool == none ]]; then
        times=$("$work/fixed_work" "$workload" "$rounds")
    else
        record_cmd "$tool" "$work/launch.$tool.$round"
        times=$("${cmd[@]}" -- "$work/fixed_work" "$workload" "$rounds" 2>"$work/launch.err") ||
            die "$tool failed on the fixed work: $(tail -3 "$work/launch.err")"
        put "$tool" command_wall "$(since "$t0")"
        rm -f "$work/launch.$tool.$round"
    fi
    put "$tool" work_wall "${times% *}"
    put "$tool" work_cpu "${times#* }"
}

# TOOL attached with -p to the timed workload for S seconds: the profiler's own CPU time (the workload is not
# its child, so /usr/bin/time sees the profiler alone; perf's `sleep` child adds ~0), its wall time past S,
# the samples it took and the size of its file.
attach_run() {
    local tool=$1 out=$work/attach.$1.$round wpid tpid ppid running elapsed user sys maxrss
    # The workloads take CPU seconds of the whole process: a multi-threaded one (mutex) spends them up to one
    # per CPU per second, and ended before the profilers did (perf then exits with SIGTERM). Killed below.
    "$work/timed" "$(python3 -c "print(($seconds + 3) * $(nproc))")" &
    wpid=$!
    sleep 0.3 # let the workload start its threads, so that every profiler sees the same ones
    record_cmd "$tool" "$out"
    case $tool in
        stacktop) cmd+=(-p "$wpid" --duration "$seconds") ;;
        perf_*) cmd+=(-p "$wpid" -- sleep "$seconds") ;;
    esac
    /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "${cmd[@]}" >/dev/null 2>"$work/attach.err" &
    tpid=$!
    # The profiler's CPU while it records: its user+sys clock ticks (threads that ended included) S seconds
    # after it was started, before the deadline its own clock starts a little later. What it does after the
    # recording (symbols read for the file) is the rest of `cpu`.
    sleep "$seconds"
    ppid=$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null | awk '{ print $1 }')
    running=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/${ppid:-none}/stat" 2>/dev/null || echo nan)
    wait "$tpid" || die "$tool failed attached to the workload: $(tail -3 "$work/attach.err")"
    kill "$wpid" && wait "$wpid" 2>/dev/null || true
    read -r elapsed user sys maxrss <"$work/time.txt"
    put "$tool" cpu "$(python3 -c "print($user + $sys)")"
    [[ $running == nan ]] || put "$tool" cpu_running "$running"
    put "$tool" rss "$maxrss"
    put "$tool" tail "$(python3 -c "print($elapsed - $seconds)")"
    put "$tool" samples "$(samples_in "$work/attach.err")"
    put "$tool" size "$(stat -c %s "$out")"
}

# Post-processing of the file from attach_run: the call-graph report and a flamegraph SVG.
post_run() {
    local tool=$1 in=$work/attach.$1.$round t0
    t0=$(now)
    if [[ $tool == stacktop ]]; then "$stacktop" report -i "$in" >/dev/null; else perf report -i "$in" --stdio >/dev/null 2>&1; fi
    put "$tool" report "$(since "$t0")"
    t0=$(now)
    if [[ $tool == stacktop ]]; then "$stacktop" flamegraph -i "$in" -o "$work/x.svg" 2>/dev/null; else perf_flamegraph "$in" "$work/x.svg"; fi
    put "$tool" flamegraph "$(since "$t0")"
    rm -f "$in" "$work/x.svg"
}


load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "mode $mode, $runs rounds of ${profilers[*]} on $workload; fixed work $rounds rounds (~${seconds}s)"
for ((round = 1; round <= runs; round++)); do
    note "round $round/$runs"
    for tool in $(rotated "$round" none "${profilers[@]}"); do launch_run "$tool"; done
    for tool in $(rotated "$round" "${profilers[@]}"); do attach_run "$tool"; done
    for tool in $(rotated "$round" "${profilers[@]}"); do post_run "$tool"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------------------------------------------- summary
python3 - "$data" "${profilers[@]}" <<EOF
import statistics, sys
sys.path.insert(0, "$repo/benches")
from table import print_table, spread
from collections import defaultdict

path, profilers = sys.argv[1], sys.argv[2:]
label = {"none": "unrecorded", "stacktop": "stacktop", "perf_fp": "perf -g", "perf_dwarf": "perf dwarf"}
runs = defaultdict(dict)  # (tool, metric) -> {round: value}
for line in open(path):
    rnd, tool, metric, value = line.split("\t")
    runs[tool, metric][int(rnd)] = float(value)

# Overhead of each round against that round's unrecorded run.
for tool in profilers:
    for kind in "wall", "cpu":
        base, rec = runs["none", "work_" + kind], runs[tool, "work_" + kind]
        runs[tool, kind + "_overhead"] = {r: 100 * (rec[r] / base[r] - 1) for r in rec}
for tool in profilers:
    runs[tool, "cpu_per_sample"] = {r: 1e6 * c / max(1, runs[tool, "samples"][r])
                                     for r, c in runs[tool, "cpu"].items()}

rows = [  # metric, title, scale, format, ratio?
    ("work_wall", "workload wall, fixed work (s)", 1, "{:.3f}", True),
    ("wall_overhead", "  overhead vs unrecorded (%)", 1, "{:+.1f}", False),
    ("work_cpu", "workload CPU, fixed work (s)", 1, "{:.3f}", True),
    ("cpu_overhead", "  overhead vs unrecorded (%)", 1, "{:+.1f}", False),
    ("command_wall", "record command wall, launch (s)", 1, "{:.3f}", True),
    ("cpu", "profiler CPU user+sys, ${seconds}s attached (s)", 1, "{:.3f}", True),
    ("cpu_running", "  of it while recording, first ${seconds}s (s)", 1, "{:.3f}", True),
    ("rss", "  profiler max RSS, attached (MB)", 1 / 1024, "{:.1f}", True),
    ("samples", "  samples taken", 1, "{:.0f}", True),
    ("cpu_per_sample", "  profiler CPU per sample (us)", 1, "{:.1f}", True),
    ("tail", "record start+finish: wall - ${seconds}s (s)", 1, "{:.3f}", True),
    ("report", "report > /dev/null (s)", 1, "{:.3f}", True),
    ("flamegraph", "flamegraph SVG (s)", 1, "{:.3f}", True),
    ("size", "recorded file (KiB)", 1 / 1024, "{:.1f}", True),
]

def cell(tool, metric, scale, fmt):
    return spread((v * scale for v in runs[tool, metric].values()), fmt)

perfs = [p for p in profilers if p != "stacktop"]
columns = ["none", "stacktop"] + perfs
header = ["metric"] + [label[t] for t in columns] + [f"stacktop/{label[p]}" for p in perfs]
table = [header]
for metric, title, scale, fmt, ratio in rows:
    line = [title] + [cell(t, metric, scale, fmt) for t in columns]
    for p in perfs:
        a, b = runs["stacktop", metric].values(), runs[p, metric].values()
        if ratio and a and b and statistics.median(b) != 0:
            line.append(f"{statistics.median(a) / statistics.median(b):.2f}")
        elif metric.endswith("overhead") and a and b:
            line.append(f"{statistics.median(a) - statistics.median(b):+.1f} pp")
        else:
            line.append("")
    table.append(line)

print()
print("stacktop ${version} vs $(perf --version) -- --call-graph ${mode}, -e ${event} -F ${freq}, ${runs} interleaved rounds")
print("workload ${workload}: fixed work = fixed_work ${workload} ${rounds} (~${seconds}s unrecorded); attached = assets/${workload}.c for ${seconds}s")
print("perf flamegraph: ${fg_tool}")
print("load average: ${load_start} at start, ${load_end} at end (on $(nproc) CPUs)")
print("cells: median [min..max] over the rounds; ratios: median over median")
print()
print_table(table)
EOF
