"""Many points on the command line: every input and output format round-trips, rows outside
the domain keep the others, an interrupted run keeps its finished chunks, memory stays
bounded on a large streamed input."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from adcalc import batch
from adcalc.cli import main
from adcalc.engines.reverse import ReverseEngine
from adcalc.problem import Problem

EXPR = "log(x1)+x1*x2-sin(x2)"


def grad_ref(X):
    return np.stack([1 / X[:, 0] + X[:, 1], X[:, 0] - np.cos(X[:, 1])], axis=1)


@pytest.fixture
def X():
    X = np.random.default_rng(0).uniform(0.5, 3, (500, 2))
    X[7, 0] = -1.0        # outside the domain of log
    return X


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check(G, X):
    good = np.arange(len(X)) != 7
    np.testing.assert_allclose(G[good], grad_ref(X[good]), rtol=1e-14)
    assert np.all(np.isnan(G[7]))


@pytest.mark.parametrize("fmt", ["npy", "csv", "jsonl"])
@pytest.mark.parametrize("out", ["npy", "npz", "csv", "jsonl"])
def test_formats_round_trip(tmp_path, capsys, X, fmt, out):
    src = tmp_path / f"pts.{fmt}"
    if fmt == "npy":
        np.save(src, X)
    elif fmt == "csv":
        with open(src, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["x2", "x1"])                       # any column order
            w.writerows([[repr(float(b)), repr(float(a))] for a, b in X])
    else:
        src.write_text("".join(json.dumps({"x1": float(a), "x2": float(b)}) + "\n" for a, b in X))
    dst = tmp_path / f"g.{out}"
    code, _, err = run(capsys, "grad", EXPR, "--points", str(src), "--out", str(dst))
    assert code == 0 and "1 of 500 rows outside the domain" in err and "rows 7" in err
    if out == "npy":
        G = np.load(dst)
    elif out == "npz":
        z = np.load(dst)
        G = z["gradient"]
        assert z["value"].shape == (500,)
    elif out == "csv":
        with open(dst) as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["x1", "x2", "gradient:x1", "gradient:x2"]
        G = np.array([[float(v) if v else np.nan for v in r[2:]] for r in rows[1:]])
    else:
        objs = [json.loads(line) for line in dst.read_text().splitlines()]
        assert [o["row"] for o in objs] == list(range(500)) and objs[7]["warnings"]
        G = np.array([[np.nan if v is None else v for v in o["gradient"]] for o in objs])
    check(G, X)


def test_npz_array_variables_and_hessian(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x, W = rng.uniform(-1, 1, (20, 3)), rng.uniform(-1, 1, (20, 3, 3))
    np.savez(tmp_path / "p.npz", x=x, W=W)
    code, _, err = run(capsys, "hessian", "sum(tanh(W@x))", "--points", str(tmp_path / "p.npz"),
                       "--out", str(tmp_path / "h.npy"))
    assert code == 0, err
    H = np.load(tmp_path / "h.npy")
    assert H.shape == (20, 12, 12)
    prob = Problem("sum(tanh(W@x))", point={"W": W[3], "x": x[3]})
    np.testing.assert_allclose(H[3], ReverseEngine().hessian(prob, prob.x0()).value, rtol=1e-13, atol=1e-15)


def test_several_at_and_stdin(capsys, monkeypatch):
    code, out, _ = run(capsys, "grad", "x*y", "--at", "1,2", "--at", "3,4")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["gradient"] for r in rows] == [[2.0, 1.0], [4.0, 3.0]]
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO("x,y\n1,2\n3,oops\n5,6\n"))
    code, out, err = run(capsys, "grad", "x*y", "--points", "-")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows[1]["gradient"] == [None, None] and rows[2]["gradient"] == [6.0, 5.0]
    assert "unreadable" in err and "line 3" in err


def test_bad_files_are_input_errors(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((4, 3)))
    np.save(tmp_path / "good.npy", np.ones((4, 2)))
    for argv, text in ((["--points", str(tmp_path / "bad.npy")], "(N, 2)"),
                       (["--points", str(tmp_path / "none.csv")], "no such file"),
                       (["--points", str(tmp_path / "good.npy"), "--out", str(tmp_path / "x.txt")], "--out"),
                       (["--at", "1,2", "--at", "3,4", "--engine", "all"], "one engine")):
        code, out, err = run(capsys, "grad", EXPR, *argv)
        assert code == 2 and text in err, err


def test_interruption_keeps_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK", 100)
    X = np.random.default_rng(2).uniform(0.5, 3, (1000, 2))
    np.save(tmp_path / "p.npy", X)
    prob = Problem(EXPR, at="2,5")
    src = batch.open_source(str(tmp_path / "p.npy"), prob.variables, prob.shapes)
    calls = []

    def interrupt(k):
        calls.append(k)
        if len(calls) == 3:
            raise KeyboardInterrupt
    with pytest.raises(batch.InterruptedRun, match="300 of 1000 rows are complete"):
        batch.run(prob, ReverseEngine(), "grad", src, str(tmp_path / "g.npy"), progress=interrupt)
    G = np.load(tmp_path / "g.npy")
    assert G.shape == (300, 2)
    np.testing.assert_allclose(G, grad_ref(X[:300]), rtol=1e-14)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_stream(tmp_path):
    """2 million points from .npy to .npy in a fresh process: resident memory stays far below
    what holding every row's work would take."""
    X = np.random.default_rng(3).uniform(0.5, 3, (2_000_000, 2))
    np.save(tmp_path / "p.npy", X)
    code = ("import resource, sys; from adcalc.cli import main; "
            f"rc = main(['grad', '{EXPR}', '--points', sys.argv[1], '--out', sys.argv[2]]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.npy"), str(tmp_path / "g.npy")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) < 400_000     # kB: the input alone is 32 MB, the output 32 MB
    assert np.load(tmp_path / "g.npy", mmap_mode="r").shape == (2_000_000, 2)


def test_csv_chunks_parse_fast_and_name_bad_lines(tmp_path, capsys, monkeypatch):
    """Chunks numpy parses whole and chunks read row by row (a bad value, a blank line, quotes,
    a permuted header) give the same rows; bad rows are named by their line in the file."""
    monkeypatch.setattr(batch, "CHUNK", 4)
    rng = np.random.default_rng(3)
    X = rng.uniform(1, 3, (11, 2))
    lines = ["x2,x1"] + [f"{float(b)!r},{float(a)!r}" for a, b in X]
    lines[3] = f'"{float(X[2, 1])!r}",{float(X[2, 0])!r}'     # quoted: the csv module reads that chunk
    lines[6] = "1.5,oops"                       # line 7: bad
    lines.insert(9, "")                          # a blank line: no row, and no line number lost
    lines[11] = "1e400,2"                        # line 12: not finite
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "grad", "log(x1)+x1*x2-sin(x2)", "--points", str(tmp_path / "p.csv"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 11
    bad = {5, 9}
    for k, r in enumerate(rows):
        if k in bad:
            assert r["gradient"] == [None, None]
        else:
            np.testing.assert_allclose(r["gradient"], grad_ref(X[k:k + 1])[0], rtol=1e-15)
    assert rows[5]["warnings"] == ["line 7: could not convert string to float: 'oops'"]
    assert rows[9]["warnings"] == ["line 12: a value is not a finite number"]
    assert "2 of 11 rows unreadable" in err
