"""What the CLI's commands do with their options: build a Problem, ask the library, print.

Derivatives (`grad` ... `vjp`, one engine or all), `verify` and `engines`.  JSON goes
through envelope.py; tables through render.py; warnings go to stderr on a screen.
"""
import sys

import numpy as np

from adcalc import verify as V
from adcalc.engines import ENGINES, availability, get_engine
from adcalc.engines.base import Result, compute
from adcalc.envelope import emit, envelope, finite, output_names
from adcalc.errors import AdcalcError, EngineUnavailable, InputError
from adcalc.evaluate import through_overflow
from adcalc.points import listed, parse_flat
from adcalc.problem import Problem
from adcalc.quantities import QUANTITIES
from adcalc.render import fmt, table, to_json_value, warning_line

ANSWER_ORDER = ("symbolic", "forward", "reverse", "gpu", "compiled", "numeric")
KINK_ANSWER_ORDER = ("forward", "reverse", "gpu", "compiled", "symbolic", "numeric")
NOTES = {"kink": "kink: one-sided slopes {lo} and {hi} differ: not differentiable here (shown: their midpoint)",
         "jump": "kink: f jumps here, no derivative", "infinite": "not finite: the slope grows without bound",
         "undefined": "not finite: no difference step fits inside the domain",
         "unresolved": "not finite: f varies faster than the difference steps can follow here; "
                       "no derivative resolved"}
WORDS = {"ok": "ok", "kink": "kink", "jump": "kink", "infinite": "not finite", "undefined": "not finite",
         "unresolved": "not finite"}


def read_vector(command, prob, text):
    if text is None:
        what = "u (one number per output)" if command == "vjp" else "v (one number per input)"
        raise InputError(f"{command} needs --vector: {what}")
    if QUANTITIES[command].vector == "outputs":
        return parse_flat(text, output_names(prob), [("f", prob.out_shape)])
    return parse_flat(text, prob.inputs, [(v, prob.shapes[v]) for v in prob.wrt])


def read_expressions(exprs):
    """The expression arguments, with `-` read from standard input and `@FILE` from a file
    (one command-line argument holds at most 128 KiB)."""
    out = []
    for e in exprs:
        if e.strip() == "-":
            try:
                out.append(sys.stdin.read().strip())
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(f"cannot read the expression from standard input ({err})") from None
        elif e.startswith("@"):
            try:
                with open(e[1:], encoding="utf-8", errors="surrogateescape") as fh:
                    out.append(fh.read().strip())
            except (OSError, ValueError) as err:
                why = getattr(err, "strerror", None) or str(err)
                raise InputError(f"cannot read the expression file {e[1:]!r} ({why})") from None
        else:
            out.append(e)
    return out


def problem(exprs, at, vars_, wrt=None):
    names = None if not wrt else [w.strip() for w in wrt.split(",") if w.strip()]
    return Problem(read_expressions(exprs), at=at, vars=vars_, wrt=names)


def engine_options(engine, method=None, fast=False, dtype=None):
    """{engine name: keyword options} from --method, --fast and --dtype, after checking that
    each applies to the engine asked for ("all": to one of them)."""
    for flag, given, takes in (("--method", method, ("numeric",)), ("--fast", fast, ("compiled", "gpu")),
                               ("--dtype", dtype, ("gpu",))):
        if given and engine not in takes + ("all",):
            which = " and ".join(f"the {t}" for t in takes) + (" engines" if len(takes) > 1 else " engine")
            raise InputError(f"{flag} applies to {which} (use --engine {takes[0]})")
    out = {"numeric": {"method": method} if method else {}, "compiled": {"fast": True} if fast else {},
           "gpu": dict({"fast": True} if fast else {}, **({"dtype": dtype} if dtype else {}))}
    return {k: v for k, v in out.items() if v}


def run_engines_on(command, prob, names, vector, options, strict):
    """{name: Result | ('unavailable', reason) | ('error', message)} for each engine;
    `options` {engine name: keyword options} (engine_options)."""
    out = {}
    for name in names:
        try:
            engine = get_engine(name, **(options or {}).get(name, {}))
            with np.errstate(all="ignore"):
                out[name] = compute(engine, prob, command, prob.x0(), vector)
        except EngineUnavailable as e:
            if strict:
                raise
            out[name] = ("unavailable", str(e).split(": ", 1)[-1])
        except AdcalcError as e:
            if strict or e.kind in ("domain", "input", "parse"):
                raise
            out[name] = ("error", " ".join(str(e).split()))
    return out


UNDERFLOW = ("may be inexact: an intermediate derivative underflowed below 2.2e-308 (or an undefined "
             "partial met a zero that may only be tiny), so components that are only tiny can come out "
             "as 0 or with fewer digits")


def overflow_note(overflows):
    return (f"not finite: {listed(overflows, 3)} overflow{'s' if len(overflows) == 1 else ''} float64 at this "
            f"point, so everything computed through it has lost its digits: no derivative is given, and the "
            f"value shown may be wrong (--engine symbolic differentiates formulas that may avoid it)")


def lost_turns_note(text, size, digits):
    left = "no correct digit" if digits < 1 else f"about {digits:.0f} correct digits"
    return (f"may be inexact: the argument of {text} is {fmt(size, 3)} here, computed in float64 with a "
            f"rounding error near {fmt(size * 2.0 ** -53, 2)}: its value and every derivative keep {left}")


def underflow_note(underflows):
    return (f"may be inexact: {listed(underflows, 3)} underflow{'s' if len(underflows) == 1 else ''} below "
            f"2.2e-308 at this point (to 0 or to a number with fewer digits), and the value and derivatives "
            f"computed through it may have lost theirs")


def nulled_through_overflow(results):
    """Every engine's answer nulled where f's evaluation overflows on the way (but SymPy's,
    whose formulas are not f's intermediates)."""
    out = {}
    for name, r in results.items():
        if isinstance(r, tuple) or name == "symbolic":
            out[name] = r
            continue
        out[name] = Result(through_overflow(r.value), None if r.error is None else np.full(r.value.shape, np.nan),
                           dict(r.info, status=np.full(r.value.shape, "undefined", dtype=object))
                           if "status" in r.info else r.info)
    return out


def component_notes(result, labels):
    """Warnings from an engine's own per-component statuses (numeric: kink, jump, ...) and
    from underflow seen in its sweeps."""
    out = [UNDERFLOW] if result.info.get("underflow") else []
    st = result.info.get("status")
    if st is None:
        return out
    st = np.asarray(st, dtype=object).ravel()
    lo, hi = (np.asarray(result.info.get(k, result.value), float).ravel() for k in ("lo", "hi"))
    if result.error is not None:   # an estimate far above the answer's size resolves nothing
        val, err = result.value.ravel(), result.error.ravel()
        with np.errstate(invalid="ignore"):
            blur = (st == "ok") & np.isfinite(val) & (err > np.abs(val)) & (err > 1e-6 * max(
                1.0, float(np.max(np.abs(val[np.isfinite(val)]), initial=0.0))))
        for i in np.flatnonzero(blur):
            out.append(f"{labels[i]}: inexact: the error estimate ({fmt(err[i], 3)}) exceeds the value; "
                       f"the differences do not resolve this component here")
    for i, s in enumerate(st):
        if s != "ok":
            out.append(f"{labels[i]}: " + NOTES[s].format(lo=fmt(lo[i]), hi=fmt(hi[i])))
    return out


def run_derivative(command, exprs, at, vars_, engine, as_json, digits, vector_text, options=None, wrt=None):
    q = QUANTITIES[command]
    prob = problem(exprs, at, vars_, wrt)
    vector = read_vector(command, prob, vector_text) if q.vector else None
    if engine != "all" and engine not in ENGINES:
        get_engine(engine)  # raises the 'unknown engine' error
    names = list(ENGINES) if engine == "all" else [engine]
    results = run_engines_on(command, prob, names, vector, options, strict=engine != "all")
    x = prob.x0()
    vals = prob.evaluate(x)   # every node once, for the checks of the point below
    kinks = V.find_kinks(prob, x, vals)
    warnings = []
    overflows = V.find_overflows(prob, x, vals)
    if overflows:
        results = nulled_through_overflow(results)
        warnings.append(overflow_note(overflows))
    warnings += [lost_turns_note(*lost) for lost in V.find_lost_turns(prob, x, vals)]
    underflows = V.find_underflows(prob, x, vals)
    if underflows:
        warnings.append(underflow_note(underflows))
    obj = envelope(command, prob, engine, warnings, value=vals[prob.output.id])   # f as evaluated above
    if command in ("jacobian", "jvp", "vjp"):
        obj["outputs"] = output_names(prob)
    if vector is not None:
        obj["vector"] = vector.tolist()
    shape = q.shape(prob.n, prob.m)
    labels = q.labels(prob.inputs, output_names(prob))
    if kinks:
        obj["kinks"] = kinks
        warnings.append("not differentiable at this point: " + "; ".join(kinks))
    if engine == "all":
        _all_engines(obj, command, q, prob, results, kinks, shape, labels, warnings)
    else:
        r = results[engine]
        obj[q.key] = to_json_value(r.value.reshape(shape), q.key, warnings, labels)
        if r.error is not None:
            obj["error_estimate"] = to_json_value(r.error.reshape(shape), "error estimate", warnings, labels)
        if "method" in r.info:
            obj["method"] = r.info["method"]
        if "status" in r.info:
            obj["status"] = np.vectorize(WORDS.get, otypes=[object])(
                np.asarray(r.info["status"], dtype=object)).reshape(shape).tolist()
        warnings += [f"{q.key} {w}" if w == UNDERFLOW else w for w in component_notes(r, labels)]
    if as_json:
        emit(obj)
        return 0
    show_human(command, prob, obj, results, digits, labels, vals[prob.output.id])
    return 0


def _all_engines(obj, command, q, prob, results, kinks, shape, labels, warnings):
    ok = {n: r for n, r in results.items() if not isinstance(r, tuple)}
    order = KINK_ANSWER_ORDER if kinks else ANSWER_ORDER
    ref = next((n for n in order if n in ok), None)
    if ref is None:
        raise EngineUnavailable("no engine could compute this here")
    obj["reference"] = ref
    obj[q.key] = to_json_value(ok[ref].value.reshape(shape), q.key, warnings, labels)
    engines = {}
    for n, r in results.items():
        if isinstance(r, tuple):
            engines[n] = {"status": r[0], "reason": r[1]}
            continue
        st, mabs, mrel, worst, tol, nf = V.judge(r.value, ok[ref].value, labels, 1e-8, 1e-12, r.error,
                                                 bool(kinks), r.info.get("status"))
        e = {"status": st, q.key: to_json_value(r.value.reshape(shape), f"{n} {q.key}", warnings, labels),
             "max_abs_diff": mabs, "tolerance": tol, "reason": None}
        if r.error is not None:
            e["error_estimate"] = to_json_value(r.error.reshape(shape), f"{n} error estimate", warnings, labels)
        if "lo" in r.info and st == "kink":
            e["slopes"] = [np.asarray(r.info["lo"], float).reshape(shape).tolist(),
                           np.asarray(r.info["hi"], float).reshape(shape).tolist()]
        notes = component_notes(r, labels)
        if st == "kink":
            e["reason"] = "; ".join(notes) if notes else "conventions differ at a kink: " + "; ".join(kinks)
        elif st == "not finite":
            e["reason"] = f"{nf} component(s) not finite in the reference"
        elif notes:
            e["reason"] = "; ".join(notes)
        engines[n] = finite(e, warnings, n)
    obj["engines"] = engines
    vals = np.stack([r.value.reshape(-1) for n, r in ok.items() if engines[n]["status"] in ("ok", "not finite")])
    with np.errstate(invalid="ignore"):
        obj["spread"] = to_json_value((vals.max(0) - vals.min(0)).reshape(shape), "spread", warnings, labels) \
            if len(vals) > 1 else None


def show_human(command, prob, obj, results, digits, labels, value):
    q = QUANTITIES[command]
    title = f"{command} of {_expr_text(prob)} at {prob.describe(prob.x0())}  [engine: {obj['engine']}]"
    value = np.asarray(value, dtype=float)
    vtext = fmt(value, digits) if value.ndim == 0 else np.array2string(
        value, separator=", ", threshold=20, formatter={"float_kind": lambda v: fmt(v, digits)})
    footer = [f"value: {vtext}"]
    shape = q.shape(prob.n, prob.m)
    if obj["engine"] == "all":
        ok = {n: r for n, r in results.items() if not isinstance(r, tuple)}
        headers = ["component"] + list(ok) + (["spread"] if len(ok) > 1 else [])
        vals = {n: r.value.reshape(-1) for n, r in ok.items()}
        spread = np.ravel(np.asarray(obj.get("spread") if obj.get("spread") is not None else
                                     np.full(len(labels), np.nan), dtype=float)) if len(ok) > 1 else None
        rows = [[lab] + [vals[n][i] for n in ok] + ([spread[i]] if spread is not None else [])
                for i, lab in enumerate(labels)]
        footer.append(f"reference: {obj['reference']}")
        for n, e in obj["engines"].items():
            if e["status"] != "ok":
                footer.append(f"{n}: {e['status']}" + (f": {e['reason']}" if e.get("reason") else ""))
        table(title, headers, rows, digits, "\n".join(footer))
    else:
        r = results[obj["engine"]]
        res, err = r.value, r.error
        if command in ("grad", "hvp", "vjp", "jvp"):
            headers = ["output" if command == "jvp" else "input", q.key] + (["error estimate"] if err is not None else [])
            rows = [[lab, res[i]] + ([err[i]] if err is not None else []) for i, lab in enumerate(labels)]
        else:
            rlabels, clabels = q.rows(prob.inputs, output_names(prob))
            res = res.reshape(shape)
            headers = [("output \\ input" if command == "jacobian" else "")] + clabels
            rows = [[lab] + list(res[i]) for i, lab in enumerate(rlabels)]
            if err is not None:
                footer.append(f"largest error estimate: {fmt(np.max(err, initial=0.0), 3)}")
        table(title, headers, rows, digits, "\n".join(footer))
    for w in obj["warnings"]:
        warning_line(w)


def _expr_text(prob):
    t = prob.expression if isinstance(prob.expression, str) else ", ".join(prob.expression)
    return t if len(t) <= 60 else t[:57] + "..."


def run_engines(as_json):
    rows = availability()
    if as_json:
        emit({"engines": {n: {"available": r is None, "reason": r} for n, r in rows}})
        return 0
    table("engines", ["engine", "status", "reason"],
          [[n, "available" if r is None else "unavailable", r or ""] for n, r in rows])
    return 0


# ---- verify ------------------------------------------------------------------------------
def run_verify(exprs, at, vars_, quantities, rtol, atol, engines, random_n, seed, box, expect_grad,
               expect_hessian, save_failures, replay, as_json, digits, wrt=None, junit=None):
    from adcalc import replay as R
    points = None
    claims = [(k, t) for k, t in (("grad", expect_grad), ("hessian", expect_hessian)) if t]
    if replay:
        saved = R.load(replay, "verify")
        exprs, vars_, wrt = saved["expression"], saved.get("vars"), saved.get("wrt") or wrt
        quantities = quantities or ",".join(saved.get("quantities", [])) or None
        seed = saved.get("seed", seed)
        claims = claims or [tuple(c) for c in saved.get("claims", [])]
        points = saved["points"]
    if not exprs:
        raise InputError("verify needs an expression (or --replay FILE)")
    exprs = read_expressions([exprs] if isinstance(exprs, str) else list(exprs))
    names = None if not wrt else [w.strip() for w in (wrt if isinstance(wrt, str) else ",".join(wrt)).split(",")]
    prob = Problem(exprs, at=None if points else at, vars=vars_, point=points[0] if points else None, wrt=names)
    xs = None if points is None else [np.concatenate([np.ravel(np.asarray(p[v], float)) for v in prob.wrt])
                                      for p in points]
    lohi = None
    if box:
        try:
            lohi = [float(t) for t in box.split(",")]
            assert len(lohi) == 2 and lohi[0] < lohi[1] and all(np.isfinite(lohi))
        except (ValueError, AssertionError):
            raise InputError("--box takes LO,HI with finite LO < HI") from None
    report = V.run(prob, [q.strip() for q in quantities.split(",")] if quantities else None,
                   [e.strip() for e in engines.split(",")] if engines else None, rtol, atol, xs,
                   random_n, seed, lohi, claims)
    if save_failures and not report.ok:
        R.save_verify(save_failures, prob, report, seed, claims)
        report.warnings.append(f"failures saved to {save_failures}; rerun with: adcalc verify --replay "
                               f"{save_failures}")
    if junit:
        from adcalc.reports import verify_junit
        verify_junit(report, junit)
    show_verify(prob, report, as_json, digits)
    return report.return_code


def _engine_summary(checks):
    out = {}
    for c in checks:
        e = out.setdefault(c.engine, {"status": c.status, "max_abs_diff": None, "max_rel_diff": None,
                                      "tolerance": c.tolerance, "reason": c.reason, "quantities": {}})
        if c.quantity != "*":
            e["quantities"][c.quantity] = c.as_dict()
        if V.RANK[c.status] > V.RANK[e["status"]]:
            e["status"], e["reason"], e["tolerance"] = c.status, c.reason, c.tolerance
        for k, v in (("max_abs_diff", c.max_abs), ("max_rel_diff", c.max_rel)):
            if v is not None:
                e[k] = v if e[k] is None else max(e[k], v)
    return out


def show_verify(prob, report, as_json, digits):
    warnings = list(report.warnings)
    summary = _summary(report)
    if as_json:
        obj = envelope("verify", prob, "all", warnings)
        obj.update({"ok": report.ok, "reference": report.reference, "engines": _engine_summary(report.checks),
                    "kinks": report.kinks, "not_finite": report.not_finite, "points": report.points,
                    "claims": {c.quantity: c.as_dict() for c in report.claims}, "summary": summary})
        emit(finite(obj, warnings))
        return
    rows = []
    for c in report.checks + report.claims:
        if c.status == "unavailable":
            rows.append([c.engine, "-" if c.quantity == "*" else c.quantity, "unavailable", None, None, None, "", c.reason or ""])
            continue
        note = c.reason or ""
        if c.quantity == "grad" and c.order is not None:
            note = (note + "; " if note else "") + f"taylor order {c.order:.2f}"
        rows.append([c.engine, c.quantity, c.status, c.max_abs, c.max_rel, c.tolerance, c.worst or "", note])
    where = prob.describe(report.x) if report.points == 1 else f"{report.points} points"
    lines = [f"reference: {report.reference}"]
    if report.points > 1:
        lines += [f"worst point for {c.engine} {c.quantity}: {c.point}"
                  for c in report.checks if c.point and c.status not in ("ok", "unavailable")]
    lines.append(summary)
    table(f"verify {_expr_text(prob)} at {where}",
          ["engine", "quantity", "status", "max abs diff", "max rel diff", "tolerance", "worst", "note"],
          rows, digits, "\n".join(lines))
    for w in warnings:
        warning_line(w)


def _summary(report):
    failed = sorted({f"{c.engine} {c.quantity}" for c in report.checks if c.status == "error"})
    if not report.ok:
        bad = sorted({f"{c.engine} {c.quantity}" for c in report.checks + report.claims if c.status == "mismatch"})
        return "MISMATCH: " + ", ".join(bad) + (f"; error in {', '.join(failed)}" if failed else "")
    parts = ["ok: every engine that ran agrees within its tolerance"]
    if failed:
        parts.append("could not compute (see the notes): " + ", ".join(failed))
    if report.kinks:
        parts.append("kink: " + "; ".join(report.kinks))
    if report.not_finite:
        parts.append("not finite (overflow or an infinite slope) in " + ", ".join(report.not_finite))
    return "; ".join(parts)


def stderr_console():
    from rich.console import Console
    return Console(stderr=True)


def progress(items, what):
    if len(items) < 20 or not sys.stderr.isatty():
        return items
    from rich.progress import track
    return track(items, description=what, console=stderr_console(), transient=True)


# ---- many points ------------------------------------------------------------------------------
def run_batch(command, exprs, ats, points, out, vars_, wrt, engine, vector_text, options=None):
    """A derivative at many points (several --at, or --points FILE), streamed to --out or to
    JSON lines on stdout."""
    from adcalc import batch
    from adcalc.parse import parse
    from adcalc.points import order_variables, parse_point
    if wrt:
        raise InputError("--wrt is not available with many points yet; give the held variables as "
                         "constants in the expression")
    if points and ats and len(ats) > 1:
        raise InputError("give the points either with --points or with --at, not both")
    if engine == "all":
        raise InputError("--engine all compares engines at one point; with many points choose one engine")
    texts = read_expressions(exprs)
    names = []
    for t in texts:
        names += [n for n in parse(t).names if n not in names]
    variables = order_variables(names, vars_)
    shapes = {v: () for v in variables}
    if ats:
        first = parse_point(ats[0], variables)
        shapes = {v: np.shape(first[v]) for v in variables}
    if points:
        src = batch.open_source(points, variables, shapes)
        if set(src.names) != set(variables):
            missing = [v for v in variables if v not in src.names]
            extra = [v for v in src.names if v not in variables]
            raise InputError(f"--points: the file's names ({listed(src.names, none='none')}) do not match the "
                             f"variables ({listed(variables)})" + (f"; missing {missing[0]!r}" if missing else
                                                                      f"; {extra[0]!r} is not a variable"))
        shapes = src.shapes
        order = [src.names.index(v) for v in variables]
        if order != list(range(len(variables))):
            src = _reordered(src, variables)
    else:
        src = batch.from_points([parse_point(a, variables) for a in ats], variables, shapes)
    prob = Problem(texts, vars=",".join(variables) if vars_ else None,
                   point={v: np.zeros(shapes[v]) for v in variables})
    q = QUANTITIES[command]
    vector = read_vector(command, prob, vector_text) if q.vector else None
    opts = dict((options or {}).get(engine, {}))
    if engine in ("compiled", "gpu"):
        opts["on_domain"] = "nan"   # rows outside the domain come back NaN and named, the rest kept
    eng = get_engine(engine, **opts)
    bar = _progress_bar(src.total)
    try:
        done, total, warnings = batch.run(prob, eng, command, src, out, vector, bar.advance if bar else None)
    finally:
        if bar:
            bar.stop()
    for w in warnings:
        warning_line(w)
    if out:
        sys.stderr.write(f"wrote {done} rows of {command} to {out}\n")
    return 0


def _reordered(src, variables):
    """A source whose rows follow `variables` (files may list them in another order)."""
    from adcalc import batch
    sizes = {v: int(np.prod(src.shapes[v])) if src.shapes[v] else 1 for v in src.names}
    start, pos = {}, 0
    for v in src.names:
        start[v] = pos
        pos += sizes[v]
    cols = np.concatenate([np.arange(start[v], start[v] + sizes[v]) for v in variables]).astype(int)
    inner = src

    def chunks(_):
        for X in inner.chunks():
            yield X[:, cols]
    out = batch.Source(variables, src.shapes, chunks, src.total)
    out.errors = inner.errors
    return out


class _Bar:
    def __init__(self, total):
        from rich.progress import Progress
        self.p = Progress(console=stderr_console(), transient=True)
        self.p.start()
        self.task = self.p.add_task("points", total=total)

    def advance(self, k):
        self.p.advance(self.task, k)

    def stop(self):
        self.p.stop()


def _progress_bar(total):
    if not sys.stderr.isatty() or (total is not None and total < 200_000):
        return None
    return _Bar(total)
