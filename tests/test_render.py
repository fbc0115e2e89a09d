"""The table renderer and the screen number format (adcalc/render.py).

Tables are drawn on a fixed-width rich Console (a terminal) at 60, 80 and 120 columns and as
plain text, and every label, header, status word and number must appear whole, on one line,
with no line wider than the width.
"""
import io
import math
import re
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from adcalc.render import (DIFF_DIGITS, PLAIN_TITLE_MAX, TITLE_LINES, error_line, fmt, fmt_full, table,
                           use_rich, warning_line)

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BOX = re.compile("[\u2500-\u257f\u2580-\u259f]")
WIDTHS = (60, 80, 120)

# ---- fixtures: the tables the commands draw ----------------------------------------------
NOTE = ("the forward engine disagrees with the reference by far more than the stated tolerance "
        "allows, which usually means a wrong derivative rule")
VERIFY = dict(
    title="verify log(x1)+x1*x2-sin(x2) at x1=2, x2=5",
    headers=["engine", "quantity", "status", "max abs diff", "max rel diff", "worst", "note"],
    rows=[["reverse", "grad", "ok", 0.0, 0.0, "x1", "taylor order 2.00"],
          ["forward", "hessian", "mismatch", 5.155116704156659e-08, 1.2345678e-09, "x[1]", NOTE],
          ["symbolic", "hvp", "kink", fmt(3.3e-16, 3), fmt(1e-16, 3), "x2", "abs'(0) = +1 (JAX)"],
          ["numeric", "jvp", "not finite", math.inf, math.nan, "x2", ""],
          ["gpu", "-", "unavailable", "", "", "", "no CUDA device was found (pycuda is not installed)"],
          ["claim", "grad", "error", None, None, "", "the claimed gradient has shape [3], not [2]"]],
    footer="reference: reverse\nwarning: x[1] is not a number\nMISMATCH: see the rows marked mismatch")
CHECK = dict(
    title="check ex_g against ex_f at x=[2.,5.]",
    headers=["component", "your gradient", "reference", "abs diff", "tolerance", "status"],
    rows=[["x[0]", 515.4000000000001, 515.4, 1.1368683772161603e-13, 5.1540000000000005e-06, "ok"],
          ["x[1]", np.float64(1.7163378145367738), 1.7173378145367738, 0.0010000000000000009, 1.7e-08,
           "mismatch"],
          ["x[2]", -0.0, 2.0, 2.0, 1e-08, "mismatch"],
          ["(taylor test)", "order 2.00", "order 2", "", "", "ok"]],
    footer="reference: central differences with Richardson extrapolation (per-component steps); "
           "differenced in float64\nMISMATCH: the gradient is wrong at x[1], x[2]")
KINDS = {"status": "status", "note": "note", "max abs diff": "diff", "max rel diff": "diff",
         "abs diff": "diff", "tolerance": "diff"}


def matrix(n, seed=0):
    names = [f"x{i + 1}" for i in range(n)]
    vals = np.random.default_rng(seed).normal(size=(n, n)) * 10.0 ** np.arange(-4, 4)[np.arange(n) % 8]
    return dict(title=f"hessian of sum(...) at {n} points  [engine: reverse]", headers=[""] + names,
                rows=[[names[i]] + list(vals[i]) for i in range(n)])


def render(spec, width=None, color_system=None, plain=False, **kw):
    """The text a table prints: on a fixed-width terminal, or as plain text (width optional)."""
    args = {k: spec[k] for k in ("title", "headers", "rows")}
    kw.setdefault("footer", spec.get("footer"))
    if plain:
        buf = io.StringIO()
        table(**args, stream=buf, width=width, **kw)
        return buf.getvalue()
    console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system=color_system)
    table(**args, console=console, **kw)
    return console.file.getvalue()


def shown(c, header, digits=None):
    """A cell as the screen must show it."""
    if c is None:
        return ""
    if isinstance(c, str):
        return c
    return fmt(c, DIFF_DIGITS if KINDS.get(header) == "diff" else digits)


def assert_whole(out, spec, width=None, digits=None):
    """Every header word, label, status and number on one line, whole; notes whole modulo
    line breaks; no line wider than the width."""
    text = ANSI.sub("", out)
    lines = text.splitlines()
    if width:
        assert max(cell_len(ln) for ln in lines) <= width, "\n" + text
    flat = " ".join(text.split())
    tokens = [w for h in spec["headers"] if KINDS.get(h) != "note" for w in h.split()]  # notes may go below
    for row in spec["rows"]:
        for h, c in zip(spec["headers"], row):
            s = shown(c, h, digits)
            if KINDS.get(h) == "note":
                assert " ".join(s.split()) in flat, (s, text)
            elif s:
                tokens.append(s)
    for tok in tokens:
        assert any(tok in ln for ln in lines), f"{tok!r} cut or missing in\n{text}"
        assert "…" not in tok
    # no cell is ever ellipsised: an ellipsis may only end a title line
    assert not [ln for ln in lines[TITLE_LINES:] if "…" in ln or "..." in ln], text


# ---- numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("x,digits,want", [
    (5.5, None, "5.5"),
    (1.7163378145367738, None, "1.716337815"),
    (515.4000000000001, None, "515.4"),
    (11.652071455223084, None, "11.65207146"),
    (2.0, None, "2.0"),
    (-1.0, None, "-1.0"),
    (100.0, 3, "100.0"),
    (-0.0, None, "0.0"),
    (0.0, 3, "0.0"),
    (2.0, 3, "2.0"),
    (12345678900.0, None, "12345678900.0"),
    (1e16, None, "1e+16"),
    (1e-05, None, "1e-05"),
    (0.0001, None, "0.0001"),
    (123456789012.0, None, "1.23456789e+11"),
    (12345678901.5, None, "1.23456789e+10"),
    (-2.5e-300, None, "-2.5e-300"),
    (5.155116704156659e-08, 3, "5.16e-08"),
    (1.1368683772161603e-13, 3, "1.14e-13"),
    (0.0010000000000000009, 3, "0.001"),
    (1.7163378145367738, 3, "1.72"),
    (1.7163378145367738, 17, "1.7163378145367738"),
    (0.1, 17, "0.1"),             # never more digits than the shortest repr
    (0.1, 25, "0.1"),
    (math.nan, None, "nan"),
    (math.inf, 3, "inf"),
    (-math.inf, None, "-inf"),
    (np.float64(1.7163378145367738), None, "1.716337815"),
    (np.float32(0.5), None, "0.5"),
    (np.int64(3), None, "3"),
    (-12, 3, "-12"),
    (123456789012, None, "1.23456789e+11"),
    (10 ** 400, None, str(10 ** 400)),
    (True, None, "1.0"),
    (None, None, "null"),
])
def test_fmt(x, digits, want):
    assert fmt(x, digits) == want


@pytest.mark.parametrize("x,want", [(1.7163378145367738, "1.7163378145367738"), (2.0, "2.0"),
                                    (-0.0, "-0.0"), (515.4000000000001, "515.4000000000001"),
                                    (math.nan, "nan"), (-math.inf, "-inf"), (None, "null")])
def test_fmt_full(x, want):
    assert fmt_full(x) == want


def _significant(s):
    return len(s.partition("e")[0].lstrip("-").replace(".", "").strip("0"))


@given(st.floats(allow_nan=False, allow_infinity=False), st.one_of(st.none(), st.integers(1, 20)))
@example(1.7163378145367738, None)
@example(9.9999999999e22, None)
@example(5e-324, 3)
def test_fmt_is_the_nearest_short_number(x, digits):
    d = digits or 10
    s = fmt(x, digits)
    assert float(fmt_full(x)) == x
    assert _significant(s) <= d
    assert " " not in s and (s == repr(x) or _significant(repr(x)) > d or x == 0)
    y = float(s)
    if _significant(repr(x)) <= d:
        assert y == x  # short numbers are shown exactly
    else:
        err = abs(Decimal(s) - Decimal(x))  # (1.797693135e+308 is right, though float() says inf)
        assert err <= Decimal(5) * Decimal(10) ** -d * abs(Decimal(x)) * (1 + Decimal("1e-12"))


# ---- tables that fit ---------------------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", [VERIFY, CHECK], ids=["verify", "check"])
def test_terminal_tables_show_every_cell_whole(spec, width):
    out = render(spec, width)
    assert_whole(out, spec, width)
    assert not ANSI.search(out)           # color_system=None: no escapes at all
    assert BOX.search(out) or width == 60  # a terminal gets rich rules (check at 60 is vertical)
    for line in spec["footer"].split("\n"):
        assert " ".join(line.split()) in " ".join(out.split())


@pytest.mark.parametrize("width", range(40, 131, 3))
@pytest.mark.parametrize("spec", [VERIFY, CHECK], ids=["verify", "check"])
def test_every_width_from_40_columns(spec, width):
    assert_whole(render(spec, width), spec, width)
    assert_whole(render(spec, width, plain=True), spec, width)


@pytest.mark.parametrize("spec", [VERIFY, CHECK], ids=["verify", "check"])
@pytest.mark.parametrize("width", WIDTHS)
def test_plain_text_with_a_width_fits_it(spec, width):
    out = render(spec, width, plain=True)
    assert_whole(out, spec, width)
    assert not ANSI.search(out) and not BOX.search(out) and out.isascii()


@pytest.mark.parametrize("spec", [VERIFY, CHECK], ids=["verify", "check"])
def test_plain_text_keeps_one_line_per_row(spec):
    out = render(spec, plain=True)
    lines = out.splitlines()
    footer = spec["footer"].split("\n")
    assert len(lines) == 1 + 2 + len(spec["rows"]) + len(footer)   # title, header, rule, rows, footer
    assert lines[1].split()[0] == spec["headers"][0] and set(lines[2]) <= {"-", " "}
    for row, line in zip(spec["rows"], lines[3:]):
        assert line.startswith(row[0])
        for h, c in zip(spec["headers"], row):
            assert shown(c, h) in line
    assert lines[-len(footer):] == footer
    assert not ANSI.search(out) and not BOX.search(out)
    assert_whole(out, spec)


def test_plain_columns_split_with_awk():
    out = render(CHECK, plain=True)
    rows = [ln.split() for ln in out.splitlines()[3:5]]
    assert rows[0] == ["x[0]", "515.4", "515.4", "1.14e-13", "5.15e-06", "ok"]
    assert rows[1] == ["x[1]", "1.716337815", "1.717337815", "0.001", "1.7e-08", "mismatch"]


def test_layouts_chosen_by_width():
    wide = ANSI.sub("", render(VERIFY, 260)).splitlines()
    assert wide[1].split() == VERIFY["headers"][:3] + ["max", "abs", "diff", "max", "rel", "diff", "worst", "note"]
    assert wide[3].split()[:3] == ["reverse", "grad", "ok"] and wide[3].endswith("taylor order 2.00")
    assert wide[4].endswith(NOTE)
    # 200 columns: two-line headers make room for the note
    wide = ANSI.sub("", render(VERIFY, 200)).splitlines()
    assert wide[1].split() == ["max", "abs", "max", "rel"] and wide[5].endswith(NOTE)
    # 120 columns: the long note goes below its row, indented
    mid = ANSI.sub("", render(VERIFY, 120)).splitlines()
    i = next(i for i, ln in enumerate(mid) if ln.startswith("forward"))
    assert mid[i + 1].startswith("  the forward engine") and "x[1]" in mid[i]
    assert mid[i - 1] == "  taylor order 2.00"
    # 40 columns: one block per row, `header: value`
    narrow = ANSI.sub("", render(VERIFY, 40)).splitlines()
    i = narrow.index("forward")
    assert [ln.split(":")[0].strip() for ln in narrow[i + 1:i + 7]] == VERIFY["headers"][1:]
    assert narrow[i + 2].split() == ["status:", "mismatch"]
    assert narrow[i + 3].split() == ["max", "abs", "diff:", "5.16e-08"]


def test_headers_wrap_before_anything_else():
    """check at 70 columns: multi-word headers take two lines, the rows stay rows."""
    out = ANSI.sub("", render(CHECK, 70))
    lines = out.splitlines()
    assert any(ln.startswith("x[1]") and "mismatch" in ln for ln in lines), out
    assert "your" in lines[1] and "gradient" in lines[2]


@pytest.mark.parametrize("n,width", [(10, 120), (30, 80), (30, 60), (10, 40)])
def test_wide_matrices_keep_every_label(n, width):
    spec = matrix(n)
    out = ANSI.sub("", render(spec, width))
    lines = out.splitlines()
    assert max(cell_len(ln) for ln in lines) <= width
    assert_whole(out, spec, width)
    blocks = out.split("\n\n")
    assert len(blocks) > 1
    for b in blocks:           # each column block repeats every row label, in order
        labels = [ln.split()[0] for ln in b.splitlines() if re.match(r"x\d+ ", ln)]
        assert labels == spec["headers"][1:]
    for name in spec["headers"][1:]:
        assert sum(name in ln.split() for ln in lines if not re.match(r"x\d+ ", ln)) == 1
    cols = [len(b.splitlines()[-n - 2].split()) for b in blocks]  # headers per block, near equal
    assert max(cols) - min(cols) <= 1 and sum(cols) == n


def test_matrix_fits_whole_when_it_can():
    spec = matrix(4)
    out = ANSI.sub("", render(spec, 120))
    assert "\n\n" not in out and len(out.splitlines()) == 1 + 2 + 4


def test_matrix_headers_are_variables_not_column_kinds():
    """Variables named like the special headers are still values with 10 digits."""
    names = ["status", "note", "tolerance", "spread"]
    rows = [[a] + [1.7163378145367738 + i for i in range(4)] for a in names]
    for head in ("", "output \\ input"):
        out = render(dict(title="", headers=[head] + names, rows=rows), 80)
        assert out.count("1.716337815") == 4 and "1.72 " not in out


def test_grad_of_all_engines_splits_into_blocks_with_labels():
    engines = ["reverse", "forward", "symbolic", "numeric", "gpu"]
    labels = [f"W[{i},{j}]" for i in range(3) for j in range(3)]
    rows = [[lab] + [1.7163378145367738 * (k + 1) for k in range(5)] + [5.2e-11] for lab in labels]
    spec = dict(title="grad of sum(W*W) at W=[[...]]  [engine: all]", headers=["component"] + engines + ["spread"],
                rows=rows)
    out = ANSI.sub("", render(spec, 60))
    assert_whole(out, spec, 60)
    assert "5.2e-11" in out and out.count("W[2,2]") == len(out.split("\n\n"))


def test_long_titles_are_shortened_only_titles():
    names = [f"v{i}" for i in range(5000)]
    title = "grad of sum(...) at " + ", ".join(f"{v}=1.5" for v in names) + "  [engine: reverse]"
    spec = dict(title=title, headers=["input", "gradient"], rows=[[v, 2.0 * i] for i, v in enumerate(names[:50])])
    for width in WIDTHS:
        lines = ANSI.sub("", render(spec, width)).splitlines()
        assert len(lines) == TITLE_LINES + 2 + 50
        assert lines[TITLE_LINES - 1].endswith("…") and max(cell_len(ln) for ln in lines) <= width
        assert lines[0].startswith("grad of sum(...) at v0=1.5, v1=1.5")
        assert_whole("\n".join(lines), spec, width)
        plain = render(spec, width, plain=True).splitlines()
        assert plain[TITLE_LINES - 1].endswith("...") and max(map(len, plain)) <= width
    plain = render(spec, plain=True).splitlines()
    assert len(plain[0]) == PLAIN_TITLE_MAX and plain[0].endswith("...")
    assert len(plain) == 1 + 2 + 50


def test_a_title_that_fits_in_two_lines_is_whole():
    title = "grad of log(x1)+x1*x2-sin(x2) at x1=2, x2=5  [engine: reverse]"
    out = render(dict(title=title, headers=["input", "gradient"], rows=[["x1", 5.5]]), 60)
    assert " ".join(out.split()).startswith(title.replace("  ", " ")) and "…" not in out


# ---- markup, colour --------------------------------------------------------------------------
def test_markup_is_shown_literally():
    spec = dict(title="jacobian of [x*y, sin(x)] at x=1, y=2  [engine: reverse]",
                headers=["output \\ input", "[x]", "y"],
                rows=[["[bold]f[0][/bold]", 2.0, 1.0], ["[red]f[1]", 0.5403023058681398, 0.0]],
                footer="warning: [engine: reverse] :thumbs_up: [/]")
    for cs in (None, "standard"):
        out = ANSI.sub("", render(spec, 80, color_system=cs))
        assert "jacobian of [x*y, sin(x)] at x=1, y=2  [engine: reverse]" in out
        assert "[bold]f[0][/bold]" in out and "[red]f[1]" in out and "[x]" in out
        assert "warning: [engine: reverse] :thumbs_up: [/]" in out
        assert "0.5403023059" in out


def test_colours_only_when_asked():
    plain = render(VERIFY, 120)
    assert not ANSI.search(plain)
    colour = render(VERIFY, 120, color_system="standard")
    assert ANSI.sub("", colour) == plain
    red, green, yellow, magenta = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[35m"
    assert f"{red}mismatch" in colour and f"{green}ok" in colour and f"{yellow}kink" in colour
    assert f"{magenta}not finite" in colour and f"{red}error" in colour
    assert "\x1b[2munavailable" in colour
    assert "31mMISMATCH" in colour.split("\n")[-2]  # the footer's verdict
    assert not ANSI.search(render(VERIFY, 120, plain=True))


def test_colour_follows_the_status_column_not_the_word():
    rows = [["ok", "mismatch", "mismatch"]]
    out = render(dict(title="", headers=["engine", "quantity", "status"], rows=rows), 80, color_system="standard")
    assert out.count("\x1b[31m") == 1


# ---- the stream decides -----------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_use_rich(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_rich(FakeTTY()) and not use_rich(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_rich(FakeTTY())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not use_rich(FakeTTY())


def test_a_terminal_stream_gets_its_width(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "60")
    tty = FakeTTY()
    table(VERIFY["title"], VERIFY["headers"], VERIFY["rows"], footer=VERIFY["footer"], stream=tty)
    out = tty.getvalue()
    assert BOX.search(out)
    assert_whole(out, VERIFY, 60)
    monkeypatch.setenv("NO_COLOR", "1")
    tty = FakeTTY()
    table(VERIFY["title"], VERIFY["headers"], VERIFY["rows"], stream=tty)
    assert not BOX.search(tty.getvalue()) and not ANSI.search(tty.getvalue())
    assert len(tty.getvalue().splitlines()) == 3 + len(VERIFY["rows"])


# ---- digits, kinds, odd cells --------------------------------------------------------------------
def test_digits_override_values_not_differences():
    out = render(CHECK, plain=True, digits=3)
    assert "1.72" in out and "1.716" not in out and "515" in out and "1.14e-13" in out
    out = render(CHECK, plain=True, digits=17)
    assert "1.7163378145367738" in out and "515.4000000000001" in out and "1.14e-13" in out
    assert_whole(render(CHECK, 60, digits=17), CHECK, 60, digits=17)


def test_explicit_kinds():
    rows = [["a", 1.23456789, 1.23456789, "ok", "some free text"]]
    out = render(dict(title="t", headers=["x", "p", "q", "r", "s"], rows=rows), plain=True,
                 kinds=["label", "value", "diff", "status", "note"])
    assert out.splitlines()[3].split() == ["a", "1.23456789", "1.23", "ok", "some", "free", "text"]
    with pytest.raises(ValueError, match="unknown column kind 'number'"):
        render(dict(title="t", headers=["x", "y"], rows=[["a", 1.0]]), plain=True, kinds=["label", "number"])


def test_odd_cells():
    rows = [["a\nb", None, "tab\there"], ["wide 变量", np.int64(7), "ok"], [3, 1.0]]
    spec = dict(title="t\x1b[31m", headers=["name", "value", "status"], rows=rows)
    for out in (render(spec, plain=True), ANSI.sub("", render(spec, 40))):
        lines = out.splitlines()
        assert "a\\nb" in lines[3] and "tab\\there" in lines[3] and "\\x1b[31m" in lines[0]
        assert "wide 变量" in lines[4] and "7" in lines[4] and lines[5].split() == ["3", "1.0"]
        assert len(lines) == 6 and max(cell_len(ln) for ln in lines) <= 40


def test_empty_table_and_no_title():
    out = render(dict(title="", headers=["engine", "status", "reason"], rows=[]), plain=True)
    assert out.splitlines() == ["engine  status  reason", "------  ------  ------"]
    assert render(dict(title=None, headers=["a"], rows=[["x"]]), 60).splitlines()[0].strip() == "a"
    assert render(dict(title="only a title", headers=[], rows=[]), plain=True) == "only a title\n"


def test_plain_footer_wraps_only_with_a_width():
    long = "warning: " + "word " * 40
    spec = dict(title="t", headers=["a", "b"], rows=[["x", 1.0]], footer=long.strip())
    assert render(spec, plain=True).splitlines()[-1] == long.strip()
    lines = render(spec, 60, plain=True).splitlines()
    assert len(lines) > 5 and max(map(len, lines)) <= 60


# ---- messages ---------------------------------------------------------------------------------
def test_warning_and_error_lines_go_to_stderr(capsys):
    warning_line("x[1] is infinite")
    error_line("unknown function 'sinn'")
    out, err = capsys.readouterr()
    assert out == "" and err == "warning: x[1] is infinite\nerror: unknown function 'sinn'\n"
    buf = io.StringIO()
    warning_line("to a stream", stream=buf)
    assert buf.getvalue() == "warning: to a stream\n"


def test_a_big_table_is_fast():
    import time
    names = [f"x[{i}]" for i in range(3000)]
    rows = [[n, 515.4000000000001 * i, 515.4 * i, 1e-13, 5e-06, "ok"] for i, n in enumerate(names)]
    t = time.perf_counter()
    out = render(dict(title="check", headers=CHECK["headers"], rows=rows), 60)
    assert time.perf_counter() - t < 5 and out.count("\n") > 3000
