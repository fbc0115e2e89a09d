"""Check a user's own gradient (or Jacobian) code against numerical differentiation.

Python API (for test suites; a pytest test is one line)::

    import adcalc
    adcalc.assert_grad(f, grad, x)            # AssertionError with the table if wrong
    r = adcalc.check_grad(f, grad, x)         # r.ok, r.rows, r.worst, r.table(), ...

Command line: `adcalc check MODULE:FUNC --grad MODULE:GRADFUNC (--at P | --random N)`.
How the verdict is reached: see adcalc.check.judge (the reference is adcalc.numdiff,
the same core as the numeric engine's).  Modules: usercode (loading and calling user
code), precision (which precision it computes in), judge (one point), report (tables,
JSON, failure files, the CLI's glue).
"""
import math
import warnings as _warnings

from adcalc.check.judge import CheckDomainError, Row, check_point
from adcalc.check.usercode import CheckError, Deadline, UserCodeError, UserFunction, short
from adcalc.errors import AdcalcError

__all__ = ["check_grad", "assert_grad", "CheckResult", "Row", "CheckError", "CheckDomainError", "UserCodeError"]


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
        order = "n/a" if self.taylor_order is None else f"{self.taylor_order:.2f}"
        return (f"<CheckResult ok={self.ok} worst={self.worst!r} method={self.method!r} "
                f"dtype={self.dtype!r} taylor_order={order}>")

    @property
    def mismatches(self):
        return [r for r in self.rows if r.status == "mismatch"]

    def table(self, digits=None, max_rows=60):
        import io

        from adcalc.check.report import render
        buf = io.StringIO()
        render(self, buf, digits, max_rows)
        return buf.getvalue()

    __str__ = table

    def as_dict(self):
        import numpy as np
        return {"ok": self.ok, "method": self.method, "dtype": self.dtype,
                "point": np.asarray(self.point, dtype=float).tolist(), "points": self.points,
                "components": [r.as_dict() for r in self.rows], "worst": self.worst,
                "taylor_order": self.taylor_order, "taylor_status": self.taylor_status,
                "warnings": list(self.warnings)}


def check_grad(f, grad, x, *, rtol=None, atol=None, jacobian=False, seed=0, random=None,
               method="auto", taylor=True, names=None, points=None, timeout=None, _cli=False,
               _labels=("f", "grad"), _capture=False):
    """Compare `grad(x)` (the user's gradient of the scalar function `f`, or with
    jacobian=True the (m, n) Jacobian of a vector-valued f) with numerical
    differentiation at x; returns a CheckResult (truthy when they agree).

    x: the point (any shape; names are x[i], x[i,j]; a float32 x means float32
    code).  rtol/atol: replace the automatic rounding allowances (the reference's
    own error estimate is always added).  random=N: check N random points around x
    (each coordinate moved by up to half its magnitude, or 0.5 at 0) drawn with
    `seed`; the result is the worst point's.  method: 'auto', 'complex-step' or
    'richardson'.  names: component names of x (a list of n strings).  timeout:
    seconds for the whole check (None: no limit).  Exceptions raised by f or grad
    at the point propagate unchanged.
    """
    import numpy as np

    from adcalc import numdiff
    try:
        deadline = Deadline(timeout)
        F = UserFunction(f, _labels[0], deadline, _capture)
        G = UserFunction(grad, _labels[1], deadline, _capture)
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
            xs = [p.astype(x0.dtype) for p, _ in numdiff.random_points(x0.astype(float), int(random), seed)]
        else:
            xs = [x0]
        many = len(xs) > 1 or bool(random)
        results, skipped = [], []
        with np.errstate(all="ignore"), _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            for xp in xs:
                try:
                    results.append(CheckResult(**check_point(F, G, xp, opts)))
                except (UserCodeError, CheckDomainError) as e:
                    if not many or "time limit" in str(e):
                        raise
                    skipped.append(f"skipped the point {short(xp)}: {e}")
        if not results:
            raise CheckDomainError("no point could be checked: " + (skipped[0] if skipped else "none drawn"))
        res = max(results, key=lambda r: (not r.ok, r._ratio))
        res.points = len(results)
        res.failed_points = [r.point for r in results if not r.ok]
        res.warnings = skipped + res.warnings
        if len(results) > 1 and res.failed_points:
            res.warnings.insert(0, f"{len(results)} points checked; {len(res.failed_points)} failed; "
                                   f"shown: the worst, at x={short(res.point)}")
        res.ok = not res.failed_points
        res.calls = {"f": F.calls, "grad": G.calls}
        res.printed = F.printed.getvalue() + G.printed.getvalue()
        res.function = getattr(f, "__qualname__", "f")
        res.gradient_function = getattr(grad, "__qualname__", "grad")
        return res
    except UserCodeError as e:
        if _cli or e.original is None:
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
        raise CheckError(f"x is not finite: {short(a)}")
    return a
