"""Check a user's own gradient (or Jacobian) code against numerical differentiation.

Python API (for test suites; a pytest test is one line)::

    import adcalc
    adcalc.assert_grad(f, grad, x)            # AssertionError with the table if wrong
    r = adcalc.check_grad(f, grad, x)         # r.ok, r.rows, r.worst, r.table(), ...

Command line::

    adcalc check MODULE:FUNC --grad MODULE:GRADFUNC (--at P | --random N [--seed S])

How the verdict is reached, component by component:

* The reference is the numeric engine's method, applied to the user's black-box
  function: central differences along each input at steps 0.5, 0.25, ... times that
  input's own scale (|x_i|, or 1 at 0), extrapolated (Richardson, via
  `adcalc.engines.numeric.richardson`) with an error estimate per component.  Per
  component steps make badly scaled inputs (1e-6 next to 1e6) no harder than
  x ~ 1; the long ladder of steps shrinks past a nearby kink instead of stepping
  across it.  Where f accepts complex input and returns a complex result, complex
  step (exact to rounding) is the reference, but only where it agrees with the
  differences: code that is not complex-analytic (abs, max, a cast to real) is
  caught that way and differenced instead, with the reason in the warnings.
  For a function that computes in float32 the estimate is refined by a least-squares
  polynomial fit through f at 64 jittered steps, which averages the rounding noise
  that Richardson's smallest steps amplify (about ten times less noise).
* Precision: the function's rounding noise is measured (More and Wild's ECnoise: high
  order differences on a tiny stencil), not assumed, and so is the noise of the
  user's gradient code.  A float32 function is differenced in float64 when it
  accepts float64 input and really computes in float64; otherwise at its own
  precision, with its measured noise in the error estimate.  Gradients computed in
  float32 (or float64 values that are exactly float32 numbers) get float32 rounding
  allowances.
* Tolerance of a component: atol + rtol |ref| + 3 x (reference error estimate) +
  6 x (measured noise of the user's gradient).  rtol defaults to 64 eps of the
  gradient's precision, at least 1e-8 when the reference is finite differences and
  1e-10 with complex step; atol defaults to eps**1.5 x the largest component.  A
  float64 component wrong by a relative 1e-4 is far outside this.
* Kinks: where the one-sided slopes at the smallest steps still differ by a jump
  (relu at 0, a max tie) the component is judged against the subdifferential
  [left slope, right slope] and marked `kink`, never a false `mismatch`.
* Taylor test (step-free): the remainder |f(x+hd) - f(x) - h g.d| over a ladder
  of h must shrink like h^2; the observed order is shown (a wrong gradient gives 1).
"""
import math
import os
import sys
import warnings as _warnings

import click

from adcalc.errors import AdcalcError, DomainError, InputError

EPS64 = 2.0 ** -52
EPS32 = 2.0 ** -23
EPS16 = 2.0 ** -10
CSTEP = 2.0 ** -66          # complex step, relative to the component's scale
LADDER = {EPS64: 30, EPS32: 20, EPS16: 12}  # number of difference steps by precision
MAX_SKIP = 40               # leading steps that leave the domain are skipped, at most this many


class CheckError(InputError, ValueError):
    """Bad input to check_grad: shapes, types, a function that cannot be called."""


class CheckDomainError(DomainError, ValueError):
    """The function is not finite (or raises) at the point asked for."""


class UserCodeError(CheckError):
    """The user's function raised; `original` is the exception it raised."""

    def __init__(self, message, original):
        super().__init__(message)
        self.original = original


# ---- results -----------------------------------------------------------------------------
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


class CheckResult:
    """The outcome of check_grad.  Truthy when the gradient agrees.

    Attributes: ok, rows (also `components`: Row objects, iterable as (name, user
    value, reference, abs diff, tolerance, status)), worst (name of the component
    with the largest difference/tolerance), worst_row, taylor_order, taylor_status,
    method ('complex-step' or 'richardson'), dtype (precision judged: 'float64',
    'float32', ...), warnings, point, value (f at the point), gradient (the user's,
    flat or (m, n)), reference, reference_error, tolerance, points (how many
    points were checked), failed_points.  `table()` gives the text table.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    components = property(lambda self: self.rows)

    def __bool__(self):
        return bool(self.ok)

    def __repr__(self):
        return (f"<CheckResult ok={self.ok} worst={self.worst!r} method={self.method!r} "
                f"dtype={self.dtype!r} taylor_order={_ofmt(self.taylor_order)}>")

    @property
    def mismatches(self):
        return [r for r in self.rows if r.status == "mismatch"]

    def table(self, digits=None, max_rows=60):
        import io
        buf = io.StringIO()
        _render(self, buf, digits, max_rows)
        return buf.getvalue()

    __str__ = table

    def as_dict(self):
        return {"ok": self.ok, "method": self.method, "dtype": self.dtype,
                "point": _tolist(self.point), "points": self.points,
                "components": [r.as_dict() for r in self.rows], "worst": self.worst,
                "taylor_order": self.taylor_order, "taylor_status": self.taylor_status,
                "warnings": list(self.warnings)}


# ---- public API --------------------------------------------------------------------------
def check_grad(f, grad, x, *, rtol=None, atol=None, jacobian=False, seed=0, random=None,
               method="auto", taylor=True, names=None, points=None, _cli=False, _labels=("f", "grad")):
    """Compare `grad(x)` (the user's gradient of the scalar function `f`, or with
    jacobian=True the (m, n) Jacobian of a vector-valued f) with numerical
    differentiation at x; returns a CheckResult (truthy when they agree).

    x: the point (any shape; names are x[i], x[i,j]; a float32 x means float32
    code).  rtol/atol: replace the automatic rounding allowances (the reference's
    own error estimate is always added).  random=N: check N random points around x
    (each coordinate moved by up to half its magnitude, or 0.5 at 0) drawn with
    `seed`; the result is the worst point's.  method: 'auto', 'complex-step' or
    'richardson'.  names: component names of x (a list of n strings).
    Exceptions raised by f or grad at the point propagate unchanged.
    """
    import numpy as np
    try:
        F = _Fn(f, _labels[0])
        G = _Fn(grad, _labels[1])
        x0 = _as_point(x)
        if method not in ("auto", "complex-step", "richardson"):
            raise CheckError(f"method must be 'auto', 'complex-step' or 'richardson', not {method!r}")
        for nm, v in (("rtol", rtol), ("atol", atol)):
            if v is not None and not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise CheckError(f"{nm} must be a finite number >= 0, not {v!r}")
        opts = dict(rtol=rtol, atol=atol, jacobian=jacobian, method=method, taylor=taylor,
                    names=names, seed=seed, cli=_cli)
        if points is not None:
            xs = [_as_point(p).astype(x0.dtype) for p in points]
        elif random:
            xs = list(_random_points(x0, int(random), seed))
        else:
            xs = [x0]
        many = len(xs) > 1 or bool(random)
        results, skipped = [], []
        with np.errstate(all="ignore"), _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            for xp in xs:
                try:
                    results.append(_check_point(F, G, xp, opts))
                except (UserCodeError, CheckDomainError) as e:
                    if not many:
                        raise
                    skipped.append(f"skipped the point {_short(xp)}: {e}")
        if not results:
            raise CheckDomainError("no point could be checked: " + (skipped[0] if skipped else "none drawn"))
        res = max(results, key=lambda r: (not r.ok, r._ratio))
        res.points = len(results)
        res.failed_points = [r.point for r in results if not r.ok]
        res.warnings = skipped + res.warnings
        if len(results) > 1:
            res.warnings.insert(0, f"{len(results)} points checked; {len(res.failed_points)} failed; "
                                   f"shown: the worst, at x={_short(res.point)}")
        res.ok = not res.failed_points
        return res
    except UserCodeError as e:
        if _cli:
            raise
        raise e.original.with_traceback(e.original.__traceback__) from None
    except AdcalcError as e:
        if _cli or isinstance(e, ValueError):
            raise
        raise CheckError(str(e)) from None


def assert_grad(f, grad, x, **kw):
    """Raise AssertionError, whose message is the check's table, unless grad agrees
    with numerical differentiation of f at x (see check_grad); returns the result."""
    __tracebackhide__ = True  # noqa: F841  (pytest shows the caller's line)
    res = check_grad(f, grad, x, **kw)
    if not res.ok:
        raise AssertionError("gradient check failed\n" + res.table())
    return res


# ---- user callables ----------------------------------------------------------------------
class _Fn:
    """A user callable; call(x) -> a numpy array, exceptions wrapped in UserCodeError."""

    def __init__(self, fn, label):
        if not callable(fn):
            raise CheckError(f"{label} must be callable, not {type(fn).__name__}")
        self.fn, self.label = fn, label
        self.calls = 0

    def __call__(self, x):
        import numpy as np
        self.calls += 1
        try:
            out = self.fn(x)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001  (anything the user's code raises)
            raise UserCodeError(f"{self.label} raised {type(e).__name__}: {e} at x={_short(x)}", e) from e
        try:
            arr = np.asarray(out)
            if arr.dtype == object:
                arr = arr.astype(complex if any(isinstance(v, complex) for v in arr.ravel()) else float)
        except (TypeError, ValueError) as e:
            raise CheckError(f"{self.label} returned {type(out).__name__}, which is not a number "
                             f"or an array of numbers ({e})") from None
        if arr.dtype.kind not in "fciub":
            raise CheckError(f"{self.label} returned an array of {arr.dtype}, not numbers")
        return arr


def _as_point(x):
    import numpy as np
    try:
        a = np.asarray(x)
    except Exception as e:  # noqa: BLE001
        raise CheckError(f"x is not an array of numbers ({e})") from None
    if a.dtype.kind in "iub":
        a = a.astype(float)
    if a.dtype.kind != "f":
        raise CheckError(f"x must be an array of real numbers, not {a.dtype}")
    if a.dtype.itemsize > 8:
        a = a.astype(np.float64)
    if a.size == 0:
        raise CheckError("x is empty")
    if not np.all(np.isfinite(a)):
        raise CheckError(f"x is not finite: {_short(a)}")
    return a


def _random_points(x0, n, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    s = _scale(x0.astype(float))
    for _ in range(n):
        yield (x0.astype(float) + rng.uniform(-0.5, 0.5, x0.shape) * s.reshape(x0.shape)).astype(x0.dtype)


# ---- the check at one point --------------------------------------------------------------
def _eps(dt):
    import numpy as np
    dt = np.dtype(dt)
    if dt.kind == "c":
        dt = np.dtype(f"f{dt.itemsize // 2}")
    if dt.kind != "f":
        return EPS64
    return float(np.finfo(dt).eps) if dt.itemsize <= 8 else EPS64


def _scale(x64):
    import numpy as np
    a = np.abs(np.asarray(x64, dtype=float)).ravel()
    return np.where(a > 0, a, 1.0)


def _looks_float32(a):
    """True when float64 values are all exact float32 numbers and some of them use
    more than 16 significant bits (a float64 computation almost never gives that)."""
    import numpy as np
    a = np.asarray(a, dtype=float).ravel()
    a = a[np.isfinite(a) & (a != 0)]
    if a.size == 0 or np.any(np.abs(a) > 3e38) or np.any(np.abs(a) < 1.2e-38):
        return False
    if not np.all(a.astype(np.float32).astype(float) == a):
        return False
    m, _ = np.frexp(a)
    return bool(np.any(m * 2.0 ** 16 != np.round(m * 2.0 ** 16)))


def _check_point(F, G, xu, o):
    import numpy as np
    warnings = []
    shape, n = xu.shape, xu.size
    x64 = xu.astype(np.float64).ravel()
    in_dt = xu.dtype

    # -- the function and the user's gradient at the point, shapes ---------------------------
    f0 = F(xu)
    if f0.dtype.kind == "c":
        raise CheckError(f"{F.label} returned a complex value for real input: {_short(f0)}")
    out_shape = f0.shape
    m = f0.size
    if not o["jacobian"] and m != 1:
        raise CheckError(f"{F.label} returned an array of shape {list(out_shape)}, not a scalar; "
                         f"for a vector-valued function check its Jacobian "
                         f"({'--jacobian' if o['cli'] else 'jacobian=True'})")
    if m == 0:
        raise CheckError(f"{F.label} returned an empty array")
    if not np.all(np.isfinite(f0.astype(float))):
        raise CheckDomainError(f"{F.label} is not finite at x={_short(xu)}: it returned {_short(f0)}")
    g0 = G(xu)
    if g0.dtype.kind == "c":
        raise CheckError(f"{G.label} returned complex values for real input")
    what = "Jacobian" if o["jacobian"] else "gradient"
    ok_shapes = [shape, (n,)] if not o["jacobian"] else [(m, n), tuple(out_shape) + tuple(shape)]
    if o["jacobian"] and m == 1:
        ok_shapes += [shape, (n,)]
    if tuple(g0.shape) not in [tuple(s) for s in ok_shapes]:
        want = " or ".join(str(list(s)) for s in dict.fromkeys(tuple(s) for s in ok_shapes))
        raise CheckError(f"{G.label} returned an array of shape {list(g0.shape)}; the {what} should have shape {want} "
                         f"(x has shape {list(shape)}" + (f", f has {m} outputs)" if o["jacobian"] else ")"))
    g = g0.astype(float).reshape(m, n)
    names = _names(o["names"], shape, m, o["jacobian"], out_shape)

    # -- precisions -----------------------------------------------------------------------------
    eps_g = max(_eps(in_dt), _eps(f0.dtype), _eps(g0.dtype))
    if eps_g == EPS64 and _looks_float32(g0):
        eps_g = EPS32
        warnings.append(f"the {what} values are exact float32 numbers: judged as float32 code")
    prec, f64 = None, None
    if in_dt == np.float64:
        if f0.dtype.kind == "f" and f0.dtype.itemsize < 8:
            prec = f0.dtype.type
        elif _looks_float32(f0):
            prec = np.float32
            warnings.append("f returns exact float32 numbers: differenced as float32 code")
        else:
            prec = np.float64
    else:
        try:
            f64 = F(x64.reshape(shape))
        except UserCodeError:
            f64 = None
        if (f64 is not None and f64.dtype == np.float64 and f64.shape == f0.shape
                and np.all(np.isfinite(f64)) and not _looks_float32(f64)):
            prec = np.float64
            warnings.append(f"f accepts float64 input and computes in float64: differenced in float64 "
                            f"(the {what} is judged with {np.dtype(_dt_of(eps_g)).name} tolerances)")
        else:
            prec = np.dtype(in_dt).type if f0.dtype.itemsize >= np.dtype(in_dt).itemsize else f0.dtype.type
    eps_f = _eps(prec)
    eps_g = max(eps_g, eps_f) if prec != np.float64 else eps_g
    rng = np.random.default_rng(o["seed"])

    def fval(z64):
        """f at a float64 point rounded to the precision f computes in; None outside the domain."""
        try:
            out = F(z64.astype(prec).reshape(shape))
        except UserCodeError:
            return None
        out = np.asarray(out).ravel()
        if out.size != m or out.dtype.kind == "c":
            return None
        out = out.astype(float)
        return out if np.all(np.isfinite(out)) else None

    base = (f64 if prec == np.float64 and f64 is not None else f0).astype(float).ravel()
    x64 = x64.astype(prec).astype(np.float64)  # the point as f sees it
    s = _scale(x64)

    # -- noise of f and of the user's gradient (measured) ------------------------------------
    sig_f = _ecnoise(fval, x64, s, eps_f, rng, (m,))
    sig_f = np.maximum(sig_f, eps_f * np.abs(base))

    def gval(z64):
        try:
            out = G(z64.astype(in_dt).reshape(shape))
        except UserCodeError:
            return None
        out = np.asarray(out)
        if out.size != m * n or out.dtype.kind == "c":
            return None
        out = out.astype(float).reshape(m * n)
        return out if np.all(np.isfinite(out)) else None

    sig_g = _ecnoise(gval, x64, s, _eps(in_dt), rng, (m * n,)).reshape(m, n)

    # -- reference: differences (always), complex step where it works ------------------------
    fd, fd_err, kink = _differences(fval, x64, s, base, sig_f, eps_f, n, m)
    method, ref, ref_err = "richardson", fd, fd_err
    cs_reason = None
    if o["method"] in ("auto", "complex-step"):
        if prec != np.float64:
            cs_reason = f"f computes in {np.dtype(prec).name}"
        else:
            cs, cs_reason = _complex_step(F, x64, s, shape, base, n, m)
            if cs is not None:
                cs_err = 16 * EPS64 * np.abs(cs) + 4 * EPS64 * np.max(np.abs(cs), axis=1, keepdims=True)
                gap = np.abs(cs - fd)
                smooth = ~kink["at"]
                allowed = 3 * fd_err + 1e-8 * np.abs(fd) + cs_err
                bad = smooth & ~(gap <= allowed)
                if bad.any():
                    i, j = np.unravel_index(int(np.argmax(np.where(bad, gap / np.maximum(allowed, 1e-300), -1))), bad.shape)
                    cs_reason = (f"complex step disagrees with finite differences at {names[i * n + j]} "
                                 f"({_num(cs[i, j])} vs {_num(fd[i, j])}): f is not complex-analytic "
                                 f"(abs, max, a cast to real, ...)")
                else:
                    method = "complex-step"
                    ref = np.where(smooth, cs, fd)
                    # where complex step and differences differ within the differences' error,
                    # complex step's error is at least that difference
                    ref_err = np.where(smooth, np.maximum(cs_err, np.minimum(gap, fd_err)), fd_err)
        if o["method"] == "complex-step" and method != "complex-step":
            raise CheckError(f"complex step cannot be used here: {cs_reason}")
        if cs_reason and o["method"] == "auto" and prec == np.float64:
            warnings.append(f"complex step not used: {cs_reason}")

    # -- tolerances and verdicts --------------------------------------------------------------
    rowscale = np.max(np.abs(ref), axis=1, keepdims=True)
    floor = 1e-10 if method == "complex-step" else 1e-8
    rtol = o["rtol"] if o["rtol"] is not None else max(64 * eps_g, floor if eps_g == EPS64 else 0.0)
    atol = o["atol"] if o["atol"] is not None else eps_g ** 1.5 * rowscale
    tol = atol + rtol * np.abs(ref) + 3 * ref_err + 6 * sig_g
    with np.errstate(invalid="ignore"):
        diff = np.abs(g - ref)
        same = (g == ref) | (np.isnan(g) & np.isnan(ref))
        diff = np.where(same, 0.0, diff)
        status = np.where(diff <= tol, "ok", "mismatch").astype(object)
        # at a kink: any value between the one-sided slopes (widened by the tolerance) is fine
        lo, hi = kink["lo"], kink["hi"]
        in_sub = (g >= lo - tol) & (g <= hi + tol)
        status = np.where(kink["at"], np.where(in_sub, "kink", "mismatch"), status)
        # no difference quotient at all (every step leaves f's domain): nothing to judge by
        blind = np.isnan(ref) & ~np.isnan(g)
        status = np.where(blind, "unverified", status)
        shaky = (status == "ok") & (ref_err > 0.1 * np.abs(ref)) & (ref_err > atol) & (ref_err > 1e-3 * rowscale)
    notes = np.full((m, n), None, dtype=object)
    for i, j in zip(*np.nonzero(kink["at"])):
        notes[i, j] = f"kink: one-sided slopes {_num(lo[i, j])} and {_num(hi[i, j])}"
    for i, j in zip(*np.nonzero(shaky)):
        notes[i, j] = "reference uncertain (differences do not converge well here)"
    for i, j in zip(*np.nonzero(blind)):
        notes[i, j] = "no difference quotient: every step leaves the domain of f"
    if blind.any():
        warnings.append(f"{int(blind.sum())} component(s) could not be checked: every step from x "
                        f"along them leaves the domain of f")
    if shaky.any():
        warnings.append(f"{int(shaky.sum())} component(s) could not be checked tightly: the differences "
                        f"do not converge well there (noise or a kink near x)")
    if kink["at"].any():
        k = [names[i * n + j] for i, j in zip(*np.nonzero(kink["at"]))]
        warnings.append(f"f is not differentiable at this point in {', '.join(k[:6])}"
                        f"{' ...' if len(k) > 6 else ''}: judged against the one-sided slopes")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / np.maximum(tol, 1e-300))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ratio = np.where((status == "kink") | (status == "unverified"), 0.0, ratio)
    bad = status == "mismatch"
    k = int(np.argmax(np.where(bad, np.inf, ratio)) if bad.any() else np.argmax(ratio))
    rows = [Row(names[q], float(g.flat[q]), float(ref.flat[q]), float(diff.flat[q]), float(tol.flat[q]),
                float(ref_err.flat[q]), str(status.flat[q]), notes.flat[q]) for q in range(m * n)]
    worst_row = rows[k] if (ratio.flat[k] > 0 or bad.any()) else None

    # -- Taylor test ------------------------------------------------------------------------
    t_order, t_status, t_rem = None, "n/a", None
    if o["taylor"]:
        t_order, t_rem = _taylor(fval, x64, s, base, g, tol, sig_f, eps_f, rng, m)
        if kink["at"].any():
            t_status = "n/a (kink)"
        elif t_order is None:
            t_status = "n/a (remainder at rounding level)"
        else:
            t_status = "ok" if t_order >= 1.7 else ("suspect" if t_order <= 1.3 else "unclear")
        ok_now = not bad.any()
        if ok_now and t_status == "suspect":
            warnings.append(f"the Taylor test shows order {t_order:.2f} (expected 2) although every "
                            f"component is within tolerance")
    gi = g[0] if not o["jacobian"] else g
    return CheckResult(
        ok=not bad.any(), rows=rows, worst=worst_row.name if worst_row else None, worst_row=worst_row,
        taylor_order=t_order, taylor_status=t_status, taylor_remainders=t_rem,
        method=method, dtype=np.dtype(_dt_of(eps_g)).name, differenced_in=np.dtype(prec).name,
        warnings=warnings, point=xu.copy(), value=f0, gradient=gi,
        reference=ref[0] if not o["jacobian"] else ref, reference_error=ref_err[0] if not o["jacobian"] else ref_err,
        tolerance=tol[0] if not o["jacobian"] else tol, jacobian=bool(o["jacobian"]),
        points=1, failed_points=[], complex_step_reason=cs_reason, names=names,
        calls={"f": F.calls, "grad": G.calls}, _ratio=float(np.max(np.where(bad, np.inf, ratio))),
        function=getattr(F.fn, "__qualname__", "f"), gradient_function=getattr(G.fn, "__qualname__", "grad"))


def _dt_of(eps):
    import numpy as np
    return {EPS64: np.float64, EPS32: np.float32, EPS16: np.float16}.get(eps, np.float64)


def _names(given, shape, m, jacobian, out_shape):
    import numpy as np
    n = int(np.prod(shape)) if shape else 1
    if given is not None:
        given = [str(v) for v in given]
        if len(given) != n:
            raise CheckError(f"names: {len(given)} names for {n} components")
        ins = given
    elif len(shape) == 0:
        ins = ["x"]
    else:
        ins = [f"x[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]
    if not jacobian:
        return ins
    outs = ["f"] if not out_shape else [f"f[{','.join(map(str, i))}]" for i in np.ndindex(*out_shape)]
    return [f"{r}/{c}" for r in outs for c in ins]


def _ecnoise(fun, x64, s, eps, rng, out_shape, npts=8):
    """Noise (standard deviation) of fun's outputs near x, per output: high-order
    differences on a stencil of tiny steps (More & Wild), the smaller of a stencil
    along a random direction and one along its opposite (so a kink on one side
    does not count as noise).  Falls back to 0 where fun cannot be evaluated."""
    import numpy as np
    delta = math.sqrt(eps)
    p = rng.choice([-1.0, 1.0], x64.size) * s
    best = None
    for sign in (1.0, -1.0):
        vals = []
        for j in range(npts + 1):
            v = fun(x64 + sign * j * delta * p)
            if v is None:
                break
            vals.append(v)
        if len(vals) < npts + 1:
            continue
        T = np.array(vals)
        sig = []
        for k in range(1, npts - 1):
            T = np.diff(T, axis=0)
            if k >= 3:
                gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
                sig.append(np.sqrt(gamma * np.mean(T ** 2, axis=0)))
        est = np.median(np.array(sig), axis=0)
        best = est if best is None else np.minimum(best, est)
    if best is None:
        return np.zeros(out_shape)
    return best.reshape(out_shape)


def _richardson(D, noise):
    from adcalc.engines.numeric import richardson  # the numeric engine's extrapolation
    est = richardson(D, noise, ratio=2.0, order=3)
    return est.estimate, est.error_estimate


def _differences(fval, x64, s, f0, sig, eps_f, n, m):
    """Central differences along each input over a ladder of steps (0.5 x scale,
    halved), extrapolated; per component the estimate, its error, and what the
    one-sided slopes at the smallest steps say about a kink at x."""
    import numpy as np
    K = LADDER.get(eps_f, 30)
    val, err = np.zeros((m, n)), np.zeros((m, n))
    at, lo, hi = np.zeros((m, n), bool), np.zeros((m, n)), np.zeros((m, n))
    for i in range(n):
        Ds, Ns, Ss, NSs, cent = [], [], [], [], []
        skipped = 0
        for k in range(K + MAX_SKIP):
            h = 0.5 * 2.0 ** -k * s[i]
            pp, qq = x64.copy(), x64.copy()
            pp[i], qq[i] = _round(x64[i] + h, eps_f), _round(x64[i] - h, eps_f)
            dp, dq = pp[i] - x64[i], x64[i] - qq[i]
            if not (dp > 0 and dq > 0):
                break
            a, b = fval(pp), fval(qq)
            if a is None or b is None:
                if not Ds and skipped < MAX_SKIP:
                    skipped += 1
                    continue
                break
            den = dp + dq
            Ds.append((a - b) / den)
            Ns.append((4 * (sig + sig) + eps_f * (np.abs(a) + np.abs(b))) / den)
            Ss.append((a - f0) / dp - (f0 - b) / dq)
            NSs.append((4 * sig + eps_f * np.abs(a) + 4 * sig + eps_f * np.abs(f0)) / dp
                       + (4 * sig + eps_f * np.abs(b) + 4 * sig + eps_f * np.abs(f0)) / dq)
            cent.append(((a - f0) / dp, (f0 - b) / dq))
            if len(Ds) >= K or (len(Ds) >= 12 and _smooth_tail(Ss, NSs)):
                break
        if not Ds:
            val[:, i], err[:, i] = np.nan, np.inf
            continue
        if len(Ds) == 1:
            val[:, i], err[:, i] = Ds[0], np.abs(Ds[0]) + Ns[0]
        else:
            est = _richardson(np.array(Ds), np.array(Ns))
            val[:, i], err[:, i] = np.asarray(est[0]).ravel(), np.asarray(est[1]).ravel()
        # a kink at x: the jump between one-sided slopes is still there at the finest step
        # and did not shrink like the step (it would for a smooth f: f'' h)
        S, NS = np.array(Ss), np.array(NSs)
        last = len(S) - 1
        if last >= 3:
            sig_now = np.abs(S[last]) > 30 * NS[last]
            flat = np.abs(S[last]) >= 0.5 * np.abs(S[last - 3])
            hit = sig_now & flat
            if hit.any():
                fwd, bwd = cent[last]
                at[:, i] = hit
                lo[:, i] = np.minimum(fwd, bwd)
                hi[:, i] = np.maximum(fwd, bwd)
                val[:, i] = np.where(hit, Ds[last], val[:, i])
                err[:, i] = np.where(hit, NS[last], err[:, i])  # the slopes' own noise
        if eps_f != EPS64 and not at[:, i].any():
            # noisy (low precision) f: a least-squares fit over many steps averages the
            # noise that Richardson's smallest steps amplify
            fit = _fit_column(fval, x64, i, s[i], sig, eps_f, f0)
            if fit is not None:
                a1, e1 = fit
                agree = np.abs(a1 - val[:, i]) <= err[:, i] + e1
                val[:, i] = np.where(agree, a1, val[:, i])
                err[:, i] = np.where(agree, np.minimum(e1, err[:, i]), err[:, i])
    return val, err, {"at": at, "lo": lo, "hi": hi}


def _smooth_tail(S, NS, count=6):
    """True when the one-sided slopes' difference over the last `count` steps behaves
    as for a smooth f (halves with the step, or stays at the level of noise): no
    kink lies within those steps, and smaller steps would add only rounding."""
    import numpy as np
    S, NS = np.abs(np.array(S[-count:])), np.array(NS[-count:])
    quiet = S <= 30 * NS
    with np.errstate(divide="ignore", invalid="ignore"):
        r = S[1:] / S[:-1]
    halving = (r >= 0.4) & (r <= 0.6)
    return bool(np.all(halving | (quiet[1:] & quiet[:-1])))


def _fit_column(fval, x64, i, s_i, sig, eps_f, f0, J=32, P=8):
    """d f / d x_i by least squares: a polynomial of degree P (and P + 2, to see the
    truncation) through f at 2J points spread evenly over [-H, H], for the widest
    H = 0.5 s_i, 0.25 s_i, ... where the polynomial fits to the level of f's noise.
    Returns (estimate, error: 2 standard errors + the change from degree P to P+2)
    or None."""
    import numpy as np
    noise = np.maximum(sig, eps_f * np.abs(f0))
    # jittered abscissae: on an even grid the rounding of f can be coherent (the same
    # number of ulps per step) and look like no noise at all while biasing the slope
    jitter = np.random.default_rng(i).uniform(-0.5, 0.5, (J, 2))
    for k in range(6):
        H = 0.5 * 2.0 ** -k * s_i
        ts, ys = [], []
        for j in range(1, J + 1):
            for side, sign in enumerate((1.0, -1.0)):
                p = x64.copy()
                p[i] = _round(x64[i] + sign * H * (j - 0.5 + jitter[j - 1, side]) / J, eps_f)
                v = fval(p)
                if v is None:
                    break
                ts.append(p[i] - x64[i])
                ys.append(v)
            else:
                continue
            break
        if len(ts) < 2 * J:
            continue
        ts.append(0.0)
        ys.append(f0)
        u = np.array(ts) / H
        Y = np.array(ys)
        out = []
        for deg in (P, P + 2):
            X = np.vander(u, deg + 1, increasing=True)
            coef, _, rank, _ = np.linalg.lstsq(X, Y, rcond=None)
            if rank < deg + 1:
                return None
            res = Y - X @ coef
            dof = len(u) - deg - 1
            # at least the rounding of one value (ulp/sqrt(12) is about 0.3 eps |f|)
            s_res = np.maximum(np.sqrt(np.sum(res ** 2, axis=0) / dof), 0.3 * eps_f * np.abs(f0))
            C = np.linalg.inv(X.T @ X)
            out.append((coef[1] / H, np.sqrt(C[1, 1]) * s_res / H, s_res))
        (a, sa, ra), (b, sb, _) = out
        fits = np.all(ra <= 3 * noise) and np.all(np.abs(a - b) <= 2 * (sa + sb))
        if fits:
            return a, 2 * sa + np.abs(a - b)
    return None


def _round(v, eps_f):
    """v rounded to the precision f computes in (so displacements are the ones taken)."""
    import numpy as np
    return float(np.asarray(v).astype(_dt_of(eps_f))) if eps_f != EPS64 else v


def _complex_step(F, x64, s, shape, f0, n, m):
    """Im f(x + i h e_j)/h per input, or (None, reason)."""
    import numpy as np
    out = np.zeros((m, n))
    for j in range(n):
        z = x64.astype(complex)
        h = CSTEP * s[j]
        z[j] += 1j * h
        try:
            r = F(z.reshape(shape))
        except UserCodeError as e:
            return None, f"f does not accept complex input ({type(e.original).__name__}: {e.original})"
        except CheckError as e:
            return None, f"f does not give a complex result ({e})"
        r = np.asarray(r)
        if r.dtype.kind != "c":
            return None, "f returns a real result for complex input (a cast to real, abs, ...)"
        r = r.ravel()
        if r.size != m or not np.all(np.isfinite(r)):
            return None, "f is not finite for complex input"
        if np.any(np.abs(r.real - f0) > 1e-6 * np.maximum(np.abs(f0), 1e-300) + 1e-300):
            return None, "f's real part changes under a complex step (not complex-analytic)"
        out[:, j] = r.imag / h
    return out, None


def _taylor(fval, x64, s, f0, g, tol, sig_f, eps_f, rng, m):
    """Observed order of |phi(x+hd) - phi(x) - h slope| over h = 2^-2 ... 2^-30, with
    phi = u.f (u = 1 for a scalar f), slope = u.(g d).  Pairs at the level of
    rounding (or of the components' tolerance) are left out; the order is the median
    of the finest three that remain."""
    import numpy as np
    d = rng.standard_normal(x64.size) * s
    u = np.ones(m) if m == 1 else rng.standard_normal(m)
    phi0 = float(u @ f0)
    slope = float(u @ (g @ d))
    allow = float(np.abs(u) @ (tol @ np.abs(d)))
    sig = float(np.sqrt((u ** 2) @ (sig_f ** 2)))
    hs, rem, floor = [], [], []
    for k in range(2, 31):
        h = 2.0 ** -k
        v = fval(x64 + h * d)
        if v is None:
            if not rem:
                continue
            break
        hs.append(h)
        rem.append(abs(float(u @ v) - phi0 - h * slope))
        floor.append(8 * sig + 4 * eps_f * (abs(phi0) + float(np.abs(u) @ np.abs(v))) + h * allow)
    rem, floor = np.array(rem), np.array(floor)
    good = rem > 10 * floor
    orders = [math.log2(rem[i] / rem[i + 1]) for i in range(len(rem) - 1)
              if good[i] and good[i + 1] and rem[i + 1] > 0]
    if not orders:
        return None, rem.tolist()
    return float(np.median(orders[-3:])), rem.tolist()


# ---- text --------------------------------------------------------------------------------
def _num(v):
    if v is None:
        return "null"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.6g}"


def _ofmt(v):
    return "n/a" if v is None else f"{v:.2f}"


def _short(a, width=72):
    import numpy as np
    a = np.asarray(a)
    if a.dtype.kind == "c":
        a = a.real
    if a.ndim == 0:
        return repr(float(a))
    t = np.array2string(a.astype(float), separator=",", threshold=8, precision=17,
                        floatmode="maxprec").replace("\n", "").replace(" ", "")
    return t if len(t) <= width else t[:width - 3] + "..."


def _tolist(a):
    import numpy as np
    return np.asarray(a, dtype=float).tolist()


def _render(res, stream, digits=None, max_rows=60, title=None):
    from adcalc.render import table
    what = "Jacobian" if res.jacobian else "gradient"
    rows = res.rows
    shown = rows
    if max_rows and len(rows) > max_rows:
        key = lambda r: (r.status != "mismatch", -(r.abs_diff / r.tolerance if r.tolerance else 0))  # noqa: E731
        pick = set(id(r) for r in sorted(rows, key=key)[:max_rows])
        shown = [r for r in rows if id(r) in pick]
    body = [[r.name, r.value, r.reference, r.abs_diff, r.tolerance, r.status] for r in shown]
    body.append(["(taylor test)", "order " + _ofmt(res.taylor_order), "order 2", "", "", res.taylor_status])
    lines = []
    if len(shown) < len(rows):
        lines.append(f"({len(rows) - len(shown)} more components within tolerance not shown)")
    method = ("complex step, checked against central differences" if res.method == "complex-step"
              else "central differences with Richardson extrapolation (per-component steps)"
              + ("" if res.differenced_in == "float64" else
                 ", refined by a least-squares fit over many steps (averages the rounding noise)"))
    lines.append(f"reference: {method}; differenced in {res.differenced_in}")
    lines.append(f"precision judged: {res.dtype}")
    if res.worst_row is not None:
        w = res.worst_row
        lines.append(f"worst: {w.name} (difference {_num(w.abs_diff)}, tolerance {_num(w.tolerance)})")
    lines += [f"note: {r.name}: {r.note}" for r in shown if r.note and r.status != "ok"]
    lines += [f"warning: {w}" for w in res.warnings]
    bad = res.mismatches
    if res.ok:
        lines.append(f"ok: the {what} agrees with numerical differentiation")
    else:
        names = ", ".join(r.name for r in bad[:8]) + (" ..." if len(bad) > 8 else "")
        lines.append(f"MISMATCH: the {what} is wrong at {names}" if bad else
                     f"MISMATCH at {len(res.failed_points)} of {res.points} points")
    title = title or f"check {what} at x={_short(res.point)}"
    table(title, ["component", f"your {what}", "reference", "abs diff", "tolerance", "status"],
          body, digits, "\n".join(lines), stream=stream)


# ---- command line ------------------------------------------------------------------------
_LOADED = {}


def load_callable(spec, what, default_module=None):
    """'MODULE:NAME' (dotted module importable from the current directory, or a path
    to a .py file; NAME may be dotted) -> the object.  Errors are InputError."""
    import importlib
    import importlib.util
    mod_name, sep, attr = spec.rpartition(":")
    if not sep:
        if default_module is None:
            raise InputError(f"{what}: expected MODULE:FUNCTION, got {spec!r}")
        mod_name, attr = default_module, spec
    if not mod_name or not attr:
        raise InputError(f"{what}: expected MODULE:FUNCTION, got {spec!r}")
    is_path = mod_name.endswith(".py") or os.sep in mod_name or "/" in mod_name
    key = os.path.abspath(mod_name) if is_path else mod_name
    if key in _LOADED:
        module = _LOADED[key]
    else:
        try:
            if is_path:
                if not os.path.isfile(mod_name):
                    raise InputError(f"{what}: no such file {mod_name!r}")
                folder = os.path.dirname(os.path.abspath(mod_name))
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                name = "_adcalc_user_" + "".join(c if c.isalnum() else "_" for c in key)
                mspec = importlib.util.spec_from_file_location(name, mod_name)
                if mspec is None or mspec.loader is None:
                    raise InputError(f"{what}: cannot load {mod_name!r} as a Python module")
                module = importlib.util.module_from_spec(mspec)
                sys.modules[name] = module
                mspec.loader.exec_module(module)
            else:
                cwd = os.getcwd()
                if cwd not in sys.path and "" not in sys.path:
                    sys.path.insert(0, cwd)
                module = importlib.import_module(mod_name)
        except InputError:
            raise
        except ModuleNotFoundError as e:
            if e.name and (e.name == mod_name or mod_name.startswith(e.name + ".")):
                raise InputError(f"{what}: no module named {mod_name!r} (looked in the current "
                                 f"directory and on sys.path)") from None
            raise InputError(f"{what}: importing {mod_name!r} failed: ModuleNotFoundError: {e}") from None
        except (KeyboardInterrupt, SystemExit) as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            raise InputError(f"{what}: importing {mod_name!r} exited (SystemExit {e.code})") from None
        except BaseException as e:  # noqa: BLE001  (the user's module raised while importing)
            raise InputError(f"{what}: importing {mod_name!r} failed: {type(e).__name__}: {e}") from None
        _LOADED[key] = module
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{what}: module {mod_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise InputError(f"{what}: {mod_name}:{attr} is {type(obj).__name__}, not a function")
    return obj, mod_name


def parse_at(text, what="--at"):
    """'1,2,3' or '[1,2,3]' (numbers or constant expressions such as pi/2) -> 1-D array."""
    import numpy as np

    import adcalc.parse  # noqa: F401  (loads the graph modules in their order)
    from adcalc.points import parse_value, split_top
    t = text.strip()
    if not t:
        raise InputError(f"{what}: no values given")
    if t.startswith("["):
        v = parse_value(t, what)
        if v.ndim != 1:
            raise InputError(f"{what}: give a flat list of numbers such as 1,2,3 or [1,2,3]")
        return v.astype(float)
    parts = split_top(t)
    if any(not p.strip() for p in parts):
        raise InputError(f"{what}: empty value in {text!r}")
    vals = [parse_value(p, what) for p in parts]
    if any(v.ndim for v in vals):
        raise InputError(f"{what}: give a flat list of numbers such as 1,2,3 or [1,2,3]")
    return np.array([float(v) for v in vals])


def is_check_file(path):
    """True when `path` holds a counterexample written by `adcalc check --save-failures`
    (so that `adcalc verify --replay FILE` can hand it over to run_check)."""
    import json
    try:
        with open(path) as fh:
            return json.load(fh).get("command") == "check"
    except (OSError, ValueError, AttributeError):
        return False


def run_check(function, grad, at=None, random_n=None, seed=0, dim=None, box=None, jacobian=False,
              rtol=None, atol=None, method="auto", as_json=False, save_failures=None, digits=None,
              replay=None, float32=False):
    """The `adcalc check` command; returns the exit code (0 agrees, 1 does not)."""
    import numpy as np
    points = None
    if replay:
        import json
        try:
            with open(replay) as fh:
                saved = json.load(fh)
            if saved.get("command") != "check":
                raise KeyError("command")
            function, grad = saved["function"], saved["gradient_function"]
            jacobian = bool(saved.get("jacobian", False))
            rtol = saved.get("rtol") if rtol is None else rtol
            atol = saved.get("atol") if atol is None else atol
            seed = saved.get("seed", seed)
            dtype = saved.get("dtype", "float64")
            points = [np.asarray(p, dtype=dtype) for p in saved["points"]]
            cwd = saved.get("cwd")
            if cwd and os.path.isdir(cwd) and cwd not in sys.path:
                sys.path.insert(0, cwd)
        except FileNotFoundError:
            raise InputError(f"--replay: no such file {replay!r}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"--replay: {replay!r} is not a file written by "
                             f"'adcalc check --save-failures' ({e})") from None
    if not function:
        raise InputError("check needs MODULE:FUNC (the function) and --grad MODULE:GRADFUNC")
    if not grad:
        raise InputError("check needs --grad MODULE:GRADFUNC, the gradient to check")
    f, fmod = load_callable(function, "FUNC")
    g, _ = load_callable(grad, "--grad", default_module=fmod)
    if points is None:
        if at is None and not random_n:
            raise InputError("check needs a point: --at 1,2,3 (or --random N with --at or --dim)")
        if at is not None:
            x = parse_at(at)
            if dim is not None and dim != x.size:
                raise InputError(f"--dim {dim} does not match the {x.size} values of --at")
        elif dim is not None:
            x = None
        else:
            raise InputError("--random needs --at (the centre and scale of the points) or --dim N")
        if random_n:
            rng = np.random.default_rng(seed)
            if box is not None:
                try:
                    lohi = [float(v) for v in box.split(",")]
                    assert len(lohi) == 2 and lohi[0] < lohi[1]
                except (ValueError, AssertionError):
                    raise InputError("--box takes LO,HI with LO < HI") from None
                size = x.size if x is not None else dim
                points = [rng.uniform(lohi[0], lohi[1], size) for _ in range(random_n)]
            elif x is not None:
                points = list(_random_points(x, random_n, seed))
            else:
                points = [rng.standard_normal(dim) for _ in range(random_n)]
        else:
            points = [x]
        if float32:
            points = [np.asarray(p, dtype=np.float32) for p in points]
    glabel = grad if ":" in grad else f"{fmod}:{grad}"
    res = check_grad(f, g, points[0], rtol=rtol, atol=atol, jacobian=jacobian, seed=seed,
                     method=method, points=points, _cli=True, _labels=(function, glabel))
    res.function, res.gradient_function = function, glabel
    if save_failures and not res.ok:
        import json
        failing = res.failed_points or [res.point]
        with open(save_failures, "w") as fh:
            json.dump(_finite({
                "command": "check", "function": res.function, "gradient_function": res.gradient_function,
                "jacobian": bool(jacobian), "rtol": rtol, "atol": atol, "seed": seed, "cwd": os.getcwd(),
                "dtype": np.asarray(res.point).dtype.name, "method": res.method,
                "points": [_tolist(p) for p in failing],
                "differences": {r.name: r.as_dict() for r in res.rows if r.status == "mismatch"},
            }, []), fh, indent=1, allow_nan=False)
        res.warnings.append(f"failures saved to {save_failures}; rerun with: adcalc check --replay {save_failures}")
    if as_json:
        from adcalc.render import dumps
        warnings = list(res.warnings)
        obj = {"command": "check", "function": res.function, "gradient_function": res.gradient_function,
               "engine": "numeric", "point": _tolist(res.point), "inputs": [r.name for r in res.rows]
               if not res.jacobian else list(dict.fromkeys(r.name.split("/", 1)[1] for r in res.rows)),
               "value": np.asarray(res.value, dtype=float).tolist(), "ok": bool(res.ok),
               "method": res.method, "dtype": res.dtype, "differenced_in": res.differenced_in,
               "jacobian": bool(res.jacobian), "components": [r.as_dict() for r in res.rows],
               "worst": res.worst, "taylor_order": res.taylor_order, "taylor_status": res.taylor_status,
               "points": res.points, "failed_points": [_tolist(p) for p in res.failed_points],
               "warnings": warnings}
        obj = _finite(obj, warnings)
        obj["warnings"] = warnings
        sys.stdout.write(dumps(obj) + "\n")
    else:
        _render(res, sys.stdout, digits, max_rows=None,
                title=f"check {res.gradient_function} against {res.function} at x={_short(res.point)}")
    return 0 if res.ok else 1


def _finite(obj, warnings, path=""):
    """Non-finite floats -> None (strict JSON), each named in warnings."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            warnings.append(f"{path or 'a number'} is {obj} (written as null)")
            return None
        return obj
    if isinstance(obj, dict):
        return {k: _finite(v, warnings, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v, warnings, f"{path}[{i}]") for i, v in enumerate(obj)]
    return obj


@click.command("check", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("function", metavar="MODULE:FUNC", required=False)
@click.option("--grad", "grad", metavar="MODULE:GRADFUNC",
              help="Your gradient (n,) or, with --jacobian, Jacobian (m, n). MODULE defaults to FUNC's.")
@click.option("--at", "at", metavar="P", help="The point: 1,2,3 or '[1,2,3]' (also the centre for --random).")
@click.option("--random", "random_n", type=click.IntRange(1, 10 ** 5), metavar="N",
              help="Check N random points (around --at, in --box, or standard normal of --dim).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random and the directions.")
@click.option("--dim", type=click.IntRange(1), metavar="N", help="Number of inputs, for --random without --at.")
@click.option("--box", metavar="LO,HI", help="Draw --random points uniformly in this box.")
@click.option("--float32", is_flag=True, help="Pass the points as float32 arrays (float32 code).")
@click.option("--jacobian", is_flag=True, help="FUNC is vector-valued; GRADFUNC returns its Jacobian (m, n).")
@click.option("--rtol", type=click.FloatRange(0), metavar="R",
              help="Relative tolerance (default: from the precision; the reference's error is always added).")
@click.option("--atol", type=click.FloatRange(0), metavar="A", help="Absolute tolerance (default: from the precision).")
@click.option("--method", type=click.Choice(["auto", "complex-step", "richardson"]), default="auto",
              show_default=True, help="Reference: complex step where f is complex-analytic, else differences.")
@click.option("--save-failures", metavar="FILE", help="On a mismatch, write a replayable counterexample.")
@click.option("--replay", metavar="FILE", help="Run a counterexample saved by --save-failures again.")
@click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object.")
@click.option("--digits", type=click.IntRange(1, 17), metavar="N", help="Significant digits shown.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def check_command(function, grad, at, random_n, seed, dim, box, float32, jacobian, rtol, atol, method,
                  save_failures, replay, as_json, digits, debug):
    """Check your own gradient code against numerical differentiation; exit 1 if wrong.

    \b
    FUNC takes one 1-D numpy array x and returns a scalar (a vector with --jacobian);
    GRADFUNC returns the gradient (n,) or the Jacobian (m, n).  MODULE is a module
    importable from the current directory or a path to a .py file.
    \b
    Example:
      adcalc check mymodel:loss --grad mymodel:loss_grad --at 1,2,3
      adcalc check model.py:f --grad model.py:g --random 20 --at 1,1 --seed 1
    """
    code = run_check(function, grad, at=at, random_n=random_n, seed=seed, dim=dim, box=box,
                     jacobian=jacobian, rtol=rtol, atol=atol, method=method, as_json=as_json,
                     save_failures=save_failures, digits=digits, replay=replay, float32=float32)
    raise click.exceptions.Exit(code)
