# Helpers the benchmark scripts share; sourced, not run.

# rotated N WORD..: the words rotated left by N, so that no tool always runs first or last in a round.
rotated() {
    local n=$(($1 % ($# - 1))); shift
    local words=("$@")
    echo "${words[@]:n}" "${words[@]:0:n}"
}
