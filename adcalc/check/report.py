"""`adcalc check`: points from the command line, the check, its table or JSON, failure files.

Replaying a failure file (`--replay FILE`) runs the functions named on the command
line, at the points saved in the file: the file itself never decides what is imported
(its names are compared, and a difference is an error).
"""
import os
import sys

import numpy as np

from adcalc.check import check_grad
from adcalc.check.usercode import load_callable, short
from adcalc.errors import InputError

DEFAULT_TIMEOUT = 300.0


def render(res, stream, digits=None, max_rows=60, title=None):
    from adcalc.render import table
    what = "Jacobian" if res.jacobian else "gradient"
    rows = res.rows
    shown = rows
    if max_rows and len(rows) > max_rows:
        key = lambda r: (r.status != "mismatch", -(r.abs_diff / r.tolerance if r.tolerance else 0))  # noqa: E731
        pick = set(id(r) for r in sorted(rows, key=key)[:max_rows])
        shown = [r for r in rows if id(r) in pick]
    body = [[r.name, r.value, r.reference, r.abs_diff, r.tolerance, r.status] for r in shown]
    order = "n/a" if res.taylor_order is None else f"{res.taylor_order:.2f}"
    body.append(["(taylor test)", "order " + order, "order 2", None, None, res.taylor_status])
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
        lines.append(f"worst: {w.name} (difference {w.abs_diff:.3g}, tolerance {w.tolerance:.3g})")
    lines += [f"note: {r.name}: {r.note}" for r in shown if r.note and r.status != "ok"]
    if stream is not sys.stdout:
        lines += [f"warning: {w}" for w in res.warnings]
    bad = res.mismatches
    if res.ok:
        lines.append(f"ok: the {what} agrees with numerical differentiation within the tolerances shown")
    else:
        names = ", ".join(r.name for r in bad[:8]) + (" ..." if len(bad) > 8 else "")
        lines.append(f"MISMATCH: the {what} is wrong at {names}" if bad else
                     f"MISMATCH at {len(res.failed_points)} of {res.points} points")
    title = title or f"check {what} at x={short(res.point)}"
    table(title, ["component", f"your {what}", "reference", "abs diff", "tolerance", "status"],
          body, digits, "\n".join(lines), stream=stream)


def parse_at(text, what="--at"):
    """'1,2,3' or '[1,2,3]' (numbers or constant expressions such as pi/2) -> 1-D array."""
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


def _points(at, random_n, seed, dim, box, float32):
    if at is None and not random_n:
        raise InputError("check needs a point: --at 1,2,3 (or --random N with --at or --dim)")
    x = parse_at(at) if at is not None else None
    if x is not None and dim is not None and dim != x.size:
        raise InputError(f"--dim {dim} does not match the {x.size} values of --at")
    if random_n and x is None and dim is None:
        raise InputError("--random needs --at (the centre and scale of the points) or --dim N")
    rng = np.random.default_rng(seed)
    if not random_n:
        points = [x]
    elif box is not None:
        try:
            lohi = [float(v) for v in box.split(",")]
            assert len(lohi) == 2 and lohi[0] < lohi[1] and all(np.isfinite(lohi))
        except (ValueError, AssertionError):
            raise InputError("--box takes LO,HI with finite LO < HI") from None
        points = [rng.uniform(lohi[0], lohi[1], x.size if x is not None else dim) for _ in range(random_n)]
    elif x is not None:
        from adcalc import numdiff
        points = [p for p, _ in numdiff.random_points(x, random_n, seed)]
    else:
        points = [rng.standard_normal(dim) for _ in range(random_n)]
    return [np.asarray(p, dtype=np.float32) for p in points] if float32 else points


def run_check(function, grad, at=None, random_n=None, seed=0, dim=None, box=None, jacobian=False,
              rtol=None, atol=None, method="auto", as_json=False, save_failures=None, digits=None,
              replay=None, float32=False, timeout=DEFAULT_TIMEOUT, junit=None):
    """The `adcalc check` command; returns the exit code (0 agrees, 1 does not)."""
    from adcalc import replay as R
    if not function:
        raise InputError("check needs MODULE:FUNC (the function) and --grad MODULE:GRADFUNC"
                         + (" (a replayed file names its functions, but they are imported only when "
                            "you name them on the command line)" if replay else ""))
    if not grad:
        raise InputError("check needs --grad MODULE:GRADFUNC, the gradient to check")
    points = None
    if replay:
        saved = R.load(replay, "check")
        for key, given in (("function", function), ("gradient_function", grad)):
            if saved.get(key) and saved[key].split(":")[-1] != given.split(":")[-1]:
                raise InputError(f"--replay: the file was saved for {saved[key]!r}, not {given!r}")
        jacobian = bool(saved.get("jacobian", jacobian))
        rtol = saved.get("rtol") if rtol is None else rtol
        atol = saved.get("atol") if atol is None else atol
        seed = saved.get("seed", seed)
        points = saved["points"]
    f, fmod = load_callable(function, "FUNC")
    g, _ = load_callable(grad, "--grad", default_module=fmod)
    if points is None:
        points = _points(at, random_n, seed, dim, box, float32)
    glabel = grad if ":" in grad else f"{fmod}:{grad}"
    res = check_grad(f, g, points[0], rtol=rtol, atol=atol, jacobian=jacobian, seed=seed, method=method,
                     points=points, timeout=timeout, _cli=True, _labels=(function, glabel), _capture=True)
    res.function, res.gradient_function = function, glabel
    if junit:
        from adcalc.reports import check_junit
        check_junit(res, junit)
    if res.printed:
        lines = res.printed.strip().splitlines()
        res.warnings.append(f"the code under check printed {len(lines)} line(s); first: {lines[0][:120]!r}")
    if save_failures and not res.ok:
        failing = res.failed_points or [res.point]
        R.save(save_failures, {
            "command": "check", "function": res.function, "gradient_function": res.gradient_function,
            "jacobian": bool(jacobian), "rtol": rtol, "atol": atol, "seed": seed, "cwd": os.getcwd(),
            "dtype": np.asarray(res.point).dtype.name, "method": res.method,
            "points": [np.asarray(p, dtype=float).tolist() for p in failing],
            "differences": {r.name: _plain(r.as_dict()) for r in res.rows if r.status == "mismatch"}})
        res.warnings.append(f"failures saved to {save_failures}; rerun with: adcalc check {function} "
                            f"--grad {glabel} --replay {save_failures}")
    if as_json:
        from adcalc.envelope import emit, finite
        warnings = list(res.warnings)
        obj = {"command": "check", "function": res.function, "gradient_function": res.gradient_function,
               "engine": "numeric", "point": np.asarray(res.point, dtype=float).tolist(),
               "inputs": [r.name for r in res.rows] if not res.jacobian
               else list(dict.fromkeys(r.name.split("/", 1)[1] for r in res.rows)),
               "value": np.asarray(res.value, dtype=float).tolist(), "ok": bool(res.ok),
               "method": res.method, "dtype": res.dtype, "differenced_in": res.differenced_in,
               "jacobian": bool(res.jacobian), "components": [r.as_dict() for r in res.rows],
               "worst": res.worst, "taylor_order": res.taylor_order, "taylor_status": res.taylor_status,
               "points": res.points, "failed_points": [np.asarray(p, dtype=float).tolist() for p in res.failed_points],
               "printed": res.printed or None, "warnings": warnings}
        emit(finite(obj, warnings))
    else:
        from adcalc.render import warning_line
        render(res, sys.stdout, digits, max_rows=None,
               title=f"check {res.gradient_function} against {res.function} at x={short(res.point)}")
        for w in res.warnings:
            warning_line(w)
    return 0 if res.ok else 1


def _plain(d):
    return {k: (float(v) if isinstance(v, (np.floating,)) else v) for k, v in d.items()}
