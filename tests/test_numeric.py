"""The numeric engine: values, error estimates that bound the true error, methods,
domain edges, complex step's refusal, and the CLI's "error_estimate"."""
import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from adcalc.engines.base import compute
from adcalc.engines.numeric import NumericEngine
from adcalc.numdiff import nominal_scale, richardson, typical_scale
from adcalc.engines.reverse import ReverseEngine
from adcalc.errors import EngineError, InputError
from adcalc.problem import Problem

METHODS = ["auto", "richardson", "central", "complex-step"]
EPS = np.finfo(float).eps
WORKED = "log(x1)+x1*x2-sin(x2)"


def within_estimate(result, expected, slack=0.0):
    """|value - expected| <= error estimate, componentwise (slack: the reference's own rounding)."""
    expected = np.asarray(expected, dtype=float)
    value, error = np.reshape(result.value, expected.shape), np.reshape(result.error, expected.shape)
    assert np.all(np.isfinite(value)) and np.all(error >= 0)
    bad = np.abs(value - expected) > error + slack * np.abs(expected)
    assert not bad.any(), f"value {value} expected {expected} error estimate {error}"


def run(method, command, expr, at, vector=None):
    prob = Problem(expr, at=at)
    v = None if vector is None else np.asarray(vector, dtype=float)
    return compute(NumericEngine(method=method), prob, command, vector=v)


# ---- textbook values, within the engine's own estimate ------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_worked_example(method):
    g = run(method, "grad", WORKED, "2,5")
    within_estimate(g, [5.5, 1.7163378145367738])
    h = run(method, "hessian", WORKED, "2,5")
    within_estimate(h, [[-0.25, 1], [1, -0.9589242746631385]])
    assert g.info["method"] == ("complex-step" if method == "auto" else method)
    if method != "central":
        assert np.max(g.error) < 1e-11 and np.max(h.error) < 1e-8


@pytest.mark.parametrize("method", METHODS)
def test_sigmoid_sum_over_a_matrix(method):
    x = np.array([0.0, 1.0, -1.0, -2.0])
    s = np.array([0.5] + [1 / (1 + math.exp(-v)) for v in x[1:]])
    r = run(method, "grad", "sum(1/(1+exp(-x)))", "x=[[0,1],[-1,-2]]")
    within_estimate(r, s * (1 - s), slack=4 * EPS)
    assert np.allclose(r.value, [0.25, 0.19661193, 0.19661193, 0.10499359], atol=5e-9)


@pytest.mark.parametrize("method", METHODS)
def test_hvp_of_sum_of_squares(method):
    within_estimate(run(method, "hvp", "sum(x**2)", "x=[1,2]", [4, 5]), [8, 10])


# ---- error estimates bound the true error (reverse engine as reference) ----------------------------
CASES = [  # expression, point, vector for hvp/jvp, u for vjp
    (WORKED, "2,5", [0.3, -1.1], None),
    ("exp(sin(x1)*x2) + log(1+x3^2)/x1 + tanh(x2*x3)", "0.8,1.5,0.6", [1, -2, 0.5], None),
    ("100*(x2 - x1^2)^2 + (1 - x1)^2", "-1.2,1", [1, 1], None),
    ("x1^x2 + sqrt(x1*x2) - cosh(x2/3)", "1.7,2.4", [-0.7, 0.2], None),
    ("sigmoid(x1 - 2*x2) * softplus(x2) + asinh(x1)*atan(x2)", "0.4,-0.9", [2, 1], None),
    ("abs(x1 - 5)*x2^2 + hypot(x1, x2) + max(x1, x2)", "2,3", [1, -1], None),
    ("[sin(x1)*x2, x1^2*exp(-x2), log1p(x1*x2)]", "0.7,1.3", [0.5, 2], [1, -2, 3]),
    ("W @ x + tanh(x)", "W=[[1,2],[3,4]],x=[0.5,-1]", [1, 0, 0, 1, 2, -1], [1, 1]),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("expr,at,v,u", CASES, ids=[c[0][:30] for c in CASES])
def test_estimates_bound_the_error(method, expr, at, v, u):
    prob = Problem(expr, at=at)
    eng, rev, x = NumericEngine(method=method), ReverseEngine(), prob.x0()
    if method == "complex-step" and any(f in expr for f in ("abs", "max", "hypot")):
        with pytest.raises(EngineError, match="abs, hypot, maximum"):
            eng.jacobian(prob, x).value
        return
    commands = ["jacobian", "jvp", "vjp"] + (["grad", "hessian", "hvp"] if prob.m == 1 else [])
    for command in commands:
        vec = None
        if command in ("jvp", "hvp"):
            vec = np.resize(np.asarray(v, dtype=float), prob.n)
        elif command == "vjp":
            vec = np.ones(prob.m) if u is None else np.asarray(u, dtype=float)
        got = compute(eng, prob, command, x, vec)
        want = compute(rev, prob, command, x, vec).value
        within_estimate(got, want, slack=4 * EPS)
        scale = np.max(np.abs(want)) or 1.0
        limit = {"central": 1e-4}.get(method, 1e-8)  # the estimates are not absurdly loose either
        assert np.max(got.error) <= limit * scale, (command, got.error)


# ---- methods, refusal, options -------------------------------------------------------------
def test_complex_step_refuses_non_analytic_naming_the_function():
    prob = Problem("abs(x1)*x2 + x2^2", at="2,3")
    with pytest.raises(EngineError, match=r"\babs\b.*richardson"):
        NumericEngine(method="complex-step").grad(prob, prob.x0()).value
    r = compute(NumericEngine(), prob, "grad")  # the default falls back to richardson
    assert r.info["method"] == "richardson"
    within_estimate(r, [3.0, 8.0])


def test_unknown_method_is_one_clear_input_error():
    with pytest.raises(InputError, match="unknown numeric method 'forward'; choose one of auto, richardson, central, complex-step"):
        NumericEngine(method="forward")


def test_default_is_complex_step_for_analytic_expressions():
    assert run(None, "grad", "exp(x)*sin(y)", "1,2").info["method"] == "complex-step"
    assert run(None, "hessian", "erf(x)*y", "1,2").info["method"] == "richardson"


# ---- domain edges ------------------------------------------------------------------------------
EDGES = [("log(x)", "1e-9", 1e9, -1e18), ("sqrt(x - 1)", "1.000001", None, None),
         ("log(1 - x)", "0.999999", None, None), ("log(x1 - x2) + x2", "1.0000001,1", None, None)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("expr,at,g,h", EDGES, ids=[e[0] for e in EDGES])
def test_near_a_domain_edge(method, expr, at, g, h):
    prob = Problem(expr, at=at)
    eng, rev, x = NumericEngine(method=method), ReverseEngine(), prob.x0()
    gr, hr = eng.grad(prob, x), eng.hessian(prob, x)
    g = rev.grad(prob, x).value if g is None else [g]
    h = rev.hessian(prob, x).value if h is None else [[h]]
    within_estimate(gr, g, slack=4 * EPS)
    within_estimate(hr, h, slack=4 * EPS)
    if method != "central":  # central's single step cannot be accurate this close to the edge
        assert np.max(np.abs(gr.value - np.ravel(g)) / np.abs(np.ravel(g))) < 1e-6


def test_log_at_1e_minus_9_is_accurate():
    prob = Problem("log(x)", at="1e-9")
    for method in ("richardson", "complex-step"):
        r = NumericEngine(method=method).grad(prob, prob.x0())
        assert abs(r.value[0] / 1e9 - 1) < 1e-12


def test_overflow_gives_nan_not_a_crash():
    prob = Problem("exp(x)", at="800")
    for method in METHODS:
        assert np.isnan(NumericEngine(method=method).grad(prob, prob.x0()).value[0])


# ---- the pieces (numdifftools' anatomy) ------------------------------------------------------
def test_richardson_extrapolates_even_powers_exactly():
    t = 0.5 * 2.0 ** -np.arange(12)
    D = 3.0 + 2 * t ** 2 - 5 * t ** 4 + 7 * t ** 6  # 3 + terms that order 3 removes
    est, err, _ = richardson(D[:, None], np.zeros((12, 1)), order=3)
    assert abs(est[0] - 3.0) < 1e-13 and err[0] < 1e-12
    # steps: |x_j| (1 at 0), and a second ladder at a typical size (2^-26) for components below it
    assert list(nominal_scale([-3.0, 0.0, 1e-9])) == [3.0, 1.0, 1e-9]
    assert list(typical_scale([-3.0, 0.0, 1e-9])) == [3.0, 1.0, 2.0 ** -26]


def test_richardson_rejects_steps_that_disagree_with_smaller_ones():
    """A large step that aliases (agrees with itself, not with smaller steps) is not chosen."""
    t = 0.5 * 2.0 ** -np.arange(12)
    D = np.where(t > 0.02, 1.0, 1.0 + 1e-6)  # large steps blind to a feature the small ones see
    est, _, _ = richardson(D[:, None], np.full((12, 1), 1e-12), order=2)
    assert abs(est[0] - (1 + 1e-6)) < 1e-9


# ---- acceptance figures of issue 4, as a regression guard (the benchmark measures them) --------
def _benchmark():
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "numeric_accuracy.py"
    spec = importlib.util.spec_from_file_location("numeric_accuracy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_cases_meet_issue_4_acceptance():
    bench, rev = _benchmark(), ReverseEngine()
    for name, expr, at, kind in bench.CASES:
        prob, (glim, hlim) = Problem(expr, at=at), bench.ACCEPT[kind]
        x, eng = prob.x0(), NumericEngine()
        for got, want, lim in ((eng.grad(prob, x), rev.grad(prob, x).value, glim),
                               (eng.hessian(prob, x), rev.hessian(prob, x).value, hlim)):
            assert bench.rel_error(got.value, want) <= lim, name
            within_estimate(got, want, slack=4 * EPS)


# ---- command line ------------------------------------------------------------------------------
def cli(*args):
    return subprocess.run([sys.executable, "-m", "adcalc", *args], capture_output=True, text=True)


def test_cli_json_has_error_estimate():
    p = cli("grad", WORKED, "--at", "2,5", "--engine", "numeric", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out["error_estimate"]) == 2 and all(e >= 0 for e in out["error_estimate"])
    assert np.all(np.abs(np.array(out["gradient"]) - [5.5, 1.7163378145367738]) <= out["error_estimate"])
    p = cli("hessian", WORKED, "--at", "2,5", "--engine", "numeric", "--method", "richardson", "--json")
    assert p.returncode == 0 and np.shape(json.loads(p.stdout)["error_estimate"]) == (2, 2)


def test_cli_refusal_and_unknown_method_exit_2():
    p = cli("grad", "abs(x)", "--at", "2", "--engine", "numeric", "--method", "complex-step", "--json")
    assert p.returncode == 2 and "abs" in json.loads(p.stdout)["error"]
    p = cli("grad", "x^2", "--at", "2", "--engine", "numeric", "--method", "bogus")
    assert p.returncode == 2 and "unknown numeric method 'bogus'" in p.stderr


def test_time_estimate_is_not_the_cold_first_call():
    """A second-order request is declined from a time estimate; a slow first evaluation
    (plans, compiled program, fresh memory) must not be what the estimate measures."""
    import time

    from adcalc.engines import numeric as N

    class Box:
        n, calls = 1000, 0

        def __call__(self, P, cplx=False):
            Box.calls += 1
            if Box.calls == 1:
                time.sleep(0.2)   # the cold call
            return np.zeros(len(P))

    box = Box()
    assert N._seconds_per_point(box, np.zeros(1000), False) < 0.2 / 1024
    assert Box.calls == 4
