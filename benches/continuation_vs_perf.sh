#!/usr/bin/env bash
# What continuing stack walks in live memory costs, and how many stacks it completes, on a real rustc compile:
# stacktop with and without the continuation against perf's dwarf unwinding with 8 KiB and 64 KiB copies.
# See benches/README.md.
#
# Usage: benches/continuation_vs_perf.sh [--runs N] [--freq HZ] [--event EVENT] [--variants LIST] [--keep]
#   --runs N        interleaved rounds (default 3)
#   --freq HZ       sampling frequency of every profiler (default 999)
#   --event EVENT   sampled event of every profiler (default cpu-clock: no hardware PMU needed)
#   --variants L    comma-separated, from: stacktop, nocont, perf8, perf64 (default all; the unrecorded
#                   compile always runs)
#   --keep          keep the temporary directory with the raw measurements (data.tsv) and the last round's
#                   stacktop profiles
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#
# The workload: rustup's real rustc (not the rustup proxy) compiling the unit tests of regex-syntax
# (`rustc --test -C opt-level=2`, all its default features, from ~/.cargo/registry/src: no dependencies, about
# 15 s on 2 CPUs, linked by rust-lld). rustc, librustc_driver and libLLVM have no frame pointers and deep stacks.
# Each round runs, in an order rotated from round to round:
#   none      the compile alone
#   stacktop  stacktop record (default: hybrid,16384, continuation in live memory on)
#   nocont    stacktop record --no-continue
#   perf8     perf record --call-graph dwarf (8 KiB copies)
#   perf64    perf record --call-graph dwarf,65528 (the kernel's largest copy)
# The compile runs under its own GNU time (`/usr/bin/time rustc ...`, the profiler's child), the profiler command
# under another: the compile's wall and CPU come from the inner one, the profiler's own CPU is the outer user+sys
# minus the inner (the profiler's rusage includes its waited-for children). Rooted: the share of CPU samples whose
# outermost frame is a thread root (_start, _dl_start_user, start_thread, clone3, clone, __libc_start_main,
# __libc_start_call_main); stacktop's from `stacktop report --folded`, perf's from `perf script --no-inline
# --max-stack 65535` (perf unwinds at that point, so its rooted share needs it: its time is the "analysis" row;
# stacktop's analysis is the `report --folded` run).
set -euo pipefail

runs=3 freq=999 event=cpu-clock keep=0 variants=stacktop,nocont,perf8,perf64
die() { echo "continuation_vs_perf: $*" >&2; exit 1; }
note() { echo "continuation_vs_perf: $*" >&2; }

while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --event) event=${2:?}; shift 2 ;;
        --variants) variants=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1)) || die "--runs must be a positive integer"
[[ $freq =~ ^[0-9]+$ ]] && ((freq >= 1)) || die "--freq must be a positive integer"
IFS=, read -r -a tools <<<"$variants"
for t in "${tools[@]}"; do
    case $t in stacktop | nocont | perf8 | perf64) ;; *) die "unknown variant '$t'" ;; esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-continuation.XXXXXX")
if ((keep)); then trap 'note "files kept in $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
trap 'exit 130' INT TERM
data=$work/data.tsv # round, tool, metric, value

# ---------------------------------------------------------------------------------------------------- tools
command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"
command -v python3 >/dev/null || die "python3 is needed for the summary"
command -v rustc >/dev/null || die "rustc is not installed (rustup)"
if [[ ! -x /usr/bin/time ]]; then
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
"$stacktop" record --help 2>/dev/null | grep -q -- --no-continue ||
    die "$built has no --no-continue: it predates the continuation (issue 15)"
version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
[[ -n ${STACKTOP:-} ]] && version="$STACKTOP (checkout $version)"

# ------------------------------------------------------------------------------------------------- workload
# The real compiler, not rustup's proxy (which would be one more process between the profiler and rustc).
rustc_bin=$(rustc --print sysroot)/bin/rustc
[[ -x $rustc_bin ]] || die "no rustc under $(rustc --print sysroot)/bin"
crate=$(ls -d "$HOME"/.cargo/registry/src/*/regex-syntax-0.8.* 2>/dev/null | sort -V | tail -1)
[[ -n $crate ]] || die "regex-syntax 0.8 is not in ~/.cargo/registry/src (run cargo fetch in this repo)"
features=()
for f in std unicode unicode-age unicode-bool unicode-case unicode-gencat unicode-perl unicode-script unicode-segment; do
    features+=(--cfg "feature=\"$f\"")
done
mkdir -p "$work/out"
compile=("$rustc_bin" --edition 2021 --test --crate-name regex_syntax -C opt-level=2 "${features[@]}"
    "$crate/src/lib.rs" --out-dir "$work/out")
"${compile[@]}" >/dev/null 2>"$work/compile.err" || die "the compile fails: $(grep -m1 '^error' "$work/compile.err")"
rm -rf "$work/out" && mkdir -p "$work/out"

# -------------------------------------------------------------------------------------------------- measuring
put() { printf '%s\t%s\t%s\t%s\n' "$round" "$1" "$2" "$3" >>"$data"; }
now() { echo "$EPOCHREALTIME"; }
since() { python3 -c "print(f'{$(now) - $1:.6f}')"; }

# The outermost frame of every stack in a `perf script -F comm,tid,ip,sym` listing (stdin): prints the number
# of samples and the number whose outermost frame is a thread root; with an argument, the most frequent
# outermost frames into that file.
perf_roots() {
    python3 -c '
import collections, sys
roots = {"_start", "_dl_start_user", "start_thread", "clone3", "clone", "__clone", "__clone3",
         "__libc_start_main", "__libc_start_call_main"}
outer = collections.Counter()
last = None
def end():
    global last
    if last is not None:
        outer[last] += 1
    last = None
for line in sys.stdin:
    if not line.strip():
        end()
    elif line[0] not in " \t":
        end()
        last = "[no frames]"
    else:
        parts = line.split(None, 1)
        last = parts[1].strip().split(" (")[0] if len(parts) > 1 else "[unknown]"
end()
print(sum(outer.values()), sum(n for k, n in outer.items() if k in roots))
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        for k, n in outer.most_common(10):
            print(n, k, file=f)
' "$@"
}
# The same from `stacktop report --folded` (stdin): "outermost;...;innermost COUNT" lines.
folded_roots() {
    python3 -c '
import collections, sys
roots = {"_start", "_dl_start_user", "start_thread", "clone3", "clone", "__clone", "__clone3",
         "__libc_start_main", "__libc_start_call_main"}
outer = collections.Counter()
for line in sys.stdin:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if stack:
        outer[stack.split(";")[0]] += int(count)
print(sum(outer.values()), sum(n for k, n in outer.items() if k in roots))
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        for k, n in outer.most_common(10):
            print(n, k, file=f)
' "$@"
}

# One compile under TOOL: wall and CPU of the compile, the profiler's own CPU, its file, samples, lost and
# rooted share, and the time of the analysis that gives the rooted share.
run_one() {
    local tool=$1 out=$work/out.$1 err=$work/err.$1 inner=$work/inner.txt outer=$work/outer.txt
    local prof=()
    case $tool in
        none) ;;
        stacktop) prof=("$stacktop" record -e "$event" -F "$freq" -o "$out.pb.gz") ;;
        nocont) prof=("$stacktop" record -e "$event" -F "$freq" --no-continue -o "$out.pb.gz") ;;
        perf8) prof=(perf record -e "$event" -F "$freq" --call-graph dwarf -o "$out.data") ;;
        perf64) prof=(perf record -e "$event" -F "$freq" --call-graph dwarf,65528 -o "$out.data") ;;
    esac
    rm -rf "$work/out" && mkdir -p "$work/out"
    if [[ $tool == none ]]; then
        /usr/bin/time -f '%e %U %S' -o "$inner" "${compile[@]}" >/dev/null 2>"$err" ||
            die "the compile failed: $(grep -m1 '^error' "$err")"
    else
        /usr/bin/time -f '%e %U %S' -o "$outer" "${prof[@]}" -- \
            /usr/bin/time -f '%e %U %S' -o "$inner" "${compile[@]}" >/dev/null 2>"$err" ||
            die "$tool failed on the compile: $(grep -v '^warning' "$err" | tail -3)"
    fi
    local wall user sys owall ouser osys
    read -r wall user sys <"$inner"
    put "$tool" wall "$wall"
    put "$tool" compile_cpu "$(python3 -c "print($user + $sys)")"
    [[ $tool == none ]] && return
    read -r owall ouser osys < <(tail -1 "$outer")
    put "$tool" command_wall "$owall"
    put "$tool" prof_cpu "$(python3 -c "print(max(0.0, $ouser + $osys - $user - $sys))")"
    local t0 counts total rooted
    case $tool in
        stacktop | nocont)
            put "$tool" size "$(stat -c %s "$out.pb.gz")"
            put "$tool" lost "$(grep -oE '[0-9]+ lost' "$err" | tail -1 | grep -oE '^[0-9]+' || echo 0)"
            t0=$(now)
            counts=$("$stacktop" report -i "$out.pb.gz" --folded 2>/dev/null | folded_roots "$work/outer.$tool")
            put "$tool" analysis "$(since "$t0")"
            "$stacktop" report -i "$out.pb.gz" 2>/dev/null | grep -E '^# (Unwind |  )' >"$work/header.$tool" || true
            if ((keep)); then mv "$out.pb.gz" "$work/last.$tool.pb.gz"; else rm -f "$out.pb.gz"; fi
            ;;
        perf*)
            put "$tool" size "$(stat -c %s "$out.data")"
            # "Processed N samples and lost P%!": the share of samples perf's ring lost.
            put "$tool" lost_pct "$(grep -oE 'lost [0-9.]+%' "$err" | tail -1 | grep -oE '[0-9.]+' || echo 0)"
            t0=$(now)
            counts=$(perf script -i "$out.data" --no-inline --max-stack 65535 -F comm,tid,ip,sym 2>/dev/null |
                perf_roots "$work/outer.$tool")
            put "$tool" analysis "$(since "$t0")"
            rm -f "$out.data"
            ;;
    esac
    read -r total rooted <<<"$counts"
    put "$tool" samples "$total"
    put "$tool" rooted "$(python3 -c "print(100 * $rooted / max(1, $total))")"
}


load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "$runs rounds of: none ${tools[*]}; rustc --test -C opt-level=2 on $(basename "$crate")"
for ((round = 1; round <= runs; round++)); do
    note "round $round/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
    for tool in $(rotated "$round" none "${tools[@]}"); do run_one "$tool"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------------------------------------------- summary
python3 - "$data" "$work" <<EOF
import os, statistics, sys
sys.path.insert(0, "$repo/benches")
from table import print_table, spread
from collections import defaultdict

path, work = sys.argv[1], sys.argv[2]
label = {"none": "unrecorded", "stacktop": "stacktop", "nocont": "--no-continue", "perf8": "perf dwarf 8K",
         "perf64": "perf dwarf 64K"}
runs = defaultdict(dict)  # (tool, metric) -> {round: value}
present = set()
for line in open(path):
    rnd, tool, metric, value = line.rstrip("\n").split("\t")
    runs[tool, metric][int(rnd)] = float(value)
    present.add(tool)
columns = [t for t in label if t in present]
for t in columns:
    if t != "none":
        base, rec = runs["none", "wall"], runs[t, "wall"]
        runs[t, "slowdown"] = {r: rec[r] / base[r] for r in rec if base.get(r)}
        runs[t, "cpu_per_sample"] = {r: 1e6 * c / max(1, runs[t, "samples"].get(r, 0))
                                     for r, c in runs[t, "prof_cpu"].items()}
        runs[t, "total_cost"] = {r: c + runs[t, "analysis"].get(r, 0) for r, c in runs[t, "prof_cpu"].items()}

def med(tool, metric):
    v = runs[tool, metric].values()
    return statistics.median(v) if v else None

def cell(tool, metric, scale, fmt):
    return spread((v * scale for v in runs[tool, metric].values()), fmt)

def show(table):
    print_table(table)
    print()

rows = [  # metric, title, scale, format
    ("wall", "compile wall (s)", 1, "{:.2f}"),
    ("slowdown", "  x unrecorded (per round)", 1, "{:.3f}"),
    ("compile_cpu", "compile CPU user+sys (s)", 1, "{:.2f}"),
    ("command_wall", "record command wall (s)", 1, "{:.2f}"),
    ("prof_cpu", "profiler CPU user+sys (s)", 1, "{:.3f}"),
    ("samples", "  CPU samples", 1, "{:.0f}"),
    ("cpu_per_sample", "  profiler CPU per sample (us)", 1, "{:.1f}"),
    ("lost", "  samples lost (stacktop)", 1, "{:.0f}"),
    ("lost_pct", "  samples lost (perf, %)", 1, "{:.2f}"),
    ("size", "output file (MiB)", 1 / 2**20, "{:.2f}"),
    ("rooted", "rooted samples (%)", 1, "{:.1f}"),
    ("analysis", "analysis: report --folded / perf script (s)", 1, "{:.2f}"),
    ("total_cost", "profiler CPU + analysis (s)", 1, "{:.2f}"),
]
print()
print("stacktop ${version} vs $(perf --version); ${runs} interleaved rounds; -e ${event} -F ${freq}")
print("workload: $(basename "$rustc_bin") $("$rustc_bin" --version | cut -d' ' -f2) --test -C opt-level=2 on $(basename "$crate")")
print("load average ${load_start} at start, ${load_end} at end (on $(nproc) CPUs); cells: median [min..max]")
print()
table = [["metric"] + [label[t] for t in columns]]
for metric, title, scale, fmt in rows:
    line = [title] + [cell(t, metric, scale, fmt) for t in columns]
    if any(line[1:]):
        table.append(line)
show(table)

def ratio_cell(a, b, metric, fmt="{:.2f}"):
    return spread((runs[a, metric][r] / runs[b, metric][r] for r in runs[a, metric]
                   if runs[b, metric].get(r)), fmt)

def pp_cell(a, b, metric):
    return spread((runs[a, metric][r] - runs[b, metric][r] for r in runs[a, metric] if r in runs[b, metric]),
                  "{:+.1f}")

ratios = [["ratio (per round: median [min..max])", "value"]]
if "stacktop" in present and "nocont" in present:
    ratios.append(["stacktop CPU / --no-continue CPU (target <= 1.10)", ratio_cell("stacktop", "nocont", "prof_cpu")])
    ratios.append(["stacktop rooted - --no-continue rooted (points)", pp_cell("stacktop", "nocont", "rooted")])
for p in "perf64", "perf8":
    if "stacktop" in present and p in present:
        ratios.append([f"stacktop rooted - {label[p]} rooted (points)", pp_cell("stacktop", p, "rooted")])
        ratios.append([f"stacktop profiler CPU / {label[p]}", ratio_cell("stacktop", p, "prof_cpu")])
        ratios.append([f"stacktop CPU + analysis / {label[p]}", ratio_cell("stacktop", p, "total_cost")])
        ratios.append([f"stacktop compile wall / {label[p]}", ratio_cell("stacktop", p, "wall", "{:.3f}")])
        ratios.append([f"stacktop file / {label[p]}", ratio_cell("stacktop", p, "size", "{:.4f}")])
if len(ratios) > 1:
    show(ratios)

for t in columns:
    f = os.path.join(work, "outer." + t)
    if t != "none" and os.path.exists(f):
        print(f"{label[t]}: most frequent outermost frames, last round:")
        for line in open(f):
            print("    " + line.rstrip()[:150])
for t in "stacktop", "nocont":
    f = os.path.join(work, "header." + t)
    if os.path.exists(f) and os.path.getsize(f):
        print(f"{label[t]}: report header's unwind lines, last round:")
        for line in open(f):
            print("    " + line.rstrip())
EOF
