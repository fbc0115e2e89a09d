"""The forward engine (dual numbers, vector mode, forward-over-forward) on real values."""
import json
import subprocess
import sys

import numpy as np
import pytest

from adcalc.engines import forward
from adcalc.engines.base import compute
from adcalc.engines.forward import ForwardEngine
from adcalc.engines.reverse import ReverseEngine
from adcalc.problem import Problem

F, R = ForwardEngine(), ReverseEngine()
EXAMPLE = "log(x1)+x1*x2-sin(x2)"


def run(command, expr, at, vector=None):
    prob = Problem(expr, at=at)
    v = None if vector is None else np.asarray(vector, dtype=float)
    return compute(F, prob, command, vector=v).value


def test_textbook_gradient_and_hessian():
    np.testing.assert_allclose(run("grad", EXAMPLE, "2,5"), [5.5, 1.7163378145367738], rtol=1e-15)
    np.testing.assert_allclose(run("hessian", EXAMPLE, "2,5"),
                               [[-0.25, 1], [1, -0.9589242746631385]], rtol=1e-15)


def test_logistic_sum_gradient():
    g = run("grad", "sum(1/(1+exp(-x)))", "x=[[0,1],[-1,-2]]")
    np.testing.assert_allclose(g, [0.25, 0.19661193, 0.19661193, 0.10499359], rtol=1e-7)


def test_small_cases():
    np.testing.assert_allclose(run("jacobian", "x**2", "x=[4,4]"), 8 * np.eye(2))
    np.testing.assert_allclose(run("hessian", "sum(x**2)", "x=[1,2,3]"), 2 * np.eye(3))
    np.testing.assert_allclose(run("hvp", "sum(x**2)", "x=[1,2]", [4, 5]), [8, 10])
    np.testing.assert_allclose(run("grad", "y/x - x + y", "2,3"), [-1.75, 1.5])


def test_dot_jvp_vjp():
    prob = Problem("dot(x, W)", at="x=[0,1],W=[[1,1],[1,1]]")
    assert prob.inputs == ["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]", "x[0]", "x[1]"]
    np.testing.assert_allclose(F.jvp(prob, prob.x0(), np.array([2, 2, 2, 2, 0, 0.])).value, [2, 2])
    vjp = F.vjp(prob, prob.x0(), np.array([2, 2.])).value
    np.testing.assert_allclose(vjp[:4].reshape(2, 2), [[0, 0], [2, 2]])
    np.testing.assert_allclose(vjp[4:], [4, 4])


def test_no_variables_and_unused_variable():
    prob = Problem("2+3")
    assert F.jacobian(prob, prob.x0()).value.shape == (1, 0)
    assert F.hessian(prob, prob.x0()).value.shape == (0, 0)
    prob = Problem(["x1*x1", "3"], at="2,7", vars="x1,x2")
    np.testing.assert_allclose(F.jacobian(prob, prob.x0()).value, [[4, 0], [0, 0]])


CASES = [  # (expressions, point): scalar and array-valued, every construct of the language
    (EXAMPLE, "2,5"),
    ("W @ x + b", "W=[[1,2,3],[4,5,6]],x=[0.5,-1,2],b=[0.1,0.2]"),
    ("sum(tanh(W @ x + b) ** 2) + x @ W.T @ W @ x / 100", "W=[[1,-2,0.3],[0.4,0.5,-0.6]],x=[0.5,-1,2],b=[0.1,0.2]"),
    ("sum((x[1:] - x[:-1]**2)**2) + sum((1 - x[:-1])**2)", "x=[1.2,0.8,-0.5,2]"),
    ("norm(A.T @ y) + A[1,0] * y[0] ^ 3", "A=[[1,2],[3,4],[5,6]],y=[0.3,-0.7,1.1]"),
    ("[x1*x2, sin(x1) + x2**3, exp(x1 - x2), x1]", "0.7,1.3"),
    ("prod(x) + max(x) + min(x) + mean(x) + logsumexp(x)", "x=[[0.5,-1.5],[2.5,1.25]]"),
    ("logsumexp(s * x) + s * norm(x) + sum(s + x)", "s=1.5,x=[0.2,-0.4,0.9]"),
    ("x ** y + y ** 2 / x + pow(x, 3) + log(x, 3)", "1.7,0.4"),
    ("sum(x.T @ x) + sum(x * [1, 2]) + mean(x[0]) * x[1, 1]", "x=[[1,2],[3,-4],[0.5,1]]"),
    ("sin(a)+cos(a)+tan(a)+asin(b)+acos(b)+atan(a)+sinh(a)+cosh(a)+tanh(a)+asinh(a)"
     "+acosh(c)+atanh(b)+exp(a)+expm1(a)+log(c)+log1p(a)+log2(c)+log10(c)+sqrt(c)+cbrt(a)",
     "a=0.3,b=-0.4,c=1.7"),
    ("abs(a)*sign(a)+erf(a)*erfc(b)+sigmoid(a*b)+softplus(b)+relu(a)*relu(c)+atan2(a,c)"
     "+hypot(a,b)+max(a,c)*min(b,c)+max(a,b,c)+pi*e", "a=-0.3,b=0.45,c=1.7"),
    ("sum(exp(-x) * relu(x) + abs(x) / (1 + x**2))", "x=[[0.2,-1.1],[1.5,-0.3],[0.9,2.2]]"),
]


@pytest.mark.parametrize("expr,at", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_agrees_with_reverse(expr, at):
    prob = Problem(expr, at=at)
    x = prob.x0()
    rng = np.random.default_rng(len(expr))
    v, u = rng.normal(size=prob.n), rng.normal(size=prob.m)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)  # noqa: E731
    close(F.jacobian(prob, x).value, R.jacobian(prob, x).value)
    close(F.jvp(prob, x, v).value, R.jvp(prob, x, v).value)
    close(F.vjp(prob, x, u).value, R.vjp(prob, x, u).value)
    if prob.m == 1:
        close(F.grad(prob, x).value, R.grad(prob, x).value)
        close(F.hvp(prob, x, v).value, R.hvp(prob, x, v).value)
        h = F.hessian(prob, x).value
        close(h, R.hessian(prob, x).value)
        close(h, h.T)


def test_hessian_in_small_chunks_of_directions(monkeypatch):
    """Vector mode in chunks (memory O(n x chunk)) gives the same Hessian as one chunk."""
    import adcalc.engines.base as base
    expr, at = CASES[2]
    whole = F.hessian(Problem(expr, at=at), Problem(expr, at=at).x0()).value
    monkeypatch.setattr(base, "CHUNK_BYTES", 1)
    prob = Problem(expr, at=at)
    np.testing.assert_allclose(F.hessian(prob, prob.x0()).value, whole, rtol=1e-13, atol=1e-14)


def test_graphs_built_once_and_reused_at_other_points():
    expr, at = CASES[2]
    prob = Problem(expr, at=at)
    x = prob.x0()
    F.hessian(prob, x).value, F.hvp(prob, x, np.ones(prob.n)).value
    size, y = len(prob.graph.nodes), x + 0.1
    h, hv = F.hessian(prob, y).value, F.hvp(prob, y, x).value
    assert len(prob.graph.nodes) == size
    ref = Problem(expr, at=at)
    np.testing.assert_allclose(h, R.hessian(ref, y).value, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(hv, R.hvp(ref, y, x).value, rtol=1e-12, atol=1e-13)


def test_first_order_never_uses_the_reverse_sweep(monkeypatch):
    """grad, jacobian, jvp and vjp are dual numbers only (second order is forward over the
    reverse-built gradient graph)."""
    import adcalc.ad as ad

    def boom(*a, **k):
        raise AssertionError("forward engine called vjp_sweep")
    monkeypatch.setattr(ad, "vjp_sweep", boom)
    import adcalc.engines.forward as fwd
    assert not hasattr(fwd, "vjp_sweep")
    prob = Problem(CASES[4][0], at=CASES[4][1])
    x = prob.x0()
    for cmd, vec in (("grad", None), ("jacobian", None), ("jvp", np.ones(prob.n)), ("vjp", np.ones(1))):
        compute(F, prob, cmd, x, vec)


def test_cli_hessian_json():
    out = subprocess.run([sys.executable, "-m", "adcalc", "hessian", EXAMPLE, "--at", "2,5",
                          "--engine", "forward", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert obj["engine"] == "forward" and obj["inputs"] == ["x1", "x2"]
    assert obj["hessian"] == [[-0.25, 1.0], [1.0, -0.9589242746631385]]
