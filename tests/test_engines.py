"""cases.py x every CPU engine x the commands each case gives, against hand-derived values.

Exact engines must agree to 1e-12 relative; the numeric engine within its own
error estimate plus a small slack.  An engine that is not built yet, or that says
it cannot run here, is skipped with its reason.
"""
import numpy as np
import pytest

from adcalc.commands import read_vector
from adcalc.engines import engine_class
from adcalc.engines.base import compute
from adcalc.problem import Problem
from cases import CASES

CPU_ENGINES = ("reverse", "forward", "symbolic", "numeric")

_ENGINES = {}


def get(name):
    """An engine instance, or pytest.skip with the reason it cannot run here."""
    if name not in _ENGINES:
        engine = engine_class(name)()
        _ENGINES[name] = (engine, engine.available())
    engine, reason = _ENGINES[name]
    if reason:
        pytest.skip(f"{name} engine unavailable: {reason}")
    return engine


def problem(case):
    return Problem(case.exprs, at=case.at, vars=case.vars)


def check_close(name, engine, result, expected, what):
    expected = np.asarray(expected, dtype=float)
    got = np.asarray(result.value, dtype=float).reshape(expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    if getattr(engine, "exact", True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * scale,
                                   err_msg=f"{name} {what}")
        return
    if result.error is None:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7 * scale,
                                   err_msg=f"{name} {what} (no error estimate)")
        return
    err = np.broadcast_to(np.asarray(result.error, dtype=float).reshape(-1), got.size).reshape(got.shape)
    assert np.all(np.isfinite(err)), f"{name} {what}: non-finite error estimate {err}"
    slack = 1e-8 * scale + 1e-10 * np.abs(expected)
    bad = np.abs(got - expected) > err + slack
    assert not bad.any(), (f"{name} {what}: |got - expected| beyond the error estimate at "
                           f"{np.argwhere(bad).tolist()}: got {got[bad]}, expected {expected[bad]}, "
                           f"estimate {err[bad]}")


PARAMS = [pytest.param(case, command, name, id=f"{case.id}-{command}-{name}")
          for case in CASES for command in case.commands for name in CPU_ENGINES]


@pytest.mark.parametrize("case,command,name", PARAMS)
def test_case(case, command, name):
    engine = get(name)
    prob = problem(case)
    vector = None
    if command in ("hvp", "jvp", "vjp"):
        vector = read_vector(command, prob, case.u if command == "vjp" else case.v)
    result = compute(engine, prob, command, prob.x0(), vector)
    check_close(name, engine, result, case.expected[command], f"{command} of {case.exprs} at {case.at}")


@pytest.mark.parametrize("case", [c for c in CASES if "value" in c.expected], ids=lambda c: c.id)
def test_value_and_layout(case):
    prob = problem(case)
    np.testing.assert_allclose(prob.value(prob.x0()), case.expected["value"], rtol=1e-14, atol=1e-14)
    if case.inputs is not None:
        assert prob.inputs == case.inputs
    assert prob.n == len(prob.inputs) == prob.x0().size


@pytest.mark.parametrize("name", CPU_ENGINES)
def test_engine_value_matches_problem(name):
    engine = get(name)
    case = CASES[0]
    prob = problem(case)
    np.testing.assert_allclose(engine.value(prob, prob.x0()), case.expected["value"], rtol=1e-14)


@pytest.mark.parametrize("name", CPU_ENGINES)
def test_grad_of_vector_expression_names_jacobian(name):
    from adcalc.errors import InputError
    engine = get(name)
    prob = Problem("[x, x**2]", at="1")
    with pytest.raises(InputError, match="jacobian"):
        compute(engine, prob, "grad")


def test_engine_names():
    from adcalc.engines import ENGINES
    assert set(CPU_ENGINES) <= set(ENGINES)
    for name in CPU_ENGINES:
        assert engine_class(name).name == name


# ---- second derivatives of prod: a polynomial, so exact everywhere -----------------------------
# Found by test_properties.py: a rule that divided by x gave nan at a zero entry and nonsense
# for mixed magnitudes; prod is now a tree of multiplications, exact at every order.
RULE_ENGINES = ("reverse", "forward", "symbolic")


@pytest.mark.parametrize("name", RULE_ENGINES)
def test_prod_hessian_at_a_zero_entry(name):
    engine = get(name)
    prob = Problem("prod(u)", at="u=[2,3,0]")
    np.testing.assert_allclose(engine.hessian(prob, prob.x0()).value, [[0, 0, 3], [0, 0, 2], [3, 2, 0]], atol=1e-15)
    np.testing.assert_allclose(engine.hvp(prob, prob.x0(), np.ones(3)).value, [3.0, 2.0, 5.0], atol=1e-15)


@pytest.mark.parametrize("name", RULE_ENGINES)
def test_prod_hvp_with_mixed_magnitudes(name):
    engine = get(name)
    prob = Problem("prod(u)", at="u=[1,1,1e-17]")
    # H = [[0, u2, u1], [u2, 0, u0], [u1, u0, 0]];  H @ [-1, 0, 1] = [1, 1 - 1e-17, -1]
    np.testing.assert_allclose(engine.hvp(prob, prob.x0(), np.array([-1.0, 0.0, 1.0])).value, [1.0, 1.0, -1.0],
                               rtol=1e-15)
