"""The symbolic engine (SymPy) and `adcalc diff`.

Textbook values, agreement with the reverse engine on all six commands for varied
scalar and array expressions (every element-wise function of the language inside its
domain), the graph -> SymPy mapping (flat sums, chains, shared subexpressions, no
parsing of user text), caching, and the `diff` command's output.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sympy")

from adcalc.cli import main  # noqa: E402
from adcalc.engines import get_engine  # noqa: E402
from adcalc.engines.base import compute  # noqa: E402
from adcalc.engines.reverse import ReverseEngine  # noqa: E402
from adcalc.engines.symbolic import SymbolicEngine, graph_to_sympy  # noqa: E402
from adcalc.errors import DomainError, InputError  # noqa: E402
from adcalc.parse import FUNCTIONS  # noqa: E402
from adcalc.primitives import PRIMS  # noqa: E402
from adcalc.problem import Problem  # noqa: E402

SYM = SymbolicEngine()
REV = ReverseEngine()
COMMANDS = ("grad", "jacobian", "hessian", "hvp", "jvp", "vjp")


def close(got, want, rtol=1e-12):
    want = np.asarray(want, dtype=float)
    got = np.asarray(got, dtype=float).reshape(want.shape)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


# ---- textbook values ---------------------------------------------------------------------
def test_available_and_registered():
    assert SYM.available() is None
    assert isinstance(get_engine("symbolic"), SymbolicEngine)
    assert SymbolicEngine.name == "symbolic"


def test_worked_example():
    p = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    x = p.x0()
    close(SYM.grad(p, x), [5.5, 1.7163378145367738])
    close(SYM.hessian(p, x), [[-0.25, 1.0], [1.0, -0.9589242746631385]])
    assert SYM.grad(p, x).value.tolist() == [5.5, 1.7163378145367738]  # correctly rounded
    close(SYM.jacobian(p, x), [[5.5, 1.7163378145367738]])


def test_sigmoid_sum_gradient():
    p = Problem("sum(1/(1+exp(-x)))", at="x=[[0,1],[-1,-2]]")
    close(SYM.grad(p, p.x0()), [0.25, 0.19661193324148185, 0.19661193324148185, 0.10499358540350652])


def test_jacobian_of_square_is_8_identity():
    p = Problem("x**2", at="x=[4,4]")
    close(SYM.jacobian(p, p.x0()), 8 * np.eye(2))


def test_hvp_of_sum_of_squares():
    p = Problem("sum(x**2)", at="x=[1,2]")
    close(SYM.hvp(p, p.x0(), np.array([4.0, 5.0])), [8.0, 10.0])


def test_jvp_vjp_of_dot():
    p = Problem("dot(x, W)", at="x=[0,1],W=[[1,1],[1,1]]")
    assert p.inputs == ["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]", "x[0]", "x[1]"]
    x = p.x0()
    close(SYM.jvp(p, x, np.array([2.0, 2.0, 2.0, 2.0, 0.0, 0.0])), [2.0, 2.0])
    close(SYM.vjp(p, x, np.array([2.0, 2.0])), [0.0, 0.0, 2.0, 2.0, 4.0, 4.0])


def test_domain_error_like_other_engines():
    p = Problem("log(x) + x", at="-1")
    with pytest.raises(DomainError) as e:
        SYM.grad(p, p.x0())
    assert "log" in str(e.value) and "x=-1.0" in str(e.value)
    with pytest.raises(InputError):
        SYM.grad(Problem("x**2", at="x=[1,2]"), np.array([1.0, 2.0]))  # not scalar


# ---- agreement with the reverse engine -----------------------------------------------------
VARIED = [
    ("log(x1)+x1*x2-sin(x2)", "2,5"),
    ("sum(tanh(W @ x + b) ** 2)", "W=[[0.5,-1,2],[1.5,0.3,-0.7]],x=[0.2,-0.4,1.1],b=[0.1,-0.2]"),
    ("x[1:] * x[:-1] + x[0]", "x=[1.5,-2,0.5,3]"),
    ("sum(A.T @ A) + A[1,0] * sum(A[0])", "A=[[1,2],[3,-1]]"),
    ("[x*y, exp(x-y), sin(x)*cos(y), x/y]", "0.7,1.9"),
    ("mean(x**2) * prod(x) - norm(x)", "x=[1.5,-2,0.5]"),
    ("max(x) + min(x) * logsumexp(x)", "x=[0.3,-1.2,2.5]"),
    ("max(x, y) * min(x, y) + hypot(x, y) + atan2(y, x)", "0.3,-1.7"),
    ("x ** y + y ** 3 / x - sqrt(x * y)", "1.3,2.1"),
    ("sum(softplus(W) * sigmoid(W.T))", "W=[[0.5,-1],[2,0.25]]"),
    ("a - (b - c) - -d + (a + b) * (a + b) - (a - b)", "0.5,1.5,2.5,-3.5"),
    ("cbrt(x) * erf(x) + erfc(y) * abs(x - y) + relu(y)", "0.8,1.4"),
    ("log(x, 2) + log10(y) + log2(x*y) + log1p(y) + expm1(x) + e**x * pi", "1.7,0.6"),
    ("x @ W.T @ x", "x=[1,2],W=[[1,2],[0.5,-1]]"),
]


@pytest.fixture(scope="module")
def varied():
    return [Problem(e, at=at) for e, at in VARIED]


@pytest.mark.parametrize("k", range(len(VARIED)), ids=[e for e, _ in VARIED])
def test_agrees_with_reverse(varied, k):
    p = varied[k]
    x = p.x0()
    rng = np.random.default_rng(k)
    v, u = rng.normal(size=p.n), rng.normal(size=p.m)
    for command in COMMANDS:
        if command in ("grad", "hessian", "hvp") and p.m != 1:
            continue
        vec = u if command == "vjp" else v
        got = compute(SYM, p, command, x, vec).value
        want = compute(REV, p, command, x, vec).value
        close(got, want)


def _sample(name):
    return {"positive": 1.3, "nonzero": 0.9, "unit": 0.4, "ge1": 1.6}.get(PRIMS[name].sample, 0.7)


ELEMENTWISE = sorted(n for n in FUNCTIONS if n in PRIMS and PRIMS[n].kind in ("elementwise", "zero"))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_function(name):
    """f(x) * y (f(x, z) * y): first and second derivatives of f against reverse."""
    a = _sample(name)
    if PRIMS[name].nargs == 2:
        p = Problem(f"{name}(x, z) * y", at=f"x={a},y=1.3,z={a + 0.45}")
    else:
        p = Problem(f"{name}(x) * y", at=f"x={a},y=1.3")
    x = p.x0()
    close(SYM.grad(p, x), REV.grad(p, x))
    close(SYM.hessian(p, x), REV.hessian(p, x))


def test_overflow_free_values():
    # mpmath evaluation: exp(x)/(1+exp(x)) at 800 is 1, not inf/inf
    p = Problem("softplus(x) + logsumexp(y)", at="x=800,y=[1000,1000]")
    close(SYM.grad(p, p.x0()), [1.0, 0.5, 0.5])
    # division by zero inside a derivative: IEEE inf, like reverse
    p = Problem("sqrt(x)", at="0")
    assert SYM.grad(p, p.x0()).value.tolist() == [np.inf]
    p = Problem("exp(x)", at="800")
    assert SYM.grad(p, p.x0()).value.tolist() == [np.inf]


# ---- the mapping --------------------------------------------------------------------------
def test_flat_sum_of_ten_thousand_terms():
    text = "x" + "".join(f"{'+-'[i % 3 == 0]}x*y" for i in range(1, 10000))
    p = Problem(text, at="2,3")
    close(SYM.grad(p, p.x0()), [1 + 3 * 3333, 2 * 3333])   # x + 3333*x*y
    close(SYM.hessian(p, p.x0()), [[0.0, 3333.0], [3333.0, 0.0]])


def test_flat_sum_of_many_variables_is_sparse():
    n = 120
    text = "+".join(f"x{i}*x{i + 1}" for i in range(n))
    p = Problem(text, at=",".join(str(0.1 * i) for i in range(n + 1)))
    close(SYM.grad(p, p.x0()), REV.grad(p, p.x0()))
    close(SYM.hvp(p, p.x0(), np.ones(n + 1)), REV.hvp(p, p.x0(), np.ones(n + 1)))


def test_symbols_named_after_flat_inputs():
    p = Problem("W @ x + norm(x)", at="W=[[1,2],[3,4]],x=[1,0.5]")
    symbols, outs = graph_to_sympy(p)
    assert [str(s) for s in symbols] == p.inputs
    assert all(s.is_real for s in symbols)
    assert str(outs[0]) == "W[0,0]*x[0] + W[0,1]*x[1] + sqrt(x[0]**2 + x[1]**2)"


def test_constants_mapped_exactly():
    p = Problem("x**(1/3) + pi*x + e**x + log(x, 2) + 0.1*x", at="2")
    (out,) = graph_to_sympy(p)[1]
    text = str(out)
    for part in ("x**(1/3)", "pi*x", "exp(x)", "log(x)/log(2)", "x/10"):
        assert part in text, text


def test_user_text_is_never_parsed_by_sympy(monkeypatch, capsys):
    """SymPy parses a few strings of its own (unit prefixes on first import); none of
    them may come from the user's expression."""
    import sympy.parsing.sympy_parser as sp
    original, seen = sp.parse_expr, []

    def watch(text, *a, **k):
        seen.append(text)
        return original(text, *a, **k)
    monkeypatch.setattr(sp, "parse_expr", watch)
    p = Problem("exp(qq1)*sin(qq2) + qq1**2", at="1,2")
    close(SYM.hessian(p, p.x0()), REV.hessian(p, p.x0()))
    assert main(["diff", "exp(qq1)*sin(qq2)", "--simplify", "--cse", "--latex", "--at", "1,2"]) == 0
    assert not [t for t in seen if "qq" in str(t)]


def test_cached_per_problem():
    p = Problem("exp(x1)*sin(x2)", at="1,2")
    x = p.x0()
    SYM.grad(p, x)
    cache = p.graph.cache
    exprs = cache[("symbolic.exprs", p.output.id)]
    SYM.hessian(p, x)
    hess = cache[("symbolic.compiled", "hessian", p.output.id)]
    SYM.hvp(p, x, np.ones(2))
    assert cache[("symbolic.exprs", p.output.id)] is exprs
    assert cache[("symbolic.compiled", "hessian", p.output.id)] is hess


# ---- the diff command ------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_diff_square(capsys):
    code, out, err = run(capsys, "diff", "x**2")
    assert code == 0 and out == "d/dx = 2*x\n" and err == ""


def test_diff_worked_example(capsys):
    code, out, _ = run(capsys, "diff", "log(x1)+x1*x2-sin(x2)")
    assert code == 0
    assert out.splitlines() == ["d/dx1 = x2 + 1/x1", "d/dx2 = x1 - cos(x2)"]


def test_diff_at_point_shows_values(capsys):
    code, out, _ = run(capsys, "diff", "log(x1)+x1*x2-sin(x2)", "--at", "2,5")
    assert code == 0
    assert out.splitlines() == ["d/dx1 = x2 + 1/x1 = 5.5", "d/dx2 = x1 - cos(x2) = 1.716337815"]


def test_diff_hessian(capsys):
    code, out, _ = run(capsys, "diff", "log(x1)+x1*x2-sin(x2)", "--hessian")
    assert code == 0
    assert out.splitlines() == ["d2/dx1^2 = -1/x1**2", "d2/dx1 dx2 = 1", "d2/dx2^2 = sin(x2)"]


def test_diff_json(capsys):
    code, out, _ = run(capsys, "diff", "log(x1)+x1*x2-sin(x2)", "--json", "--latex")
    assert code == 0
    obj = json.loads(out)
    assert obj["command"] == "diff"
    assert obj["expression"] == "log(x1)+x1*x2-sin(x2)"
    assert obj["variables"] == ["x1", "x2"] and obj["inputs"] == ["x1", "x2"]
    assert obj["derivatives"] == {"x1": "x2 + 1/x1", "x2": "x1 - cos(x2)"}
    assert obj["latex"]["x1"] == "x_{2} + \\frac{1}{x_{1}}"
    assert obj["warnings"] == []


def test_diff_json_hessian_at_point(capsys):
    code, out, _ = run(capsys, "diff", "log(x1)+x1*x2-sin(x2)", "--hessian", "--at", "2,5", "--json")
    obj = json.loads(out)
    assert obj["derivatives"] == {"x1": {"x1": "-1/x1**2", "x2": "1"}, "x2": {"x1": "1", "x2": "sin(x2)"}}
    assert obj["values"] == {"x1": {"x1": -0.25, "x2": 1.0}, "x2": {"x1": 1.0, "x2": -0.9589242746631385}}
    assert obj["value"] == 11.652071455223084


def test_diff_latex_cse_simplify(capsys):
    code, out, _ = run(capsys, "diff", "log(x1)+x1*x2-sin(x2)", "--latex")
    assert out.splitlines()[0] == "\\frac{\\partial f}{\\partial x_{1}} = x_{2} + \\frac{1}{x_{1}}"
    code, out, _ = run(capsys, "diff", "exp(x1*x2)*x1 + sin(x1*x2)", "--cse")
    lines = out.splitlines()
    assert lines[0] == "t0 = x1*x2" and any(line.startswith("d/dx2 = ") for line in lines)
    code, out, _ = run(capsys, "diff", "sin(x)**2 + cos(x)**2", "--simplify")
    assert out == "d/dx = 0\n"


def test_diff_arrays_and_wrt(capsys):
    code, out, _ = run(capsys, "diff", "W @ x", "--at", "W=[[1,2],[3,4]],x=[1,0.5]", "--wrt", "x")
    assert code == 0
    assert out.splitlines() == ["df[0]/dx[0] = W[0,0] = 1.0", "df[0]/dx[1] = W[0,1] = 2.0",
                                "df[1]/dx[0] = W[1,0] = 3.0", "df[1]/dx[1] = W[1,1] = 4.0"]
    code, out, _ = run(capsys, "diff", "x1*x2**2", "--wrt", "x2")
    assert out == "d/dx2 = 2*x1*x2\n"


@pytest.mark.parametrize("argv, kind, words", [
    (["diff", "2+3"], "input", "no variables"),
    (["diff", "x*y", "--wrt", "z"], "input", "'z'"),
    (["diff", "log(x)", "--at", "0"], "domain", "log"),
    (["diff", "[x, y]", "--hessian"], "input", "scalar"),
    (["diff", "x[0]"], "input", "--at"),
    (["diff", "sin(x"], "parse", "expected"),
])
def test_diff_errors(capsys, argv, kind, words):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 2
    obj = json.loads(out)
    assert obj["kind"] == kind and words in obj["error"]
    assert err.startswith("error: ") and "Traceback" not in err


def test_engine_from_the_command_line(capsys):
    code, out, _ = run(capsys, "hessian", "log(x1)+x1*x2-sin(x2)", "--at", "2,5", "--engine", "symbolic", "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["engine"] == "symbolic"
    assert obj["hessian"] == [[-0.25, 1.0], [1.0, -0.9589242746631385]]


def test_grad_path_imports_no_sympy():
    code = ("import sys; from adcalc.cli import main; "
            "rc = main(['grad', 'log(x1)+x1*x2-sin(x2)', '--at', '2,5', '--json']); "
            "assert rc == 0; assert 'sympy' not in sys.modules, 'sympy imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
