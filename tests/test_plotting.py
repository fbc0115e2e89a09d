"""adcalc.plotting: ASCII terminal plots and matplotlib PNG/SVG files."""
import builtins
import struct

import numpy as np
import pytest

from adcalc.errors import InputError
from adcalc.plotting import MARKERS, save_plot, terminal_plot

XS = np.linspace(-2, 2, 201)
SIN3 = [np.sin(XS), np.cos(XS), -np.sin(XS)]


def plot_rows(text, height, title=False):
    lines = text.split("\n")
    start = 1 if title else 0
    return lines[start:start + height]


def area(row):
    return row.split("|", 1)[1] if "|" in row else ""


def marker_columns(rows, marker):
    return {c for row in rows for c, ch in enumerate(area(row)) if ch == marker}


def test_sin_plot_shape_and_bounds():
    text = terminal_plot(XS, SIN3, title="sin(x) and derivatives")
    lines = text.split("\n")
    assert max(len(line) for line in lines) <= 78
    assert len(lines) == 1 + 20 + 2 + 1
    assert lines[0].strip() == "sin(x) and derivatives"
    rows = plot_rows(text, 20, title=True)
    assert all("|" in row for row in rows)
    assert lines[21].lstrip().startswith("+") and set(lines[21].strip()) == {"+", "-"}
    assert lines[22].split() == ["-2", "0", "2"]
    assert lines[23].split() == ["*", "f", "+", "f'", "o", "f''"]
    assert all(32 <= ord(ch) < 127 for ch in text.replace("\n", ""))


def test_sin_plot_markers_and_ticks():
    text = terminal_plot(XS, SIN3)
    rows = plot_rows(text, 20)
    assert rows[0].split("|")[0].strip() == "1"
    assert rows[-1].split("|")[0].strip() == "-1"
    labelled = {row.split("|")[0].strip() for row in rows} - {""}
    assert labelled == {"1", "0", "-1"}
    plot_w = 78 - (rows[0].index("|") + 1)
    peak = round((np.pi / 2 + 2) / 4 * (plot_w - 1))
    top = area(rows[0])
    assert "*" in top and abs(top.index("*") + top.count("*") / 2 - peak) <= 4
    for marker in "*+o":
        assert len(marker_columns(rows, marker)) >= plot_w * 0.6
    zero_row = next(row for row in rows if row.split("|")[0].strip() == "0")
    assert area(zero_row).count("-") > plot_w / 2


@pytest.mark.parametrize("width, height", [(40, 8), (60, 3), (100, 30), (78, 20)])
def test_every_line_fits_the_width(width, height):
    long_labels = ["a very long label " * 3, "f'", "third"]
    text = terminal_plot(XS, SIN3, width=width, height=height, labels=long_labels,
                         title="T" * 200)
    lines = text.split("\n")
    assert all(len(line) <= width for line in lines)
    assert len(plot_rows(text, height, title=True)) == height
    assert lines[0] == "T" * width


def test_nan_and_inf_leave_gaps():
    y = np.sin(XS)
    y[90:111] = np.nan
    y[0] = np.inf
    y[5] = -np.inf
    text = terminal_plot(XS, [y], width=60, height=10)
    rows = plot_rows(text, 10)
    cols = marker_columns(rows, "*")
    plot_w = 60 - (rows[0].index("|") + 1)
    middle = plot_w // 2
    assert middle not in cols and middle - 2 not in cols and middle + 2 not in cols
    assert {1, plot_w - 1} <= cols
    assert rows[0].split("|")[0].strip() == "1"


def test_all_nan_series_does_not_crash():
    text = terminal_plot(XS, [np.full(XS.size, np.nan), np.cos(XS)], labels=["g", "g'"])
    rows = plot_rows(text, 20)
    assert marker_columns(rows, "*") == set()
    assert marker_columns(rows, "+")
    assert terminal_plot([0.0, 1.0], [[np.nan, np.nan]], width=30, height=4)


def test_constant_series_is_a_flat_line():
    text = terminal_plot(XS, [np.full(XS.size, 3.0)], width=50, height=9)
    rows = plot_rows(text, 9)
    with_marker = [i for i, row in enumerate(rows) if "*" in row]
    assert with_marker == [4]
    assert area(rows[4]) == "*" * len(area(rows[4]))
    assert rows[4].split("|")[0].strip() == "3"


def test_linear_series_climbs_from_bottom_left_to_top_right():
    xs = np.arange(11.0)
    text = terminal_plot(xs, xs * 2, width=40, height=6, labels=["line"])
    rows = plot_rows(text, 6)
    assert area(rows[-1]).startswith("*") and area(rows[0]).endswith("*")
    assert rows[0].split("|")[0].strip() == "20"
    assert rows[-1].split("|")[0].strip() == "0"
    assert text.split("\n")[-1].split() == ["*", "line"]


def test_unsorted_x_is_sorted_with_its_values():
    xs = np.array([2.0, 0.0, 1.0])
    assert terminal_plot(xs, [[4.0, 0.0, 1.0]], width=30, height=5) == \
        terminal_plot([0.0, 1.0, 2.0], [[0.0, 1.0, 4.0]], width=30, height=5)


def test_tick_labels_have_few_significant_digits():
    text = terminal_plot(XS, [1e6 * np.exp(XS) / 3], width=60, height=7)
    labels = [row.split("|")[0].strip() for row in plot_rows(text, 7)]
    assert labels[0] == "2.463e+06" and labels[-1] == "4.511e+04"


def test_hostile_labels_stay_plain_ascii():
    text = terminal_plot(XS, SIN3[:2], labels=["\x1b[31mred\x1b[0m", "f\u2032 \U0001f600"],
                         title="\x07bell \u2207f")
    assert "\x1b" not in text and "\x07" not in text
    assert all(32 <= ord(ch) < 127 for ch in text.replace("\n", ""))
    assert "?[31mred?[0m" in text


def test_more_series_than_default_labels():
    text = terminal_plot(XS, [XS * k for k in range(5)], width=78, height=10)
    assert text.split("\n")[-1].split() == ["*", "f", "+", "f'", "o", "f''", "x", "series", "4",
                                            "#", "series", "5"]
    assert MARKERS[:5] == "*+ox#"


@pytest.mark.parametrize("args, kwargs, match", [
    (([0, 1, 2], [[0, 1]]), {}, "one y value per x value: 2 y values for 3 x values"),
    (([0, 1], [[0, 1]]), {"labels": ["a", "b"]}, "2 labels for 1 series"),
    (([0, 1], [[0, 1]]), {"width": 12}, "a terminal plot needs width >="),
    (([0, 1], [[0, 1]]), {"height": 2}, "height >= 3"),
    (([], []), {}, "at least one x value"),
])
def test_bad_plot_arguments(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        terminal_plot(*args, **kwargs)


# ---- save_plot --------------------------------------------------------------------------
def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_save_png(tmp_path):
    pytest.importorskip("matplotlib")
    y = np.sin(XS)
    y[95:105] = np.nan
    path = save_plot(tmp_path / "sin.png", XS, [y, np.cos(XS), -np.sin(XS)], ["f", "f'", "f''"],
                     title="sin")
    data = path.read_bytes()
    w, h = png_size(data)
    assert (w, h) == (800, 500)
    assert len(data) > 10_000


def test_save_svg_by_suffix(tmp_path):
    pytest.importorskip("matplotlib")
    path = save_plot(tmp_path / "cos.SVG", XS, [np.cos(XS)], ["f"])
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "<path" in text


def test_save_plot_refuses_other_suffixes(tmp_path):
    with pytest.raises(InputError, match="must end in .png or .svg"):
        save_plot(tmp_path / "plot.pdf", XS, [np.sin(XS)], ["f"])


def test_save_plot_without_matplotlib(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(InputError, match=r"needs matplotlib.*pip install 'adcalc\[plot\]'"):
        save_plot(tmp_path / "sin.png", XS, [np.sin(XS)], ["f"])
    assert not (tmp_path / "sin.png").exists()


def test_save_plot_to_missing_directory(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(InputError, match="cannot write the plot to"):
        save_plot(tmp_path / "no" / "dir" / "sin.png", XS, [np.sin(XS)], ["f"])
