"""Output: strict JSON (non-finite numbers become null plus a warning) and tables.

Tables are drawn by rich only on a terminal without NO_COLOR; otherwise they are
plain aligned text with ASCII rules, so grep and awk work.  rich is imported lazily.
"""
import json
import math
import os
import sys

import numpy as np


def fmt(x, digits=None):
    if x is None:
        return "null"
    x = float(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if digits:
        return f"{x:.{digits}g}"
    return repr(x)


def to_json_value(a, name, warnings):
    """Nested lists of floats; non-finite entries become None and are named in warnings."""
    arr = np.asarray(a, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = [",".join(map(str, i)) for i in np.argwhere(bad)[:5]]
        where = f" at [{'], ['.join(idx)}]" if arr.ndim else ""
        more = " and more" if bad.sum() > 5 else ""
        warnings.append(f"{name} is not finite{where}{more} (written as null)")
        obj = np.where(bad, None, arr.astype(object))
        return obj.tolist() if arr.ndim else None
    return arr.tolist()


def dumps(obj):
    return json.dumps(obj, allow_nan=False)


def use_rich(stream=None):
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def table(title, headers, rows, digits=None, footer=None, stream=None):
    """rows: [label, value, ...]; numbers are formatted, strings shown as they are."""
    stream = stream or sys.stdout
    cells = [[r[0]] + [c if isinstance(c, str) else fmt(c, digits) for c in r[1:]] for r in rows]
    if use_rich(stream):
        from rich.console import Console
        from rich.table import Table
        t = Table(title=title, title_justify="left", header_style="bold")
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for r in cells:
            t.add_row(*r)
        console = Console(file=stream, highlight=False)
        console.print(t)
        if footer:
            console.print(footer, markup=False, highlight=False)
        return
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *cells)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    if footer:
        lines.append(footer)
    stream.write("\n".join(lines) + "\n")


def error_line(message, stream=None):
    (stream or sys.stderr).write(f"error: {message}\n")
