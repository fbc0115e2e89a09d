"""Numeric engine: the numerical-differentiation core (adcalc.numdiff) applied to a Problem.

Methods (`--method`): auto (complex step where every function on the way is
complex-analytic at the point, checked to be finite, else Richardson-extrapolated
differences), richardson, central (one textbook step) and complex-step.  Every result
carries a per-component error estimate (`Result.error`, JSON "error_estimate") and,
in `Result.info["status"]`, a status per component: ok, kink (the value is the
midpoint of the one-sided slopes in info["lo"] / info["hi"] and the error covers
both), jump, infinite (a slope that grows without bound), unresolved (f varies faster
than the steps can follow) or undefined (no step fits
inside the domain).

The black box evaluates many points in one batched pass of the graph; its rounding
bound per evaluation is NOISE eps times the largest intermediate magnitude on the
way (of the imaginary part in complex step) plus the underflow granularity.
"""
import math
import time

import numpy as np

from adcalc import numdiff
from adcalc.ad import Underflow
from adcalc.core import PRIMS
from adcalc.engines.base import Engine, Result
from adcalc.errors import EngineError, InputError
from adcalc.evaluate import needed
from adcalc.graph import to_text

METHODS = ("auto", "richardson", "central", "complex-step")
TIME_LIMIT = 900.0          # seconds a second-order request may take before it is declined
MEMORY_BUDGET = 128 << 20   # bytes of node values per batched evaluation (rows are chunked to fit)


class ProblemBox:
    """A Problem as the core's black box: rows of flat inputs -> (outputs, rounding bounds)."""

    eps = numdiff.EPS

    def __init__(self, prob):
        self.prob, self.n, self.m = prob, prob.n, prob.m
        ids = needed(prob.graph, [prob.output])
        self.ops = {prob.graph.nodes[i].op for i in ids}
        per_point = 16 * (prob.n + sum(prob.graph.nodes[i].size for i in ids))  # complex bytes
        self.chunk = max(1, MEMORY_BUDGET // per_point)   # rows per batched evaluation

    def __call__(self, P, cplx=False):
        prob = self.prob
        P = np.asarray(P, dtype=complex if cplx else float)
        B = len(P)
        part = np.imag if cplx else np.abs
        bad = {}
        with Underflow() as under:
            vals = prob.values(P, dtype=complex if cplx else float, bad=bad)
        nodes = prob.graph.nodes
        O = np.reshape(np.broadcast_to(vals[prob.output.id], (B,) + prob.out_shape), (B, prob.m))
        with np.errstate(all="ignore"):
            mag = np.max([np.abs(part(np.reshape(v, (B, -1)))).max(axis=1, initial=0.0)
                          for i, v in enumerate(vals)
                          if v is not None and nodes[i].op not in ("const", "var") and np.ndim(v)]
                         + [np.abs(part(O)).max(axis=1, initial=0.0)], axis=0)
        out = np.array(np.imag(O) if cplx else np.real(O), dtype=float)
        badrow = ~np.all(np.isfinite(O), axis=1) | ~np.isfinite(mag)
        if bad:
            badrow[list(bad)] = True
        out[badrow] = np.nan
        noise = numdiff.NOISE * numdiff.EPS * np.where(badrow, np.nan, mag)[:, None] + numdiff.TINY
        if cplx and under.seen:  # an imaginary part underflowed: the complex step says nothing
            noise = np.full(noise.shape, np.inf)
        return out, np.broadcast_to(noise, out.shape).copy()

    def non_analytic(self):
        return sorted(op for op in self.ops if op in PRIMS and not PRIMS[op].complex_ok)

    def complex_reason(self, x):
        """None when complex step is valid at x, else why not."""
        bad = self.non_analytic()
        if bad:
            return f"it uses {', '.join(bad)}, which {'is' if len(bad) == 1 else 'are'} not complex-analytic"
        prob = self.prob
        vals = prob.evaluate(x)
        for i in needed(prob.graph, [prob.output]):
            node = prob.graph.nodes[i]
            rule = PRIMS[node.op].complex_at if node.op in PRIMS else None
            if rule is not None:
                varies = tuple(a.depends for a in node.args)
                with np.errstate(all="ignore"):
                    ok = rule(*[vals[a.id] for a in node.args], varies)
                if not ok:
                    return f"'{to_text(node)}' is not complex-analytic at this point"
        return None


def _seconds_per_point(box, x, cplx, repeats=3):
    """The time of one evaluation of f, from batches of points near x (about 10^6 numbers,
    as the sweeps' batches are large): the best of `repeats` timed batches after an untimed
    one.  A first call pays once for what the thousands of calls after it reuse (its plan,
    its compiled program, fresh memory): timed alone it made a Hessian that takes 6 minutes
    look like 17 and be declined."""
    rows = max(8, min(1024, (1 << 20) // max(1, box.n)))
    P = np.repeat(np.asarray(x, dtype=complex if cplx else float)[None], rows, axis=0)
    box(P, cplx=cplx)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        box(P, cplx=cplx)
        best = min(best, time.perf_counter() - started)
    return best / rows


def _singular_rows(est, box, x, v):
    """Second derivatives along inputs where the first derivative is itself not finite, a
    kink or a jump (cbrt at 0: its symmetric second difference is 0, its second derivative
    does not exist) are not finite: null, never a number."""
    first = numdiff.first_derivatives(box, x, "richardson")
    bad = np.any(first.status != "ok", axis=0)          # per input
    if not bad.any():
        return est
    value, status = est.value.copy(), est.status.copy()
    if v is None:
        hit = bad[:, None] | bad[None, :]
    else:
        hit = bad | np.any(bad & (np.asarray(v) != 0))
    value[hit] = np.nan
    status[hit & (status == "ok")] = "infinite"
    return est._replace(value=value, status=status)


def _box(prob):
    key = ("numeric.box", prob.output.id)
    box = prob.graph.cache.get(key)
    if box is None:
        box = prob.graph.cache[key] = ProblemBox(prob)
    return box


def _result(estimates):
    """A Result over points from a list of Estimates (one per point).  A finite value whose
    error estimate is not finite says nothing: it becomes undefined (null), never a number
    with an unbounded error."""
    value = np.stack([e.value for e in estimates])
    error = np.stack([e.error for e in estimates])
    status = np.stack([e.status for e in estimates])
    blind = np.isfinite(value) & ~np.isfinite(error)
    if blind.any():
        value = np.where(blind, np.nan, value)
        status = np.where(blind & (status == "ok"), "undefined", status).astype(object)
    return Result(value, error, {"method": estimates[0].method if estimates else "richardson",
                                 "status": status, "lo": np.stack([e.lo for e in estimates]),
                                 "hi": np.stack([e.hi for e in estimates])})


class NumericEngine(Engine):
    name = "numeric"
    exact = False

    def __init__(self, method=None, **options):
        super().__init__(method=method, **options)
        self.method = method or "auto"
        if self.method not in METHODS:
            raise InputError(f"unknown numeric method {self.method!r}; choose one of {', '.join(METHODS)}")

    def _setup(self, prob, X):
        box = _box(prob)
        if self.method == "complex-step" and box.non_analytic():
            raise EngineError(f"complex step needs a complex-analytic expression, but "
                              f"{box.complex_reason(prob.x0())}; use --method richardson")
        prob.values(X)  # a point outside the domain is an error, not a NaN
        return box

    def jacobian_batch(self, prob, X):
        if prob.n == 0 or prob.m == 0:  # nothing varies: exact
            z = np.zeros((len(X), prob.m, prob.n))
            return Result(z, z.copy(), {"method": "exact", "status": np.full(z.shape, "ok", dtype=object),
                                        "lo": z, "hi": z})
        box = self._setup(prob, X)
        return _result([numdiff.first_derivatives(box, x, self.method) for x in X])

    def grad_batch(self, prob, X):
        return self.jacobian_batch(prob, X).map(lambda a: a[:, 0, :])

    def _second(self, box, x, v=None):
        n = box.n
        big = v is None and n > numdiff.BIG_N
        steps = numdiff.SHORT_STEPS if big else numdiff.STEPS
        points = steps * (2 * n * n if v is None else 2 * n)
        cplx = not big and self.method in ("auto", "complex-step") and box.complex_reason(x) is None
        seconds = points * _seconds_per_point(box, x, cplx)
        if seconds > TIME_LIMIT:
            raise EngineError(self._too_long(box, v, seconds, steps))
        try:
            est = numdiff.second_derivatives(box, x, self.method, v=v, limit=TIME_LIMIT)
        except numdiff.TooLong as e:
            raise EngineError(self._too_long(box, v, e.seconds, e.steps)) from None
        return est if n > numdiff.BIG_N else _singular_rows(est, box, x, v)

    @staticmethod
    def _too_long(box, v, seconds, steps):
        what = "Hessian" if v is None else "Hessian-vector product"
        return (f"the numeric {what} at n = {box.n} would take about {seconds:.0f} s here ({steps} difference "
                f"steps, each evaluating f at about {2 * box.n * (box.n if v is None else 1):.3g} points); it "
                f"stops at {TIME_LIMIT:.0f} s: use an exact engine (--engine reverse), or check the Hessian "
                f"along a few directions with hvp")

    def hessian_batch(self, prob, X):
        if prob.n == 0:
            z = np.zeros((len(X), 0, 0))
            return Result(z, z.copy(), {"method": "exact", "status": np.full(z.shape, "ok", dtype=object),
                                        "lo": z, "hi": z})
        box = self._setup(prob, X)
        return _result([self._second(box, x) for x in X])

    def jvp_batch(self, prob, X, V):
        box = self._setup(prob, X)
        return _stack([_result([numdiff.directional(box, x, v, self.method) for x, v in zip(X, Vk)])
                       for Vk in V])

    def vjp_batch(self, prob, X, U):
        J = self.jacobian_batch(prob, X)
        with np.errstate(invalid="ignore"):
            val = np.einsum("nij,kni->knj", J.value, U)
            err = np.einsum("nij,kni->knj", J.error, np.abs(U))
        st = J.info["status"]
        worst = np.array([[[numdiff._worst(st[p][U[k, p] != 0, j]) for j in range(prob.n)]
                           for p in range(len(X))] for k in range(len(U))], dtype=object)
        return Result(val, err, {"method": J.info["method"], "status": worst, "lo": val, "hi": val})

    def hvp_batch(self, prob, X, V):
        box = self._setup(prob, X)
        return _stack([_result([self._second(box, x, v) for x, v in zip(X, Vk)]) for Vk in V])


def _stack(results):
    info = dict(results[0].info)
    for k in ("status", "lo", "hi"):
        info[k] = np.stack([r.info[k] for r in results])
    return Result(np.stack([r.value for r in results]), np.stack([r.error for r in results]), info)
