"""The commands trace, graph, derivative, newton, plot and completion, through adcalc.cli.main."""
import json
import re
import shutil
import struct
import subprocess

import pytest

from adcalc.cli import cli, main
from adcalc.cli_explain import COMMANDS, derivative_label, register

if "trace" not in cli.commands:
    register(cli)

WORKED = "log(x1)+x1*x2-sin(x2)"
CONTRACT_KEYS = ("command", "expression", "engine", "variables", "shapes", "inputs", "point", "value",
                 "warnings")
ANSI = re.compile("\x1b\\[")


def _no_constant(name):
    raise ValueError(f"non-strict JSON token {name}")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert out.endswith("\n") and out.count("\n") == 1, out[:300]
    obj = json.loads(out, parse_constant=_no_constant)
    assert all(k in obj for k in CONTRACT_KEYS)
    return code, obj, err


def one_error(code, out, err):
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_register_is_idempotent_and_adds_every_command():
    before = dict(cli.commands)
    register(cli)
    assert cli.commands == before
    for cmd in COMMANDS:
        assert cli.commands[cmd.name] is cmd


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_help(capsys, name):
    code, out, _ = run(capsys, name, "--help")
    assert code == 0 and "Usage: adcalc " + name in out


# ---- trace --------------------------------------------------------------------------------
def test_trace_table(capsys):
    code, out, err = run(capsys, "trace", WORKED, "--at", "2,5")
    assert code == 0 and err == "" and not ANSI.search(out)
    lines = out.splitlines()
    assert lines[1].split() == ["node", "op", "formula", "value", "tangent", "d/dx1", "adjoint"]
    assert lines[3].split() == ["v-1", "input", "x1", "2.0", "1.0", "5.5"]
    assert lines[4].split() == ["v0", "input", "x2", "5.0", "0.0", "1.716337815"]
    assert lines[5].split() == ["v1", "log", "log(v-1)", "0.6931471806", "0.5", "1.0"]
    assert lines[6].split() == ["v2", "mul", "v-1", "*", "v0", "10.0", "5.0", "1.0"]
    assert "gradient: x1 = 5.5, x2 = 1.716337815" in out and "df/dx1 = 5.5" in out


def test_trace_json(capsys):
    code, obj, err = run_json(capsys, "trace", WORKED, "--at", "2,5", "--mode", "reverse")
    assert code == 0 and obj["command"] == "trace" and obj["mode"] == "reverse"
    assert obj["gradient"] == [5.5, 1.7163378145367738]
    assert [r["adjoint"] for r in obj["rows"][:2]] == [5.5, 1.7163378145367738]
    assert obj["rows"][3] == {"node": "v2", "id": 3, "op": "mul", "formula": "v-1 * v0", "shape": [],
                              "value": 10.0, "adjoint": 1.0}
    _, obj, _ = run_json(capsys, "trace", WORKED, "--at", "2,5", "--mode", "forward", "--wrt", "x2")
    assert obj["direction"] == "x2" and obj["tangent"] == 1.7163378145367738 and "adjoint" not in obj["rows"][0]


def test_trace_of_arrays_prints_them_compactly(capsys):
    code, out, _ = run(capsys, "trace", "sum(W@x)", "--at", "x=[1,2],W=[[1,0],[0,3]]", "--digits", "4")
    assert code == 0
    assert re.search(r"^v-1 +input +W +\[\[1\.0, 0\.0\], \[0\.0, 3\.0\]\]", out, re.M)
    assert "x[1] = 3.0" in out


def test_trace_errors(capsys):
    assert "not an input" in one_error(*run(capsys, "trace", WORKED, "--at", "2,5", "--wrt", "z"))
    assert "log" in one_error(*run(capsys, "trace", WORKED, "--at", "-2,5"))
    assert "--mode" in one_error(*run(capsys, "trace", WORKED, "--at", "2,5", "--mode", "x"))
    code, out, err = run(capsys, "trace", "[x*y, x+y]", "--at", "1,2", "--mode", "reverse", "--json")
    assert code == 2 and json.loads(out)["kind"] == "input" and err.startswith("error: ")


# ---- graph --------------------------------------------------------------------------------
def test_graph_prints_dot(capsys):
    code, out, err = run(capsys, "graph", WORKED)
    assert code == 0 and err == "" and out.startswith("digraph adcalc {")
    assert out.count(" -> ") == 8 and 'label="v1: log\\n[]"' in out
    code, out, _ = run(capsys, "graph", "sum(x**2)", "--at", "x=[1,2]", "--derivative")
    assert code == 0 and 'label="gradient of sum(x**2)"' in out and "[2]" in out


def test_graph_json_and_dot_file(capsys, tmp_path):
    code, obj, _ = run_json(capsys, "graph", WORKED, "--derivative")
    assert code == 0 and obj["derivative"] is True and obj["dot"].startswith("digraph")
    assert obj["nodes"] == 10 and obj["edges"] == 11
    path = tmp_path / "g.dot"
    code, out, _ = run(capsys, "graph", WORKED, "--out", str(path))
    assert code == 0 and out == f"wrote {path} (7 nodes, 8 edges)\n" and path.read_text().startswith("digraph")


def test_graph_png_without_graphviz(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    line = one_error(*run(capsys, "graph", WORKED, "--out", str(tmp_path / "g.png")))
    assert "Graphviz" in line and "apt-get install graphviz" in line and "brew install graphviz" in line


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_png_with_graphviz(capsys, tmp_path):
    path = tmp_path / "g.png"
    code, _, _ = run(capsys, "graph", WORKED, "--derivative", "--out", str(path))
    assert code == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- derivative ---------------------------------------------------------------------------
def test_derivative_label():
    assert derivative_label(["x"]) == "df/dx"
    assert derivative_label(["x1", "x1", "x2"]) == "d^3f/dx1^2 dx2"


@pytest.mark.parametrize("n,want", list(zip(range(1, 9), [1.0, 0.0, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0])))
def test_derivative_of_sin_at_zero(capsys, n, want):
    code, obj, _ = run_json(capsys, "derivative", "sin(x)", "--wrt", "x", "--order", str(n), "--at", "0",
                            "--engine", "forward")
    assert code == 0 and obj["derivative"] == want and obj["order"] == n


def test_derivative_all_engines(capsys):
    argv = ("derivative", "x1**2*x2**3*exp(x1)", "--wrt", "x1,x2", "--at", "0.5,1.5", "--engine", "all")
    code, obj, _ = run_json(capsys, *argv)
    assert code == 0 and obj["reference"] == "symbolic" and obj["with_respect_to"] == ["x1", "x2"]
    assert {n: e["status"] for n, e in obj["engines"].items()} == \
        {"forward": "ok", "reverse": "ok", "symbolic": "ok", "numeric": "ok"}
    assert obj["engines"]["numeric"]["error_estimate"] > 0
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "reference: symbolic" in out and "d^2f/dx1 dx2" in out
    code, out, _ = run(capsys, "derivative", "exp(x)", "--wrt", "x", "--order", "3", "--at", "0", "-e", "all")
    assert re.search(r"^numeric +unavailable +numerical differences are offered up to order 2", out, re.M)


def test_derivative_single_engine_table(capsys):
    code, out, _ = run(capsys, "derivative", "log(x)", "--order", "2", "--at", "2", "--engine", "numeric")
    assert code == 0 and "d^2f/dx^2" in out and "error estimate" in out and "-0.25" in out


def test_derivative_errors(capsys):
    assert "needs --wrt" in one_error(*run(capsys, "derivative", "x*y", "--at", "1,2"))
    assert "not an input" in one_error(*run(capsys, "derivative", "x*y", "--at", "1,2", "--wrt", "z"))
    assert "order 2" in one_error(*run(capsys, "derivative", "sin(x)", "--at", "1", "--order", "3",
                                       "--engine", "numeric"))
    assert "scalar" in one_error(*run(capsys, "derivative", "[x, x]", "--at", "1", "--wrt", "x"))
    assert "unknown engine" in one_error(*run(capsys, "derivative", "x", "--at", "1", "--engine", "magic"))
    assert "log" in one_error(*run(capsys, "derivative", "log(x)", "--at", "-1", "--wrt", "x"))


# ---- newton -------------------------------------------------------------------------------
def test_newton_converges_exit_0(capsys):
    code, out, err = run(capsys, "newton", "x**4 - 2*x**2", "--at", "2")
    assert code == 0 and err == ""
    assert out.splitlines()[1].split() == ["k", "x", "f", "|grad|", "step", "action"]
    assert "minimum at x = [1], f = -1.0" in out and "converged" in out


def test_newton_rosenbrock_json(capsys):
    code, obj, _ = run_json(capsys, "newton", "100*(y-x**2)**2+(1-x)**2", "--at", "-1.2,1")
    assert code == 0 and obj["converged"] is True
    assert obj["x"]["x"] == pytest.approx(1.0, abs=1e-9) and obj["x"]["y"] == pytest.approx(1.0, abs=1e-9)
    its = obj["iterations"]
    assert its[0]["x"] == [-1.2, 1.0] and its[0]["f"] == pytest.approx(24.2) and its[-1]["action"] == "converged"


def test_newton_not_converged_exit_1(capsys):
    code, out, err = run(capsys, "newton", "100*(y-x**2)**2+(1-x)**2", "--at", "-1.2,1", "--max-iter", "3")
    assert code == 1 and "did not converge in 3 iterations" in out
    assert err.startswith("warning: did not converge")
    code, obj, _ = run_json(capsys, "newton", "-x**2", "--at", "1", "--solver", "cg")
    assert code == 1 and obj["converged"] is False and "unbounded below" in obj["message"]


def test_newton_errors(capsys):
    assert "log" in one_error(*run(capsys, "newton", "log(x)", "--at", "-1"))
    assert "scalar" in one_error(*run(capsys, "newton", "[x, y]", "--at", "1,2"))
    assert "--at" in one_error(*run(capsys, "newton", "x**2"))


# ---- plot ---------------------------------------------------------------------------------
def test_plot_in_the_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    monkeypatch.setenv("LINES", "30")
    code, out, err = run(capsys, "plot", "x**3 - y*x", "--over", "x=-2:2", "--at", "y=1", "--order", "2")
    assert code == 0 and err == "" and not ANSI.search(out)
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= 70
    assert lines[0].strip() == "x**3 - y*x at y=1.0"
    assert lines[-1].split() == ["*", "f", "+", "df/dx", "o", "d^2f/dx^2"]
    assert lines[1].lstrip().startswith("12 |") and "-12 |" in out     # f'' = 6x spans -12..12


def test_plot_json(capsys):
    code, obj, _ = run_json(capsys, "plot", "log(x)", "--over", "x=-1:1", "--points", "5")
    assert code == 0 and obj["x"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert obj["series"]["f"] == [None, None, None, pytest.approx(-0.6931471805599453), 0.0]
    assert obj["series"]["df/dx"][3:] == [2.0, 1.0]
    assert any("3 of 5 points" in w for w in obj["warnings"])


def _png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_png_is_a_real_image(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "plot.png"
    code, out, _ = run(capsys, "plot", "x**3 - y*x", "--over", "x=-2:2", "--at", "y=1", "--order", "2",
                       "--out", str(path))
    assert code == 0 and out == f"wrote {path} (200 points, 3 curves)\n"
    data = path.read_bytes()
    assert _png_size(data) == (800, 500) and len(data) > 10_000
    from matplotlib.image import imread
    img = imread(path)
    assert img.shape[:2] == (500, 800) and img[..., :3].std() > 0.05   # not a blank canvas


def test_plot_errors(capsys):
    assert "--over" in one_error(*run(capsys, "plot", "x*y", "--over", "z=0:1", "--at", "1"))
    assert "LO < HI" in one_error(*run(capsys, "plot", "x", "--over", "x=1:0"))
    assert "--at is required" in one_error(*run(capsys, "plot", "x*y", "--over", "x=0:1"))
    assert ".png or .svg" in one_error(*run(capsys, "plot", "x", "--over", "x=0:1", "--out", "a.pdf"))


# ---- completion ---------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_follow_the_cli(capsys, shell):
    code, out, err = run(capsys, "completion", shell)
    assert code == 0 and err == ""
    flag = (lambda o: f"-l {o[2:]}") if shell == "fish" else (lambda o: o)
    for word in list(cli.commands) + [flag(o) for o in ("--over", "--max-iter", "--solver", "--mode")] + [
            "symbolic", "numeric", "hessian", "hvp", "logsumexp", "sinc", "pi"]:
        assert word in out, word
    if shell == "bash":
        assert re.search(r'^\s+--mode\) COMPREPLY=\( \$\(compgen -W "forward reverse both"', out, re.M)
        assert re.search(r'^\s+newton\) opts="--at --vars --engine -e --tol --max-iter', out, re.M)
    binary = shutil.which(shell)
    if binary and shell != "fish":
        r = subprocess.run([binary, "-n"], input=out, text=True, capture_output=True, timeout=20)
        assert r.returncode == 0, r.stderr


def test_completion_unknown_shell(capsys):
    assert "tcsh" in one_error(*run(capsys, "completion", "tcsh"))
