"""JUnit XML reports of `verify` and `check`, for CI systems (adcalc.junit writes the XML).

  verify_junit(report, path)   one test case per engine x quantity (and per claimed formula)
  check_junit(result, path)    one test case per point and component, plus the Taylor test

A failure's message names the component and its details carry the table row, so a CI
page shows what differs without a wrapper script.
"""
import numpy as np

from adcalc.junit import JunitCase, write_junit

VERIFY_COLUMNS = ("engine", "quantity", "status", "max abs diff", "max rel diff", "tolerance", "worst", "note")
CHECK_COLUMNS = ("component", "value", "reference", "abs diff", "tolerance", "status")


def _num(v):
    return "" if v is None else repr(float(v))


def _row_text(columns, cells):
    return "\n".join(f"{c}: {v}" for c, v in zip(columns, cells))


def _expression(prob):
    e = prob.expression
    return e if isinstance(e, str) else ", ".join(e)


def verify_cases(report):
    """JunitCase per row of the verify table (report: what adcalc.verify.run returns)."""
    expr = _expression(report.prob)
    cases = []
    for c in report.checks + report.claims:
        note = c.reason or ""
        cells = [c.engine, c.quantity, c.status, _num(c.max_abs), _num(c.max_rel), _num(c.tolerance),
                 c.worst or "", note]
        if c.status == "mismatch":
            message = (f"{c.engine} {c.quantity} differs from {report.reference}"
                       + (f" at {c.worst}" if c.worst else "") + f": max abs diff {_num(c.max_abs)}, "
                       f"tolerance {_num(c.tolerance)}" + (f"; {note}" if note else ""))
        else:
            message = note or None
        name = c.engine if c.quantity == "*" else f"{c.engine} {c.quantity}"
        details = _row_text(VERIFY_COLUMNS, cells) + (f"\npoint: {c.point}" if c.point else "")
        cases.append(JunitCase(name, f"adcalc.verify.{c.quantity if c.quantity != '*' else 'engine'}",
                               c.status, message, details))
    return cases


def verify_junit(report, path):
    """Write the JUnit XML of a verify report to path; returns the Path."""
    return write_junit(path, f"adcalc verify {_expression(report.prob)}", verify_cases(report))


def check_cases(result):
    """JunitCase per component of the checked point (result: what adcalc.check.check_grad
    returns), the Taylor test, and one case per other failing point."""
    point = _short(result.point)
    fn = getattr(result, "gradient_function", None) or "grad"
    classname = f"adcalc.check.{fn}"
    what = "Jacobian" if result.jacobian else "gradient"
    cases = []
    for r in result.rows:
        cells = [r.name, _num(r.value), _num(r.reference), _num(r.abs_diff), _num(r.tolerance), r.status]
        message = r.note
        if r.status == "mismatch":
            message = (f"{what} component {r.name} is wrong at x={point}: yours {_num(r.value)}, reference "
                       f"{_num(r.reference)}, difference {_num(r.abs_diff)} > tolerance {_num(r.tolerance)}")
        cases.append(JunitCase(f"{r.name} at x={point}", classname, r.status, message,
                               _row_text(CHECK_COLUMNS, cells)))
    taylor = result.taylor_status
    order = "n/a" if result.taylor_order is None else f"{result.taylor_order:.2f}"
    cases.append(JunitCase(f"taylor test at x={point}", classname, "ok",
                           f"remainder order {order} (expected 2): {taylor}"))
    for p in result.failed_points:
        if np.array_equal(np.asarray(p), np.asarray(result.point)):
            continue
        cases.append(JunitCase(f"point x={_short(p)}", classname, "mismatch",
                               f"the {what} is wrong at x={_short(p)} (rerun check with --at there for the "
                               f"component table)"))
    return cases


def check_junit(result, path):
    """Write the JUnit XML of a gradient check to path; returns the Path."""
    fn = getattr(result, "gradient_function", None) or "grad"
    return write_junit(path, f"adcalc check {fn}", check_cases(result))


def _short(x):
    a = np.asarray(x, dtype=float)
    return repr(float(a)) if a.ndim == 0 else np.array2string(a, separator=",", threshold=6).replace("\n", "")
