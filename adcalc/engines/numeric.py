"""Numeric engine: finite differences with Richardson extrapolation, and complex step.

Every result carries an error estimate per component (`Result.error`, written to
JSON as "error_estimate").  Methods, chosen with `method=` (`--method`):

  auto          the default: complex-step when every primitive the expression uses is
                complex-analytic, richardson when one is not (abs, sign, relu, max,
                min, maximum, minimum, erf, erfc, atan2, hypot, step, eq).
  richardson    central differences at steps 0.5, 0.25, ... (16 of them) times each
                component's scale (|x_j|, or 1 where x_j = 0), extrapolated to orders
                4, 6 and 8; per component, the step whose error estimate is smallest
                among those that agree with every smaller step within both estimates.
  central       one central difference at the textbook step, eps**(1/3) times the
                scale (eps**(1/4) for second derivatives), checked against half of it.
  complex-step  first derivatives Im f(x + ih e_j)/h, exact to rounding (h = 2**-66
                times the scale); second derivatives by richardson differences of
                complex-step first derivatives.  Refuses a non-analytic expression.

jvp and vjp are J v and u J; hvp is H v in the real methods (a step along v would be
rounded into x + t v; steps along e_j are exact) and, in complex step, differences
of the complex-step derivative along v.

An error estimate is the change across steps and orders of extrapolation plus a
bound on rounding, divided as the quotient divides: per evaluation, 4 eps times its
largest intermediate value (of the imaginary part in complex step), or the noise
measured near x in the manner of ECnoise (Moré and Wild) where that is larger.  The
bound is conservative where a large intermediate value is later scaled down (an
absolute, not a relative, bound) and it is an estimate, not a proof: no difference
scheme sees structure finer than its steps and no larger than rounding (the
benchmark's badly scaled case shows this for richardson).  Steps that leave the domain (log near 0) are halved
until they fit.  The anatomy follows numdifftools: StepGenerator, richardson (its
Richardson class), EstimateResult.
"""
from typing import NamedTuple

import numpy as np

from adcalc.engines.base import Engine, Result
from adcalc.errors import DomainError, EngineError, InputError

EPS = float(np.finfo(float).eps)
NOISE = 4.0         # rounding of one evaluation, in eps times its largest intermediate value
CSTEP = 2.0 ** -66  # complex step, relative to the component's scale


class EstimateResult(NamedTuple):
    estimate: np.ndarray        # each of the component's shape
    error_estimate: np.ndarray
    final_step: np.ndarray      # relative to the component's scale
    best_index: np.ndarray


def nominal_scale(x):
    """The unit a component's step is measured in: |x_j|, or 1 where x_j = 0."""
    a = np.abs(np.asarray(x, dtype=float))
    return np.where(a > 0, a, 1.0)


class StepGenerator:
    """Steps base_step * step_ratio**-k; up to `max_skip` more are made for the leading
    ones that leave the domain."""

    def __init__(self, base_step, num_steps, step_ratio=2.0, max_skip=60):
        self.base_step, self.num_steps = base_step, num_steps
        self.step_ratio, self.max_skip = step_ratio, max_skip

    def __iter__(self):
        for k in range(self.num_steps + self.max_skip):
            yield self.base_step * self.step_ratio ** -k


def richardson(D, noise, ratio=2.0, order=3):
    """Extrapolate quotients D[k] taken at steps shrinking by `ratio`, whose error runs
    in even powers of the step; noise[k] bounds the rounding in D[k] (NaN: no value)."""
    D, noise = np.asarray(D, dtype=float), np.asarray(noise, dtype=float)
    order = max(0, min(order, len(D) - 2))
    R, N = [D], [noise]
    for m in range(1, order + 1):
        c = ratio ** (2 * m)
        R.append((c * R[-1][1:] - R[-1][:-1]) / (c - 1))
        N.append((c * N[-1][1:] + N[-1][:-1]) / (c - 1))
    A, low = R[-1], R[-2] if order else R[-1]
    L = len(A) - 1
    if L < 1:
        shape = A.shape[1:]
        return EstimateResult(A[0], np.full(shape, np.inf), np.ones(shape), np.zeros(shape, int))
    err = np.abs(A[:L] - A[1:]) + np.abs(A[:L] - low[1:L + 1]) + N[-1][:L]
    A, err = A[:L], np.where(np.isfinite(err), err, np.inf)
    with np.errstate(invalid="ignore"):  # candidate k must agree with every smaller step j
        ok = ~(np.abs(A[:, None] - A[None, :]) > err[:, None] + err[None, :])
    later = np.triu(np.ones((L, L), dtype=bool), 1).reshape((L, L) + (1,) * (A.ndim - 1))
    score = np.where(np.all(ok | ~later, axis=1), err, np.inf)
    best = np.where(np.isfinite(score).any(axis=0), np.argmin(score, axis=0), np.argmin(err, axis=0))
    pick = lambda a: np.take_along_axis(a, best[None], axis=0)[0]  # noqa: E731
    return EstimateResult(pick(A), pick(err), ratio ** -best.astype(float), best)


# ---- evaluation --------------------------------------------------------------------------
def _evals(prob, P, cplx=False, floor=0.0):
    """Outputs (B, m) at the rows of P (their imaginary parts in complex) and bounds on
    their rounding, (B, m): NOISE eps times the row's largest intermediate magnitude
    (|value|, or |Im value|), or `floor` (the noise _ecnoise measured) if larger.  Rows
    outside the domain or not finite are NaN."""
    P = np.asarray(P, dtype=complex if cplx else float)
    B, dtype, part = len(P), complex if cplx else float, np.imag if cplx else np.abs
    bad = {}
    vals = prob.values(P, dtype=dtype, bad=bad)
    nodes = prob.graph.nodes
    O = np.reshape(np.broadcast_to(vals[prob.output.id], (B,) + prob.out_shape), (B, prob.m))
    mag = np.max([np.abs(part(np.reshape(v, (B, -1)))).max(axis=1, initial=0.0)
                  for i, v in enumerate(vals) if v is not None and nodes[i].op not in ("const", "var")]
                 + [np.abs(part(O)).max(axis=1, initial=0.0)], axis=0)
    out = np.array(np.imag(O) if cplx else np.real(O), dtype=float)
    badrow = ~np.all(np.isfinite(O), axis=1)
    badrow[list(bad)] = True
    out[badrow] = np.nan
    mag = np.where(badrow, np.nan, mag)
    return out, np.maximum(NOISE * EPS * mag[:, None], floor)


def _shift(x, t, s):
    """Rows x + t s_j e_j and x - t s_j e_j, and the displacements actually taken (exact),
    in units of s (so that quotients at tiny scales do not underflow)."""
    P, Q = x + np.diag(t * s), x - np.diag(t * s)
    a, b = (np.diag(P) - x) / s, (x - np.diag(Q)) / s
    return P, Q, np.where(a > 0, a, np.nan), np.where(b > 0, b, np.nan)


def _cderiv(prob, P, dirs, floor=0.0):
    """Complex-step derivatives of the outputs at each row of P along each row of dirs:
    values and rounding bounds (see _evals), both (len(P), len(dirs), m)."""
    pts = (P[:, None, :] + 1j * CSTEP * dirs[None]).reshape(-1, P.shape[1])
    shape = (len(P), len(dirs), prob.m)
    floor = np.broadcast_to(CSTEP * np.asarray(floor), shape).reshape(-1, prob.m)
    out, noise = _evals(prob, pts, True, floor)
    return out.reshape(shape) / CSTEP, noise.reshape(shape) / CSTEP


def _ecnoise(prob, x, s, dirs=None):
    """Rounding level of f (dirs None; shape (m,)) or of its complex-step derivatives along
    the rows of dirs (shape (len(dirs), m)), measured in the manner of Moré and Wild's
    ECnoise: three times the rms residual of a cubic fitted to values at 12 points within
    1e-8 times the scale of x, at fixed pseudo-random offsets (random, so that the rounding
    pattern is sampled rather than aliased) on a fixed pseudo-random line.  0 where a point
    leaves the domain."""
    rng = np.random.default_rng(4)
    r, u = rng.uniform(0.5, 1.0, len(x)) * rng.choice([-1.0, 1.0], len(x)), rng.uniform(-1.0, 1.0, 12)
    P = x + (1e-8 * u)[:, None] * (r * s)
    V = _evals(prob, P)[0] if dirs is None else _cderiv(prob, P, dirs)[0]
    if not np.all(np.isfinite(V)):
        return np.zeros(V.shape[1:])
    A, flat = np.vander(u, 4), V.reshape(len(u), -1)
    res = flat - A @ np.linalg.lstsq(A, flat, rcond=None)[0]
    return (3 * np.sqrt(np.sum(res ** 2, axis=0) / (len(u) - 4))).reshape(V.shape[1:])


def _non_analytic(prob):
    from adcalc.core import PRIMS
    from adcalc.evaluate import needed
    ops = {prob.graph.nodes[i].op for i in needed(prob.graph, [prob.output])}
    return sorted(op for op in ops if op in PRIMS and not PRIMS[op].complex_ok)


# ---- stencils: t -> (quotients, rounding bounds); NaN where a point leaves the domain -----------
def _jac_real(prob, x, s, floor):
    def quot(t):
        P, Q, a, b = _shift(x, t, s)
        out, noise = _evals(prob, np.concatenate([P, Q]), floor=floor)
        n = len(x)
        return (out[:n] - out[n:]).T / (a + b) / s, (noise[:n] + noise[n:]).T / (a + b) / s
    return quot


def _hess_real(prob, x, s, floor):
    """The three-point quotient on the diagonal (exact for quadratics also where rounding
    makes the two steps unequal), four points off it."""
    n, E = len(x), np.eye(len(x))
    i, j = np.triu_indices(n, 1)

    def quot(t):
        P, Q, a, b = _shift(x, t, s)
        di, dj = (a * s)[i, None] * E[i], (a * s)[j, None] * E[j]
        pts = np.concatenate([x[None], P, Q, x + di + dj, x + di - dj, x - di + dj, x - di - dj])
        f, e = (v[:, 0] for v in _evals(prob, pts, floor=floor))
        w = np.array([b, -(a + b), a]) / (a * b * (a + b) / 2)
        H = np.diag((w[0] * f[1:n + 1] + w[1] * f[0] + w[2] * f[n + 1:2 * n + 1]) / s / s)
        N = np.diag((w[0] * e[1:n + 1] - w[1] * e[0] + w[2] * e[n + 1:2 * n + 1]) / s / s)
        c, ce, den = f[2 * n + 1:].reshape(4, -1), e[2 * n + 1:].reshape(4, -1), 4 * a[i] * a[j]
        H[i, j] = H[j, i] = (c[0] - c[1] - c[2] + c[3]) / den / s[i] / s[j]
        N[i, j] = N[j, i] = ce.sum(axis=0) / den / s[i] / s[j]
        return H, N
    return quot


def _cdiff(prob, x, s, dirs, floor):
    """Entry (d, j): the central difference along e_j of the complex-step derivative along
    dirs[d] (the Hessian's columns for dirs = diag(s), an HVP for dirs = [v])."""
    def quot(t):
        P, Q, a, b = _shift(x, t, s)
        out, noise = _cderiv(prob, np.concatenate([P, Q]), dirs, floor)
        n = len(x)
        return ((out[:n, :, 0] - out[n:, :, 0]).T / (a + b) / s,
                (noise[:n, :, 0] + noise[n:, :, 0]).T / (a + b) / s)
    return quot


METHODS = {  # complex step?, first and second order: (base step, steps), Richardson order
    "richardson": dict(cplx=False, first=(0.5, 16), second=(0.5, 16), order=3),
    "central": dict(cplx=False, first=(EPS ** (1 / 3), 2), second=(EPS ** (1 / 4), 2), order=0),
    "complex-step": dict(cplx=True, first=None, second=(0.5, 16), order=3),
}


class NumericEngine(Engine):
    name = "numeric"
    exact = False

    def __init__(self, method=None, **options):
        super().__init__(method=method, **options)
        self.method = method or "auto"
        if self.method != "auto" and self.method not in METHODS:
            raise InputError(f"unknown numeric method {self.method!r}; choose one of "
                             f"auto, {', '.join(METHODS)}")

    def _plan(self, prob):
        bad = _non_analytic(prob)
        if self.method == "complex-step" and bad:
            raise EngineError(f"complex step needs a complex-analytic expression, but it uses "
                              f"{', '.join(bad)}, which is not; use --method richardson")
        name = self.method if self.method != "auto" else ("richardson" if bad else "complex-step")
        return name, METHODS[name]

    def _run(self, prob, x, quot, step, order):
        """Richardson over quot(t) for the steps of `step`, skipping leading steps that
        leave the domain, until every component has `count` values."""
        base, count = step
        ds, ns = [], []
        for t in StepGenerator(base, count):
            D, N = quot(t)
            if not ds and not np.isfinite(D).any():
                continue
            ds.append(D), ns.append(N)
            if np.all(np.isfinite(ds).sum(axis=0) >= count):
                break
        if not ds:  # no step fits inside the domain: NaN, written as null with a warning
            ds, ns = [D], [N]
        return richardson(ds, ns, order=order)

    def _setup(self, prob, x):
        name, plan = self._plan(prob)
        x = np.asarray(x, dtype=float)
        prob.evaluate(x)  # a point outside the domain is an error, not a NaN
        return name, plan, x, nominal_scale(x)

    def _jacobian1(self, prob, x):
        name, plan, x, s = self._setup(prob, x)
        if prob.n == 0:
            return Result(np.zeros((prob.m, 0)), np.zeros((prob.m, 0)), {"method": name})
        if plan["cplx"]:
            out, noise = _cderiv(prob, x[None], np.diag(s), _ecnoise(prob, x, s, np.diag(s)))
            return Result(out[0].T / s, noise[0].T / s, {"method": name})
        quot = _jac_real(prob, x, s, _ecnoise(prob, x, s))
        est = self._run(prob, x, quot, plan["first"], plan["order"])
        return Result(est.estimate, est.error_estimate, {"method": name})

    def _vjp1(self, prob, x, u):
        r = self._jacobian1(prob, x)
        u = np.asarray(u, dtype=float).ravel()
        return Result(u @ r.value, np.abs(u) @ r.error, r.info)

    def _jvp1(self, prob, x, v):
        name, plan, x, s = self._setup(prob, x)
        v = np.asarray(v, dtype=float).ravel()
        if not plan["cplx"] or not v.any():
            r = self._jacobian1(prob, x)
            return Result(r.value @ v, r.error @ np.abs(v), r.info)
        tau = np.min(s[v != 0] / np.abs(v[v != 0]))  # tau v moves no x_j by more than its scale
        w = tau * v[None]
        out, noise = _cderiv(prob, x[None], w, _ecnoise(prob, x, s, w))
        return Result(out[0, 0] / tau, noise[0, 0] / tau, {"method": name})

    def _hessian1(self, prob, x):
        name, plan, x, s = self._setup(prob, x)
        if prob.n == 0:
            return Result(np.zeros((0, 0)), np.zeros((0, 0)), {"method": name})
        if plan["cplx"]:  # columns: differences of complex-step gradients (rows scaled by s)
            quot = _cdiff(prob, x, s, np.diag(s), _ecnoise(prob, x, s, np.diag(s)))
        else:
            quot = _hess_real(prob, x, s, _ecnoise(prob, x, s))
        est = self._run(prob, x, quot, plan["second"], plan["order"])
        H, E = est.estimate, est.error_estimate
        if plan["cplx"]:
            H, E = H / s[:, None], E / s[:, None]
        return Result((H + H.T) / 2, np.fmax((E + E.T) / 2, np.abs(H - H.T) / 2), {"method": name})

    def _hvp1(self, prob, x, v):
        name, plan, x, s = self._setup(prob, x)
        v = np.asarray(v, dtype=float).ravel()
        if not plan["cplx"] or not v.any():
            r = self._hessian1(prob, x)
            return Result(r.value @ v, r.error @ np.abs(v), r.info)
        tau = np.min(s[v != 0] / np.abs(v[v != 0]))
        w = tau * v[None]
        est = self._run(prob, x, _cdiff(prob, x, s, w, _ecnoise(prob, x, s, w)), plan["second"], plan["order"])
        return Result(est.estimate[0] / tau, est.error_estimate[0] / tau, {"method": name})

    # ---- the batch contract: one point at a time (each has its own steps) ---------------
    def jacobian_batch(self, prob, X):
        return _stack([self._jacobian1(prob, x) for x in X])

    def hessian_batch(self, prob, X):
        return _stack([self._hessian1(prob, x) for x in X])

    def jvp_batch(self, prob, X, V):
        return _stack([_stack([self._jvp1(prob, x, v) for x, v in zip(X, Vk)]) for Vk in V])

    def vjp_batch(self, prob, X, U):
        return _stack([_stack([self._vjp1(prob, x, u) for x, u in zip(X, Uk)]) for Uk in U])

    def hvp_batch(self, prob, X, V):
        return _stack([_stack([self._hvp1(prob, x, v) for x, v in zip(X, Vk)]) for Vk in V])


def _stack(results):
    info = dict(results[0].info) if results else {}
    return Result(np.stack([r.value for r in results]),
                  np.stack([r.error for r in results]) if results and results[0].error is not None else None,
                  info)
