"""The engine contract: jvp and/or vjp over many points; everything else is derived.

An engine implements `jvp_batch` (tangents), `vjp_batch` (cotangents) or both, over
points X (N, n) and directions in the sweeps' layout:

  jvp_batch(prob, X, V: (K, N, n)) -> Result (K, N, m)
  vjp_batch(prob, X, U: (K, N, m)) -> Result (K, N, n)

The base derives the Jacobian from whichever exists (reverse sweeps over the outputs'
unit vectors when m <= n, forward ones over the inputs' otherwise, in chunks of
directions so memory stays bounded), the gradient from it, and the Hessian and HVP by
applying the engine to the problem's gradient graph (derivatives.gradient): an HVP is
one jvp of that graph (forward over reverse), or one vjp of it (the Hessian is
symmetric).  Engines override what their method does better.  No default calls
another default in a circle: they all end at jvp_batch or vjp_batch.

The public methods (grad, jacobian, hessian, hvp, jvp, vjp) take one point x (n,) or
many X (N, n) and return a Result, whose value has the quantity's shape, after a
leading axis of points when many were given.
"""
import math

import numpy as np

from adcalc import derivatives
from adcalc.ad import Underflow
from adcalc.errors import EngineError, InputError
from adcalc.quantities import QUANTITIES

CHUNK_BYTES = 64 << 20   # largest tangent or cotangent array of one node in a chunk


class Result:
    """A derivative with an optional per-component error estimate and notes.

    `info` may hold "method", "kink" (bool mask: the point is a kink there, the value
    is the midpoint of the one-sided slopes in "slopes" = (lo, hi)) and the like."""

    __slots__ = ("value", "error", "info")

    def __init__(self, value, error=None, info=None):
        self.value = np.asarray(value, dtype=float)
        self.error = None if error is None else np.asarray(error, dtype=float)
        self.info = info or {}

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def map(self, f):
        """The same result with f applied to the value, the error and array notes."""
        info = {k: (tuple(f(np.asarray(x)) for x in v) if isinstance(v, tuple) else
                    f(v) if isinstance(v, np.ndarray) else v) for k, v in self.info.items()}
        return Result(f(self.value), None if self.error is None else f(self.error), info)


class Engine:
    name = None
    exact = True
    chunk_bytes = CHUNK_BYTES   # an engine may ask for smaller chunks of directions

    def __init__(self, **options):
        self.options = options

    def available(self):
        """None when the engine can run here, else the reason it cannot."""
        return None

    @classmethod
    def defines(cls, method):
        return getattr(cls, method) is not getattr(Engine, method)

    def value(self, prob, x):
        return prob.value(x)

    # ---- the contract: an engine overrides at least one of these two ------------------------
    def jvp_batch(self, prob, X, V):
        """(K, N, m); by default J v from the Jacobian made with the engine's vjp."""
        J = self.jacobian_batch(prob, X)
        return Result(np.einsum("nij,knj->kni", J.value, V))

    def vjp_batch(self, prob, X, U):
        """(K, N, n); by default u J from the Jacobian made with the engine's jvp."""
        J = self.jacobian_batch(prob, X)
        return Result(np.einsum("nij,kni->knj", J.value, U))

    # ---- derived (each ends at jvp_batch or vjp_batch) --------------------------------
    def jacobian_batch(self, prob, X):
        """(N, m, n)."""
        N, n, m = len(X), prob.n, prob.m
        reverse = self.defines("vjp_batch") and (m <= n or not self.defines("jvp_batch"))
        if not reverse and not self.defines("jvp_batch"):
            raise EngineError(f"the {self.name} engine defines neither jvp nor vjp")
        k, call = (m, self.vjp_batch) if reverse else (n, self.jvp_batch)
        width = n if reverse else m
        chunk = max(1, min(k, min(CHUNK_BYTES, self.chunk_bytes) // (8 * max(1, N) * prob.widest())))
        parts, errs, infos = [], [], []
        for lo in range(0, k, chunk):
            hi = min(k, lo + chunk)
            E = np.zeros((hi - lo, N, k))
            E[np.arange(hi - lo), :, np.arange(lo, hi)] = 1.0
            r = call(prob, X, E)
            parts.append(r.value)
            errs.append(r.error)
            infos.append(r.info)
        val = np.concatenate(parts, axis=0) if parts else np.zeros((0, N, width))
        err = None if any(e is None for e in errs) or not errs else np.concatenate(errs, axis=0)
        order = (1, 0, 2) if reverse else (1, 2, 0)
        info = infos[0] if len(infos) == 1 else {}
        if any(i.get("underflow") for i in infos):
            info = dict(info, underflow=True)
        return Result(np.transpose(val, order), None if err is None else np.transpose(err, order), info)

    def grad_batch(self, prob, X):
        """(N, n): one vjp with u = 1, else the Jacobian's row."""
        if self.defines("vjp_batch"):
            return self.vjp_batch(prob, X, np.ones((1, len(X), 1))).map(lambda a: a[0])
        return self.jacobian_batch(prob, X).map(lambda a: a[:, 0, :])

    def hvp_batch(self, prob, X, V):
        """(K, N, n): the gradient graph's vjp (H is symmetric: double backprop), or its jvp
        (forward over reverse)."""
        gp = derivatives.gradient(prob)
        return self.vjp_batch(gp, X, V) if self.defines("vjp_batch") else self.jvp_batch(gp, X, V)

    def hessian_batch(self, prob, X):
        """(N, n, n)."""
        return self.jacobian_batch(derivatives.gradient(prob), X)

    # ---- public: one point or many --------------------------------------------------------
    def grad(self, prob, x):
        return self._call("grad", prob, x)

    def jacobian(self, prob, x):
        return self._call("jacobian", prob, x)

    def hessian(self, prob, x):
        return self._call("hessian", prob, x)

    def hvp(self, prob, x, v):
        return self._call("hvp", prob, x, v)

    def jvp(self, prob, x, v):
        return self._call("jvp", prob, x, v)

    def vjp(self, prob, x, u):
        return self._call("vjp", prob, x, u)

    def _call(self, quantity, prob, x, vector=None):
        x = np.asarray(x, dtype=float)
        one = x.ndim == 1
        X = x[None] if one else x
        r = batch(self, prob, quantity, X, vector)
        return r.map(lambda a: a[0]) if one else r


def through_graph(dp, X, env, sweep, lead=None):
    """A derivative problem's output at the points X by evaluating its graph: lead + its
    shape, lead (N,) or, with directions in `env`, (K, N).

    The graph multiplies where the numeric sweeps mask: a zero (co)tangent meeting an
    infinite partial is 0 there (adcalc.ad), NaN here; and the sweeps watch for
    underflow.  So the points where the graph's answer is not finite come from
    `sweep(rows)` (a Result over those points), and all points do when some number
    underflowed."""
    lead = (len(X),) if lead is None else tuple(lead)
    with Underflow() as under:
        out = dp.values(X, env=env, keep=frozenset(), watch=True)[dp.output.id]
        total = np.add.reduce(out, None)   # finite when every entry is (one that overflows only costs a closer look)
    if under.seen:
        return sweep(slice(None))
    shape = lead + dp.out_shape
    if dp.output.op in ("const", "var") or out.shape != shape or not out.flags.owndata:
        out = np.array(np.broadcast_to(out, shape), dtype=float)   # not the graph's or the caller's
    if math.isfinite(total):
        return Result(out)
    axis = len(lead) - 1   # the points
    finite = np.isfinite(np.moveaxis(out, axis, 0).reshape(len(X), -1)).all(axis=1)
    rows = np.flatnonzero(~finite)
    if not len(rows):
        return Result(out)
    r = sweep(rows)
    out[(slice(None),) * axis + (rows,)] = r.value
    return Result(out, info=r.info)


def scalar_only(prob, command):
    if prob.m != 1:
        alt = "jacobian" if command == "grad" else "jacobian of each output"
        raise InputError(f"{command} needs a scalar expression, but this one has {prob.m} "
                         f"outputs (shape {list(prob.out_shape)}); use {alt}, or jvp/vjp")


def batch(engine, prob, quantity, X, vector=None):
    """One quantity at the points X (N, n): a Result (N,) + the quantity's shape.  The vector
    (v over the inputs, u over the outputs) is one for all points, or one per point."""
    q = QUANTITIES[quantity]
    if q.scalar:
        scalar_only(prob, quantity)
    X = np.asarray(X, dtype=float)
    X = X.reshape(len(X), prob.n)
    N = len(X)
    if q.vector is None:
        return getattr(engine, quantity + "_batch")(prob, X)
    size = prob.n if q.vector == "inputs" else prob.m
    W = np.broadcast_to(np.asarray(vector, dtype=float).reshape(-1, size), (N, size))[None]
    r = getattr(engine, quantity + "_batch")(prob, X, W)
    return r.map(lambda a: a[0])


def compute(engine, prob, quantity, x=None, vector=None):
    """One quantity at one point (default: the problem's): a Result of the quantity's shape."""
    x = prob.x0() if x is None else np.asarray(x, dtype=float)
    return batch(engine, prob, quantity, x[None], vector).map(lambda a: a[0])
