"""Many points in one call equal one point at a time, for every function of the table.

Each function is used in an expression over a scalar `a` and a vector `v` (so scalar and
vector values broadcast against each other and along the leading axis of points), at
1000 random points inside the record's sample domain.  The reverse and forward engines
take all 1000 points in one sweep; the answers must equal the point-by-point ones to
1e-15 relative.  Also: the engine contract derives everything from jvp alone or from
vjp alone, with no recursion.
"""
import numpy as np
import pytest

from adcalc.core import PRIMS
from adcalc.engines.base import Engine, Result
from adcalc.engines.forward import ForwardEngine
from adcalc.engines.reverse import ReverseEngine
from adcalc.primitives import FUNCTIONS
from adcalc.problem import Problem

N = 1000
RANGES = {"real": (-2.0, 2.0), "positive": (0.2, 3.0), "nonzero": (0.3, 2.0), "unit": (-0.8, 0.8),
          "ge1": (1.2, 3.0)}
REDUCTIONS = {"sum", "mean", "prod", "max", "min", "logsumexp", "norm"}


def term(name):
    """(text, sample domain) of a term using the function `name`, with broadcasting between
    the scalar a and the vector v."""
    if name in REDUCTIONS:
        return f"{name}(v*a) + {name}(v)", "real"
    if name == "dot":
        return "dot(v, v*a)", "real"
    fn = FUNCTIONS[name]
    sample = PRIMS[name].sample if name in PRIMS else "positive"
    if fn.arity[0] >= 2:
        return f"sum({name}(v, a)) + {name}(a, v[0])", sample
    return f"sum({name}(v) * a) + {name}(a)", sample


def groups():
    """One expression per sample domain: the sum of the terms of every function in it."""
    out = {}
    for name in sorted(FUNCTIONS):
        text, sample = term(name)
        out.setdefault(sample, []).append(text)
    return {sample: " + ".join(terms) for sample, terms in out.items()}


GROUPS = groups()


def test_every_function_is_in_a_group():
    joined = " ".join(GROUPS.values())
    assert all(f"{name}(" in joined for name in FUNCTIONS)


def points(sample, seed):
    lo, hi = RANGES[sample]
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, size=(N, 4))      # a, v[0], v[1], v[2]


@pytest.mark.parametrize("sample", sorted(GROUPS))
@pytest.mark.parametrize("engine", [ReverseEngine(), ForwardEngine()], ids=["reverse", "forward"])
def test_many_points_equal_one_at_a_time(sample, engine):
    text = GROUPS[sample]
    X = points(sample, len(sample))
    prob = Problem(text, point={"a": X[0, 0], "v": X[0, 1:]})
    V = np.random.default_rng(1).standard_normal(4)
    batched = {"grad": engine.grad(prob, X).value, "hessian": engine.hessian(prob, X).value,
               "hvp": engine.hvp(prob, X, V).value}
    assert batched["grad"].shape == (N, 4) and batched["hessian"].shape == (N, 4, 4)
    for q, got in batched.items():
        one = np.stack([(getattr(engine, q)(prob, x, V) if q == "hvp" else getattr(engine, q)(prob, x)).value
                        for x in X])
        np.testing.assert_allclose(got, one, rtol=1e-15, atol=1e-300, err_msg=f"{q} of {text}")
        assert np.isfinite(got).all(), f"{q} of {text}"


def test_reduction_over_a_matrix_batch_keeps_points_apart():
    """max(x) and sum(s*x) over a stack of points: one answer per point (issue 8)."""
    X = np.array([[1.0, 5.0, 2.0, 3.0], [4.0, 1.0, 0.0, 2.0]])   # s, x[0..2]
    prob = Problem("max(x) + sum(s*x)", point={"s": 1.0, "x": [0.0, 0.0, 0.0]})
    vals = prob.values(X)[prob.output.id]
    np.testing.assert_allclose(vals, [5.0 + 10.0, 2.0 + 12.0])
    g = ReverseEngine().grad(prob, X).value
    np.testing.assert_allclose(g, [[10.0, 2.0, 1.0, 1.0], [3.0, 4.0, 4.0, 5.0]])


class OnlyJvp(Engine):
    name = "only-jvp"

    def jvp_batch(self, prob, X, V):
        return ForwardEngine().jvp_batch(prob, X, V)


class OnlyVjp(Engine):
    name = "only-vjp"

    def vjp_batch(self, prob, X, U):
        return ReverseEngine().vjp_batch(prob, X, U)


@pytest.mark.parametrize("engine", [OnlyJvp(), OnlyVjp()], ids=["only-jvp", "only-vjp"])
def test_contract_derives_everything_from_one_primitive(engine):
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    x = prob.x0()
    H = [[-0.25, 1.0], [1.0, -0.9589242746631385]]
    np.testing.assert_allclose(engine.grad(prob, x).value, [5.5, 1.7163378145367738], rtol=1e-15)
    np.testing.assert_allclose(engine.jacobian(prob, x).value, [[5.5, 1.7163378145367738]], rtol=1e-15)
    np.testing.assert_allclose(engine.hessian(prob, x).value, H, rtol=1e-15)
    np.testing.assert_allclose(engine.hvp(prob, x, [1.0, -2.0]).value, np.array(H) @ [1, -2], rtol=1e-15)
    np.testing.assert_allclose(engine.jvp(prob, x, [1.0, -2.0]).value, [5.5 - 2 * 1.7163378145367738],
                               rtol=1e-15)
    np.testing.assert_allclose(engine.vjp(prob, x, [3.0]).value, [16.5, 3 * 1.7163378145367738], rtol=1e-15)
    assert all(isinstance(getattr(engine, q)(prob, x), Result) for q in ("grad", "jacobian", "hessian"))


def test_an_engine_without_either_says_so():
    from adcalc.errors import EngineError
    prob = Problem("x*y", at="1,2")
    with pytest.raises(EngineError, match="neither jvp nor vjp"):
        Engine().grad(prob, prob.x0())
