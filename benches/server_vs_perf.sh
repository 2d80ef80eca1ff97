#!/usr/bin/env bash
# stacktop against perf on a real multi-threaded program: memcached (4 worker threads, Debian's build: no
# frame pointers) serving memcslap's load on loopback. Each profiler is attached with -p for S seconds while
# memcslap runs a fixed number of requests. See benches/README.md for what each number means.
#
# Usage: benches/server_vs_perf.sh [--runs N] [--seconds S] [--freq HZ] [--mode hybrid|fp|dwarf]
#                                  [--stacktop-args 'ARGS']   (more `stacktop record` options: --no-off-cpu)
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout with cargo.
#
# Every round, in an order rotated from round to round, for none (unrecorded), stacktop and `perf record -g`:
#   the profiler attached to memcached; memcslap's fixed work (its time: the slowdown); the profiler's CPU
#   while it records (after S seconds) and in all, its max RSS; then its report of the file, timed.
set -euo pipefail

runs=5 seconds=8 freq=999 mode=hybrid event=cpu-clock extra=
die() { echo "server_vs_perf: $*" >&2; exit 1; }
note() { echo "server_vs_perf: $*" >&2; }

while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --mode) mode=${2:?}; shift 2 ;;
        --stacktop-args) extra=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case $mode in fp | hybrid | dwarf) ;; *) die "--mode must be fp, hybrid or dwarf, got '$mode'" ;; esac
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1)) || die "--runs must be a positive integer"
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds >= 3)) || die "--seconds must be an integer >= 3"

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-bench.XXXXXX")
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
data=$work/data.tsv # one measurement a line: round, tool, metric, value

# ---------------------------------------------------------------------------------------------------- tools
need=()
command -v perf >/dev/null || need+=(linux-perf)
command -v memcached >/dev/null || need+=(memcached)
command -v memcslap >/dev/null || need+=(libmemcached-tools)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
    ((EUID == 0)) && command -v apt-get >/dev/null || die "missing: ${need[*]} (Debian: apt-get install ${need[*]})"
    note "installing ${need[*]}"
    apt-get install -y -qq "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi
command -v python3 >/dev/null || die "python3 is needed for the summary"
if [[ -n ${STACKTOP:-} ]]; then
    [[ -x $STACKTOP ]] || die "STACKTOP=$STACKTOP is not an executable"
    built=$STACKTOP version=$STACKTOP
else
    note "building stacktop (cargo build --release)"
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" || die "cargo build --release failed"
    built=$target_dir/release/stacktop
    version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
fi
stacktop=$work/stacktop # a private copy: a build into the shared target directory cannot swap it mid-run
cp "$built" "$stacktop"

# --------------------------------------------------------------------------------------------------- server
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=(); ((EUID == 0)) && user=(-u root)
memcached "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -t 4 -m 256 &
server=$!
sleep 0.5
kill -0 "$server" 2>/dev/null || die "memcached did not start"
slap() { memcslap --servers="127.0.0.1:$port" --concurrency=4 --execute-number="$1" --flush 2>&1 |
    awk '/^Time total:/ { print $(NF - 1) }'; }
# Each run starts from an empty cache (--flush): a full one makes the sets slower run after run.
# Requests per client: doubled from 5,000 until a run takes an eighth of S unrecorded (the time is not
# linear in the requests: measured at the count used). Recorded, it takes up to 2.5 times as long with any
# profiler (every switch of a thread a per-task event follows costs the kernel more), and it must still end
# before the profiler does.
requests=5000
while :; do
    took=$(slap "$requests")
    [[ -n $took ]] || die "memcslap printed no time"
    python3 -c "import sys; sys.exit(0 if $took * 8 >= $seconds or $requests >= 10**7 else 1)" && break
    requests=$((requests * 2))
done

# ------------------------------------------------------------------------------------------------- measuring
put() { printf '%s\t%s\t%s\t%s\n' "$round" "$1" "$2" "$3" >>"$data"; }
ticks() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo nan; }

# The fixed work with TOOL attached to memcached for S seconds (none: the work alone).
run() {
    local tool=$1 out=$work/$1.$round tpid=none ppid before took elapsed user sys maxrss running
    case $tool in
        stacktop) cmd=("$stacktop" record -e "$event" -F "$freq" --call-graph "$mode" -o "$out"
            -p "$server" --duration "$seconds" $extra) ;;
        perf) cmd=(perf record -e "$event" -F "$freq" -g -o "$out" -p "$server" -- sleep "$seconds") ;;
    esac
    if [[ $tool != none ]]; then
        /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "${cmd[@]}" >/dev/null 2>"$work/err" &
        tpid=$!
        sleep 0.3
    fi
    before=$(ticks "$server")
    took=$(slap "$requests")
    [[ -n $took ]] || die "memcslap failed under $tool"
    [[ $tool == none || -n $(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null) ]] ||
        die "the work outlasted $tool's ${seconds}s: rerun with a larger --seconds"
    put "$tool" slap "$took"
    put "$tool" server_cpu "$(python3 -c "print($(ticks "$server") - $before)")"
    [[ $tool == none ]] && return
    # The profiler's CPU while it records: its ticks half a second before its S seconds end (the rest is
    # its finish).
    sleep "$(python3 -c "print(max(0, $seconds - 0.8 - $took))")"
    ppid=$( (cat "/proc/$tpid/task/$tpid/children" 2>/dev/null || true) | awk '{ print $1 }')
    running=$(ticks "${ppid:-none}")
    wait "$tpid" || die "$tool failed attached to memcached: $(tail -3 "$work/err")"
    read -r elapsed user sys maxrss <"$work/time.txt"
    put "$tool" cpu "$(python3 -c "print($user + $sys)")"
    [[ $running == nan ]] || put "$tool" cpu_running "$running"
    put "$tool" rss "$maxrss"
    put "$tool" size "$(stat -c %s "$out")"
    # The call-graph report of the file: its CPU (user + sys).
    if [[ $tool == stacktop ]]; then
        cmd=("$stacktop" report -i "$out" --stdio)
    else
        cmd=(perf report -i "$out" --stdio)
    fi
    /usr/bin/time -f '%U %S' -o "$work/time.txt" "${cmd[@]}" >/dev/null 2>&1 || die "$tool's report failed"
    read -r user sys <"$work/time.txt"
    put "$tool" report "$(python3 -c "print($user + $sys)")"
    rm -f "$out"
}


load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "$runs rounds; memcslap: 4 clients x $requests requests (${took}s unrecorded); attached ${seconds}s"
for ((round = 1; round <= runs; round++)); do
    note "round $round/$runs"
    for tool in $(rotated "$round" none stacktop perf); do run "$tool"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------------------------------------------- summary
python3 - "$data" <<EOF
import statistics, sys
sys.path.insert(0, "$repo/benches")
from table import print_table, spread
from collections import defaultdict

runs = defaultdict(dict)  # (tool, metric) -> {round: value}
for line in open(sys.argv[1]):
    rnd, tool, metric, value = line.split("\t")
    runs[tool, metric][int(rnd)] = float(value)
for tool in "stacktop", "perf":
    base, rec = runs["none", "slap"], runs[tool, "slap"]
    runs[tool, "slowdown"] = {r: 100 * (rec[r] / base[r] - 1) for r in rec if r in base}
    runs[tool, "total"] = {r: c + runs[tool, "report"].get(r, 0) for r, c in runs[tool, "cpu"].items()}

rows = [  # metric, title, scale, format
    ("slap", "memcslap fixed work (s)", 1, "{:.3f}"),
    ("slowdown", "  slowdown vs unrecorded (%)", 1, "{:+.1f}"),
    ("server_cpu", "memcached CPU during it (s)", 1, "{:.2f}"),
    ("cpu_running", "profiler CPU while recording, ${seconds}s - 0.5 s (s)", 1, "{:.3f}"),
    ("cpu", "profiler CPU in all, record (s)", 1, "{:.3f}"),
    ("report", "report CPU (s)", 1, "{:.3f}"),
    ("total", "record + report CPU (s)", 1, "{:.3f}"),
    ("rss", "profiler max RSS (MB)", 1 / 1024, "{:.1f}"),
    ("size", "recorded file (KiB)", 1 / 1024, "{:.1f}"),
]

def cell(tool, metric, scale, fmt):
    return spread((v * scale for v in runs[tool, metric].values()), fmt)

table = [["metric", "unrecorded", "stacktop", "perf -g", "stacktop/perf"]]
for metric, title, scale, fmt in rows:
    a, b = runs["stacktop", metric].values(), runs["perf", metric].values()
    ratio = ""
    if metric == "slowdown" and a and b:
        ratio = f"{statistics.median(a) - statistics.median(b):+.1f} pp"
    elif a and b and statistics.median(b) != 0:
        ratio = f"{statistics.median(a) / statistics.median(b):.2f}"
    table.append([title] + [cell(t, metric, scale, fmt) for t in ("none", "stacktop", "perf")] + [ratio])
print()
print("stacktop ${version} (--call-graph ${mode} ${extra}) vs $(perf --version) (-g), -e ${event} -F ${freq}, ${runs} rotated rounds")
print("$(memcached -V): 4 threads on 127.0.0.1; memcslap 4 clients x ${requests} requests; attached ${seconds}s")
print("load average: ${load_start} at start, ${load_end} at end (on $(nproc) CPUs)")
print("cells: median [min..max] over the rounds; ratios: median over median")
print()
print_table(table)
EOF
