"""Property tests on hypothesis-generated expressions (strategies.py) and points.

The reference is a central difference (with one Richardson step) of the strategy's
own numpy evaluator, which shares no code with adcalc.  Reverse mode's value and
gradient are checked against it; its Hessian against central differences of the
(already checked) gradient; jvp/vjp/hvp against the Jacobian and Hessian they
should equal.  The forward and symbolic engines, where they exist, must agree with
reverse mode to near rounding.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings

import strategies as S
from adcalc.engines import engine_class
from adcalc.problem import Problem

KINK_MARGIN = 0.05     # stay this far from a kink (relative steps below are 1e-3)
BIG = 1e6


def _engine(name):
    e = engine_class(name)()
    return e, e.available()


REVERSE = engine_class("reverse")()


def build(term, point):
    prob = Problem(term.text, point=point)
    assert prob.variables == sorted(term.names)   # natural order; single letters, M before a
    return prob


def reference(term, order):
    """f(flat x) -> flat ndarray, by the strategy's own evaluator; also the kink margin."""
    def f(x):
        margins = []
        with np.errstate(all="ignore"):
            out = np.ravel(np.asarray(term(S.unflat(x, order), margins), dtype=float))
        return out, (min(margins) if margins else np.inf)
    return f


def central_jacobian(f, x):
    """(m, n) Jacobian of flat f by central differences with one Richardson step."""
    cols = []
    for j in range(x.size):
        h = 1e-3 * max(1.0, abs(x[j]))
        e = np.zeros_like(x)
        e[j] = 1.0

        def d(step):
            return (f(x + step * e) - f(x - step * e)) / (2 * step)
        cols.append((4 * d(h / 2) - d(h)) / 3)
    return np.stack(cols, axis=-1) if cols else np.zeros((np.size(f(x)), 0))


def well_conditioned(term, order, x):
    """Value finite and moderate, and no kink within KINK_MARGIN of any point the stencil uses."""
    f = reference(term, order)
    val, margin = f(x)
    if not np.all(np.isfinite(val)) or np.max(np.abs(val)) > BIG:
        return False
    if margin < KINK_MARGIN:
        return False
    for j in range(x.size):   # kinks met by the stencil itself
        for s in (-1e-3, 1e-3):
            e = np.zeros_like(x)
            e[j] = s * max(1.0, abs(x[j]))
            v, mg = f(x + e)
            if mg < KINK_MARGIN / 2 or not np.all(np.isfinite(v)):
                return False
    return True


def assert_close(got, want, rtol, what, expr):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=f"{what} of {expr}")


# ---- reverse mode against central differences ------------------------------------------------------
@given(S.problems())
@example((S.binary("mul", S.unary("log", S.var("a")), S.unary("sin", S.var("b"))),
          {"a": np.array(2.0), "b": np.array(5.0)}))
def test_reverse_gradient_matches_central_differences(tp):
    term, point = tp
    prob = build(term, point)
    order, x = prob.variables, prob.x0()
    assume(well_conditioned(term, order, x))
    f = reference(term, order)
    fx = f(x)[0]
    assert_close(prob.value(x).ravel(), fx, 1e-12, "value", term.text)
    g = REVERSE.grad(prob, x).value
    assume(np.max(np.abs(g), initial=0.0) < BIG)
    fd = central_jacobian(lambda y: f(y)[0], x)[0]
    assert_close(g, fd, 1e-6, "gradient", term.text)


@given(S.problems())
def test_reverse_hessian_matches_differences_of_gradient(tp):
    term, point = tp
    prob = build(term, point)
    order, x = prob.variables, prob.x0()
    assume(well_conditioned(term, order, x))
    H = REVERSE.hessian(prob, x).value
    assume(np.all(np.isfinite(H)) and np.max(np.abs(H), initial=0.0) < BIG)
    fd = central_jacobian(lambda y: REVERSE.grad(prob, y).value, x)
    assert_close(H, fd, 1e-5, "Hessian", term.text)
    assert_close(H, H.T, 1e-12, "Hessian symmetry", term.text)
    v = np.linspace(-1.0, 1.0, x.size)
    assert_close(REVERSE.hvp(prob, x, v).value, H @ v, 1e-11, "hvp", term.text)


@given(S.problems(S.vector_exprs()))
def test_reverse_jacobian_jvp_vjp(tp):
    term, point = tp
    prob = build(term, point)
    order, x = prob.variables, prob.x0()
    assume(well_conditioned(term, order, x))
    f = reference(term, order)
    J = REVERSE.jacobian(prob, x).value
    assume(np.all(np.isfinite(J)) and np.max(np.abs(J), initial=0.0) < BIG)
    assert J.shape == (prob.m, prob.n) == (S.N, x.size)
    assert_close(J, central_jacobian(lambda y: f(y)[0], x), 1e-6, "Jacobian", term.text)
    v = np.linspace(-1.0, 2.0, prob.n)
    u = np.linspace(2.0, -1.0, prob.m)
    assert_close(REVERSE.jvp(prob, x, v).value, J @ v, 1e-11, "jvp", term.text)
    assert_close(REVERSE.vjp(prob, x, u).value, u @ J, 1e-11, "vjp", term.text)


# ---- other exact engines agree with reverse mode ---------------------------------------------------------
def _cross(name, tp, commands):
    engine, reason = _engine(name)
    if reason:
        pytest.skip(f"{name}: {reason}")
    term, point = tp
    prob = build(term, point)
    x = prob.x0()
    assume(well_conditioned(term, prob.variables, x))
    for command in commands:
        want = getattr(REVERSE, command)(prob, x)
        assume(np.all(np.isfinite(want)) and np.max(np.abs(want), initial=0.0) < BIG)
        got = getattr(engine, command)(prob, x)
        got = getattr(got, "value", got)
        assert_close(got, want, 1e-9, f"{name} {command} vs reverse", term.text)


@given(S.problems())
def test_forward_agrees_with_reverse(tp):
    _cross("forward", tp, ("grad", "hessian"))


@given(S.problems(S.vector_exprs()))
def test_forward_jacobian_agrees_with_reverse(tp):
    _cross("forward", tp, ("jacobian",))


@settings(max_examples=max(5, settings().max_examples // 4),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(S.problems(S.scalar_exprs(depth=2)))
def test_symbolic_agrees_with_reverse(tp):
    _cross("symbolic", tp, ("grad", "hessian"))
