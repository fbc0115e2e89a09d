"""adcalc.newton: trust-region Newton (dense eigen subproblem and Steihaug-Toint CG)."""
import math

import numpy as np
import pytest

from adcalc.errors import InputError
from adcalc.newton import NewtonResult, minimize, steihaug_cg, trust_region_dense


def dw_f(x):  # double well x**4 - 2 x**2, minima at +-1, maximum at 0
    return x[0] ** 4 - 2 * x[0] ** 2


def dw_g(x):
    return np.array([4 * x[0] ** 3 - 4 * x[0]])


def dw_h(x):
    return np.array([[12 * x[0] ** 2 - 4]])


def dw_hvp(x, v):
    return dw_h(x) @ v


def rosen_f(x):
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def rosen_g(x):
    return np.array([-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]), 200 * (x[1] - x[0] ** 2)])


def rosen_h(x):
    return np.array([[1200 * x[0] ** 2 - 400 * x[1] + 2, -400 * x[0]], [-400 * x[0], 200.0]])


def ext_rosen_f(x):
    a, b = x[0::2], x[1::2]
    return float(np.sum(100 * (b - a ** 2) ** 2 + (1 - a) ** 2))


def ext_rosen_g(x):
    a, b = x[0::2], x[1::2]
    g = np.empty_like(x)
    g[0::2] = -400 * a * (b - a ** 2) - 2 * (1 - a)
    g[1::2] = 200 * (b - a ** 2)
    return g


def ext_rosen_hvp(x, v):
    a, b, va, vb = x[0::2], x[1::2], v[0::2], v[1::2]
    out = np.empty_like(x)
    out[0::2] = (1200 * a ** 2 - 400 * b + 2) * va - 400 * a * vb
    out[1::2] = -400 * a * va + 200 * vb
    return out


def steps(result):
    return [r for r in result.iterations if r["action"] not in ("converged", "stopped")]


@pytest.mark.parametrize("method", ["dense", "cg"])
@pytest.mark.parametrize("x0, xmin", [(2.0, 1.0), (-2.0, -1.0)])
def test_double_well_from_either_side(method, x0, xmin):
    r = minimize(dw_f, dw_g, [x0], hess=dw_h, method=method)
    assert isinstance(r, NewtonResult)
    assert r.converged
    assert r.x[0] == pytest.approx(xmin, abs=1e-9)
    assert r.f == pytest.approx(-1.0, abs=1e-15)
    assert r.grad_norm <= 1e-10 * 24
    assert r.message.startswith("converged: |grad|")


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_start_exactly_at_the_maximum_moves_off(method):
    r = minimize(dw_f, dw_g, [0.0], hess=dw_h, hvp=dw_hvp, method=method)
    assert r.iterations[0]["grad_norm"] == 0.0
    assert r.iterations[0]["action"] == "negative curvature"
    assert r.converged
    assert abs(r.x[0]) == pytest.approx(1.0, abs=1e-10)
    assert r.f == pytest.approx(-1.0)


@pytest.mark.parametrize("method", ["dense", "cg"])
@pytest.mark.parametrize("x0", [1e-3, -1e-3])
def test_start_near_the_maximum_goes_to_the_near_minimum(method, x0):
    r = minimize(dw_f, dw_g, [x0], hess=dw_h, hvp=dw_hvp, method=method)
    assert r.converged
    assert r.x[0] == pytest.approx(math.copysign(1.0, x0), abs=1e-10)
    assert r.iterations[0]["action"] in ("boundary", "negative curvature")


def test_saddle_in_two_dimensions_is_not_accepted():
    f = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4
    g = lambda x: np.array([2 * x[0], -2 * x[1] + 4 * x[1] ** 3])
    h = lambda x: np.array([[2.0, 0.0], [0.0, -2 + 12 * x[1] ** 2]])
    for method in ("dense", "cg"):
        r = minimize(f, g, [0.0, 0.0], hess=h, hvp=lambda x, v: h(x) @ v, method=method)
        assert r.converged
        np.testing.assert_allclose(np.abs(r.x), [0.0, np.sqrt(0.5)], atol=1e-10)
        assert r.f == pytest.approx(-0.25)


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_rosenbrock_2d(method):
    r = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h,
                 hvp=lambda x, v: rosen_h(x) @ v, method=method)
    assert r.converged, r.message
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-8)
    assert r.f < 1e-20
    fs = [row["f"] for row in r.iterations]
    assert fs[0] == pytest.approx(24.2)
    assert all(b <= a for a, b in zip(fs, fs[1:]))


def test_auto_picks_dense_with_hess_and_cg_with_hvp_only():
    dense = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h)
    cg = minimize(rosen_f, rosen_g, [-1.2, 1.0], hvp=lambda x, v: rosen_h(x) @ v)
    ref_dense = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h, method="dense")
    ref_cg = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h, method="cg")
    assert len(dense.iterations) == len(ref_dense.iterations)
    assert len(cg.iterations) == len(ref_cg.iterations)
    np.testing.assert_array_equal(dense.x, ref_dense.x)


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_quadratic_50d_in_one_or_two_steps(method):
    rng = np.random.default_rng(7)
    M = rng.standard_normal((50, 50))
    A = M @ M.T + 50 * np.eye(50)
    b = rng.standard_normal(50) * 10
    f = lambda x: 0.5 * x @ A @ x - b @ x
    r = minimize(f, lambda x: A @ x - b, np.zeros(50), hess=lambda x: A,
                 hvp=lambda x, v: A @ v, method=method)
    assert r.converged
    assert len(steps(r)) <= 2
    np.testing.assert_allclose(r.x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)


def test_cg_on_extended_rosenbrock_n1000():
    rng = np.random.default_rng(3)
    x0 = np.tile([-1.2, 1.0], 500) + 0.05 * rng.standard_normal(1000)
    r = minimize(ext_rosen_f, ext_rosen_g, x0, hvp=ext_rosen_hvp, max_iter=200)
    assert r.converged, r.message
    np.testing.assert_allclose(r.x, np.ones(1000), atol=1e-7)
    assert r.f < 1e-16


def test_auto_uses_cg_above_500_dense_at_or_below():
    calls = {"hess": 0}

    def hess(x):
        calls["hess"] += 1
        A = np.zeros((x.size, x.size))
        A[np.arange(x.size), np.arange(x.size)] = 2.0
        return A

    r = minimize(lambda x: x @ x, lambda x: 2 * x, np.ones(501), hess=hess,
                 hvp=lambda x, v: 2 * v)
    assert r.converged and calls["hess"] == 0
    r = minimize(lambda x: x @ x, lambda x: 2 * x, np.ones(500), hess=hess,
                 hvp=lambda x, v: 2 * v)
    assert r.converged and calls["hess"] > 0


@pytest.mark.parametrize("f, g, h", [
    (lambda x: -x[0] ** 2, lambda x: -2 * x, lambda x: np.array([[-2.0]])),
    (lambda x: x[0] ** 3, lambda x: 3 * x ** 2, lambda x: np.array([[6 * x[0]]])),
], ids=["-x**2", "x**3"])
@pytest.mark.parametrize("method", ["dense", "cg"])
def test_unbounded_below_is_reported_not_converged(f, g, h, method):
    r = minimize(f, g, [-1.0], hess=h, method=method)
    assert r.converged is False
    assert r.message.startswith("did not converge in 100 iterations: |grad| still")
    assert "unbounded below" in r.message
    assert len(steps(r)) == 100
    assert r.f < -1e20


def test_max_iter_is_respected():
    r = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h, max_iter=3)
    assert not r.converged
    assert len(steps(r)) == 3
    assert r.iterations[-1]["action"] == "stopped"
    assert r.message.startswith("did not converge in 3 iterations: |grad| still ")
    r0 = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h, max_iter=0)
    assert not r0.converged and steps(r0) == []
    np.testing.assert_array_equal(r0.x, [-1.2, 1.0])


def test_tol_zero_stops_when_the_newton_step_no_longer_changes_x():
    rng = np.random.default_rng(7)
    M = rng.standard_normal((50, 50))
    A = M @ M.T + 50 * np.eye(50)
    b = rng.standard_normal(50) * 10
    for method in ("dense", "cg"):
        r = minimize(lambda x: 0.5 * x @ A @ x - b @ x, lambda x: A @ x - b, np.zeros(50),
                     hess=lambda x: A, hvp=lambda x, v: A @ v, method=method, tol=0.0)
        assert r.converged
        assert r.message.startswith("converged: the Newton step ")
        assert "no longer changes x" in r.message
        np.testing.assert_allclose(r.x, np.linalg.solve(A, b), rtol=1e-12, atol=1e-14)


def test_auto_with_hess_only_above_500_uses_cg_on_products(monkeypatch):
    import adcalc.newton as newton

    def no_dense(*args):
        raise AssertionError("dense subproblem used above 500 variables")

    monkeypatch.setattr(newton, "trust_region_dense", no_dense)
    n = 600
    r = minimize(lambda x: x @ x, lambda x: 2 * x, np.ones(n), hess=lambda x: 2 * np.eye(n))
    assert r.converged and np.abs(r.x).max() < 1e-12
    assert r.iterations[0]["action"] == "newton"


def test_already_at_minimum_takes_no_step():
    r = minimize(dw_f, dw_g, [1.0], hess=dw_h)
    assert r.converged and steps(r) == []
    assert r.message == "converged: |grad| 0.0e+00 <= tol"


def test_iteration_table_rows():
    r = minimize(rosen_f, rosen_g, [-1.2, 1.0], hess=rosen_h)
    keys = {"k", "x", "f", "grad_norm", "step", "radius", "rho", "action"}
    assert all(set(row) == keys for row in r.iterations)
    assert [row["k"] for row in r.iterations] == list(range(len(r.iterations)))
    first = r.iterations[0]
    np.testing.assert_array_equal(first["x"], [-1.2, 1.0])
    assert first["grad_norm"] == pytest.approx(np.linalg.norm(rosen_g(np.array([-1.2, 1.0]))))
    assert first["x"] is not r.iterations[1]["x"]
    assert {row["action"] for row in r.iterations} <= {
        "newton", "boundary", "negative curvature", "rejected", "not finite", "converged"}
    assert r.iterations[-1]["action"] == "converged"
    np.testing.assert_array_equal(r.iterations[-1]["x"], r.x)
    for row in steps(r):
        assert row["step"] <= row["radius"] * (1 + 1e-9)


def test_non_finite_trial_points_shrink_the_radius():
    f = lambda x: x[0] - np.log(x[0])
    g = lambda x: 1 - 1 / x
    h = lambda x: np.array([[1 / x[0] ** 2]])
    r = minimize(f, g, [10.0], hess=h)
    actions = [row["action"] for row in r.iterations]
    assert "not finite" in actions
    i = actions.index("not finite")
    assert r.iterations[i + 1]["radius"] < r.iterations[i]["radius"]
    assert r.converged
    assert r.x[0] == pytest.approx(1.0, abs=1e-10)


def test_exceptions_at_trial_points_shrink_the_radius():
    f = lambda x: x[0] - math.log(x[0])
    g = lambda x: np.array([1 - 1 / x[0]])
    r = minimize(f, g, [10.0], hess=lambda x: np.array([[1 / x[0] ** 2]]))
    assert "not finite" in [row["action"] for row in r.iterations]
    assert r.converged and r.x[0] == pytest.approx(1.0, abs=1e-10)


def test_step_too_small_is_reported():
    r = minimize(lambda x: x[0] ** 2, lambda x: np.array([1.0]), [0.0],
                 hess=lambda x: np.array([[2.0]]))
    assert not r.converged
    assert r.message.startswith("the step became too small before |grad| reached tol")
    assert r.x[0] == 0.0
    assert set(row["action"] for row in steps(r)) == {"rejected"}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_start_raises_input_error(bad):
    with pytest.raises(InputError, match="not finite at the starting point"):
        minimize(lambda x: bad, lambda x: np.zeros(1), [1.0], hess=lambda x: np.eye(1))
    with pytest.raises(InputError, match="not finite at the starting point"):
        minimize(lambda x: 0.0, lambda x: np.array([bad]), [1.0], hess=lambda x: np.eye(1))


def test_domain_failure_at_start_raises_input_error():
    with pytest.raises(InputError, match="could not be evaluated at the starting point"):
        minimize(lambda x: math.log(x[0]), lambda x: 1 / x, [-1.0], hess=lambda x: np.eye(1))


def test_non_finite_hessian_at_start_raises_input_error():
    with pytest.raises(InputError, match="Hessian is not finite at the starting point"):
        minimize(dw_f, dw_g, [2.0], hess=lambda x: np.array([[np.nan]]))


def test_non_finite_hessian_products():
    with pytest.raises(InputError, match="Hessian-vector products are not finite at the starting point"):
        minimize(dw_f, dw_g, [2.0], hvp=lambda x, v: v * np.nan)
    hvp = lambda x, v: dw_hvp(x, v) if x[0] > 1.5 else v * np.nan
    r = minimize(dw_f, dw_g, [2.0], hvp=hvp)
    assert not r.converged
    assert r.message == "the Hessian-vector products are not finite at the current point"
    assert r.iterations[-1]["action"] == "stopped" and r.x[0] < 1.5


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give hess or hvp"),
    ({"hvp": dw_hvp, "method": "dense"}, "method 'dense' needs hess"),
    ({"hess": dw_h, "method": "lbfgs"}, "unknown method 'lbfgs'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        minimize(dw_f, dw_g, [2.0], **kwargs)


def test_wrong_gradient_length():
    with pytest.raises(InputError, match="grad returned 3 values for 2 variables"):
        minimize(rosen_f, lambda x: np.zeros(3), [0.0, 0.0], hess=rosen_h)


def test_scalar_start_is_accepted():
    r = minimize(dw_f, dw_g, 2.0, hess=dw_h)
    assert r.x.shape == (1,) and r.x[0] == pytest.approx(1.0)


def test_dense_subproblem_cases():
    H = np.diag([2.0, 4.0])
    p, a = trust_region_dense(np.array([2.0, 4.0]), H, 10.0)
    assert a == "newton"
    np.testing.assert_allclose(p, [-1.0, -1.0])
    p, a = trust_region_dense(np.array([2.0, 4.0]), H, 0.5)
    assert a == "boundary" and np.linalg.norm(p) == pytest.approx(0.5, rel=1e-10)
    shift = -2.0 / p[0] - 2.0
    assert shift > 0
    np.testing.assert_allclose((H + shift * np.eye(2)) @ p, [-2.0, -4.0], rtol=1e-9)
    p, a = trust_region_dense(np.zeros(2), np.diag([1.0, -3.0]), 2.0)
    assert a == "negative curvature"
    np.testing.assert_allclose(np.abs(p), [0.0, 2.0], atol=1e-12)
    p, a = trust_region_dense(np.array([1.0, 0.0]), np.diag([1.0, -3.0]), 3.0)
    assert a == "negative curvature"
    assert p[0] == pytest.approx(-0.25)
    assert np.linalg.norm(p) == pytest.approx(3.0)


def test_dense_subproblem_indefinite_is_global_minimizer_on_sphere():
    rng = np.random.default_rng(11)
    M = rng.standard_normal((6, 6))
    H = M + M.T
    g = rng.standard_normal(6)
    p, a = trust_region_dense(g, H, 0.7)
    assert a == "boundary" and np.linalg.norm(p) == pytest.approx(0.7, rel=1e-10)
    model = lambda q: g @ q + 0.5 * q @ H @ q
    samples = rng.standard_normal((4000, 6))
    samples *= 0.7 * rng.random((4000, 1)) ** (1 / 6) / np.linalg.norm(samples, axis=1, keepdims=True)
    assert model(p) <= min(model(q) for q in samples) + 1e-12


def test_steihaug_cases():
    Hv = lambda v: np.array([2.0, 4.0]) * v
    p, a = steihaug_cg(np.array([2.0, 4.0]), Hv, 10.0)
    assert a == "newton"
    np.testing.assert_allclose(p, [-1.0, -1.0], atol=1e-6)
    p, a = steihaug_cg(np.array([2.0, 4.0]), Hv, 0.5)
    assert a == "boundary" and np.linalg.norm(p) == pytest.approx(0.5)
    p, a = steihaug_cg(np.array([1.0, 0.0]), lambda v: -v, 2.0)
    assert a == "negative curvature"
    np.testing.assert_allclose(p, [-2.0, 0.0])
