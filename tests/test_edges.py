"""Verdicts people can trust (issue 11): a table of edge cases with the verdict and exit
status `verify` must give, every reproducer of the issue as a regression test, no numpy
warning anywhere (run with numpy's floating-point errors raised and Python warnings as
errors), and a generated-input run of the CLI that finds no internal error, no warning
and no multi-line error line."""
import contextlib
import io
import json
import random
import warnings

import numpy as np
import pytest

from adcalc import cli

# expression, point, expected exit status, what must hold of the verify JSON (None: exit 2)
EDGES = [
    # overflow and not finite
    ("exp(x)", "1000", 2, None),
    ("exp(x)", "700", 0, "ok"),
    ("x**0.5", "0", 2, None),
    ("sqrt(x)", "0", 2, None),
    ("cbrt(x)", "0", 2, None),
    ("1/x", "1e-300", 2, None),
    ("log(x)", "1e-300", 0, "not finite"),   # the Hessian -1/x^2 overflows
    ("exp(x)*y", "800,0", 0, "not finite"),  # only SymPy's 40 digits see d/dx = e^800 * 0 = 0
    ("exp(x)+y", "800,0", 0, "not finite"),
    ("asin(x)", "1", 2, None),
    ("acos(x)", "-1", 2, None),
    ("acosh(x)", "1", 2, None),
    ("x**x", "0", 2, None),
    # kinks
    ("abs(x1)", "0", 0, "kink"),
    ("relu(x)", "0", 0, "kink"),
    ("sign(x)*x", "0", 0, "kink"),
    ("max(x, y)", "2,2", 0, "kink"),
    ("min(x, y)", "1,1", 0, "kink"),
    ("max(v)", "v=[1,3,3]", 0, "kink"),
    ("hypot(x, y)", "1,2", 0, "ok"),
    ("abs(x)", "2", 0, "ok"),
    ("relu(x)", "-1", 0, "ok"),
    ("norm(v)", "v=[3,4]", 0, "ok"),
    # equivalent spellings get the same verdict
    ("x**2", "3", 0, "ok"),
    ("x*x", "3", 0, "ok"),
    ("pow(x, 2)", "3", 0, "ok"),
    ("sqrt(x)", "4", 0, "ok"),
    ("x**0.5", "4", 0, "ok"),
    ("exp(log(x))", "2", 0, "ok"),
    # extreme magnitudes
    ("x", "1e200", 0, "ok"),
    ("x*y", "1e-300,1", 0, "ok"),
    ("softplus(x)", "750", 0, "ok"),
    ("sigmoid(x)", "-750", 0, "ok"),
    ("tanh(x)", "400", 0, "ok"),
    ("asinh(x)", "1e200", 0, "ok"),
    ("atan2(y, x)", "1e200,1e200", 0, "ok"),
    ("logsumexp(v)", "v=[40,0]", 0, "ok"),
    ("prod(v)", "v=[2,3,0]", 0, "ok"),
    # ordinary
    ("log(x1)+x1*x2-sin(x2)", "2,5", 0, "ok"),
    ("sum(1/(1+exp(-x)))", "x=[[0,1],[-1,-2]]", 0, "ok"),
    ("dot(x, W)", "x=[1,2],W=[[1,0],[0,1]]", 0, "ok"),
    ("[x*y, sin(x)]", "1,2", 0, "ok"),
    ("sinc(x)", "0", 0, "ok"),
    # outside the domain, and nothing to differentiate
    ("log(x)", "-1", 2, None),
    ("sqrt(x)", "-1", 2, None),
    ("4.5", None, 2, None),
    ("x", "nan", 2, None),
]


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("expr,at,code,verdict", EDGES, ids=[f"{e}@{a}" for e, a, _, _ in EDGES])
def test_verify_edge_cases(expr, at, code, verdict):
    argv = ["verify", expr] + (["--at", at] if at is not None else []) + ["--json"]
    got, out, err = run(*argv)
    assert got == code, (got, err)
    obj = json.loads(out)
    if code == 2:
        assert set(obj) >= {"error", "kind"} and err.startswith("error: ") and "internal error" not in err
        return
    statuses = {c["status"] for e in obj["engines"].values() for c in e["quantities"].values()}
    assert "mismatch" not in statuses and obj["ok"] is True
    for e in obj["engines"].values():
        for c in e["quantities"].values():   # ok means within the stated tolerance
            if c["status"] == "ok" and c["max_abs_diff"] is not None:
                assert c["max_abs_diff"] <= c["tolerance"]
    if verdict == "kink":
        assert obj["kinks"] and "kink" in statuses
    elif verdict == "not finite":
        assert obj["not_finite"]
    else:
        assert not obj["kinks"] and statuses <= {"ok", "unavailable"}


def test_equivalent_spellings_agree():
    verdicts = []
    for expr in ("x**0.5", "sqrt(x)", "pow(x, 0.5)"):
        code, out, err = run("verify", expr, "--at", "0", "--json")
        verdicts.append((code, json.loads(out).get("kind")))
    assert len(set(verdicts)) == 1


REPRODUCERS = [  # issue 11: (argv, exit status, text that must (or must not, "!") appear)
    (["verify", "exp(x)", "--at", "1000"], 2, "nothing finite"),
    (["grad", "-x**2", "--at", "3", "--json"], 0, '"gradient": [-6.0]'),
    (["grad", "sum(x**2)", "--at", "1,2"], 2, "x=[1,2]"),
    (["grad", "x", "--at", "nan"], 2, "not a finite number"),
    (["grad", "x", "--at", "1e-400", "--json"], 0, "underflows to 0"),
    (["grad", "sinn(x)", "--at", "1"], 2, "did you mean 'sin'"),
    (["grad", "dot(x, W)", "--at", "x=[1,2],W=[[1,2,3]]"], 2, "([2])"),
    (["grad", "0*x", "--at", "1", "-e", "numeric", "--json"], 0, '"gradient": [0.0]'),
    (["jacobian", "1", "-e", "numeric", "--json"], 0, '"jacobian": [[]]'),
    (["hessian", "1", "-e", "numeric", "--json"], 0, '"hessian": []'),
    (["grad", "sign(log(y))", "--at", "2", "-e", "symbolic", "--json"], 0, '"gradient": [0.0]'),
    (["hessian", "abs(log(y))", "--at", "2", "-e", "symbolic", "--json"], 0, '"hessian": [[-0.25]]'),
    (["verify", "x", "--at", "1", "--random", "1", "--box=-1e308,1e308"], 0, "!internal error"),
    (["verify", "4.5"], 2, "nothing to compare"),
    (["verify", "x", "--at", "x=[1]"], 0, "!internal error"),
    (["grad", "x[1" + "0" * 4300 + "]", "--at", "x=[1]"], 2, "out of range"),
    (["grad", "x[\n0]", "--at", "1"], 2, "\\n"),
    (["grad", "x+\udcff", "--at", "1", "--json"], 2, "\\ufffd"),
    (["grad", "x", "--at", "1" * 3_000_000], 2, "(3000000 characters) at column 1 overflows a float64"),
    (["grad", "x", "--at", "1" * 5_000_000], 2, "characters long"),
    (["diff", "sin(pi/6)*x"], 0, "d/dx = 1/2"),
    (["diff", "exp(-x**2/2)/sqrt(2*pi)", "--latex"], 0, "\\sqrt{\\pi}"),
    (["diff", "x*e"], 0, "d/dx = e"),
    (["jacobian", "[x*y, sin(x)]", "--at", "1,2"], 0, "[x*y, sin(x)]"),
]


@pytest.mark.parametrize("argv,code,text", REPRODUCERS, ids=[" ".join(a)[:60] for a, _, _ in REPRODUCERS])
def test_issue_11_reproducers(argv, code, text):
    got, out, err = run(*argv)
    assert got == code, err
    both = out + err
    if text.startswith("!"):
        assert text[1:] not in both
    else:
        assert text in both, both[-500:]
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) <= 1 and all(len(ln) <= 700 for ln in lines)
    if "--json" in argv:
        json.loads(out.encode("utf-8").decode("utf-8"))


@pytest.fixture
def strict_numpy(monkeypatch):
    """numpy's floating-point errors raised and warnings turned into errors, with the
    CLI's own guard (which hides RuntimeWarnings from users) switched off."""
    class NoGuard:
        @staticmethod
        def catch_warnings():
            return contextlib.nullcontext()

        @staticmethod
        def simplefilter(*a, **k):
            pass
    monkeypatch.setattr(cli, "warnings", NoGuard)
    old = np.seterr(all="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    np.seterr(**old)


@pytest.mark.parametrize("expr,at,code,verdict", EDGES[:20], ids=[f"{e}@{a}" for e, a, _, _ in EDGES[:20]])
def test_no_numpy_warning_in_the_edge_cases(strict_numpy, expr, at, code, verdict):
    for command in ("grad", "hessian"):
        argv = [command, expr] + (["--at", at] if at is not None else []) + ["-e", "all", "--json"]
        got, out, err = run(*argv)
        assert "internal error" not in err and "FloatingPointError" not in err, err


ALPHABET = ["x", "y", "v", "W", "1", "2.5", "0", "-", "+", "*", "/", "**", "^", "(", ")", "[", "]", ",",
            "sin", "log", "sqrt", "max", "sum", "prod", "exp", "abs", "relu", "pi", "e", "@", ".T", ":",
            " ", "1e308", "1e-320", "norm", "logsumexp", "atan2", "hypot", "sinc", "\t", "#", "$", "\x00"]
POINTS = ["1", "0", "-1", "1,2", "x=1,y=2", "x=[1,2]", "x=1,y=0", "1e308,1e-308", "v=[0,0],x=1",
          "W=[[1,2],[3,4]],x=[1,2]", "nan", "", "x=", "[1", "2,3,4", "x=1e999", "y=-0.0,x=3"]


def _expression(rng):
    if rng.random() < 0.5:  # token soup
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12)))
    f = rng.choice(["sin", "log", "sqrt", "exp", "abs", "relu", "sum", "max", "prod", "norm", "tanh", "atan"])
    g = rng.choice(["x", "y", "x*y", "x-y", "x/y", "x**2", "v", "v*x", "W@x", "x[0]"])
    return f"{f}({g})" + rng.choice(["", "+1", "*y", "-x", "/2", "**3"])


def test_generated_inputs_through_the_cli():
    """10^4 generated command lines (fixed seed), in-process: exit status 0, 1 or 2, never an
    internal error, never a numpy warning, errors on one line."""
    rng = random.Random(11)
    seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(10_000):
            command = rng.choice(["grad", "hessian", "jacobian", "jvp", "vjp", "hvp", "grad"])
            argv = [command, _expression(rng)]
            if rng.random() < 0.95:
                argv += ["--at", rng.choice(POINTS)]
            if command in ("jvp", "vjp", "hvp"):
                argv += ["-v", rng.choice(["1", "1,2", "0", "x=1,y=1", "[1,2]"])]
            if rng.random() < 0.3:
                argv += ["-e", rng.choice(["forward", "reverse"])]
            if rng.random() < 0.5:
                argv.append("--json")
            code, out, err = run(*argv)
            assert code in (0, 1, 2), (argv, code, err)
            assert "internal error" not in err and "Traceback" not in err, (argv, err)
            errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
            assert len(errors) <= 1, (argv, err)
            if code == 2:
                assert errors, (argv, err)
            if "--json" in argv:
                obj = json.loads(out)
                assert ("error" in obj) == (code == 2), (argv, out)
            seen += 1
    assert seen == 10_000


def test_long_variable_lists_are_shortened_in_messages(tmp_path):
    """An error about 3000 variables names a few of them, on one short line."""
    path = tmp_path / "sum.txt"
    path.write_text("+".join(f"x{k}*x{k + 1}" for k in range(1, 3000)))
    code, out, err = run("grad", f"@{path}", "--at", "0.5")
    assert code == 2 and out == ""
    assert err.startswith("error: --at: expected 3000 values (x1, x2,") and "..., x3000) but got 1" in err
    assert len(err) < 200 and err.count("\n") == 1
    code, _, err = run("grad", "x*y*z*w*a*b*c*d*e1*f1")
    assert code == 2 and err.strip() == "error: --at is required: give values for a, b, c, d, e1, f1, w, x, y, z"
