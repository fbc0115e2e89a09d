"""Plots of f, f', f'' over one x axis: ASCII for the terminal, PNG/SVG through matplotlib.

terminal_plot needs only numpy and writes plain ASCII (no ANSI escapes), so its
output can go to a file or a pipe.  save_plot imports matplotlib when called, and
never touches pyplot's global state.
"""
from pathlib import Path

import numpy as np

from adcalc.errors import InputError

MARKERS = "*+ox#@%&"
DEFAULT_LABELS = ("f", "f'", "f''")
MIN_PLOT_WIDTH = 10
MIN_HEIGHT = 3
SAVE_SUFFIXES = (".png", ".svg")


def terminal_plot(xs, series, width=78, height=20, labels=None, title=None):
    """An ASCII line plot of one or more series over xs, as a string.

    series is one sequence of y values or a list of them, each as long as xs;
    height is the number of rows of the plot area (title, x axis and legend come
    on top of it).  Non-finite points leave a gap; no line is wider than width.

    >>> print(terminal_plot([0, 1, 2], [[0, 1, 2]], width=30, height=3, labels=["y"]))
    2 |                    *******
    1 |       *************
    0 |*******
      +---------------------------
       0            1            2
      * y
    """
    xs, ys, labels = _prepare(xs, series, labels)
    lo, hi = _y_range(ys)
    ticks = _y_ticks(lo, hi, height)
    gutter = max(len(t) for t in ticks.values())
    plot_w = width - gutter - 2
    if plot_w < MIN_PLOT_WIDTH or height < MIN_HEIGHT:
        raise InputError(f"a terminal plot needs width >= {gutter + 2 + MIN_PLOT_WIDTH} and "
                         f"height >= {MIN_HEIGHT}, not width {width} and height {height}")
    grid = _canvas(xs, ys, lo, hi, plot_w, height)
    lines = [_title(title, width)] if title else []
    lines += [f"{ticks.get(r, ''):>{gutter}} |{''.join(row)}".rstrip() for r, row in enumerate(grid)]
    lines.append(" " * gutter + " +" + "-" * plot_w)
    lines.append(" " * (gutter + 2) + _x_labels(xs, plot_w))
    lines += _legend(labels, width)
    return "\n".join(line.rstrip()[:width] for line in lines)


def _prepare(xs, series, labels):
    xs = np.asarray(xs, dtype=float).reshape(-1)
    ys = np.asarray(series, dtype=float)
    ys = ys.reshape(1, -1) if ys.ndim == 1 else ys
    if xs.size == 0 or ys.ndim != 2 or ys.shape[0] == 0:
        raise InputError("a plot needs at least one x value and one series of y values")
    if ys.shape[1] != xs.size:
        raise InputError(f"each series needs one y value per x value: {ys.shape[1]} y values "
                         f"for {xs.size} x values")
    labels = _labels(labels, ys.shape[0])
    keep = np.isfinite(xs)
    order = np.argsort(xs[keep], kind="stable")
    return xs[keep][order], ys[:, keep][:, order], labels


def _labels(labels, count):
    if labels is None:
        return [DEFAULT_LABELS[i] if i < len(DEFAULT_LABELS) else f"series {i + 1}" for i in range(count)]
    labels = [_ascii(str(s)) for s in labels]
    if len(labels) != count:
        raise InputError(f"{len(labels)} labels for {count} series: give one label per series")
    return labels


def _ascii(text):
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text.encode("ascii", "replace").decode("ascii")


def _y_range(ys):
    finite = ys[np.isfinite(ys)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):
        pad = max(abs(lo), 1.0) * 0.5
        return lo - pad, hi + pad
    return lo, hi


def _row(y, lo, hi, height):
    return int(round((hi - y) / (hi - lo) * (height - 1)))


def _y_ticks(lo, hi, height):
    rows = {0: hi, (height - 1) // 2: hi - (hi - lo) * ((height - 1) // 2) / max(height - 1, 1),
            height - 1: lo}
    if lo < 0 < hi:
        zero = _row(0.0, lo, hi, height)
        rows = {r: v for r, v in rows.items() if abs(r - zero) > 1} | {zero: 0.0}
    return {r: _num(v) for r, v in rows.items()}


def _num(v):
    text = f"{v:.4g}"
    return "0" if text in ("-0", "0") else text


def _canvas(xs, ys, lo, hi, plot_w, height):
    grid = [[" "] * plot_w for _ in range(height)]
    if lo < 0 < hi:
        grid[_row(0.0, lo, hi, height)] = ["-"] * plot_w
    columns = _columns(xs, plot_w)
    for k in reversed(range(ys.shape[0])):
        rows = _sample(xs, ys[k], columns, lo, hi, height)
        _draw(grid, rows, MARKERS[k % len(MARKERS)])
    return grid


def _columns(xs, plot_w):
    if xs[-1] == xs[0]:
        return np.full(plot_w, xs[0])
    return np.linspace(xs[0], xs[-1], plot_w)


def _sample(xs, y, columns, lo, hi, height):
    out = np.full(columns.size, -1)
    for c, xc in enumerate(columns):
        v = _value_at(xs, y, xc)
        if v is not None:
            out[c] = _row(v, lo, hi, height)
    if xs[-1] == xs[0]:
        out[np.arange(columns.size) != columns.size // 2] = -1
    return out


def _value_at(xs, y, xc):
    i = int(np.searchsorted(xs, xc, side="right")) - 1
    i = min(max(i, 0), xs.size - 1)
    if xs[i] == xc or i == xs.size - 1:
        return float(y[i]) if np.isfinite(y[i]) else None
    if not (np.isfinite(y[i]) and np.isfinite(y[i + 1])):
        return None
    t = (xc - xs[i]) / (xs[i + 1] - xs[i])
    return float(y[i] + t * (y[i + 1] - y[i]))


def _draw(grid, rows, marker):
    for c, r in enumerate(rows):
        if r < 0:
            continue
        grid[r][c] = marker
        prev = rows[c - 1] if c > 0 else -1
        if prev < 0:
            continue
        for rr in range(min(r, prev) + 1, max(r, prev)):
            grid[rr][c if abs(rr - r) <= abs(rr - prev) else c - 1] = marker


def _x_labels(xs, plot_w):
    left, right = _num(xs[0]), _num(xs[-1])
    middle = _num(0.5 * (xs[0] + xs[-1]))
    line = [" "] * plot_w
    _put(line, 0, left)
    _put(line, plot_w - len(right), right)
    start = plot_w // 2 - len(middle) // 2
    if start > len(left) and start + len(middle) < plot_w - len(right) and xs[-1] != xs[0]:
        _put(line, start, middle)
    return "".join(line)


def _put(line, start, text):
    for i, ch in enumerate(text[:len(line) - max(start, 0)]):
        line[max(start, 0) + i] = ch


def _legend(labels, width):
    entries = [f"{MARKERS[k % len(MARKERS)]} {label}" for k, label in enumerate(labels)]
    lines, current = [], " "
    for entry in entries:
        entry = entry[:width - 2]
        if len(current) + 2 + len(entry) > width and current.strip():
            lines.append(current)
            current = " "
        current += " " + entry + " " * 2
    lines.append(current)
    return [line.rstrip() for line in lines]


def _title(title, width):
    text = _ascii(str(title))[:width]
    return text.center(width).rstrip()


def save_plot(path, xs, series, labels, title=None):
    """Draw the series over xs with matplotlib and save to path (.png or .svg).

    Needs matplotlib (`pip install 'adcalc[plot]'`); returns the Path written.

    >>> save_plot("sin.png", xs, [np.sin(xs), np.cos(xs)], ["f", "f'"])  # doctest: +SKIP
    PosixPath('sin.png')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_SUFFIXES:
        raise InputError(f"cannot save a plot as {path.name!r}: the file name must end in .png or .svg")
    xs, ys, labels = _prepare(xs, series, labels)
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for y, label in zip(ys, labels):
        ax.plot(xs, np.where(np.isfinite(y), y, np.nan), label=label, linewidth=1.8)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("x")
    ax.legend()
    if title:
        ax.set_title(str(title))
    try:
        fig.savefig(path, format=suffix[1:])
    except OSError as e:
        raise InputError(f"cannot write the plot to {str(path)!r}: {e.strerror or e}") from e
    return path


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise InputError("saving a plot needs matplotlib, which is not installed here: "
                         "pip install 'adcalc[plot]' (or pip install matplotlib) fixes it") from e
    return Figure, FigureCanvasAgg
