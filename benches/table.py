"""What the benchmark scripts' summaries share: a `median [min..max]` cell and an aligned table.

The scripts' summaries are Python heredocs; they import this with `sys.path.insert(0, "$repo/benches")`.
"""

import statistics


def spread(values, fmt):
    """`median [min..max]` of `values`, each formatted with `fmt` ("{:.2f}"); empty when there are none."""
    values = sorted(values)
    if not values:
        return ""
    return f"{fmt.format(statistics.median(values))} [{fmt.format(values[0])}..{fmt.format(values[-1])}]"


def print_table(table):
    """Prints `table` (rows of strings, the first its header): the first column left-aligned, the others
    right-aligned, a rule under the header."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
