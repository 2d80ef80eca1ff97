#!/usr/bin/env bash
# `stacktop record -a` against `perf record -a -g` while a multi-threaded Rust build runs (issue 16, target 4):
# each tool's CPU and peak RSS for the recording, the CPU of its report, and its own share of the machine's
# samples in its own recording. See benches/README.md.
#
# Usage: benches/build_vs_perf.sh [--runs N] [--seconds S] [--warmup S] [--freq HZ] [--keep]
#                                 [--stacktop-args 'ARGS']
#   --runs N      rounds, each on a fresh build (default 3)
#   --seconds S   recording length (default 10)
#   --warmup S    how long the build runs before both start recording (default 20: dependencies compile
#                 side by side, every CPU busy)
#   --freq HZ     sampling frequency of both (default 999, stacktop's default)
#   --keep        keep the work directory (recordings, build)
#   --stacktop-args 'ARGS'  more `stacktop record` options (e.g. '--call-graph hybrid,4096')
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo build --release).
#   TMPDIR        where the work directory goes: the build and the recordings take about 1 GB.
#
# The build is `cargo build --release --offline` of this checkout's sources (a copy, with a target directory of
# its own, started afresh each round). Both tools record the same 10 s of it at once, each under GNU time
# (stacktop: `record -a -e cpu-clock --duration S`; perf: `record -a -g -e cpu-clock -- sleep S`), so each
# also samples the other; GNU time's max RSS is the recorder's own (perf's `sleep` child is far smaller).
# The build is stopped, then each recording is reported (stacktop `report`, perf `report --stdio`) under GNU
# time. A tool's own share is the share of the samples of its own pid (`report --sort pid`) in its own file.
set -euo pipefail

runs=3 seconds=10 warmup=20 freq=999 keep= extra=
die() { echo "build_vs_perf: $*" >&2; exit 1; }
note() { echo "build_vs_perf: $*" >&2; }
while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --warmup) warmup=${2:?}; shift 2 ;;
        --freq) freq=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        --stacktop-args) extra=${2?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
command -v perf >/dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"
command -v cargo >/dev/null || die "cargo is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
[[ -x /usr/bin/time ]] || { note "installing GNU time"; apt-get install -y -qq time >/dev/null; }

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/stacktop-build.XXXXXX")
build_pgid=
stop_build() {
    if [[ -n $build_pgid ]]; then
        kill -- "-$build_pgid" 2>/dev/null || true
        wait 2>/dev/null || true
        while kill -0 -- "-$build_pgid" 2>/dev/null; do sleep 0.2; done
        build_pgid=
    fi
}
cleanup() {
    stop_build
    if [[ -n $keep ]]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [[ -n ${STACKTOP:-} ]]; then
    stacktop=$STACKTOP
else
    note "building stacktop (cargo build --release)"
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" || die "cargo build --release failed"
    stacktop=${CARGO_TARGET_DIR:-$repo/target}/release/stacktop
fi
mkdir -p "$work/src"
(cd "$repo" && git archive HEAD) | tar -x -C "$work/src"

# Prints "user+sys max_rss_kB" from a GNU time file written with -f "%U %S %M".
cpu_rss() { awk '{ printf "%.2f %d\n", $1 + $2, $3 }' "$1"; }
# The share (percent) of `pid`'s samples in a report sorted by pid.
share_of() { awk -v pid="$1" '$2 == pid { gsub("%", "", $1); s += $1 } END { printf "%.2f\n", s + 0 }'; }

printf 'round\ttool\trecord_cpu_s\trecord_max_rss_MB\treport_cpu_s\treport_max_rss_MB\tsamples\town_share_pct\n' >"$work/data.tsv"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$runs"); do
    rm -rf "$work/target" "$work"/*.pb.gz "$work"/perf.data*
    # In a session of its own, whose leader writes its id: the build's process group, stopped as one.
    rm -f "$work/build.pgid"
    CARGO_TARGET_DIR="$work/target" setsid bash -c 'echo $$ >"$1/build.pgid"; cd "$1/src" &&
        exec cargo build --release --offline --quiet' _ "$work" >"$work/build.log" 2>&1 &
    sleep 1
    build_pgid=$(cat "$work/build.pgid" 2>/dev/null || true)
    [[ -n $build_pgid ]] || die "the build did not start (see $work/build.log)"
    sleep "$warmup"
    # Both recorders start at once and sample the same seconds of the build.
    /usr/bin/time -f "%U %S %M" -o "$work/st.time" "$stacktop" record -a -e cpu-clock -F "$freq" $extra \
        --duration "$seconds" -o "$work/st.pb.gz" 2>"$work/st.err" &
    st=$!
    /usr/bin/time -f "%U %S %M" -o "$work/perf.time" perf record -a -g -e cpu-clock -F "$freq" \
        -o "$work/perf.data" -- sleep "$seconds" 2>"$work/perf.err" &
    pf=$!
    sleep 1
    st_pid=$(pgrep -P "$st" || true)
    perf_pid=$(pgrep -P "$pf" || true)
    wait "$st" || die "stacktop record failed: $(tail -3 "$work/st.err")"
    wait "$pf" || die "perf record failed: $(tail -3 "$work/perf.err")"
    stop_build
    /usr/bin/time -f "%U %S %M" -o "$work/st-report.time" "$stacktop" report -i "$work/st.pb.gz" >/dev/null
    /usr/bin/time -f "%U %S %M" -o "$work/perf-report.time" perf report -i "$work/perf.data" --stdio \
        >/dev/null 2>&1
    st_samples=$(grep -o '([0-9]* samples' "$work/st.err" | tr -dc 0-9)
    st_share=$("$stacktop" report -i "$work/st.pb.gz" --sort pid --no-children -g none 2>/dev/null |
        share_of "$st_pid")
    perf_samples=$(perf script -i "$work/perf.data" -F pid 2>/dev/null | wc -l)
    perf_share=$(perf report -i "$work/perf.data" --stdio --sort pid --no-children -g none 2>/dev/null |
        awk -v pid="$perf_pid" '$2 ~ ("^" pid ":") { gsub("%", "", $1); s += $1 } END { printf "%.2f\n", s + 0 }')
    read -r st_cpu st_rss < <(cpu_rss "$work/st.time")
    read -r st_rcpu st_rrss < <(cpu_rss "$work/st-report.time")
    read -r pf_cpu pf_rss < <(cpu_rss "$work/perf.time")
    read -r pf_rcpu pf_rrss < <(cpu_rss "$work/perf-report.time")
    printf '%s\tstacktop\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$st_cpu" "$((st_rss / 1024))" "$st_rcpu" \
        "$((st_rrss / 1024))" "$st_samples" "$st_share" >>"$work/data.tsv"
    printf '%s\tperf\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$pf_cpu" "$((pf_rss / 1024))" "$pf_rcpu" \
        "$((pf_rrss / 1024))" "${perf_samples:-?}" "$perf_share" >>"$work/data.tsv"
    tail -2 "$work/data.tsv"
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/data.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cols = ["record_cpu_s", "record_max_rss_MB", "report_cpu_s", "report_max_rss_MB", "own_share_pct"]
def cell(tool, col):
    v = [float(r[col]) for r in rows if r["tool"] == tool]
    return statistics.median(v), min(v), max(v)
print(f"{'':22}{'stacktop':>24}{'perf':>24}{'ratio':>8}")
for col in cols:
    s, p = cell("stacktop", col), cell("perf", col)
    ratio = s[0] / p[0] if p[0] else float("nan")
    print(f"{col:22}{s[0]:>9.2f} [{s[1]:.2f}..{s[2]:.2f}]{p[0]:>9.2f} [{p[1]:.2f}..{p[2]:.2f}]{ratio:>8.2f}")
st = [float(r["record_cpu_s"]) + float(r["report_cpu_s"]) for r in rows if r["tool"] == "stacktop"]
pf = [float(r["record_cpu_s"]) + float(r["report_cpu_s"]) for r in rows if r["tool"] == "perf"]
print(f"{'record+report CPU s':22}{statistics.median(st):>9.2f} [{min(st):.2f}..{max(st):.2f}]"
      f"{statistics.median(pf):>9.2f} [{min(pf):.2f}..{max(pf):.2f}]{statistics.median(st) / statistics.median(pf):>8.2f}")
PY
