"""sinc, added as one record of the table: its values and derivatives from every engine."""
import mpmath
import numpy as np
import pytest

from adcalc.engines import engine_class
from adcalc.engines.base import compute
from adcalc.problem import Problem

EXACT = ("reverse", "forward", "symbolic")


def dsinc(x, order=1):
    """The reference: mpmath's own sinc (unnormalised) differentiated at 50 digits."""
    with mpmath.workdps(50):
        return float(mpmath.diff(mpmath.sinc, mpmath.mpf(x), order))


def d2sinc(x):
    return dsinc(x, 2)


@pytest.mark.parametrize("engine", EXACT)
def test_sinc_at_zero(engine):
    """Normalisation: sin(x)/x.  sinc(0) = 1, sinc'(0) = 0, sinc''(0) = -1/3."""
    prob = Problem("sinc(x)", at="0")
    e = engine_class(engine)()
    assert prob.value(prob.x0()) == 1.0
    assert compute(e, prob, "grad").value.tolist() == [0.0]
    np.testing.assert_allclose(compute(e, prob, "hessian").value, [[-1 / 3]], rtol=1e-15)


@pytest.mark.parametrize("engine", EXACT)
@pytest.mark.parametrize("x", [1e-300, 1e-8, 0.1, 0.49, 0.5, 0.51, 2.0, -3.7, 40.0])
def test_sinc_near_and_away_from_zero(engine, x):
    prob = Problem("sinc(x)", point={"x": x})
    e = engine_class(engine)()
    np.testing.assert_allclose(compute(e, prob, "grad").value, [dsinc(x)], rtol=4e-15, atol=1e-300)
    np.testing.assert_allclose(compute(e, prob, "hessian").value, [[d2sinc(x)]], rtol=1e-12, atol=1e-16)


def test_sinc_numeric_and_batched():
    xs = np.linspace(-3, 3, 101)[:, None]
    prob = Problem("sinc(x)", at="1")
    got = engine_class("reverse")().grad(prob, xs).value[:, 0]
    np.testing.assert_allclose(got, [dsinc(float(v)) for v in xs[:, 0]], rtol=1e-14, atol=1e-17)
    r = compute(engine_class("numeric")(), prob, "grad", np.array([0.3]))
    assert abs(r.value[0] - dsinc(0.3)) <= r.error[0]
