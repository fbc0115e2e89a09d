"""The check at one point: the user's gradient against the numerical core's reference.

The reference is `adcalc.numdiff` applied to the user's black box: Richardson-extrapolated
differences (per-component steps, domain search, one-sided stencils, kink/jump/
infinite-slope detection) always, complex step where f takes complex input, gives a
complex result and agrees with the differences (code that is not complex-analytic: abs,
max, a cast to real, is caught that way), and for float32 code a least-squares fit over
many steps.

Tolerance of a component: atol + rtol |ref| + 3 x (reference error) + 6 x (measured noise
of the user's gradient); rtol defaults to 64 eps of the gradient's precision, at least
1e-8 with differences and 1e-10 with complex step; atol to eps^1.5 x the largest |ref|.
At a kink the user's value is judged against [left slope, right slope] widened by the
tolerance.  Statuses: ok, mismatch, kink, not finite (the reference is infinite or no
step fits inside the domain: nothing to compare).
"""
import numpy as np

from adcalc import numdiff
from adcalc.check.precision import EPS64, dtype_of, eps_of, judge_precisions
from adcalc.check.usercode import CheckError, UserCodeError, short
from adcalc.errors import DomainError


class CheckDomainError(DomainError, ValueError):
    """The function is not finite (or raises) at the point asked for."""


class Row:
    """One component: the user's value, the reference, |difference|, tolerance, status."""

    __slots__ = ("name", "value", "reference", "abs_diff", "tolerance", "error", "status", "note")

    def __init__(self, name, value, reference, abs_diff, tolerance, error, status, note=None):
        self.name, self.value, self.reference = name, value, reference
        self.abs_diff, self.tolerance, self.error = abs_diff, tolerance, error
        self.status, self.note = status, note

    def __iter__(self):  # (name, user value, reference, abs diff, tolerance, status)
        return iter((self.name, self.value, self.reference, self.abs_diff, self.tolerance, self.status))

    def __repr__(self):
        return (f"Row({self.name!r}, value={self.value!r}, reference={self.reference!r}, "
                f"abs_diff={self.abs_diff!r}, tolerance={self.tolerance!r}, status={self.status!r})")

    def as_dict(self):
        return {"name": self.name, "value": self.value, "reference": self.reference,
                "abs_diff": self.abs_diff, "tolerance": self.tolerance,
                "reference_error": self.error, "status": self.status, "note": self.note}


class CallableBox:
    """The user's f as the core's black box, at the precision it computes in."""

    def __init__(self, F, shape, m, prec, f0):
        self.F, self.shape, self.m, self.prec, self.f0 = F, shape, m, prec, f0
        self.n = int(np.prod(shape)) if shape else 1
        self.eps = eps_of(prec)
        self.sig = np.zeros(m)
        self._reason = {}

    def quantize(self, P):
        return P if self.prec == np.float64 else np.asarray(P).astype(self.prec).astype(float)

    def _one(self, p, cplx):
        try:
            out = self.F((p if cplx else p.astype(self.prec)).reshape(self.shape))
        except UserCodeError as e:
            if "time limit" in str(e):
                raise
            return None
        out = np.asarray(out).ravel()
        if out.size != self.m or (out.dtype.kind == "c") != cplx:
            return None
        return out

    def __call__(self, P, cplx=False):
        P = np.asarray(P)
        F = np.full((len(P), self.m), np.nan)
        for i, p in enumerate(P):
            out = self._one(p, cplx)
            if out is not None:
                v = np.imag(out) if cplx else out.astype(float)
                if np.all(np.isfinite(out)):
                    F[i] = v
        noise = numdiff.NOISE * self.eps * np.abs(F) + (0 if cplx else self.sig) + numdiff.TINY
        return F, np.broadcast_to(noise, F.shape).copy()

    def complex_reason(self, x):
        if self.prec != np.float64:
            return f"f computes in {np.dtype(self.prec).name}"
        key = x.tobytes()
        if key not in self._reason:
            self._reason[key] = self._probe(x)
        return self._reason[key]

    def _probe(self, x):
        z = x.astype(complex)
        z[0] += 1j * numdiff.CSTEP * max(abs(x[0]), 1.0)
        try:
            r = self.F(z.reshape(self.shape))
        except UserCodeError as e:
            if "time limit" in str(e):
                raise
            return f"f does not accept complex input ({type(e.original).__name__}: {e.original})"
        except CheckError as e:
            return f"f does not give a complex result ({e})"
        r = np.asarray(r)
        if r.dtype.kind != "c":
            return "f returns a real result for complex input (a cast to real, abs, ...)"
        r = r.ravel()
        if r.size != self.m or not np.all(np.isfinite(r)):
            return "f is not finite for complex input"
        if np.any(np.abs(r.real - self.f0) > 1e-6 * np.maximum(np.abs(self.f0), 1e-300) + 1e-300):
            return "f's real part changes under a complex step (not complex-analytic)"
        return None


class _GradBox:
    """The user's gradient code as a black box, to measure its own rounding noise."""

    def __init__(self, G, shape, size, in_dt):
        self.G, self.shape, self.m, self.in_dt = G, shape, size, in_dt

    def __call__(self, P, cplx=False):
        out = np.full((len(P), self.m), np.nan)
        for i, p in enumerate(P):
            try:
                g = np.asarray(self.G(p.astype(self.in_dt).reshape(self.shape)))
            except UserCodeError as e:
                if "time limit" in str(e):
                    raise
                continue
            if g.size == self.m and g.dtype.kind != "c":
                out[i] = g.astype(float).ravel()
        return out, np.zeros_like(out)


def component_names(given, shape, m, jacobian, out_shape):
    n = int(np.prod(shape)) if shape else 1
    if given is not None:
        ins = [str(v) for v in given]
        if len(ins) != n:
            raise CheckError(f"names: {len(ins)} names for {n} components")
    elif len(shape) == 0:
        ins = ["x"]
    else:
        ins = [f"x[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]
    if not jacobian:
        return ins
    outs = ["f"] if not out_shape else [f"f[{','.join(map(str, i))}]" for i in np.ndindex(*out_shape)]
    return [f"{r}/{c}" for r in outs for c in ins]


def _shapes(F, G, xu, o):
    f0 = F(xu)
    if f0.dtype.kind == "c":
        raise CheckError(f"{F.label} returned a complex value for real input: {short(f0)}")
    shape, n, m = xu.shape, xu.size, f0.size
    if not o["jacobian"] and m != 1:
        raise CheckError(f"{F.label} returned an array of shape {list(f0.shape)}, not a scalar; for a "
                         f"vector-valued function check its Jacobian ({'--jacobian' if o['cli'] else 'jacobian=True'})")
    if m == 0:
        raise CheckError(f"{F.label} returned an empty array")
    if not np.all(np.isfinite(f0.astype(float))):
        raise CheckDomainError(f"{F.label} is not finite at x={short(xu)}: it returned {short(f0)}")
    g0 = G(xu)
    if g0.dtype.kind == "c":
        raise CheckError(f"{G.label} returned complex values for real input")
    what = "Jacobian" if o["jacobian"] else "gradient"
    ok_shapes = [shape, (n,)] if not o["jacobian"] else [(m, n), tuple(f0.shape) + tuple(shape)]
    if o["jacobian"] and m == 1:
        ok_shapes += [shape, (n,)]
    if tuple(g0.shape) not in [tuple(s) for s in ok_shapes]:
        want = " or ".join(str(list(s)) for s in dict.fromkeys(tuple(s) for s in ok_shapes))
        raise CheckError(f"{G.label} returned an array of shape {list(g0.shape)}; the {what} should have "
                         f"shape {want} (x has shape {list(shape)}" + (f", f has {m} outputs)" if o["jacobian"] else ")"))
    return f0, g0, what


def check_point(F, G, xu, o):
    """The verdict at one point x (the user's array): a dict of CheckResult fields."""
    shape, n = xu.shape, xu.size
    x64 = xu.astype(np.float64).ravel()
    f0, g0, what = _shapes(F, G, xu, o)
    m = f0.size
    g = g0.astype(float).reshape(m, n)
    names = component_names(o["names"], shape, m, o["jacobian"], f0.shape)
    prec, eps_g, f64, warnings = judge_precisions(F, xu, f0, g0, what)
    eps_f = eps_of(prec)
    base = (f64 if f64 is not None else f0).astype(float).ravel()
    x64 = x64.astype(prec).astype(np.float64)  # the point as f sees it
    box = CallableBox(F, shape, m, prec, base)
    s = numdiff.nominal_scale(x64)
    sig_f = numdiff.ecnoise(box, x64, s)
    box.sig = np.maximum(sig_f, eps_f * np.abs(base))
    sig_g = numdiff.ecnoise(_GradBox(G, shape, m * n, xu.dtype), x64, s).reshape(m, n)

    fd = numdiff.first_derivatives(box, x64, "richardson")
    ref, ref_err, fst = fd.value.copy(), fd.error.copy(), fd.status
    method, cs_reason = "richardson", None
    smooth = fst == "ok"
    if o["method"] in ("auto", "complex-step"):
        cs_reason = box.complex_reason(x64)
        if cs_reason is None:
            cs = numdiff.first_derivatives(box, x64, "complex-step")
            gap = np.abs(cs.value - fd.value)
            allowed = 3 * fd.error + 1e-8 * np.abs(fd.value) + cs.error
            bad = smooth & ~(gap <= allowed)
            if bad.any():
                i, j = np.unravel_index(int(np.argmax(np.where(bad, gap / np.maximum(allowed, 1e-300), -1))),
                                        bad.shape)
                cs_reason = (f"complex step disagrees with finite differences at {names[i * n + j]} "
                             f"({_num(cs.value[i, j])} vs {_num(fd.value[i, j])}): f is not "
                             f"complex-analytic (abs, max, a cast to real, ...)")
            else:
                method = "complex-step"
                ref = np.where(smooth, cs.value, ref)
                ref_err = np.where(smooth, np.maximum(cs.error, np.minimum(gap, fd.error)), ref_err)
        if o["method"] == "complex-step" and method != "complex-step":
            raise CheckError(f"complex step cannot be used here: {cs_reason}")
        if cs_reason and o["method"] == "auto" and prec == np.float64:
            warnings.append(f"complex step not used: {cs_reason}")
    if eps_f != EPS64:  # noisy (low precision) f: a least-squares fit averages the noise
        for j in range(n):
            if not smooth[:, j].all():
                continue
            fit = numdiff.fit_slope(box, x64, j, s[j], box.sig, base)
            if fit is not None:
                a1, e1 = fit
                agree = np.abs(a1 - ref[:, j]) <= ref_err[:, j] + e1
                ref[:, j] = np.where(agree, a1, ref[:, j])
                ref_err[:, j] = np.where(agree, np.minimum(e1, ref_err[:, j]), ref_err[:, j])
    return _verdicts(o, g, ref, ref_err, fd, sig_g, eps_g, method, names, warnings, m, n, x64, box,
                     base, s, dict(point=xu.copy(), value=f0, differenced_in=np.dtype(prec).name,
                                   complex_step_reason=cs_reason, names=names))


def _verdicts(o, g, ref, ref_err, fd, sig_g, eps_g, method, names, warnings, m, n, x64, box, base, s, extra):
    fin = np.isfinite(ref)
    rowscale = np.max(np.where(fin, np.abs(ref), 0.0), axis=1, keepdims=True)
    floor = 1e-10 if method == "complex-step" else 1e-8
    rtol = o["rtol"] if o["rtol"] is not None else max(64 * eps_g, floor if eps_g == EPS64 else 0.0)
    atol = o["atol"] if o["atol"] is not None else eps_g ** 1.5 * rowscale
    kink = np.isin(fd.status, ("kink", "jump"))
    with np.errstate(invalid="ignore", over="ignore"):
        # at a kink the reference's error is half the gap between the slopes: judged by the
        # interval [lo, hi] itself, widened by the rest of the tolerance
        own = np.where(kink, np.maximum(fd.error - np.abs(fd.hi - fd.lo) / 2, 0.0), ref_err)
        tol = atol + rtol * np.abs(np.where(fin, ref, 0.0)) + 3 * np.where(fin, own, 0.0) + 6 * sig_g
        tol = np.where(np.isfinite(tol), tol, np.inf)
        diff = np.abs(g - ref)
        diff = np.where((g == ref) | (np.isnan(g) & np.isnan(ref)), 0.0, diff)
        status = np.where(diff <= tol, "ok", "mismatch").astype(object)
        in_sub = (g >= fd.lo - tol) & (g <= fd.hi + tol)
        status = np.where(kink, np.where(in_sub | (fd.status == "jump"), "kink", "mismatch"), status)
        blind = ~kink & ~fin
        status = np.where(blind, "not finite", status)
        shaky = (status == "ok") & (ref_err > 0.1 * np.abs(ref)) & (ref_err > atol) & (ref_err > 1e-3 * rowscale)
    notes = np.full((m, n), None, dtype=object)
    for i, j in zip(*np.nonzero(kink)):
        notes[i, j] = ("kink: f jumps here" if fd.status[i, j] == "jump" else
                       f"kink: one-sided slopes {_num(fd.lo[i, j])} and {_num(fd.hi[i, j])}")
    for i, j in zip(*np.nonzero(shaky)):
        notes[i, j] = "reference uncertain (differences do not converge well here)"
    for i, j in zip(*np.nonzero(blind)):
        notes[i, j] = ("the slope of f grows without bound here" if fd.status[i, j] == "infinite"
                       else "f varies faster than the difference steps can follow here"
                       if fd.status[i, j] == "unresolved"
                       else "no difference quotient: every step leaves the domain of f")
    if blind.any():
        warnings.append(f"{int(blind.sum())} component(s) could not be checked: the reference is not "
                        f"finite there (an infinite slope, f varying faster than the steps, or every step "
                        f"leaves the domain of f)")
    if shaky.any():
        warnings.append(f"{int(shaky.sum())} component(s) could not be checked tightly: the differences "
                        f"do not converge well there (noise or a kink near x)")
    if kink.any():
        k = [names[i * n + j] for i, j in zip(*np.nonzero(kink))]
        warnings.append(f"f is not differentiable at this point in {', '.join(k[:6])}"
                        f"{' ...' if len(k) > 6 else ''}: judged against the one-sided slopes")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / np.maximum(tol, 1e-300))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ratio = np.where((status == "kink") | (status == "not finite"), 0.0, ratio)
    bad = status == "mismatch"
    k = int(np.argmax(np.where(bad, np.inf, ratio)) if bad.any() else np.argmax(ratio))
    rows = [Row(names[q], float(g.flat[q]), float(ref.flat[q]), float(diff.flat[q]), float(tol.flat[q]),
                float(ref_err.flat[q]), str(status.flat[q]), notes.flat[q]) for q in range(m * n)]
    worst_row = rows[k] if (ratio.flat[k] > 0 or bad.any()) else None
    t_order, t_status, t_rem = None, "n/a", None
    if o["taylor"]:
        rng = np.random.default_rng(o["seed"])
        d = rng.standard_normal(x64.size) * s
        u = np.ones(m) if m == 1 else rng.standard_normal(m)

        def fval(z):
            v, _ = box(z[None])
            return None if not np.all(np.isfinite(v)) else float(u @ v[0])
        sig = float(np.sqrt((u ** 2) @ (box.sig ** 2)))
        t_order, t_rem = numdiff.taylor_order(fval, x64, u @ g, d, eps=box.eps,
                                              tol=np.abs(u) @ np.where(np.isfinite(tol), tol, 0.0), sig=sig)
        if kink.any():
            t_status = "n/a (kink)"
        elif t_order is None:
            t_status = "n/a (remainder at rounding level)"
        else:
            t_status = "ok" if t_order >= 1.7 else ("suspect" if t_order <= 1.3 else "unclear")
        if not bad.any() and t_status == "suspect":
            warnings.append(f"the Taylor test shows order {t_order:.2f} (expected 2) although every "
                            f"component is within tolerance")
    jac = o["jacobian"]
    return dict(ok=not bad.any(), rows=rows, worst=worst_row.name if worst_row else None, worst_row=worst_row,
                taylor_order=t_order, taylor_status=t_status, taylor_remainders=t_rem, method=method,
                dtype=np.dtype(dtype_of(eps_g)).name, warnings=warnings, gradient=g if jac else g[0],
                reference=ref if jac else ref[0], reference_error=ref_err if jac else ref_err[0],
                tolerance=tol if jac else tol[0], jacobian=bool(jac), points=1, failed_points=[],
                _ratio=float(np.max(np.where(bad, np.inf, ratio))), **extra)


def _num(v):
    if v is None:
        return "null"
    v = float(v)
    return str(v) if not np.isfinite(v) else f"{v:.6g}"
