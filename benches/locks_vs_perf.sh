#!/usr/bin/env bash
# What `stacktop record --locks` costs: an uncontended program (it should cost nothing) and a contended one,
# against perf's probes on pthread_mutex_lock (`perf probe -x LIBC`), side by side. See benches/README.md.
#
# Usage: benches/locks_vs_perf.sh [--runs N] [--part uncontended|contended|both] [--pairs N] [--threads N]
#                                 [--pthread-pairs N] [--iters N] [--workers N] [--hold STEPS] [--rest STEPS]
#                                 [--variants LIST] [--keep]
#   --runs N           interleaved rounds (default 5)
#   --part P           which benchmark: uncontended, contended or both (default both)
#   --pairs N          uncontended lock/unlock pairs per thread (default 10000000)
#   --threads N        uncontended threads, each with its own mutex (default 1)
#   --pthread-pairs N  pairs per thread under --locks=pthread, which traps at every call (default 100000)
#   --iters N          contended takes per thread (default 50000)
#   --workers N        contended threads on the one mutex (default 4)
#   --hold STEPS       contended work under the lock, in steps of about 1 ns (default 3000)
#   --rest STEPS       contended work outside the lock (default 3000)
#   --variants L       comma-separated, from: stacktop, locks, locks_pthread, perf_lock, perf_lock_unlock
#                      (default all; the perf ones run in the contended part only)
#   --keep             keep the temporary directory with the raw measurements (data.tsv)
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#
# Both workloads do a fixed amount of work and print their own wall and CPU time, so the slowdown is a ratio of
# times and the profilers' start-up and finishing work are left out. Each round runs every variant once, in an
# order rotated from round to round; ratios are per round, over that round's unrecorded run.
#   none              the workload alone
#   stacktop          stacktop record (CPU samples and off-CPU time, no lock probes): what --locks adds is the
#                     difference between this and the next
#   locks             stacktop record --locks (probes on glibc's __lll_lock_wait, its ret and __lll_lock_wake:
#                     hit only when a lock is contended)
#   locks_pthread     stacktop record --locks=pthread (probes on every pthread_mutex_lock and unlock call)
#   perf_lock         perf probe -x LIBC pthread_mutex_lock and pthread_mutex_lock%return, then
#                     perf record -e 'GROUP:*' -g: the anchor a perf user reaches for (a wait is the time
#                     between the two; no holder side)
#   perf_lock_unlock  the same plus a probe on pthread_mutex_unlock (the releaser's stack, as stacktop records)
# The perf probes are created once in a group of their own (stacktop_bench<PID>), and deleted at exit, even on
# failure. Probe hits: stacktop's "lock probe hits" (its last line), perf's SAMPLE events (`perf report --stats`).
set -euo pipefail

runs=5 part=both pairs=10000000 threads=1 pthread_pairs=100000 iters=50000 workers=4 hold=3000 rest=3000 keep=0
variants=stacktop,locks,locks_pthread,perf_lock,perf_lock_unlock
die() { echo "locks_vs_perf: $*" >&2; exit 1; }
note() { echo "locks_vs_perf: $*" >&2; }

while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --part) part=${2:?}; shift 2 ;;
        --pairs) pairs=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --pthread-pairs) pthread_pairs=${2:?}; shift 2 ;;
        --iters) iters=${2:?}; shift 2 ;;
        --workers) workers=${2:?}; shift 2 ;;
        --hold) hold=${2:?}; shift 2 ;;
        --rest) rest=${2:?}; shift 2 ;;
        --variants) variants=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
for opt in runs pairs threads pthread_pairs iters workers; do
    [[ ${!opt} =~ ^[0-9]+$ ]] && ((${!opt} >= 1)) || die "--${opt//_/-} must be a positive integer"
done
for opt in hold rest; do [[ ${!opt} =~ ^[0-9]+$ ]] || die "--$opt must be a non-negative integer"; done
case $part in uncontended | contended | both) ;; *) die "--part must be uncontended, contended or both" ;; esac
IFS=, read -r -a tools <<<"$variants"
for t in "${tools[@]}"; do
    case $t in stacktop | locks | locks_pthread | perf_lock | perf_lock_unlock) ;; *) die "unknown variant '$t'" ;; esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-locks.XXXXXX")
group=stacktop_bench$$ probes=0
cleanup() {
    if ((probes)); then
        perf probe -q -d "$group:*" >/dev/null 2>&1 || true
        if perf probe -l 2>/dev/null | grep -q "$group:"; then note "could not delete the probes: perf probe -d '$group:*'"; fi
    fi
    if ((keep)); then note "files kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
data=$work/data.tsv # part, round, tool, metric, value

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
for prog in uncontended contended; do
    cc -O2 -g -fno-omit-frame-pointer -pthread -I "$repo/assets" -o "$work/$prog" "$repo/benches/$prog.c"
done
"$work/uncontended" 1000 >/dev/null
"$work/contended" 100 >/dev/null
libc=$(ldd "$work/contended" | awk '$1 ~ /^libc\.so/ {print $3; exit}')
[[ -n $libc ]] && libc=$(readlink -f "$libc")
[[ -f $libc ]] || die "could not find the libc the workloads load (ldd $work/contended)"

put() { printf '%s\t%s\t%s\t%s\t%s\n' "$part_now" "$round" "$1" "$2" "$3" >>"$data"; }

# What a stacktop run left on stderr: "stacktop: wrote F (N samples, M switch-outs, H lock probe hits, ...)".
stacktop_hits() { grep 'stacktop: wrote' "$1" | tail -1 | grep -oE '[0-9]+ lock probe hits' | grep -oE '^[0-9]+' || echo 0; }
# Contended waits stacktop recorded: "# Locks: N contended waits, ...".
stacktop_waits() {
    "$stacktop" report --locks -i "$1" 2>/dev/null | grep -oE '^# Locks: [0-9]+ contended waits' | grep -oE '[0-9]+' || echo 0
}

# One run of the uncontended loop under TOOL.
run_uncontended() {
    local tool=$1 out=$work/out.$1 err=$work/err.$1 times n=$pairs
    [[ $tool == locks_pthread ]] && n=$pthread_pairs
    case $tool in
        none) times=$("$work/uncontended" "$n" "$threads") ;;
        stacktop) times=$("$stacktop" record -o "$out" -- "$work/uncontended" "$n" "$threads" 2>"$err") ;;
        locks) times=$("$stacktop" record --locks -o "$out" -- "$work/uncontended" "$n" "$threads" 2>"$err") ;;
        locks_pthread)
            times=$("$stacktop" record --locks=pthread -o "$out" -- "$work/uncontended" "$n" "$threads" 2>"$err") ;;
    esac || die "$tool failed on the uncontended loop: $(tail -3 "$err" 2>/dev/null)"
    local wall cpu
    read -r wall cpu _ <<<"$times"
    put "$tool" wall "$wall"
    put "$tool" cpu "$cpu"
    put "$tool" pairs "$n"
    # Per pair: the wall time of each thread's loop, and the CPU time of all threads over all pairs.
    put "$tool" ns_pair "$(python3 -c "print($wall / $n * 1e9)")"
    put "$tool" cpu_ns_pair "$(python3 -c "print($cpu / ($n * $threads) * 1e9)")"
    [[ $tool == none || $tool == stacktop ]] || put "$tool" hits "$(stacktop_hits "$err")"
    rm -f "$out"
}

# One run of the contended workload under TOOL.
run_contended() {
    local tool=$1 out=$work/out.$1 err=$work/err.$1 times
    local w=("$work/contended" "$iters" "$workers" "$hold" "$rest")
    case $tool in
        none) times=$("${w[@]}") ;;
        stacktop) times=$("$stacktop" record -o "$out" -- "${w[@]}" 2>"$err") ;;
        locks) times=$("$stacktop" record --locks -o "$out" -- "${w[@]}" 2>"$err") ;;
        locks_pthread) times=$("$stacktop" record --locks=pthread -o "$out" -- "${w[@]}" 2>"$err") ;;
        perf_lock) times=$(perf record -q -e "$group:lock" -e "$group:lock_ret__return" -g -o "$out" -- "${w[@]}" 2>"$err") ;;
        perf_lock_unlock) times=$(perf record -q -e "$group:*" -g -o "$out" -- "${w[@]}" 2>"$err") ;;
    esac || die "$tool failed on the contended workload: $(tail -3 "$err" 2>/dev/null)"
    local wall cpu rate hits
    read -r wall cpu rate <<<"$times"
    put "$tool" wall "$wall"
    put "$tool" cpu "$cpu"
    put "$tool" rate "$rate"
    case $tool in
        none) ;;
        stacktop | locks | locks_pthread)
            if [[ $tool != stacktop ]]; then
                hits=$(stacktop_hits "$err")
                put "$tool" hits "$hits"
                put "$tool" waits "$(stacktop_waits "$out")"
            fi
            ;;
        perf_*)
            hits=$(perf report -i "$out" --stats 2>/dev/null | awk '/^ *SAMPLE events:/ {print $3; exit}')
            put "$tool" hits "${hits:-0}"
            put "$tool" lost "$(perf report -i "$out" --stats 2>/dev/null | awk '/^ *LOST events:/ {print $3; exit}' | grep . || echo 0)"
            ;;
    esac
    [[ $tool == none || $tool == stacktop ]] || put "$tool" hits_s "$(python3 -c "print(${hits:-0} / $wall)")"
    rm -f "$out"
}


uncontended_tools=() contended_tools=()
for t in "${tools[@]}"; do
    [[ $t == perf_* ]] || uncontended_tools+=("$t")
    contended_tools+=("$t")
done

# perf's probes, created once: pthread_mutex_lock's entry and return, pthread_mutex_unlock's entry.
if [[ $part != uncontended ]] && [[ " ${tools[*]} " == *" perf_"* ]]; then
    probes=1
    for spec in "lock=pthread_mutex_lock" "lock_ret=pthread_mutex_lock%return" "unlock=pthread_mutex_unlock"; do
        perf probe -q -x "$libc" -a "$group:$spec" >"$work/probe.err" 2>&1 ||
            die "perf probe -x $libc '$group:$spec' failed (root and tracefs needed): $(tail -1 "$work/probe.err")"
    done
    perf probe -l "$group:*" 2>/dev/null | grep -q "$group:lock_ret__return" ||
        die "perf probe did not create $group:lock_ret__return (perf probe -l says: $(perf probe -l 2>&1 | head -3))"
fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $part != contended ]]; then
    part_now=uncontended
    note "uncontended: $runs rounds of: none ${uncontended_tools[*]}; $pairs pairs x $threads threads"
    for ((round = 1; round <= runs; round++)); do
        note "uncontended round $round/$runs"
        for tool in $(rotated "$round" none "${uncontended_tools[@]}"); do run_uncontended "$tool"; done
    done
fi
if [[ $part != uncontended ]]; then
    part_now=contended
    note "contended: $runs rounds of: none ${contended_tools[*]}; $workers threads x $iters takes"
    for ((round = 1; round <= runs; round++)); do
        note "contended round $round/$runs"
        for tool in $(rotated "$round" none "${contended_tools[@]}"); do run_contended "$tool"; done
    done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$data" <<EOF
import statistics, sys
sys.path.insert(0, "$repo/benches")
from table import print_table, spread
from collections import defaultdict

label = {"none": "unrecorded", "stacktop": "stacktop", "locks": "stacktop --locks",
         "locks_pthread": "--locks=pthread", "perf_lock": "perf probe lock+ret",
         "perf_lock_unlock": "perf probe lock+ret+unlock"}
order = list(label)
runs = defaultdict(dict)
tools = defaultdict(set)
for line in open(sys.argv[1]):
    part, rnd, tool, metric, value = line.rstrip("\n").split("\t")
    runs[part, tool, metric][int(rnd)] = float(value or 0)
    tools[part].add(tool)

def ratio(part, tool, metric):
    base, rec = runs[part, "none", metric], runs[part, tool, metric]
    runs[part, tool, metric + "_x"] = {r: rec[r] / base[r] for r in rec if base.get(r)}

def cell(part, tool, metric, fmt):
    return spread(runs[part, tool, metric].values(), fmt)

def table(part, rows):
    columns = [t for t in order if t in tools[part]]
    lines = [["metric"] + [label[t] for t in columns]]
    for metric, title, fmt in rows:
        lines.append([title] + [cell(part, t, metric, fmt) for t in columns])
    print_table(lines)
    print()

print()
print("stacktop ${version} vs $(perf --version); ${runs} interleaved rounds; libc ${libc}")
print("load average ${load_start} at start, ${load_end} at end (on $(nproc) CPUs); cells: median [min..max]")
print()
if tools["uncontended"]:
    for t in tools["uncontended"]:
        for m in "ns_pair", "cpu_ns_pair":
            ratio("uncontended", t, m)
    print("uncontended: ${pairs} lock/unlock pairs x ${threads} thread(s), each thread its own mutex"
          " (--locks=pthread: ${pthread_pairs} pairs)")
    table("uncontended", [("ns_pair", "wall per pair (ns)", "{:.2f}"), ("ns_pair_x", "  slowdown (x unrecorded)", "{:.2f}"),
                          ("cpu_ns_pair", "CPU per pair (ns)", "{:.2f}"),
                          ("cpu_ns_pair_x", "  CPU slowdown (x unrecorded)", "{:.2f}"),
                          ("wall", "workload wall (s)", "{:.3f}"), ("hits", "lock probe hits", "{:.0f}")])
if tools["contended"]:
    for t in tools["contended"]:
        for m in "wall", "cpu":
            ratio("contended", t, m)
    print("contended: ${workers} threads x ${iters} takes of one mutex, ${hold} steps held, ${rest} outside")
    table("contended", [("wall", "workload wall (s)", "{:.3f}"), ("wall_x", "  slowdown (x unrecorded)", "{:.2f}"),
                        ("cpu", "workload CPU (s)", "{:.3f}"), ("cpu_x", "  CPU slowdown (x unrecorded)", "{:.2f}"),
                        ("rate", "lock takes per second", "{:.0f}"), ("hits", "probe hits", "{:.0f}"),
                        ("hits_s", "probe hits per second", "{:.0f}"),
                        ("waits", "contended waits (stacktop report --locks)", "{:.0f}"),
                        ("lost", "perf: PERF_RECORD_LOST", "{:.0f}")])
EOF
