#!/usr/bin/env bash
# Runs every fuzz target for a set time and prints what each found.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [PARALLEL] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 600; PARALLEL (targets run at once, one libFuzzer job each) to 1. With no
# TARGET, every target in fuzz/fuzz_targets. Installs cargo-fuzz and the nightly toolchain when missing.
#
# Each target starts from its checked-in seeds (fuzz/seeds/TARGET) plus what earlier runs found
# (fuzz/corpus/TARGET, not committed). libFuzzer stops a target at its first finding; the finding is in
# fuzz/artifacts/TARGET: crash-* (a panic, or a sanitizer report), oom-* (more than 1 GiB resident) or
# timeout-* (one input took more than 10 s): the limits of issue 10 with margin (1 GB, 30 s).
# Logs: fuzz/logs/TARGET/. Exit status 1 when fuzz/artifacts holds any finding (of this run or an earlier
# one: delete what has been dealt with), or an input kept in fuzz/crashes still crashes.
#
# Environment: FUZZ_ARGS, extra libFuzzer flags: e.g. "-fork=1 -ignore_crashes=1" to go on past findings
# (each is still written to fuzz/artifacts), "-max_len=65536" for larger inputs than the largest seed.
set -euo pipefail

seconds=${1:-600}
parallel=${2:-1}
shift $(($# < 2 ? $# : 2))

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$fuzz_dir/.."

if ! command -v rustup >/dev/null; then
    echo "run.sh: rustup is needed to install the nightly toolchain" >&2
    exit 2
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The fuzz crate is a workspace of its own: the main crate's [patch] section (vendored dependencies) does
# not reach it, fuzz/Cargo.toml repeats it. Fuzzing other code than stacktop builds would find nothing real.
patches() { sed -n '/^\[patch\.crates-io\]/,/^\[/p' "$1" | grep -o '^[A-Za-z0-9_-]* *= *{ *path *= *"[^"]*"' | tr -d ' ' | sed 's|path="\.\./|path="|' | sort; }
if [[ "$(patches Cargo.toml)" != "$(patches "$fuzz_dir/Cargo.toml")" ]]; then
    echo "run.sh: the [patch.crates-io] sections of Cargo.toml and fuzz/Cargo.toml differ; make them agree" >&2
    exit 2
fi

# One build of every target, before any runs (a `cargo fuzz run` would otherwise build each in turn).
cargo +nightly fuzz build
binaries="$fuzz_dir/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

# Inputs kept in fuzz/crashes/TARGET/ (see fuzz/README.md) are replayed first. One that no longer crashes
# joins the corpus, as a regression input; one that still crashes is counted as "known" and left out,
# since libFuzzer would stop at it before fuzzing anything.
known_crashes() {
    local target=$1 file scratch
    scratch=$(mktemp -d)
    for file in "$fuzz_dir/crashes/$target"/*; do
        [[ -f "$file" ]] || continue
        if (cd "$scratch" && "$binaries/$target" -artifact_prefix="$scratch/" "$file" >/dev/null 2>&1); then
            cp -n "$file" "$fuzz_dir/corpus/$target/" 2>/dev/null || true
        else
            echo "$file"
        fi
    done
    rm -rf "$scratch"
}

# Each target runs as one libFuzzer job in one worker process (-jobs=1 -workers=1: the machine is shared).
# In that mode libFuzzer writes the job's log to ./fuzz-0.log, so each target runs in its own log
# directory, fuzz/logs/TARGET.
run_one() {
    local target=$1
    local corpus="$fuzz_dir/corpus/$target"
    local logs="$fuzz_dir/logs/$target"
    rm -rf "$logs"
    mkdir -p "$corpus" "$logs" "$fuzz_dir/artifacts/$target"
    if [[ -d "$fuzz_dir/seeds/$target" ]]; then
        cp -n "$fuzz_dir/seeds/$target"/* "$corpus/" 2>/dev/null || true
    fi
    known_crashes "$target" >"$logs/known-crashes"
    # Text formats get a dictionary of their tokens: libFuzzer rarely spells out "ffffffffffffffff" itself.
    local dict=()
    if [[ -f "$fuzz_dir/dicts/$target.dict" ]]; then
        dict=("-dict=$fuzz_dir/dicts/$target.dict")
    fi
    echo "run.sh: $target for ${seconds}s"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    (cd "$logs" && cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 \
        -jobs=1 -workers=1 -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-} >run.log 2>&1) || true
}

running=0
for target in "${targets[@]}"; do
    if ((parallel > 1)); then
        run_one "$target" &
        running=$((running + 1))
        if ((running >= parallel)); then
            wait -n || true
            running=$((running - 1))
        fi
    else
        run_one "$target"
    fi
done
wait

count() { find "$fuzz_dir/artifacts/$1" -maxdepth 1 -name "$2-*" 2>/dev/null | wc -l; }
# libFuzzer's final stats (printed at the end of the time, and at a finding); fork mode prints none, only
# status lines "#EXECUTIONS: ... exec/s: N ...".
stat_of() {
    local logs=("$fuzz_dir/logs/$1"/fuzz-*.log) value
    value=$(cat "${logs[@]}" 2>/dev/null | grep -o "stat::$2: *[0-9]*" | grep -o '[0-9]*$' | tail -1)
    if [[ -z "$value" && $2 == number_of_executed_units ]]; then
        value=$(cat "${logs[@]}" 2>/dev/null | grep -o '^#[0-9]*:' | tr -d '#:' | tail -1)
    elif [[ -z "$value" && $2 == average_exec_per_sec ]]; then
        value=$(cat "${logs[@]}" 2>/dev/null | grep -o 'exec/s: [0-9]*' | grep -o '[0-9]*$' | tail -1)
    fi
    echo "${value:-?}"
}
found=0
known=0
printf '\n%-18s %12s %8s %8s %6s %6s %8s %6s\n' target executions exec/s rss_mb crash oom timeout known
for target in "${targets[@]}"; do
    crash=$(count "$target" crash)
    oom=$(count "$target" oom)
    timeout=$(count "$target" timeout)
    still=$(wc -l <"$fuzz_dir/logs/$target/known-crashes" 2>/dev/null || echo 0)
    found=$((found + crash + oom + timeout))
    known=$((known + still))
    printf '%-18s %12s %8s %8s %6d %6d %8d %6d\n' "$target" "$(stat_of "$target" number_of_executed_units)" \
        "$(stat_of "$target" average_exec_per_sec)" "$(stat_of "$target" peak_rss_mb)" "$crash" "$oom" "$timeout" "$still"
done
if ((known > 0)); then
    echo
    echo "run.sh: $known input(s) of fuzz/crashes/ still crash:"
    for target in "${targets[@]}"; do
        cat "$fuzz_dir/logs/$target/known-crashes"
    done
fi
if ((found > 0)); then
    echo
    echo "run.sh: $found finding(s) in fuzz/artifacts/; minimize each with"
    echo "  cargo +nightly fuzz tmin TARGET fuzz/artifacts/TARGET/FILE"
    echo "and keep it under fuzz/crashes/TARGET/ (see fuzz/README.md)."
fi
if ((found + known > 0)); then
    exit 1
fi
