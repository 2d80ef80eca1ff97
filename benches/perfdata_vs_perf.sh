#!/usr/bin/env bash
# Reading perf.data: stacktop against perf on the same files. See benches/README.md.
#
# Usage: benches/perfdata_vs_perf.sh [--runs N] [--keep] [--dir DIR] [--only g|dwarf] [--perf-timeout SECS] [--big]
#   STACKTOP=/path/to/stacktop  benchmark that binary instead of building this checkout (cargo --release).
#
# --big: instead, record a multi-threaded build (`cargo build --release --offline -j2` of a `git archive` copy
# of this checkout, into a target directory of its own under DIR): `-g` at -F 15000 for at most 660 s, and
# `--call-graph dwarf` at -F 999 for 100 s (each file 500 to 650 MB on a 2-CPU machine; the build is stopped
# with SIGINT at the limit). Give --dir on a disk with 2 GB free (the files are kept there and reused).
#
# Records `rustc` compiling the regex-syntax crate from the cargo registry at opt-level 2 (a real, large,
# frame-pointer-less program, available offline) twice with perf: `-g` and `--call-graph dwarf` (both
# `-e cpu-clock -F 999`: no hardware PMU needed). Then, on each file, times (wall, median of N runs) and peak
# memory (max RSS, GNU time) of:
#   stacktop report -i F                        vs  perf report -i F --stdio
#   stacktop flamegraph -i F -o x.svg           vs  perf script -i F | inferno-collapse-perf | inferno-flamegraph
# For a pipeline, GNU time's max RSS is the largest single process of it. perf's commands are stopped after
# --perf-timeout seconds (default 600; perf 6.1 forks addr2line for dwarf files and can wait on it for a long
# time): the cell then reads ">SECS" and the speedup is a lower bound.
set -euo pipefail

runs=3 keep=0 dir= only='g dwarf' perf_timeout=600 big=0
die() { echo "perfdata_vs_perf: $*" >&2; exit 1; }
note() { echo "perfdata_vs_perf: $*" >&2; }
while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        --dir) dir=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --perf-timeout) perf_timeout=${2:?}; shift 2 ;;
        --big) big=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1)) || die "--runs must be a positive integer"

repo=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
command -v rustc >/dev/null || die "rustc is not installed"
if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) == 0 ]]; then apt-get install -y time >/dev/null; else die "GNU time is missing (apt-get install time)"; fi
fi
for tools in "$target_dir/tools/bin" "$target_dir/bench-tools/bin"; do
    [[ -d $tools ]] && PATH=$PATH:$tools
done
if ! command -v inferno-flamegraph >/dev/null; then
    note "installing inferno's CLI under $target_dir/tools"
    cargo install inferno --root "$target_dir/tools" >/dev/null 2>&1 || die "cannot install inferno (cargo install inferno)"
    PATH=$PATH:$target_dir/tools/bin
fi
if [[ -z ${STACKTOP:-} ]]; then
    (cd "$repo" && cargo build --release -q)
    STACKTOP=$target_dir/release/stacktop
fi

work=${dir:-$(mktemp -d /tmp/perfdata-bench.XXXXXX)}
mkdir -p "$work"
((keep)) || [[ -n $dir ]] || trap 'rm -rf "$work"' EXIT
crate=$(ls -d "$HOME"/.cargo/registry/src/*/regex-syntax-0.8.* 2>/dev/null | tail -1)
[[ -n $crate ]] || die "regex-syntax is not in ~/.cargo/registry/src (run cargo fetch in this repo)"
workload=(rustc --edition 2021 --crate-type lib --crate-name regex_syntax -C opt-level=2
    --cfg 'feature="std"' --cfg 'feature="unicode"' "$crate/src/lib.rs" --out-dir "$work/out")

if ((big)); then
    [[ -d $work/src ]] || { mkdir -p "$work/src" && (cd "$repo" && git archive HEAD) | tar -x -C "$work/src"; }
fi
for mode in g dwarf; do
    [[ -s $work/$mode.data ]] && continue
    flag=(-g) freq=999
    [[ $mode == dwarf ]] && flag=(--call-graph dwarf)
    if ((big)); then
        limit=660
        [[ $mode == g ]] && freq=15000
        [[ $mode == dwarf ]] && limit=100
        note "recording cargo build -j2 with perf ${flag[*]} -F $freq for at most ${limit}s"
        (cd "$work/src" && perf record -q -e cpu-clock -F "$freq" "${flag[@]}" -o "$work/$mode.data" -- \
            timeout -s INT "$limit" cargo build --release --offline -j2 --target-dir "$work/target-$mode") \
            >/dev/null 2>&1 || true
        [[ -s $work/$mode.data ]] || die "perf record of the build failed"
        continue
    fi
    note "recording rustc with perf ${flag[*]}"
    perf record -q -e cpu-clock -F "$freq" "${flag[@]}" -o "$work/$mode.data" -- "${workload[@]}" 2>/dev/null
done

# Runs a shell command N times under GNU time (stopped after $2 seconds when given); prints
# "median_seconds max_rss_mb", or ">SECS max_rss_mb" when it was stopped.
measure() {
    local cmd=$1 limit=${2:-0} i times=() rss=0 status
    for ((i = 0; i < runs; i++)); do
        status=0
        if ((limit > 0)); then
            /usr/bin/time -f '%e %M' -o "$work/time.txt" timeout "$limit" sh -c "$cmd" >/dev/null 2>"$work/stderr.txt" || status=$?
        else
            /usr/bin/time -f '%e %M' -o "$work/time.txt" sh -c "$cmd" >/dev/null 2>"$work/stderr.txt" || status=$?
        fi
        if ((status == 124)); then
            printf '>%s %s\n' "$limit" "$(($(tail -1 "$work/time.txt" | cut -d' ' -f2) / 1024))"
            return
        fi
        # Killed (perf report runs out of memory on the --big files): the time and memory it reached.
        if ((status == 137 && limit > 0)); then
            read -r t m < <(tail -1 "$work/time.txt")
            printf '>%s %s\n' "${t%.*}" "$((m / 1024))"
            return
        fi
        ((status == 0)) || { cat "$work/stderr.txt" >&2; die "failed: $cmd"; }
        read -r t m < <(tail -1 "$work/time.txt")
        times+=("$t")
        ((m > rss)) && rss=$m
    done
    printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((runs + 1) / 2))p")" "$((rss / 1024))"
}

what="rustc -C opt-level=2 on $(basename "$crate")"
((big)) && what="cargo build --release -j2 of stacktop"
printf '# perf.data: %s (%s), %d runs each, median wall / max RSS\n' \
    "$what" "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" "$runs"
printf '%-7s %-11s %8s %22s %22s %9s\n' file task samples stacktop perf speedup
speedup() { case $1 in '>'*) echo ">$(echo "${1#>} / $2" | bc -l | xargs printf '%.1f')" ;; *) echo "$1 / $2" | bc -l | xargs printf '%.1f' ;; esac; }
for mode in $only; do
    f=$work/$mode.data
    samples=$(perf script -i "$f" -F tid --hide-call-graph 2>/dev/null | wc -l)
    size=$(du -m "$f" | cut -f1)
    read -r st sm <<<"$(measure "'$STACKTOP' report -i '$f'")"
    read -r pt pm <<<"$(measure "perf report -i '$f' --stdio" "$perf_timeout")"
    printf '%-7s %-11s %8s %13ss %5sMB %13ss %5sMB %8sx\n' "$mode(${size}M)" report "$samples" "$st" "$sm" "$pt" "$pm" \
        "$(speedup "$pt" "$st")"
    read -r st sm <<<"$(measure "'$STACKTOP' flamegraph -i '$f' -o '$work/st.svg'")"
    read -r pt pm <<<"$(measure "perf script -i '$f' | inferno-collapse-perf | inferno-flamegraph > '$work/perf.svg'" "$perf_timeout")"
    printf '%-7s %-11s %8s %13ss %5sMB %13ss %5sMB %8sx\n' "$mode(${size}M)" flamegraph "$samples" "$st" "$sm" "$pt" "$pm" \
        "$(speedup "$pt" "$st")"
done
