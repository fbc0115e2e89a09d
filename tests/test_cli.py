"""The command line against cli-contract.md: JSON schema, point syntax, exit codes, errors, output.

Most tests call `adcalc.cli.main(argv)` in-process (stdout captured, not a TTY);
a few run `python -m adcalc` as a real process (exit status, --debug, a pseudo-terminal).
"""
import json
import os
import pty
import re
import select
import subprocess
import sys

import pytest

from adcalc.cli import main
from cases import CASES

WORKED = ["grad", "log(x1)+x1*x2-sin(x2)", "--at", "2,5"]
CONTRACT_KEYS = ("command", "expression", "engine", "variables", "shapes", "inputs", "point", "value",
                 "warnings")
RESULT_KEY = {"grad": "gradient", "jacobian": "jacobian", "hessian": "hessian", "hvp": "hvp", "jvp": "jvp",
              "vjp": "vjp"}
ANSI = re.compile(r"\x1b[\[\]()#;?]*[0-9;]*[A-Za-z]?")
BOX = re.compile("[\u2500-\u257f\u2580-\u259f]")


def _no_constant(name):
    raise ValueError(f"non-strict JSON token {name}")


def strict_json(text):
    """Exactly one strict RFC 8259 object (no NaN/Infinity), nothing else."""
    assert text.endswith("\n") and text.count("\n") == 1, repr(text[:300])
    obj = json.loads(text, parse_constant=_no_constant)
    assert isinstance(obj, dict)
    return obj


def run(capsys, argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, argv):
    code, out, err = run(capsys, list(argv) + ["--json"])
    return code, strict_json(out), err


def proc(args):
    """`python -m adcalc ARGS` as a real process (pipes: not a terminal)."""
    return subprocess.run([sys.executable, "-m", "adcalc", *args], capture_output=True, text=True, timeout=60)


# ---- the worked example -----------------------------------------------------------------------------
def test_worked_example_as_a_process():
    r = proc(WORKED + ["--json"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    obj = strict_json(r.stdout)
    assert obj["gradient"] == [5.5, 1.7163378145367738]
    assert obj["value"] == 11.652071455223084


def test_worked_example_schema(capsys):
    code, obj, err = run_json(capsys, WORKED)
    assert code == 0 and err == ""
    for key in CONTRACT_KEYS + ("gradient",):
        assert key in obj, key
    assert obj["command"] == "grad"
    assert obj["expression"] == "log(x1)+x1*x2-sin(x2)"
    assert obj["engine"] == "reverse"
    assert obj["variables"] == ["x1", "x2"]
    assert obj["shapes"] == {"x1": [], "x2": []}
    assert obj["inputs"] == ["x1", "x2"]
    assert obj["point"] == {"x1": 2.0, "x2": 5.0}
    assert obj["value"] == 11.652071455223084
    assert obj["warnings"] == []
    assert obj["gradient"] == [5.5, 1.7163378145367738]


@pytest.mark.parametrize("at", ["2,5", "x1=2,x2=5", "x2=5,x1=2", " 2 , 5 ", "4/2,5", "x1=2, x2=5"])
def test_point_forms(capsys, at):
    code, obj, _ = run_json(capsys, ["grad", "log(x1)+x1*x2-sin(x2)", "--at", at])
    assert code == 0
    assert obj["gradient"] == [5.5, 1.7163378145367738]


@pytest.mark.parametrize("argv", [["--at", "-1,2"], ["--at=-1,2"], ["--at", "x=-1,y=2"], ["--at", "-1,+2"]])
def test_leading_minus_is_a_value(capsys, argv):
    code, obj, err = run_json(capsys, ["grad", "x*y"] + argv)
    assert code == 0, err
    assert obj["point"] == {"x": -1.0, "y": 2.0}
    assert obj["gradient"] == [2.0, -1.0]


def test_leading_minus_as_a_process():
    r = proc(["grad", "x*y", "--at", "-1,2", "--json"])
    assert r.returncode == 0, r.stderr
    assert strict_json(r.stdout)["gradient"] == [2.0, -1.0]


# ---- every command, from the textbook table -----------------------------------------------------------
CLI_CASES = [pytest.param(c, cmd, id=f"{c.id}-{cmd}") for c in CASES for cmd in c.commands
             if c.id in ("worked-example", "sigmoid-sum", "square-jacobian", "sum-squares", "dot-xW",
                         "quotient", "W-matmul-x", "transpose", "list-literal", "several-exprs")]


@pytest.mark.parametrize("case,command", CLI_CASES)
def test_commands_json(capsys, case, command):
    import numpy as np
    code, obj, err = run_json(capsys, case.argv(command))
    assert code == 0, err
    for key in CONTRACT_KEYS + (RESULT_KEY[command],):
        assert key in obj, key
    assert obj["command"] == command
    assert obj["expression"] == case.exprs
    n = len(obj["inputs"])
    want = np.asarray(case.expected[command], dtype=float)
    got = np.asarray(obj[RESULT_KEY[command]], dtype=float)
    m = int(np.size(obj["value"]))
    shape = {"grad": (n,), "hvp": (n,), "vjp": (n,), "jvp": (m,), "jacobian": (m, n), "hessian": (n, n)}[command]
    assert got.shape == shape
    np.testing.assert_allclose(got, want.reshape(shape), rtol=1e-12, atol=1e-12)
    if case.inputs:
        assert obj["inputs"] == case.inputs
    if "value" in case.expected:
        np.testing.assert_allclose(obj["value"], case.expected["value"], rtol=1e-14)


def test_arrays_shapes_and_inputs(capsys):
    code, obj, _ = run_json(capsys, ["grad", "sum(W @ x)", "--at", "x=[1,2],W=[[1,0],[0,1]]"])
    assert code == 0
    assert obj["variables"] == ["W", "x"]
    assert obj["shapes"] == {"W": [2, 2], "x": [2]}
    assert obj["inputs"] == ["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]", "x[0]", "x[1]"]
    assert obj["point"] == {"W": [[1.0, 0.0], [0.0, 1.0]], "x": [1.0, 2.0]}
    assert obj["gradient"] == [1.0, 2.0, 1.0, 2.0, 1.0, 1.0]


@pytest.mark.parametrize("vector", ["4,5", "x=[4,5]", "x[0]=4,x[1]=5", "[4,5]"])
def test_vector_forms(capsys, vector):
    code, obj, err = run_json(capsys, ["hvp", "sum(x**2)", "--at", "x=[1,2]", "--vector", vector])
    assert code == 0, err
    assert obj["hvp"] == [8.0, 10.0]
    code, obj, err = run_json(capsys, ["hvp", "sum(x**2)", "--at", "x=[1,2]", "-v", vector])
    assert code == 0 and obj["hvp"] == [8.0, 10.0]


def test_vars_option(capsys):
    code, obj, _ = run_json(capsys, ["grad", "y/x - x + y", "--at", "3,2", "--vars", "y,x"])
    assert code == 0
    assert obj["variables"] == ["y", "x"] and obj["gradient"] == [1.5, -1.75]


def test_natural_order(capsys):
    code, obj, _ = run_json(capsys, ["grad", "x10 + 2*x2", "--at", "1,2"])
    assert obj["variables"] == ["x2", "x10"] and obj["gradient"] == [2.0, 1.0]


def test_several_expressions(capsys):
    code, obj, _ = run_json(capsys, ["jacobian", "x*y", "x+y", "--at", "1,2"])
    assert code == 0
    assert obj["expression"] == ["x*y", "x+y"]
    assert obj["jacobian"] == [[2.0, 1.0], [1.0, 1.0]]


def test_engine_all_lists_unavailable_engines(capsys):
    code, obj, err = run_json(capsys, ["grad", "x*y", "--at", "1,2", "--engine", "all"])
    assert code == 0, err
    assert obj["gradient"] == [2.0, 1.0]
    assert obj["engines"]["reverse"]["status"] == "ok"
    for name, info in obj["engines"].items():
        assert info["status"] in ("ok", "unavailable", "error"), name
        if info["status"] == "unavailable":
            assert info["reason"]


def test_engines_command(capsys):
    code, out, _ = run(capsys, ["engines", "--json"])
    obj = strict_json(out)
    assert code == 0
    assert obj["engines"]["reverse"]["available"] is True
    for info in obj["engines"].values():
        assert info["available"] or info["reason"]


# ---- human output ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    WORKED, ["hessian", "log(x1)+x1*x2-sin(x2)", "--at", "2,5"],
    ["jacobian", "W @ x", "--at", "W=[[1,2],[3,4]],x=[5,6]"], ["hvp", "sum(x**2)", "--at", "x=[1,2]", "-v", "4,5"],
    ["jvp", "x**2", "--at", "x=[4,4]", "-v", "1,2"], ["vjp", "x**2", "--at", "x=[4,4]", "-v", "1,2"],
    ["engines"], ["grad", "x*y", "--at", "1,2", "--engine", "all"],
])
def test_plain_output_when_not_a_terminal(capsys, argv):
    code, out, err = run(capsys, argv)
    assert code == 0, err
    assert not ANSI.search(out), repr(out)
    assert not BOX.search(out), repr(out)
    assert out.strip()


def test_human_output_ten_digits_digits_option_and_json_full(capsys):
    code, out, _ = run(capsys, WORKED)
    assert "1.716337815" in out and "5.5" in out and "11.65207146" in out
    assert "1.7163378145367738" not in out
    code, out, _ = run(capsys, WORKED + ["--digits", "17"])
    assert "1.7163378145367738" in out
    code, out, _ = run(capsys, WORKED + ["--digits", "3"])
    assert code == 0
    assert "1.72" in out and "1.716337815" not in out
    code, out, _ = run(capsys, WORKED + ["--digits", "3", "--json"])
    assert strict_json(out)["gradient"] == [5.5, 1.7163378145367738]


def _pty_run(args, env):
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "adcalc", *args], stdout=slave, stderr=subprocess.PIPE,
                             env=env, close_fds=True)
        os.close(slave)
        chunks = []
        while True:
            r, _, _ = select.select([master], [], [], 30)
            if not r:
                break
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        p.wait(timeout=30)
        return p.returncode, b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)


@pytest.mark.parametrize("var,value", [("NO_COLOR", "1"), ("TERM", "dumb")])
def test_no_color_on_a_terminal(var, value):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    env.setdefault("TERM", "xterm-256color")
    env[var] = value
    code, out = _pty_run(WORKED, env)
    assert code == 0
    assert "1.716337815" in out
    assert not ANSI.search(out), repr(out)
    assert not BOX.search(out), repr(out)


def test_terminal_without_no_color_gets_a_table():
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    code, out = _pty_run(WORKED, env)
    assert code == 0
    assert "1.716337815" in out
    assert BOX.search(out) or ANSI.search(out), "a terminal should get the rich table"


# ---- non-finite results ----------------------------------------------------------------------------------
def test_overflow_inside_the_domain_is_null_with_warning(capsys):
    code, obj, err = run_json(capsys, ["grad", "exp(x)", "--at", "800"])
    assert code == 0, err
    assert obj["value"] is None and obj["gradient"] == [None]
    assert obj["warnings"] and any("value" in w for w in obj["warnings"])
    assert any("gradient" in w for w in obj["warnings"])
    code, out, err = run(capsys, ["grad", "exp(x)", "--at", "800"])
    assert code == 0 and "warning" not in out   # human-mode warnings go to stderr, in words
    assert "warning: gradient: infinite at x" in err and "null" not in err


def test_constant_exp_800(capsys):
    """`exp(800)` as a literal: the contract names it as the null-and-warning example, and also
    says a constant that overflows is an input error.  Either is acceptable; never a crash."""
    code, obj, err = run_json(capsys, ["grad", "exp(800) + x", "--at", "1"])
    if code == 0:
        assert obj["value"] is None and obj["warnings"]
    else:
        assert code == 2 and obj["kind"] == "input" and "exp(800)" in obj["error"]


# ---- errors ---------------------------------------------------------------------------------------------------
def _error_checks(code, out, err, kind, as_json):
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    lines = err.splitlines()
    assert lines and lines[0].startswith("error: "), err
    if as_json:
        obj = strict_json(out)
        assert obj["kind"] == kind, obj
        assert obj["error"] == lines[0][len("error: "):]
    else:
        assert out == ""


BAD = [
    (["grad", "log(x", "--at", "1"], "parse"),
    (["grad", "foo(x)", "--at", "1"], "parse"),
    (["grad", "", "--at", "1"], "parse"),
    (["grad", "__import__('os').system('echo hi')", "--at", "1"], "parse"),
    (["grad", "x;y", "--at", "1"], "parse"),
    (["grad", "x", "--at", "1,2"], "input"),
    (["grad", "x+y", "--at", "x=1"], "input"),
    (["grad", "x", "--at", "y=1"], "input"),
    (["grad", "x", "--at", "x=1,2"], "input"),
    (["grad", "sum(x)", "--at", "x=[1,2"], "input"),
    (["grad", "x", "--at", "abc"], "input"),
    (["grad", "x", "--at", ""], "input"),
    (["grad", "x"], "input"),
    (["grad", "x + y", "--at", "x=[1,2],y=[1,2,3]"], "input"),
    (["grad", "W @ W", "--at", "W=[[1,2,3],[4,5,6]]"], "input"),
    (["grad", "x[3]", "--at", "x=[1,2]"], "input"),
    (["grad", "[x, x]", "--at", "1"], "input"),
    (["hessian", "x * [1, 2]", "--at", "1"], "input"),
    (["hvp", "x**2", "--at", "1"], "input"),
    (["jvp", "x**2", "--at", "1"], "input"),
    (["vjp", "[x, x]", "--at", "1"], "input"),
    (["hvp", "x**2", "--at", "1", "-v", "1,2"], "input"),
    (["vjp", "[x, x]", "--at", "1", "-v", "1"], "input"),
    (["jvp", "W @ x", "--at", "W=[[1,2],[3,4]],x=[1,2]", "-v", "W=[1,2],x=[1,2]"], "input"),
    (["jvp", "x", "--at", "1", "-v", "y=1"], "input"),
    (["grad", "x", "--at", "1", "--engine", "bogus"], "input"),
    (["grad", "x", "--at", "1", "--frobnicate"], "input"),
    (["grad", "x", "--at", "1", "--digits", "0"], "input"),
    (["grad", "x", "--at", "1", "--digits", "many"], "input"),
    (["grad", "x", "--vars", "x,x", "--at", "1"], "input"),
    (["grad", "x*y", "--vars", "x", "--at", "1"], "input"),
    (["grad", "x", "--at", "1", "--method", "central"], "input"),
    (["frobnicate", "x"], "input"),
    (["grad"], "input"),
    (["grad", "10**10**10**10"], "input"),
    (["grad", "(" * 100000 + "x" + ")" * 100000, "--at", "1"], "input"),
    (["grad", "-" * 100000 + "x", "--at", "1"], "input"),
    (["grad", "log(x)", "--at", "-1"], "domain"),
    (["grad", "x/y", "--at", "1,0"], "domain"),
    (["hessian", "sqrt(x - 3)", "--at", "1"], "domain"),
]


@pytest.mark.parametrize("argv,kind", BAD, ids=lambda a: " ".join(a)[:40] if isinstance(a, list) else a)
def test_bad_input(capsys, argv, kind):
    code, out, err = run(capsys, argv)
    _error_checks(code, out, err, kind, as_json=False)
    code, out, err = run(capsys, argv + ["--json"])
    _error_checks(code, out, err, kind, as_json=True)


@pytest.mark.parametrize("argv", [
    ["grad", "x", "--at", "1e999"], ["grad", "x * 1e999", "--at", "1"],
    ["grad", "sum(x)", "--at", "x=[[1,2],[3]]"], ["jvp", "x", "--at", "x=[1,2]", "-v", "x=[[1],[2,3]]"],
])
def test_overflowing_numbers_and_ragged_arrays(capsys, argv):
    code, out, err = run(capsys, argv + ["--json"])
    _error_checks(code, out, err, "input", as_json=True)


def test_unusable_engine_is_kind_engine(capsys):
    from adcalc.engines import availability
    missing = [name for name, reason in availability() if reason]
    if not missing:
        pytest.skip("every engine can run here")
    code, out, err = run(capsys, ["grad", "x", "--at", "1", "--engine", missing[0], "--json"])
    _error_checks(code, out, err, "engine", as_json=True)
    assert missing[0] in err


@pytest.mark.parametrize("argv", [BAD[0][0], BAD[5][0], BAD[-3][0], ["grad", "x", "--at", "1", "--bogus"]])
def test_bad_input_as_a_process(argv):
    r = proc(argv)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr


def test_parse_error_shows_caret(capsys):
    code, out, err = run(capsys, ["grad", "x + * y", "--at", "1,2"])
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == "error: unexpected '*' at column 5"
    assert lines[1] == "  x + * y"
    assert lines[2] == "      ^"
    code, out, err = run(capsys, ["grad", "x + * y", "--at", "1,2", "--json"])
    obj = strict_json(out)
    assert obj["kind"] == "parse" and obj["column"] == 5 and obj["token"] == "*"


def test_domain_error_names_subexpression_and_point(capsys):
    code, obj, err = run_json(capsys, ["grad", "x*y + log(x - y)", "--at", "1,2"])
    assert code == 2 and obj["kind"] == "domain"
    assert "'log(x - y)'" in obj["error"]
    assert "x=1.0" in obj["error"] and "y=2.0" in obj["error"]


def test_hostile_expression_does_not_run(capsys, tmp_path):
    target = tmp_path / "pwned"
    code, obj, err = run_json(capsys, ["grad", f"__import__('os').system('touch {target}')", "--at", "1"])
    assert code == 2 and obj["kind"] == "parse"
    assert not target.exists()


def test_debug_shows_traceback():
    r = proc(["grad", "log(x", "--at", "1", "--debug"])
    assert r.returncode != 0
    assert "Traceback" in r.stderr
    assert "ParseError" in r.stderr


def test_grad_of_vector_names_jacobian(capsys):
    code, obj, err = run_json(capsys, ["grad", "[x, x**2]", "--at", "1"])
    assert code == 2 and "jacobian" in obj["error"]


def test_help_and_version(capsys):
    code, out, _ = run(capsys, ["--help"])
    assert code == 0 and "grad" in out and "hessian" in out
    code, out, _ = run(capsys, ["grad", "--help"])
    assert code == 0 and "--at" in out and "--json" in out
    code, out, _ = run(capsys, ["--version"])
    assert code == 0 and "adcalc" in out
