"""matmul of one matrix against a large stack (the Jacobian's cotangents through A @ x):
one BLAS product, equal to numpy's item-by-item loop up to rounding."""
import numpy as np
import pytest

from adcalc.engines.reverse import ReverseEngine
from adcalc.primitives import _matmul
from adcalc.problem import Problem


@pytest.mark.parametrize("sa, sb", [((1, 300, 200), (400, 1, 200, 1)), ((300, 200), (50, 200, 7)),
                                    ((60, 1, 30, 200), (200, 300)), ((1, 1, 200, 300), (9, 5, 300, 40))])
def test_one_matrix_against_a_stack_equals_numpy(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    assert a.size * b.size >= 1 << 24   # the one-product path
    for x, y in ((a, b), (np.swapaxes(a, -1, -2).copy().swapaxes(-1, -2), b)):   # also a transposed view
        got, want = _matmul(x, y), np.matmul(x, y)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_jacobian_of_exp_A_x_with_respect_to_x():
    n = 400
    rng = np.random.default_rng(1)
    A, x = rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal(n)
    p = Problem("exp(A@x)", point={"A": A, "x": x}, wrt=["x"])
    J = ReverseEngine().jacobian(p, x).value
    np.testing.assert_allclose(J, np.exp(A @ x)[:, None] * A, rtol=1e-13, atol=1e-15)
