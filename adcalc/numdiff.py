"""Numerical differentiation of a black box: the one core behind the numeric engine,
`verify` and `check`.

A black box is any object with `n`, `m`, `eps` (the precision it computes in) and
`__call__(P, cplx=False) -> (F, noise)`: outputs (B, m) at the rows of P (B, n),
NaN in a row outside its domain or not finite, and a bound on each value's rounding
(B, m).  With cplx=True the rows are complex and F is the imaginary part of f (for
complex step); `complex_reason(x)` says why complex step may not be used at x
(None when it may).  `Problem` objects get an adapter in the numeric engine, user
callables in `check`.

Steps: component j is differenced at t * s_j, s_j = max(|x_j|, typ) with typ a
typical size of the point (2^-26 max(1, max |x|)), t = 1/2, 1/4, ... (Richardson
ladders, numdifftools' anatomy).  Leading steps that leave the domain (or overflow)
are skipped by a coarse search, so log at 1e-300 is differenced at 1e-301.  Where
no central step fits (sqrt at 0), one-sided differences are used.

Every estimate has an error estimate (the spread across steps and orders plus a
rounding bound that includes underflow, never zero for an inexact value) and a
status per component:

  ok         converged
  kink       the one-sided slopes converge to different values (relu at 0): the
             value is their midpoint and the error covers both, `lo` and `hi` hold them
  jump       f itself jumps (sign at 0): no derivative, value NaN
  infinite   the quotients grow without bound as the step shrinks (sqrt at 0):
             value +-inf
  unresolved the quotients grow as the step shrinks with no steady sign: f varies
             faster than the smallest step can follow (cos at 2e32 by real
             differences): value NaN
  undefined  no step fits inside the domain: value NaN
"""
import math
import time
from typing import NamedTuple

import numpy as np

EPS = 2.0 ** -52
TINY = 2.0 ** -1074      # absolute rounding of any value (underflow)
NOISE = 4.0              # rounding of one evaluation, in eps times its largest intermediate value
CSTEP = 2.0 ** -66       # complex step, relative to the component's scale
STEPS = 16               # steps of a Richardson ladder
COARSE = 4               # the domain search jumps 2^COARSE at a time
MAX_SKIP = 1100 // COARSE


class Estimate(NamedTuple):
    value: np.ndarray       # the derivative's shape
    error: np.ndarray       # error estimate, same shape
    status: np.ndarray      # object array of the status words above
    lo: np.ndarray          # one-sided slopes where status is kink (else = value)
    hi: np.ndarray
    method: str


TYPICAL = 2.0 ** -26
CHECK = 2.0 ** -20       # complex step checked against a step this many times smaller
TINY_X = 2.0 ** -900     # below this a complex step cannot be much smaller than x


def nominal_scale(x):
    """Per-component step unit: |x_j|, or 1 where x_j = 0."""
    a = np.abs(np.asarray(x, dtype=float))
    return np.where(a > 0, a, 1.0)


def typical_scale(x):
    """A second unit for components much smaller than a typical size (TYPICAL = 2^-26, the
    step at which differences of a function of size 1 are most accurate; not a size taken
    from the other coordinates, which may be 1e200 and say nothing about this one).  Differencing x + y at (1e-300, 1) by
    steps of 1e-300 sees nothing but rounding; steps of the typical size see the slope."""
    x = np.asarray(x, dtype=float)
    return np.maximum(nominal_scale(x), TYPICAL)


def quantize(f, P):
    """P rounded to the precision the black box takes its input in (float32 code), so that
    the displacements used are the ones taken."""
    q = getattr(f, "quantize", None)
    return P if q is None else q(P)


# ---- Richardson extrapolation ------------------------------------------------------------
def richardson(D, noise, ratio=2.0, order=3, power=2):
    """Extrapolate quotients D[k] at steps shrinking by `ratio`, whose error runs in powers
    power, 2 power, ... of the step; noise[k] bounds D[k]'s rounding (NaN: no value).
    Returns (estimate, error estimate, index of the step used)."""
    D, noise = np.asarray(D, dtype=float), np.asarray(noise, dtype=float)
    order = max(0, min(order, len(D) - 2))
    R, N = [D], [noise]
    for k in range(1, order + 1):
        c = ratio ** (power * k)
        with np.errstate(invalid="ignore"):  # written so that 1e304-sized quotients do not overflow
            R.append(R[-1][1:] + (R[-1][1:] - R[-1][:-1]) / (c - 1))
            N.append(N[-1][1:] * (c / (c - 1)) + N[-1][:-1] / (c - 1))
    A, low = R[-1], R[-2] if order else R[-1]
    L = len(A) - 1
    if L < 1:
        shape = A.shape[1:]
        return A[0], np.full(shape, np.inf), np.zeros(shape, int)
    with np.errstate(invalid="ignore"):
        err = np.abs(A[:L] - A[1:]) + np.abs(A[:L] - low[1:L + 1]) + N[-1][:L]
        A, err = A[:L], np.where(np.isfinite(err), err, np.inf)
        ok = ~(np.abs(A[:, None] - A[None, :]) > err[:, None] + err[None, :])
    later = np.triu(np.ones((L, L), dtype=bool), 1).reshape((L, L) + (1,) * (A.ndim - 1))
    score = np.where(np.all(ok | ~later, axis=1), err, np.inf)
    best = np.where(np.isfinite(score).any(axis=0), np.argmin(score, axis=0), np.argmin(err, axis=0))
    pick = lambda a: np.take_along_axis(a, best[None], axis=0)[0]  # noqa: E731
    return pick(A), pick(err), best


# ---- noise ---------------------------------------------------------------------------------
def ecnoise(f, x, s, dirs=None, rng=None):
    """Rounding level of f's outputs (m,) near x, or of its complex-step derivatives along
    the rows of `dirs` (len(dirs), m), measured as Moré and Wild's ECnoise does: three
    times the rms residual of a cubic fitted to values at 12 points within 1e-8 times
    the scale on a pseudo-random line.  The smallest of a stencil around x and one on
    each side of it, so that a kink or jump at x is not taken for noise; 0 where every
    stencil leaves the domain."""
    rng = rng or np.random.default_rng(4)
    r = rng.uniform(0.5, 1.0, len(x)) * rng.choice([-1.0, 1.0], len(x))
    best = None
    for lo, hi in ((-1.0, 1.0), (0.5, 1.0), (-1.0, -0.5)):
        u = rng.uniform(lo, hi, 12)
        P = x + (1e-8 * u)[:, None] * (r * s)
        V = f(P)[0] if dirs is None else complex_quotients(f, P, dirs)[0]
        if not np.all(np.isfinite(V)):
            continue
        t = (u - (lo + hi) / 2) / ((hi - lo) / 2)
        A, flat = np.vander(t, 4), V.reshape(len(u), -1)
        scale = np.max(np.abs(flat), axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        res = (flat / scale) - A @ np.linalg.lstsq(A, flat / scale, rcond=None)[0]
        sig = (3 * np.sqrt(np.sum(res ** 2, axis=0) / (len(u) - 4)) * scale).reshape(V.shape[1:])
        best = sig if best is None else np.minimum(best, sig)
    if best is None:
        shape = (f.m,) if dirs is None else (len(dirs), f.m)
        return np.zeros(shape)
    return best


def in_chunks(f, total, rows, cplx=False):
    """f over `total` rows made by rows(lo, hi), a chunk at a time (f.chunk rows, or 4096), so
    that a Hessian of 1000 inputs (2 million points) never holds every point at once."""
    chunk = max(1, int(getattr(f, "chunk", 4096)))
    if total <= chunk:
        return f(rows(0, total), cplx=cplx)
    outs, noises = [], []
    for lo in range(0, total, chunk):
        o, nz = f(rows(lo, min(total, lo + chunk)), cplx=cplx)
        outs.append(o)
        noises.append(nz)
    return np.concatenate(outs), np.concatenate(noises)


def complex_quotients(f, P, dirs, floor=0.0):
    """Complex-step derivatives at each row of P along each row of dirs: values and
    rounding bounds, both (len(P), len(dirs), m)."""
    D = len(dirs)

    def rows(lo, hi):
        r = np.arange(lo, hi)
        return P[r // D] + 1j * CSTEP * dirs[r % D]
    shape = (len(P), D, f.m)
    out, noise = in_chunks(f, len(P) * D, rows, cplx=True)
    out, noise = out.reshape(shape) / CSTEP, noise.reshape(shape) / CSTEP
    noise = np.maximum(noise, np.broadcast_to(np.asarray(floor, dtype=float), shape[1:]))
    return out, noise


def _complex_valid(f, x):
    """Whether complex step (at steps of 2^-66 |x_j|, as second derivatives take it) is sound
    at x: the complex-step gradient is finite and steady under a far smaller step, and
    every component took that scale (see _complex_jacobian)."""
    val, _, used = _complex_jacobian(f, x, with_scales=True)
    return bool(np.all(np.isfinite(val)) and np.all(used == nominal_scale(x)[None, :]))


# ---- first derivatives ------------------------------------------------------------------------
def _complex_jacobian(f, x, with_scales=False):
    """Complex-step Jacobian (m, n) and its error.  Per component, candidate steps: 2^-66
    |x_j| (no truncation error for a function whose scale is x_j's); 2^-66 itself where
    |x_j| > 1 (cos at 2e32 varies on a scale of 1, not of x_j: a step of 2^-66 |x_j|
    leaves the linear regime, where tan's imaginary part saturates and cosh overflows);
    2^-66 times the typical size (where x_j is tiny: Im (x + ih)^2 = 2xh underflows for
    x = 1e-200 at 2^-66 |x_j|, which the sweep's underflow watch sees).  A candidate must
    be finite, with a finite error, steady under a step 2^-20 times smaller and near one
    real difference at its own scale (_near_difference); the first whose error is small
    beside its value wins, else the first at all, never a larger step that merely looks
    more precise (log(c) at c = 9e-50 stepped by 2e-28 is precise and wrong)."""
    n, m = len(x), f.m
    s1 = nominal_scale(x)
    val, err = np.full((m, n), np.nan), np.full((m, n), np.inf)
    used = np.broadcast_to(s1, (m, n)).copy()
    steps = {}   # role -> _Step, each only where its scale differs from the earlier roles'
    for role, s in (("x", s1), ("one", np.minimum(s1, 1.0)), ("typical", typical_scale(x))):
        fresh = np.all([s != c.scale for c in steps.values()], axis=0) if steps else np.ones(n, bool)
        if fresh.any():
            steps[role] = _complex_step(f, x, s, fresh)
    done = np.zeros((m, n), bool)
    one = steps.pop("one", None)
    if one is not None:
        # |x_j| > 1: the step of 2^-66 sees the slope at x itself; where the step of 2^-66 |x_j|
        # sees another (b + tan b at 5e120: 1, the mean slope over many periods) the gap is
        # the error.  Where they agree the gap also bounds what the small step's noise
        # estimate cannot see (its stencil is below an ulp of x_j)
        near = steps["x"]
        g3 = one.good
        with np.errstate(invalid="ignore", over="ignore"):
            gap = np.where(near.good, np.abs(near.value - one.value), 0.0)
            tight = near.good & (gap <= 1e-6 * np.abs(one.value))    # the same slope: the larger noise holds
            first = ~tight & near.sharp & ~one.sharp                   # the small step underflowed (log at 1e300)
            pick = np.where(tight, near.error < one.error, first)
            val = np.where(g3, np.where(pick, near.value, one.value), val)
            err = np.where(g3, np.where(tight, np.maximum(near.error, one.error),
                                        np.where(first, near.error, np.maximum(one.error, gap))), err)
        used = np.where(g3 & ~tight & ~first, one.scale[None, :], used)   # where 2^-66 |x_j| agreed, it holds
        done |= g3
    for sharp in (True, False):   # the first step whose error is small beside its value, else the first
        for c in steps.values():
            take = (c.sharp if sharp else c.good) & ~done
            val, err = np.where(take, c.value, val), np.where(take, c.error, err)
            used = np.where(take, c.scale[None, :], used)
            done |= take
    return (val, err, used) if with_scales else (val, err)


class _Step(NamedTuple):
    good: np.ndarray     # (m, n) finite, steady under a 2^-20 smaller step, near a real difference
    sharp: np.ndarray    # good, and an error below 1e-8 of the value
    value: np.ndarray
    error: np.ndarray
    scale: np.ndarray    # (n,) the step is 2^-66 times this


def _complex_step(f, x, s, where):
    """One candidate of _complex_jacobian: complex-step derivatives at steps 2^-66 s_j, judged
    (good and sharp only in the columns `where`)."""
    n = len(x)
    dirs = np.concatenate([np.diag(s), np.diag(s * CHECK)])
    out, noise = complex_quotients(f, x[None], dirs, ecnoise(f, x, s, dirs))  # noise at its own scale
    v, e = out[0, :n].T / s, noise[0, :n].T / s
    vc, ec = out[0, n:].T / (s * CHECK), noise[0, n:].T / (s * CHECK)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.maximum(e, 4 * EPS * np.abs(v) + TINY)
        ec = np.maximum(ec, 4 * EPS * np.abs(vc) + TINY)
        # a far smaller step must give the same: where an intermediate's imaginary part is
        # not small (exp(x - max) inside logsumexp of e^84) complex step returns garbage
        good = np.isfinite(v) & np.isfinite(e) & (np.abs(v - vc) <= e + ec)
    good &= _near_difference(f, x, s, v) & where[None, :]
    with np.errstate(invalid="ignore", over="ignore"):
        sharp = good & (e <= 1e-8 * np.abs(v))   # a valid complex step keeps ~15 digits
    return _Step(good, sharp, v, e, s)


def _near_difference(f, x, s, val, ts=(2.0 ** -26, 2.0 ** -38), rel=1e-3):
    """(m, n): whether complex-step derivatives `val` are near a central difference at a
    small step (t s_j for one t of ts: the second for an f whose own scale is far below
    x_j's, log(x1 - x2) at 1.0000001, 1): a cheap guard against a complex step whose
    imaginary parts grew too large to be linear somewhere inside f (it agrees with itself,
    not with f).  Where a difference point leaves the domain the check passes; a smaller
    step passes only where its difference is resolved (far above its rounding), else a
    value rounded to f's last digits would pass anything (logsumexp(exp(v)) at v0 = 45)."""
    ok = np.zeros(np.shape(val), bool)
    for k, t in enumerate(ts):
        ok |= _near_one(f, x, s, val, t, rel, resolved=k > 0)
        if ok.all():
            break
    return ok


def _near_one(f, x, s, val, t, rel, resolved=False):
    n = len(x)
    P = np.repeat(x[None], 2 * n, axis=0)
    idx = np.arange(n)
    P[idx, idx] += t * s
    P[n + idx, idx] -= t * s
    F, N = f(P)
    step = (P[idx, idx] - P[n + idx, idx])
    with np.errstate(all="ignore"):
        D = ((F[:n] - F[n:]) / step[:, None]).T
        noise = ((N[:n] + N[n:]) / step[:, None]).T
        ok = np.abs(val - D) <= rel * (np.abs(val) + np.abs(D)) + 4 * noise
        if resolved:
            return ok & (40 * noise <= np.abs(D)) & np.isfinite(D) & np.isfinite(val)
    return ok | ~np.isfinite(D) | ~np.isfinite(val)



def _ladder_start(f, x, s, n, base=0.5):
    """Per component j, the index k of the first coarse step base * 2^-k * s_j at which both
    x +- t e_j are inside the domain and finite, and whether only one side ever is
    (side: 0 central, +1 forward only, -1 backward only, 2 none)."""
    start = np.full(n, -1)
    side = np.full(n, 2)
    fwd_ok = np.full(n, -1)
    bwd_ok = np.full(n, -1)
    todo = np.arange(n)
    for c in range(MAX_SKIP):
        if not todo.size:
            break
        k = c * COARSE
        t = base * 2.0 ** -k * s[todo]
        P = np.repeat(x[None], 2 * len(todo), axis=0)
        P[np.arange(len(todo)), todo] += t
        P[len(todo) + np.arange(len(todo)), todo] -= t
        P = quantize(f, P)
        moved = (P[np.arange(len(todo)), todo] != x[todo]) & (P[len(todo) + np.arange(len(todo)), todo] != x[todo])
        F, _ = f(P)
        good = np.all(np.isfinite(F), axis=1)
        a, b = good[:len(todo)], good[len(todo):]
        for i, j in enumerate(todo):
            if a[i] and fwd_ok[j] < 0:
                fwd_ok[j] = k
            if b[i] and bwd_ok[j] < 0:
                bwd_ok[j] = k
        both = a & b & moved
        start[todo[both]] = k
        side[todo[both]] = 0
        todo = todo[~both & moved]
    for j in np.flatnonzero(start < 0):
        if fwd_ok[j] >= 0 and (bwd_ok[j] < 0 or fwd_ok[j] <= bwd_ok[j]):
            start[j], side[j] = fwd_ok[j], 1
        elif bwd_ok[j] >= 0:
            start[j], side[j] = bwd_ok[j], -1
    return np.maximum(start, 0), side


def _series(f, x, s, f0, noise0, start, count=STEPS, base=0.5):
    """Values along each axis over a ladder: steps t (count, n) relative to s, f(x + t s_j e_j)
    and f(x - t s_j e_j) with their noise (count, n, m); NaN where a point is invalid."""
    n = len(x)
    cols = np.arange(n)
    T = base * 2.0 ** -(start[None, :] + np.arange(count)[:, None])
    P = np.repeat(x[None], 2 * n * count, axis=0).reshape(count, 2, n, n)
    step = T * s
    P[:, 0, cols, cols] += step
    P[:, 1, cols, cols] -= step
    P = quantize(f, P)
    a = (P[:, 0, cols, cols] - x) / s        # displacements actually taken, in units of s
    b = (x - P[:, 1, cols, cols]) / s
    F, N = f(P.reshape(-1, n))
    F, N = F.reshape(count, 2, n, -1), N.reshape(count, 2, n, -1)
    a = np.where(a > 0, a, np.nan)
    b = np.where(b > 0, b, np.nan)
    return a, b, F[:, 0], F[:, 1], N[:, 0], N[:, 1]


def first_derivatives(f, x, method="auto", s=None):
    """The Jacobian (m, n) of the black box f at x: an Estimate.  method: auto (complex step
    where f.complex_reason(x) allows, checked for finiteness, else differences),
    richardson, central (one textbook step) or complex-step."""
    x = np.asarray(x, dtype=float)
    n, m = len(x), f.m
    F0, N0 = f(x[None])
    f0, noise0 = F0[0], N0[0]
    if not np.all(np.isfinite(f0)):
        nan = np.full((m, n), np.nan)
        return Estimate(nan, nan.copy(), np.full((m, n), "undefined", dtype=object), nan, nan, method)
    use_complex = method == "complex-step" or (method == "auto" and f.complex_reason(x) is None
                                                 and not np.any((x != 0) & (np.abs(x) < TINY_X)))
    if use_complex:
        val, err = _complex_jacobian(f, x)
        good = np.isfinite(val) & np.isfinite(err)
        if good.all() or method == "complex-step":
            st = np.where(good, "ok", "undefined").astype(object)
            return Estimate(val, err, st, val, val, "complex-step")
        real = first_derivatives(f, x, "richardson", s)   # complex step overflowed: differences
        return Estimate(np.where(good, val, real.value), np.where(good, err, real.error),
                        np.where(good, "ok", real.status).astype(object),
                        np.where(good, val, real.lo), np.where(good, val, real.hi), "complex-step+richardson")
    s1 = nominal_scale(x) if s is None else s
    est = _real_jacobian(f, x, s1, f0, noise0, method)
    s2 = typical_scale(x)
    tiny = s2 > s1
    if s is None and tiny.any():  # a second ladder at the typical size for tiny components
        alt = _real_jacobian(f, x, np.where(tiny, s2, s1), f0, noise0, method)
        with np.errstate(invalid="ignore"):
            agree = np.abs(alt.value - est.value) <= alt.error + est.error
        take = tiny[None, :] & (np.isnan(est.value) | agree & (alt.error < est.error)
                                | (est.status == "undefined") & (alt.status != "undefined"))
        est = Estimate(*[np.where(take, a, b) for a, b in zip(alt[:5], est[:5])], est.method)
    return est


def _real_jacobian(f, x, s, f0, noise0, method):
    n, m = len(x), f.m
    count, order = (2, 0) if method == "central" else (STEPS, 3)
    floor = ecnoise(f, x, s)
    start, side = _ladder_start(f, x, s, n)
    if method == "central":  # the textbook step, or the largest below it inside the domain
        base = EPS ** (1 / 3)
        start = np.maximum(0, start - int(np.floor(np.log2(0.5 / base))))
    else:
        base = 0.5
    a, b, Fp, Fm, Np, Nm = _series(f, x, s, f0, noise0, start, count, base)
    A, B = a[..., None], b[..., None]
    CR = (Np + Nm) / (A + B)     # rounding alone: ecnoise's floor also counts f's own wiggles
    Np, Nm = np.maximum(Np, floor), np.maximum(Nm, floor)
    n0 = np.maximum(noise0, floor)
    # quotients (count, n, m), in units of 1/s
    C = (Fp - Fm) / (A + B)
    CN = (Np + Nm) / (A + B)
    Fw, FwN = (Fp - f0) / A, (Np + n0) / A
    Bw, BwN = (f0 - Fm) / B, (Nm + n0) / B
    val = np.full((n, m), np.nan)
    err = np.full((n, m), np.inf)
    status = np.full((n, m), "undefined", dtype=object)
    lo, hi = np.full((n, m), np.nan), np.full((n, m), np.nan)
    for sd, D, DN, pw in ((0, C, CN, 2), (1, Fw, FwN, 1), (-1, Bw, BwN, 1)):
        cols = side == sd
        if not cols.any():
            continue
        est, e, _ = richardson(D[:, cols], DN[:, cols], order=order, power=pw)
        val[cols], err[cols] = est, e
        status[cols] = "ok"
        lo[cols], hi[cols] = est, est
        grow = _diverges(D[:, cols], DN[:, cols])
        wild = _wild(D[:, cols], (CR if sd == 0 else DN)[:, cols], est, e) & ~grow
        if wild.any():
            val[cols] = np.where(wild, np.nan, val[cols])
            err[cols] = np.where(wild, np.inf, err[cols])
            lo[cols], hi[cols] = val[cols], val[cols]
            status[cols] = np.where(wild, "unresolved", status[cols])
        if grow.any():
            sign = np.sign(D[-1, cols])
            val[cols] = np.where(grow, sign * np.inf, val[cols])
            err[cols] = np.where(grow, np.inf, err[cols])
            lo[cols], hi[cols] = val[cols], val[cols]
            status[cols] = np.where(grow, "infinite", status[cols])
    # kinks and jumps: compare the one-sided slopes at the finest steps (central columns)
    cols = side == 0
    if cols.any() and count >= 6:
        k_st, k_lo, k_hi, k_val, k_err = _kinks(Fw[:, cols], FwN[:, cols], Bw[:, cols], BwN[:, cols],
                                                Fp[:, cols] - Fm[:, cols], Np[:, cols] + Nm[:, cols])
        hit = (k_st != "ok") & (status[cols] != "unresolved")
        sub = status[cols]
        status[cols] = np.where(hit, k_st, sub)
        val[cols] = np.where(hit, k_val, val[cols])
        err[cols] = np.where(hit, k_err, err[cols])
        lo[cols] = np.where(hit, k_lo, lo[cols])
        hi[cols] = np.where(hit, k_hi, hi[cols])
    sc = s[:, None]
    val, err, lo, hi = val / sc, err / sc, lo / sc, hi / sc
    err = np.where(np.isfinite(val), np.maximum(err, 2 * EPS * np.abs(val) + TINY), err)
    status = np.where((status == "ok") & np.isnan(val), "undefined",
                      np.where((status == "ok") & np.isinf(val), "infinite", status)).astype(object)
    name = "central" if method == "central" else "richardson"
    return Estimate(val.T, err.T, status.T, lo.T, hi.T, name)


def _diverges(D, DN, tail=6):
    """Columns whose quotients grow without bound as the step shrinks: over the last `tail`
    steps every change goes the same way, the changes do not shrink (a converging series'
    shrink by 2 or 4 per halving), and the change is far above the rounding."""
    D = D[-tail:]
    if len(D) < tail or not np.isfinite(D).all():
        return np.zeros(D.shape[1:], bool)
    d = np.diff(D, axis=0)
    same = np.all(np.sign(d) == np.sign(d[-1]), axis=0) & (d[-1] != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.abs(d[1:]) / np.abs(d[:-1])
    steady = np.all(ratios >= 0.6, axis=0)
    loud = np.all(np.abs(d) > 10 * (DN[-tail + 1:] + DN[-tail:-1]), axis=0)
    return same & steady & loud


def _wild(D, DN, est, err, tail=6):
    """Columns whose quotients never settle: over the last `tail` steps their changes are far
    above the rounding and grow as the step shrinks (a converging ladder's shrink 4 times per
    halving), with no steady sign (that is _diverges' infinite slope), and the estimate's
    error is not small beside it.  cos at 2e32 stepped by 1e27 .. 1e23: each quotient is
    O(1) / step, a noise that Richardson would take for a slope near 0."""
    D = D[-tail:]
    if len(D) < tail:
        return np.zeros(D.shape[1:], bool)
    d = np.diff(D, axis=0)
    with np.errstate(invalid="ignore", over="ignore"):
        grows = np.abs(d[-2:]).sum(axis=0) > np.abs(d[:2]).sum(axis=0)
        loud = np.all(np.abs(d) > 10 * (DN[-tail + 1:] + DN[-tail:-1]), axis=0)
        blurred = ~(err <= 1e-3 * np.abs(est))
    return np.isfinite(d).all(axis=0) & grows & loud & blurred


def _kinks(Fw, FwN, Bw, BwN, dF, dN, tail=4):
    """Status (kink / jump / ok), slopes and the midpoint estimate from one-sided quotients
    over a ladder (count, cols, m).  A jump: f(x + t) - f(x - t) does not shrink with t.
    A kink: the gap between the slopes stays far above its rounding and does not shrink
    (a smooth f's gap is f'' t: it halves per step)."""
    gap = Fw - Bw
    gN = FwN + BwN
    shape = gap.shape[1:]
    st = np.full(shape, "ok", dtype=object)
    if not (np.isfinite(gap[-tail:]).all() and np.isfinite(dF[-tail:]).all()):
        return st, Fw[-1], Fw[-1], Fw[-1], np.zeros(shape)
    dj = np.abs(dF[-tail:])
    with np.errstate(divide="ignore", invalid="ignore"):
        steady = np.all(dj[1:] / dj[:-1] >= 0.9, axis=0) & (dj[-1] >= 0.8 * dj[0])
    jump = steady & np.all(dj > 50 * dN[-tail:], axis=0)
    # a kink in any window of `tail` steps, the finest that shows one: where f is large
    # beside its slopes (relu(b) + 1000 at a tiny b, stepped across 0 by 1e-8) the finest
    # steps see only rounding, coarser ones the gap
    kink = np.zeros(shape, bool)
    at = np.full(shape, len(gap) - 1)
    for end in range(len(gap), tail - 1, -1):
        g, w = np.abs(gap[end - tail:end]), gN[end - tail:end]
        with np.errstate(divide="ignore", invalid="ignore"):
            hit = np.isfinite(g).all(axis=0) & np.all(g[1:] / g[:-1] >= 0.75, axis=0) & np.all(g > 50 * w, axis=0)
        new = hit & ~kink
        at = np.where(new, end - 1, at)
        kink |= hit
    kink &= ~jump
    pick = lambda a: np.take_along_axis(a, at[None], axis=0)[0]  # noqa: E731
    fw, bw, noise = pick(Fw), pick(Bw), pick(gN)
    lo, hi = np.minimum(fw, bw), np.maximum(fw, bw)
    st = np.where(jump, "jump", np.where(kink, "kink", st)).astype(object)
    val = np.where(jump, np.nan, (lo + hi) / 2)
    err = np.where(jump, np.inf, (hi - lo) / 2 + noise)
    lo, hi = np.where(jump, np.nan, lo), np.where(jump, np.nan, hi)
    return st, lo, hi, val, err


# ---- directional first derivative (JVP) --------------------------------------------------------
def directional(f, x, v, method="auto"):
    """J(x) v (m,): complex step along v where allowed, else the Jacobian times v."""
    x, v = np.asarray(x, dtype=float), np.asarray(v, dtype=float)
    s = nominal_scale(x)
    if v.any() and (method == "complex-step" or (method == "auto" and f.complex_reason(x) is None)):
        tau = np.min(s[v != 0] / np.abs(v[v != 0]))
        w = tau * v[None]
        out, noise = complex_quotients(f, x[None], w, ecnoise(f, x, s, w))
        val, err = out[0, 0] / tau, noise[0, 0] / tau
        if np.all(np.isfinite(val)):
            err = np.maximum(err, 4 * EPS * np.abs(val) + TINY)
            st = np.full(val.shape, "ok", dtype=object)
            return Estimate(val, err, st, val, val, "complex-step")
    J = first_derivatives(f, x, "richardson" if method == "auto" else method, s)
    return _combine(J, v)


def _combine(J, v):
    """J v with errors |J err| |v| and the worst status of the components used."""
    used = v != 0
    with np.errstate(invalid="ignore"):
        val = J.value[:, used] @ v[used]
        err = J.error[:, used] @ np.abs(v[used])
    st = np.array([_worst(J.status[i, used]) for i in range(J.value.shape[0])], dtype=object)
    return Estimate(val, err, st, val, val, J.method)


RANK = {"ok": 0, "kink": 1, "infinite": 2, "unresolved": 3, "jump": 4, "undefined": 5}


def _worst(statuses):
    return max(statuses, key=RANK.get, default="ok")


# ---- second derivatives -------------------------------------------------------------------------
BIG_N = 64       # above this many inputs a Hessian uses SHORT_STEPS (each step costs 2 n^2 evaluations)
SHORT_STEPS = 4


def second_derivatives(f, x, method="auto", v=None, limit=None):
    """_second_derivatives, with the components it cannot resolve said: where a coordinate is
    so large (beyond 2^20) that the finest real step of the ladders (2^-16 of it) is in a
    regime where f's slope is no longer the complex-step slope (sin(2b) at 8e207, whose
    steps span periods), every entry in its row and column is unresolved (an HVP: every
    component, when the vector moves along it).  Complex-analytic functions of at most
    BIG_N inputs only: the check needs one complex-step gradient."""
    est = _second_derivatives(f, x, method, v, limit)
    x = np.asarray(x, dtype=float)
    n = len(x)
    big = np.abs(x) > 2.0 ** 20
    if not big.any() or n > BIG_N or method != "auto" or f.complex_reason(x) is not None:
        return est
    slope, _ = _complex_jacobian(f, x)
    coarse = big & ~_near_one(f, x, nominal_scale(x), slope, 2.0 ** -16, 1e-3)[0] & np.isfinite(slope[0])
    if not coarse.any():
        return est
    if v is None:
        hit = coarse[:, None] | coarse[None, :]
    else:
        v = np.asarray(v, dtype=float)
        hit = coarse | (np.any(coarse & (v != 0)) & np.ones(n, bool))
    value = np.where(hit, np.nan, est.value)
    return Estimate(value, np.where(hit, np.inf, est.error), np.where(hit, "unresolved", est.status).astype(object),
                    np.where(hit, np.nan, est.lo), np.where(hit, np.nan, est.hi), est.method)


def _second_derivatives(f, x, method="auto", v=None, limit=None):
    """The Hessian (n, n) of a scalar black box at x, or H v (n,) when v is given: an
    Estimate.  Complex step (differences of complex-step gradients) where allowed and
    finite, else real differences (three points on the diagonal, four off it)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    # steps of |x_j| (the quotients come back to f's units before dividing by them, so s^2
    # never forms), or the typical size where x_j is so tiny that steps lose their digits
    s = np.where((x != 0) & (np.abs(x) < 2.0 ** -1000), typical_scale(x), nominal_scale(x))
    tiny = bool(np.any((x != 0) & (np.abs(x) < TINY_X)))
    # a full Hessian of many inputs: real differences (2 n^2 real evaluations a step) cost about
    # a third of differences of complex-step gradients (2 n^2 complex ones)
    cplx = method == "complex-step" or (method == "auto" and f.complex_reason(x) is None and not tiny
                                        and (v is not None or n <= BIG_N) and _complex_valid(f, x))
    if v is not None:
        v = np.asarray(v, dtype=float)
        if not v.any():
            z = np.zeros(n)
            return Estimate(z, z.copy(), np.full(n, "ok", dtype=object), z, z, "exact")
        vmax = float(np.max(np.abs(v)))
        if vmax != 1.0:  # H (v / vmax) vmax: the step along v stays below the scales
            e = _second_derivatives(f, x, method, v / vmax, limit)
            # the error floor again after scaling: TINY * 0.5 rounds to an estimate of 0
            err = np.where(e.error == 0, 0.0, np.maximum(e.error * vmax, TINY))
            return Estimate(e.value * vmax, err, e.status, e.lo * vmax, e.hi * vmax, e.method)
    if cplx:
        dirs = np.diag(s) if v is None else (np.min(s[v != 0] / np.abs(v[v != 0])) * v)[None]
        quot = _hess_complex(f, x, s, dirs, ecnoise(f, x, s, dirs))
        est = _run(quot, STEPS if v is not None or n <= BIG_N else SHORT_STEPS,
                   3 if v is not None or n <= BIG_N else 2, limit)
        if np.isfinite(est.value).all() or method == "complex-step":
            H, E = est.value, est.error
            if v is None:
                H, E = H / s[:, None], E / s[:, None]
                H, E = (H + H.T) / 2, np.fmax((E + E.T) / 2, np.abs(H - H.T) / 2)
            else:
                tau = np.min(s[v != 0] / np.abs(v[v != 0]))
                H, E = H[0] / tau, E[0] / tau
            wild = est.wild[0] if v is not None else est.wild | est.wild.T
            H = np.where(wild, np.nan, H)
            st = np.where(wild, "unresolved", np.where(np.isfinite(H), "ok", "undefined")).astype(object)
            E = np.where(wild, np.inf, np.maximum(E, 4 * EPS * np.abs(H) + TINY))
            return Estimate(H, E, st, H, H, "complex-step")
    quot = _hess_real(f, x, s, ecnoise(f, x, s))
    est = _run(quot, STEPS if v is not None or n <= BIG_N else SHORT_STEPS,
               3 if v is not None or n <= BIG_N else 2, limit)
    H, E = est.value, est.error
    grow = est.status
    word = np.where(grow, "infinite", np.where(est.wild, "unresolved", "ok"))
    if v is not None:
        st = np.array([_worst(word[i, v != 0]) for i in range(n)], dtype=object)
        with np.errstate(invalid="ignore"):
            val, err = H[:, v != 0] @ v[v != 0], E[:, v != 0] @ np.abs(v[v != 0])
        val = np.where(st != "ok", np.nan, val)
        return Estimate(val, np.maximum(err, 2 * EPS * np.abs(val) + TINY), st, val, val, "richardson")
    st = word.astype(object)
    with np.errstate(invalid="ignore"):
        H = np.where(grow, np.sign(H) * np.inf, np.where(est.wild, np.nan, H))
    E = np.where(np.isfinite(H), np.maximum(E, 2 * EPS * np.abs(H) + TINY), np.inf)
    st = np.where(np.isnan(H) & (st == "ok"), "undefined", st).astype(object)
    return Estimate(H, E, st, H, H, "richardson")


class _Ladder(NamedTuple):
    value: np.ndarray
    error: np.ndarray
    status: np.ndarray   # bool: the quotients diverge
    wild: np.ndarray     # bool: the quotients never settle (_wild)


class TooLong(Exception):
    """A request whose projected time is beyond the limit: `seconds` is the projection."""

    def __init__(self, seconds, steps):
        super().__init__(f"about {seconds:.0f} s")
        self.seconds, self.steps = seconds, steps


def _run(quot, count=STEPS, order=3, limit=None):
    """Richardson over quot(t) for t = 1/2, 1/4, ..., skipping (coarsely) leading steps where
    no quotient is finite.  With `limit` (seconds), the time of the first step projects the
    whole; beyond the limit it raises TooLong before doing the rest."""
    ds, ns, rs = [], [], []   # quotients, their noise, their rounding alone (no ecnoise floor)
    k = 0
    while len(ds) < count and k < 1100:
        started = time.perf_counter()
        D, N, R = quot(0.5 * 2.0 ** -k)
        if limit is not None and not ds:
            projected = (time.perf_counter() - started) * count
            if projected > limit:
                raise TooLong(projected, count)
        if not ds and not np.isfinite(D).any():
            k += COARSE
            continue
        ds.append(D)
        ns.append(N)
        rs.append(R)
        k += 1
        if len(ds) >= count or np.all(np.isfinite(ds).sum(axis=0) >= count):
            break
    if not ds:
        D = np.asarray(D)
        return _Ladder(np.full(D.shape, np.nan), np.full(D.shape, np.inf), np.zeros(D.shape, bool),
                       np.zeros(D.shape, bool))
    est, err, _ = richardson(ds, ns, order=order)
    grow = _diverges(np.array(ds), np.array(ns))
    return _Ladder(est, err, grow, _wild(np.array(ds), np.array(rs), est, err) & ~grow)


def _shift(x, t, s):
    P, Q = x + np.diag(t * s), x - np.diag(t * s)
    a, b = (np.diag(P) - x) / s, (x - np.diag(Q)) / s
    return P, Q, np.where(a > 0, a, np.nan), np.where(b > 0, b, np.nan)


def _hess_real(f, x, s, floor):
    n, E = len(x), np.eye(len(x))
    i, j = np.triu_indices(n, 1)

    def quot(t):
        P, Q, a, b = _shift(x, t, s)
        head = np.concatenate([x[None], P, Q])
        m = len(i)
        signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)

        def rows(lo, hi):  # x; x +- t e_j; then the four corners of each pair (i, j), lazily
            r = np.arange(lo, hi)
            out = np.empty((len(r), n))
            first = r < len(head)
            out[first] = head[r[first]]
            k = r[~first] - len(head)
            c, q = k // m, k % m
            out[~first] = x
            out[~first, i[q]] += signs[c, 0] * (a * s)[i[q]]
            out[~first, j[q]] += signs[c, 1] * (a * s)[j[q]]
            return out
        F, N = in_chunks(f, len(head) + 4 * m, rows)
        fv, raw = F[:, 0], N[:, 0]
        e = np.maximum(raw, floor[0] if np.ndim(floor) else floor)
        big = float(np.max(np.abs(fv[np.isfinite(fv)]), initial=1.0))
        unit = big if big > 2.0 ** 500 else 1.0   # values near the overflow: work in units of them
        fv, e, raw = fv / unit, e / unit, raw / unit
        w = np.array([b, -(a + b), a]) / (a * b * (a + b) / 2)
        # one division by a step, back to f's units, then the other step: no s^2 and no
        # unit / s^2 that under- or overflows where the Hessian itself does not
        def back(q, si, sj):
            with np.errstate(all="ignore"):
                return ((q / si) * unit) / sj

        def noise(e):
            Nn = np.diag(back(w[0] * e[1:n + 1] - w[1] * e[0] + w[2] * e[n + 1:2 * n + 1], s, s))
            Nn[i, j] = Nn[j, i] = back(e[2 * n + 1:].reshape(4, -1).sum(axis=0) / den, s[i], s[j])
            return Nn
        H = np.diag(back(w[0] * fv[1:n + 1] + w[1] * fv[0] + w[2] * fv[n + 1:2 * n + 1], s, s))
        c, den = fv[2 * n + 1:].reshape(4, -1), 4 * a[i] * a[j]
        H[i, j] = H[j, i] = back((c[0] - c[1] - c[2] + c[3]) / den, s[i], s[j])
        return H, noise(e), noise(raw)
    return quot


def _hess_complex(f, x, s, dirs, floor):
    """Entry (d, j): the central difference along e_j of the complex-step derivative along
    dirs[d] (the Hessian's columns for dirs = diag(s), an HVP for dirs = [v])."""
    def quot(t):
        P, Q, a, b = _shift(x, t, s)
        out, raw = complex_quotients(f, np.concatenate([P, Q]), dirs)
        noise = np.maximum(raw, np.asarray(floor, dtype=float))
        n = len(x)
        return ((out[:n, :, 0] - out[n:, :, 0]).T / (a + b) / s,
                (noise[:n, :, 0] + noise[n:, :, 0]).T / (a + b) / s,
                (raw[:n, :, 0] + raw[n:, :, 0]).T / (a + b) / s)
    return quot


# ---- noisy (low precision) functions ---------------------------------------------------------
def fit_slope(f, x, j, s_j, noise, f0, J=32, P=8, seed=None):
    """d f / d x_j of a noisy f by least squares: a polynomial of degree P (and P + 2, to see
    the truncation) through f at 2J jittered points spread over [-H, H], for the widest
    H = s_j/2, s_j/4, ... where the polynomial fits to the level of f's noise.  Averages the
    rounding that Richardson's smallest steps amplify (float32 code: about ten times less
    noise).  Returns (estimate (m,), error (m,)) or None."""
    eps = getattr(f, "eps", EPS)
    jitter = np.random.default_rng(j if seed is None else seed).uniform(-0.5, 0.5, (J, 2))
    for k in range(6):
        H = 0.5 * 2.0 ** -k * s_j
        offs = np.concatenate([(np.arange(1, J + 1) - 0.5 + jitter[:, 0]) / J,
                               -(np.arange(1, J + 1) - 0.5 + jitter[:, 1]) / J]) * H
        P_ = np.repeat(x[None], len(offs), axis=0)
        P_[:, j] += offs
        P_ = quantize(f, P_)
        Y, _ = f(P_)
        if not np.all(np.isfinite(Y)):
            continue
        u = np.concatenate([(P_[:, j] - x[j]) / H, [0.0]])
        Y = np.concatenate([Y, f0[None]])
        out = []
        for deg in (P, P + 2):
            X = np.vander(u, deg + 1, increasing=True)
            coef, _, rank, _ = np.linalg.lstsq(X, Y, rcond=None)
            if rank < deg + 1:
                return None
            res = Y - X @ coef
            s_res = np.maximum(np.sqrt(np.sum(res ** 2, axis=0) / (len(u) - deg - 1)), 0.3 * eps * np.abs(f0))
            C = np.linalg.inv(X.T @ X)
            out.append((coef[1] / H, np.sqrt(C[1, 1]) * s_res / H, s_res))
        (a, sa, ra), (b, sb, _) = out
        if np.all(ra <= 3 * np.maximum(noise, eps * np.abs(f0))) and np.all(np.abs(a - b) <= 2 * (sa + sb)):
            return a, 2 * sa + np.abs(a - b)
    return None


# ---- Taylor test and random points -----------------------------------------------------------
def taylor_order(fval, x, g, d, s=None, hess=None, eps=EPS, tol=None, sig=0.0):
    """Observed order of |phi(x + h d) - phi(x) - h g.d (- h^2/2 d.H.d)| over h = 2^-2 ..
    2^-30: 2 for a right gradient (3 with the Hessian term), 1 for a wrong one.  `fval(z)`
    returns a float or None outside the domain.  Pairs at rounding level (or at the level
    of `tol`, the components' tolerances times |d|) are left out; the order is the median
    of the finest three that remain, or None when every remainder is at rounding level.
    Returns (order, remainders)."""
    phi0 = fval(x)
    if phi0 is None:
        return None, []
    slope = float(np.dot(g, d))
    curv = 0.0 if hess is None else float(d @ hess @ d)
    allow = 0.0 if tol is None else float(np.abs(tol) @ np.abs(d))
    hs, rem, floor = [], [], []
    for k in range(2, 31):
        h = 2.0 ** -k
        v = fval(x + h * d)
        if v is None:
            if not rem:
                continue
            break
        hs.append(h)
        rem.append(abs(v - phi0 - h * slope - 0.5 * h * h * curv))
        floor.append(8 * sig + 4 * eps * (abs(phi0) + abs(v)) + h * allow + TINY)
    rem, floor = np.array(rem), np.array(floor)
    good = rem > 10 * floor
    orders = [math.log2(rem[i] / rem[i + 1]) for i in range(len(rem) - 1)
              if good[i] and good[i + 1] and rem[i + 1] > 0]
    if not orders:
        return None, rem.tolist()
    return float(np.median(orders[-3:])), rem.tolist()


def random_points(x0, count, seed=0, box=None, inside=None, tries=50):
    """Points near x0 (each coordinate moved by up to half its magnitude, or 0.5 at 0) or
    uniform in box (lo, hi), kept when inside(x) is true; yields (x, None) or (None,
    reason) for a draw that found no point inside."""
    rng = np.random.default_rng(seed)
    x0 = np.asarray(x0, dtype=float)
    scale = np.where(np.abs(x0) > 0, np.abs(x0), 1.0)
    for _ in range(count):
        for _ in range(tries):
            if box is not None:  # lo (1 - u) + hi u: no overflow for a box of +-1e308
                u = rng.uniform(0.0, 1.0, x0.shape)
                x = box[0] * (1 - u) + box[1] * u
            else:
                x = x0 + rng.uniform(-0.5, 0.5, x0.shape) * scale
            if not np.all(np.isfinite(x)):
                continue
            if inside is None or inside(x):
                yield x, None
                break
        else:
            yield None, "no point inside the domain was found"
