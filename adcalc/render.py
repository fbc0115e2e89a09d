"""Output: strict JSON (non-finite numbers become null plus a warning) and tables.

Numbers on a screen (`fmt`): as Python writes them (the shortest round-trip repr: 5.5, 2.0,
1e+16) when that has at most 10 significant digits, else rounded to 10 (1.7163378145367738
shows 1.716337815, 515.4000000000001 shows 515.4); -0.0 shows as 0.0; nan, inf, -inf;
integers (int, numpy integers) without a point.  Differences and
tolerances (columns of kind "diff") show 3 significant digits.  `digits` overrides the
value digits.  `fmt_full` gives every digit (repr); JSON always keeps every digit.

Tables are drawn with rich only on a terminal without NO_COLOR (and TERM not dumb);
otherwise they are plain aligned text with ASCII rules and one row per line, so grep and
awk work (a `width=` argument makes plain text fit that width too).  No label, status
word or number is ever cut.  A table that is too wide is, in this order of preference:
drawn with its multi-word headers wrapped; drawn with its note column below each row;
split into column blocks that each repeat the row labels (tables of numbers only, such
as a Hessian); or drawn vertically, one block per row.  Titles are the only text that is
shortened (with an ellipsis).  User text is never read as rich markup.  rich is imported
lazily.
"""
import json
import math
import os
import re
import sys

import numpy as np

VALUE_DIGITS = 10       # significant digits of a value on screen
DIFF_DIGITS = 3         # ... of a difference or a tolerance
TITLE_LINES = 2         # a title longer than this many lines of the width is shortened
PLAIN_TITLE_MAX = 200   # the cap on a title in plain text without a width
KINDS = ("label", "value", "diff", "status", "note", "text")
STATUS_STYLES = {"ok": "green", "mismatch": "red", "kink": "yellow", "error": "red",
                 "unavailable": "dim", "not finite": "magenta", "available": "green"}
_HEADER_KINDS = {"status": "status", "note": "note", "notes": "note", "reason": "note",
                 "abs diff": "diff", "rel diff": "diff", "max abs diff": "diff", "max rel diff": "diff",
                 "tolerance": "diff", "spread": "diff", "error estimate": "diff"}
_FOOTER_STYLES = (("MISMATCH", "bold red"), ("error:", "red"), ("warning:", "yellow"), ("ok:", "green"))
_LEFT = ("label", "status", "note", "text")
_SEP = "  "


def fmt(x, digits=None):
    """One number for a screen: the shortest round-trip repr when it has at most `digits`
    (default 10) significant digits, else rounded to `digits`; -0.0 as 0.0."""
    if x is None:
        return "null"
    d = digits if digits and digits > 0 else VALUE_DIGITS
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        text = str(int(x))
        if _significant(text) <= d:
            return text
        try:
            return f"{float(x):.{d}g}"
        except OverflowError:  # beyond the float range
            return text
    x = float(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0.0"
    text = repr(x)
    return text if _significant(text) <= d else f"{x:.{d}g}"


def fmt_full(x):
    """Every digit: the repr round-trip of the double (2.0, -0.0, 1.7163378145367738)."""
    if x is None:
        return "null"
    x = float(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return repr(x)


def _significant(text):
    digits = text.partition("e")[0].lstrip("-").replace(".", "").strip("0")
    return max(len(digits), 1)


def to_json_value(a, name, warnings, labels=None):
    """Nested lists of floats; non-finite entries become None (null) and are named in
    `warnings` by their component labels (flat, row-major) when given: "gradient: infinite
    at x1; not a number at x[2]"."""
    arr = np.asarray(a, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        flat = arr.ravel()
        where = []
        for word, mask in (("infinite", np.isinf(flat)), ("not a number", np.isnan(flat))):
            idx = np.flatnonzero(mask)
            if idx.size:
                names = [labels[i] if labels is not None and i < len(labels) else
                         ("[" + ",".join(map(str, np.unravel_index(i, arr.shape))) + "]" if arr.ndim else "")
                         for i in idx[:5]]
                more = f" and {idx.size - 5} more" if idx.size > 5 else ""
                where.append(f"{word}" + (f" at {', '.join(names)}{more}" if any(names) else ""))
        warnings.append(f"{name}: {'; '.join(where)}")
        obj = np.where(bad, None, arr.astype(object))
        return obj.tolist() if arr.ndim else None
    return arr.tolist()


_LONE_SURROGATE = re.compile(r"\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}")


def dumps(obj):
    """Strict JSON (no NaN, no unpaired surrogates: those become U+FFFD), ASCII, one line."""
    text = json.dumps(obj, allow_nan=False)
    return _LONE_SURROGATE.sub(r"\\ufffd", text) if "\\ud" in text else text


def use_rich(stream=None):
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def table(title, headers, rows, digits=None, footer=None, stream=None, *, kinds=None, width=None,
          console=None):
    """Print a table.  rows: [label, cell, ...]; number cells are formatted (`fmt`), strings
    are shown as they are, None as an empty cell.

    kinds: one per column, from KINDS: "label" (the first column), "value" (numbers,
    `digits` significant digits), "diff" (differences and tolerances, 3 digits), "status"
    (a verdict word, coloured on a colour terminal), "note" (free text: the one cell that
    may be wrapped below its row), "text" (short words, left-aligned).  Without kinds,
    they follow the headers ("status"; "note", "reason"; "abs diff", "max rel diff",
    "tolerance", "spread", "error estimate", ...), except in a matrix (first header empty
    or "output \\ input"), whose columns are all values.
    width: the width to fit; by default the terminal's (rich) or none (plain text: one
    line per row).  console: a rich Console to draw on (implies a terminal).
    """
    if console is not None:
        stream = console.file
    stream = stream or sys.stdout
    n = max([len(headers)] + [len(r) for r in rows])
    headers = [_clean(str(h)) for h in headers] + [""] * (n - len(headers))
    kinds = _column_kinds(headers, rows, kinds, n)
    cells = [[_cell(c, k, digits) for c, k in zip(list(r) + [""] * (n - len(r)), kinds)] for r in rows]
    rich = console is not None or use_rich(stream)
    if rich and console is None:
        from rich.console import Console
        console = Console(file=stream, highlight=False, markup=False, emoji=False)
    w = width or (console.width if rich else None)
    lines = [[(t, "bold" if rich else None)] for t in _title_lines(_clean(str(title)), w, rich)] if title else []
    layout, body = _layout(headers, cells, kinds, w, rich) if n else ("grid", [])
    lines += body + ([[]] if footer and layout in ("blocks", "vertical") else [])
    if rich:
        from rich.text import Text
        body = Text("\n").join(Text.assemble(*line) for line in lines)
        console.print(body, highlight=False, markup=False, emoji=False)
        if footer:
            console.print(Text("\n").join(_footer_text(ln) for ln in _footer_lines(footer, w)),
                          highlight=False, markup=False, emoji=False)
        return
    text = ["".join(t for t, _ in line) for line in lines] + (_footer_lines(footer, w) if footer else [])
    stream.write("\n".join(text) + "\n")


def warning_line(message, stream=None):
    (stream or sys.stderr).write(f"warning: {message}\n")


def error_line(message, stream=None):
    (stream or sys.stderr).write(f"error: {message}\n")


# ---- cells -------------------------------------------------------------------------------
def _clean(text, keep_newlines=False):
    """Control characters escaped (a newline in a cell would break the table)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or (keep_newlines and ch == "\n") else ascii(ch)[1:-1] for ch in text)


def _column_kinds(headers, rows, kinds, n):
    if kinds is not None:
        kinds = list(kinds) + ["value"] * (n - len(kinds))
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ValueError(f"unknown column kind {bad[0]!r}; kinds are {', '.join(KINDS)}")
        return kinds
    matrix = not headers or headers[0] == "" or "\\" in headers[0]
    out = ["label"][:n]
    for i in range(1, n):
        kind = None if matrix else _HEADER_KINDS.get(headers[i].strip().lower())
        if kind is None:
            col = [r[i] for r in rows if i < len(r) and r[i] is not None]
            words = col and all(isinstance(c, str) for c in col) and not any(_numeric(c) for c in col)
            kind = "text" if words else "value"
        out.append(kind)
    return out


def _numeric(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def _cell(c, kind, digits):
    if c is None:
        return ""
    if isinstance(c, str):
        return _clean(c)
    if kind == "label":
        return _clean(str(c)) if isinstance(c, (int, np.integer)) else fmt(c, digits)
    return fmt(c, DIFF_DIGITS if kind == "diff" else digits)


def _cell_len(s):
    if s.isascii():
        return len(s)
    from rich.cells import cell_len
    return cell_len(s)


def _take(s, width):
    """The longest prefix of s that is at most `width` cells wide (at least one character)."""
    if s.isascii():
        return s[:max(width, 1)]
    out = ""
    for ch in s:
        if out and _cell_len(out + ch) > width:
            break
        out += ch
    return out


def _wrap(text, width):
    """Lines of at most `width` cells, broken at spaces; a longer word is folded, never dropped."""
    width = max(width, 1)
    lines, cur = [], ""
    for tok in re.findall(r"\S+|\s+", text):
        if tok.isspace():
            cur += tok if cur else ""
            continue
        if _cell_len(cur + tok) <= width:
            cur += tok
            continue
        if cur.strip():
            lines.append(cur.rstrip())
        while _cell_len(tok) > width:
            head = _take(tok, width)
            lines.append(head)
            tok = tok[len(head):]
        cur = tok
    if cur.strip() or not lines:
        lines.append(cur.rstrip())
    return lines


def _title_lines(title, width, rich):
    if width is None:
        return [title if len(title) <= PLAIN_TITLE_MAX else _take(title, PLAIN_TITLE_MAX - 3).rstrip() + "..."]
    lines = _wrap(title, width)
    if len(lines) <= TITLE_LINES:
        return lines
    dots = "…" if rich else "..."
    last = " ".join(lines[TITLE_LINES - 1:])
    return lines[:TITLE_LINES - 1] + [_take(last, max(width - _cell_len(dots), 1)).rstrip() + dots]


def _footer_lines(footer, width):
    """The footer's lines, each wrapped to the width (if any)."""
    return [w for ln in _clean(footer, keep_newlines=True).split("\n") for w in (_wrap(ln, width) if width else [ln])]


def _footer_text(line):
    from rich.text import Text
    for prefix, style in _FOOTER_STYLES:
        if line.startswith(prefix):
            return Text.assemble((prefix, style), line[len(prefix):])
    return Text(line)


# ---- layouts -----------------------------------------------------------------------------
# A line is a list of (text, style) pieces; style is None in plain text.
def _layout(headers, cells, kinds, width, rich):
    """(name, lines): "grid", "notes below", "blocks" or "vertical", the first that fits."""
    n = len(headers)
    lens = [[_cell_len(c) for c in r] for r in cells]
    body = [max([0] + [r[c] for r in lens]) for c in range(n)]
    full = [[h] for h in headers]
    grid = lambda cols, hdr, notes=(): _grid(headers, cells, kinds, cols, hdr, body, rich, notes, width)  # noqa: E731
    cols = list(range(n))
    if width is None:
        return "grid", grid(cols, full)
    hdr = _fit_headers(headers, cols, full, body, width)
    if hdr:
        return "grid", grid(cols, hdr)
    notes = [c for c in cols[1:] if kinds[c] == "note"]
    rest = [c for c in cols if c not in notes]
    if notes and len(rest) > 0:
        hdr = _fit_headers(headers, rest, full, body, width)
        if hdr:
            return "notes below", grid(rest, hdr, notes)
    if n > 2 and all(k in ("value", "diff") for k in kinds[1:]):
        blocks = _column_blocks(cols, full, body, width)
        if blocks:
            out = []
            for b in blocks:
                out += ([[]] if out else []) + grid([0] + b, full)
            return "blocks", out
    return "vertical", _vertical(headers, cells, kinds, width, rich)


def _col_width(c, hdr, body):
    return max([body[c]] + [_cell_len(h) for h in hdr[c]])


def _grid_width(cols, hdr, body):
    return sum(_col_width(c, hdr, body) for c in cols) + len(_SEP) * (len(cols) - 1)


def _fit_headers(headers, cols, full, body, width):
    """Header lines that let `cols` fit the width: as they are, else with multi-word headers
    wrapped (the biggest saving first); None when even that is too wide."""
    hdr = list(full)
    if _grid_width(cols, hdr, body) <= width:
        return hdr
    wrapped = {}
    for c in cols:
        words = headers[c].split()
        if len(words) > 1:
            wrapped[c] = _wrap(headers[c], max([body[c]] + [_cell_len(w) for w in words]))
    order = sorted(wrapped, key=lambda c: _col_width(c, {c: wrapped[c]}, body) - _col_width(c, full, body))
    for c in order:
        hdr[c] = wrapped[c]
        if _grid_width(cols, hdr, body) <= width:
            return hdr
    return None


def _column_blocks(cols, full, body, width):
    """Value columns split into blocks that each fit beside the label column."""
    room = width - _col_width(0, full, body) - len(_SEP)
    ws = {c: _col_width(c, full, body) for c in cols[1:]}
    if max(ws.values()) > room:
        return None
    fits = lambda b: sum(ws[c] for c in b) + len(_SEP) * (len(b) - 1) <= room  # noqa: E731
    blocks, cur = [], []
    for c in cols[1:]:
        if cur and not fits(cur + [c]):
            blocks.append(cur)
            cur = []
        cur.append(c)
    blocks.append(cur)
    k, m = len(blocks), len(ws)  # as nearly the same number of columns in each block as fits
    sizes = [m // k + (i < m % k) for i in range(k)]
    even = [cols[1 + sum(sizes[:i]):1 + sum(sizes[:i + 1])] for i in range(k)]
    return even if all(fits(b) for b in even) else blocks


def _grid(headers, cells, kinds, cols, hdr, body, rich, notes, width):
    ws = {c: _col_width(c, hdr, body) for c in cols}
    height = max(len(hdr[c]) for c in cols)
    out = []
    for i in range(height):  # headers aligned to the bottom, next to the rule
        pieces = []
        for c in cols:
            lines = [""] * (height - len(hdr[c])) + hdr[c]
            pieces.append(_padded(lines[i], ws[c], kinds[c], "bold" if rich else None))
        out.append(_joined(pieces))
    out.append(_joined([[("─" if rich else "-") * ws[c]] for c in cols]))
    for r in cells:
        out.append(_joined([_padded(r[c], ws[c], kinds[c], _style(r[c], kinds[c], rich)) for c in cols]))
        for c in notes:
            if r[c]:
                text = r[c] if len(notes) == 1 else f"{headers[c]}: {r[c]}"
                out += [[("  " + ln, None)] for ln in _wrap(text, (width or 1 << 30) - 2)]
    return out


def _padded(text, w, kind, style):
    gap = " " * (w - _cell_len(text))
    return [(gap, None), (text, style)] if kind not in _LEFT else [(text, style), (gap, None)]


def _joined(pieces):
    line = []
    for i, p in enumerate(pieces):
        if i:
            line.append((_SEP, None))
        line += [x if isinstance(x, tuple) else (x, None) for x in p]
    while line and not line[-1][0].strip():
        line.pop()
    if line:
        line[-1] = (line[-1][0].rstrip(), line[-1][1])
    return [x for x in line if x[0]]


def _style(text, kind, rich):
    if not rich:
        return None
    if kind == "status":
        return STATUS_STYLES.get(text.strip().lower())
    return None


def _vertical(headers, cells, kinds, width, rich):
    """One block per row: the label, then `header: value` lines; empty cells left out."""
    fields = range(1, len(headers))
    key_w = max([0] + [_cell_len(headers[c]) + 1 for c in fields if headers[c]])
    out = []
    for r in cells:
        if out:
            out.append([])
        out += [[(ln, "bold" if rich else None)] for ln in _wrap(r[0], width)]
        for c in fields:
            value = r[c]
            if value == "":
                continue
            key = f"{headers[c]}:" if headers[c] else ""
            lead = "  " + key + " " * (key_w - _cell_len(key)) + " "
            style = _style(value, kinds[c], rich)
            if kinds[c] == "note":
                room = width - _cell_len(lead)
                if room >= 20:
                    lines = _wrap(value, room)
                    out.append([(lead, None), (lines[0], style)])
                    out += [[(" " * _cell_len(lead) + ln, style)] for ln in lines[1:]]
                else:
                    out.append([("  " + key, None)])
                    out += [[("    " + ln, style)] for ln in _wrap(value, width - 4)]
            elif _cell_len(lead) + _cell_len(value) <= width:
                out.append([(lead, None), (value, style)])
            else:
                out.append([("  " + key, None)])
                out += [[("    " + ln, style)] for ln in _wrap(value, width - 4)]
    return out
