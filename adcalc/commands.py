"""What the CLI commands do, kept apart from click: Problem -> engine(s) -> output."""
import math
import sys

import numpy as np

from adcalc.engines import ENGINES, availability, get_engine
from adcalc.engines.base import compute
from adcalc.errors import AdcalcError, DomainError, EngineUnavailable, InputError
from adcalc.points import component_names, parse_flat, quantity_labels
from adcalc.problem import Problem
from adcalc.render import dumps, fmt, table, to_json_value

REFERENCE_ORDER = ("symbolic", "forward", "reverse", "gpu", "numeric")
KEYS = {"grad": "gradient"}  # JSON key per command (the contract's names)


def output_names(prob):
    return component_names("f", prob.out_shape)


def read_vector(command, prob, text):
    if text is None:
        what = "u (one number per output)" if command == "vjp" else "v (one number per input)"
        raise InputError(f"{command} needs --vector: {what}")
    if command == "vjp":
        return parse_flat(text, output_names(prob), [("f", prob.out_shape)])
    return parse_flat(text, prob.inputs, [(v, prob.shapes[v]) for v in prob.variables])


def engine_options(name, method):
    if method and name != "numeric":
        return {}
    return {"method": method} if method else {}


def run_engines_on(command, prob, names, vector, method, strict):
    """{name: Result | ('unavailable', reason) | ('error', message)} for each engine."""
    out = {}
    x = prob.x0()
    for name in names:
        try:
            engine = get_engine(name, **engine_options(name, method))
            out[name] = compute(engine, prob, command, x, vector)
        except EngineUnavailable as e:
            if strict:
                raise
            out[name] = ("unavailable", str(e).split(": ", 1)[-1])
        except AdcalcError as e:
            if strict or e.kind in ("domain", "input"):
                raise
            out[name] = ("error", str(e))
    return out


def run_derivative(command, exprs, at, vars_, engine, as_json, digits, vector_text, method):
    prob = Problem(list(exprs), at=at, vars=vars_)
    vector = read_vector(command, prob, vector_text) if command in ("hvp", "jvp", "vjp") else None
    if method and engine not in ("numeric", "all"):
        raise InputError("--method applies to the numeric engine (use --engine numeric)")
    names = list(ENGINES) if engine == "all" else [engine]
    if engine != "all" and engine not in ENGINES:
        get_engine(engine)  # raises the 'unknown engine' error
    results = run_engines_on(command, prob, names, vector, method, strict=engine != "all")
    value = prob.value(prob.x0())
    warnings = []
    obj = {
        "command": command, "expression": prob.expression, "engine": engine,
        "variables": prob.variables, "shapes": {v: list(s) for v, s in prob.shapes.items()},
        "inputs": prob.inputs, "point": {v: prob.point[v].tolist() for v in prob.variables},
        "value": to_json_value(value, "value", warnings), "warnings": warnings,
    }
    if command in ("jacobian", "jvp", "vjp"):
        obj["outputs"] = output_names(prob)
    if vector is not None:
        obj["vector"] = vector.tolist()
    shape = result_shape(command, prob)
    ok = {n: r for n, r in results.items() if not isinstance(r, tuple)}
    if engine == "all":
        ref = next((n for n in REFERENCE_ORDER if n in ok), None)
        if ref is None:
            raise EngineUnavailable("no engine could compute this here")
        obj["reference"] = ref
        obj[KEYS.get(command, command)] = to_json_value(ok[ref].value.reshape(shape), command, warnings)
        engines_obj = {}
        for n, r in results.items():
            if isinstance(r, tuple):
                engines_obj[n] = {"status": r[0], "reason": r[1]}
            else:
                engines_obj[n] = {"status": "ok", KEYS.get(command, command): to_json_value(r.value.reshape(shape), f"{n} {command}", warnings)}
                if r.error is not None:
                    engines_obj[n]["error_estimate"] = to_json_value(r.error.reshape(shape), f"{n} error estimate", warnings)
        obj["engines"] = engines_obj
        if len(ok) > 1:
            stack = np.stack([r.value.reshape(shape) for r in ok.values()])
            obj["spread"] = to_json_value(stack.max(0) - stack.min(0), "spread", warnings)
    else:
        r = ok[engine]
        obj[KEYS.get(command, command)] = to_json_value(r.value.reshape(shape), KEYS.get(command, command), warnings)
        if r.error is not None:
            obj["error_estimate"] = to_json_value(r.error.reshape(shape), "error estimate", warnings)
        obj.update(r.info)
    if as_json:
        sys.stdout.write(dumps(obj) + "\n")
        return
    show_human(command, prob, obj, results, digits)


def result_shape(command, prob):
    n, m = prob.n, prob.m
    return {"grad": (n,), "jacobian": (m, n), "hessian": (n, n), "hvp": (n,), "jvp": (m,), "vjp": (n,)}[command]


def show_human(command, prob, obj, results, digits):
    title = (f"{command} of {_expr_text(prob)} at {prob.describe(prob.x0())}"
             f"  [engine: {obj['engine']}]")
    value = np.asarray(prob.value(prob.x0()))
    vtext = fmt(value, digits) if value.ndim == 0 else np.array2string(
        value, separator=", ", threshold=20, formatter={"float_kind": lambda v: fmt(v, digits)})
    footer = "\n".join([f"value: {vtext}"] + [f"warning: {w}" for w in obj["warnings"]])
    rows_in, rows_out = prob.inputs, output_names(prob)
    if obj["engine"] == "all":
        ok = {n: r for n, r in results.items() if not isinstance(r, tuple)}
        bad = {n: r for n, r in results.items() if isinstance(r, tuple)}
        shape = result_shape(command, prob)
        labels = quantity_labels(rows_in, rows_out, command, sep=" / ")
        vals = {n: r.value.reshape(shape).ravel() for n, r in ok.items()}
        headers = ["component"] + list(ok) + (["spread"] if len(ok) > 1 else [])
        rows = []
        for i, lab in enumerate(labels):
            row = [lab] + [vals[n][i] for n in ok]
            if len(ok) > 1:
                col = [vals[n][i] for n in ok]
                row.append(max(col) - min(col))
            rows.append(row)
        footer += "".join(f"\n{n}: {kind}: {why}" for n, (kind, why) in bad.items())
        table(title, headers, rows, digits, footer)
        return
    r = next(r for r in results.values() if not isinstance(r, tuple))
    res = r.value
    err = r.error
    if command in ("grad", "hvp", "vjp", "jvp"):
        labels = rows_out if command == "jvp" else rows_in
        headers = ["output" if command == "jvp" else "input", KEYS.get(command, command)] + (["error estimate"] if err is not None else [])
        rows = [[lab, res[i]] + ([err[i]] if err is not None else []) for i, lab in enumerate(labels)]
    else:
        labels = rows_out if command == "jacobian" else rows_in
        res = res.reshape(len(labels), prob.n)
        headers = [("output \\ input" if command == "jacobian" else "")] + rows_in
        rows = [[lab] + list(res[i]) for i, lab in enumerate(labels)]
        if err is not None:
            footer += f"\nlargest error estimate: {fmt(np.max(err), 3)}"
    table(title, headers, rows, digits, footer)


def _expr_text(prob):
    t = prob.expression if isinstance(prob.expression, str) else ", ".join(prob.expression)
    return t if len(t) <= 60 else t[:57] + "..."


def run_engines(as_json):
    rows = availability()
    if as_json:
        sys.stdout.write(dumps({"engines": {n: {"available": r is None, "reason": r} for n, r in rows}}) + "\n")
        return
    table("engines", ["engine", "status", "reason"],
          [[n, "available" if r is None else "unavailable", r or ""] for n, r in rows])


# ---- verify ------------------------------------------------------------------------------
def run_verify(exprs, at, vars_, quantities, rtol, atol, engines, random_n, seed, box,
               expect_grad, expect_hessian, save_failures, replay, as_json, digits):
    import json

    from adcalc import verify as V
    if replay:
        from adcalc.check import is_check_file, run_check
        if is_check_file(replay):  # a counterexample saved by `adcalc check --save-failures`
            return run_check(None, None, replay=replay, as_json=as_json, digits=digits)
    points = None
    if replay:
        try:
            with open(replay) as fh:
                saved = json.load(fh)
            exprs, vars_ = saved["expression"], saved.get("vars")
            quantities = quantities or ",".join(saved.get("quantities", [])) or None
            seed = saved.get("seed", seed)
            points = [{k: np.asarray(v, float) for k, v in p.items()} for p in saved["points"]]
        except FileNotFoundError:
            raise InputError(f"--replay: no such file {replay!r}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"--replay: {replay!r} is not a file written by --save-failures ({e})") from None
    if not exprs:
        raise InputError("verify needs an expression (or --replay FILE)")
    exprs = [exprs] if isinstance(exprs, str) else list(exprs)
    prob = Problem(exprs, at=None if points else at, vars=vars_, point=points[0] if points else None)
    qs = [q.strip() for q in quantities.split(",")] if quantities else V.default_quantities(prob)
    for q in qs:
        if q not in ("grad", "jacobian", "hessian", "hvp", "jvp", "vjp"):
            raise InputError(f"--quantities: unknown quantity {q!r} (grad, jacobian, hessian, hvp, jvp, vjp)")
        if q in ("grad", "hessian", "hvp") and prob.m != 1:
            raise InputError(f"--quantities: {q} needs a scalar expression; this one has {prob.m} outputs")
    names = [e.strip() for e in engines.split(",")] if engines else None
    for n in names or []:
        if n not in ENGINES:
            raise InputError(f"--engines: unknown engine {n!r}; choose from {', '.join(ENGINES)}")
    xs = [prob.x0()] if points is None else [np.concatenate([p[v].ravel() for v in prob.variables]) for p in points]
    warnings = []
    if random_n:
        lohi = None
        if box:
            try:
                lohi = [float(t) for t in box.split(",")]
                assert len(lohi) == 2 and lohi[0] < lohi[1]
            except (ValueError, AssertionError):
                raise InputError("--box takes LO,HI with LO < HI") from None
        xs = []
        for x, why in V.random_points(prob, random_n, seed, lohi):
            if x is None:
                warnings.append(why)
            else:
                xs.append(x)
        if not xs:
            raise InputError("--random: no point inside the expression's domain was found; give --at or --box")
    reports = []
    for x in _progress(xs, "verifying"):
        try:
            rep = V.verify(prob, qs, names, rtol=rtol, atol=atol, x=x, seed=seed)
        except DomainError as e:
            if len(xs) == 1:
                raise
            warnings.append(str(e))
            continue
        if expect_grad:
            rep.claims.append(V.check_claims(prob, rep, expect_grad, "grad", x))
        if expect_hessian:
            rep.claims.append(V.check_claims(prob, rep, expect_hessian, "hessian", x))
        reports.append(rep)
    if not reports:
        raise DomainError("every point was outside the expression's domain")
    report = V.merge(reports) if len(reports) > 1 else reports[0]
    if len(reports) == 1:
        for c in report.checks:
            c.point = None
    report.warnings = warnings + [f"{len(xs) - len(reports)} of {len(xs)} points were skipped"] * (len(reports) < len(xs))
    if save_failures and not report.ok:
        failing = [r for r in reports if not r.ok]
        with open(save_failures, "w") as fh:
            json.dump({"expression": prob.expression, "vars": ",".join(prob.variables), "seed": seed,
                       "quantities": qs, "engines": names or list(ENGINES),
                       "points": [{v: a.tolist() for v, a in prob.split(r.x).items()} for r in failing],
                       "differences": [{f"{c.engine}:{c.quantity}": c.as_dict() for c in r.checks + r.claims
                                        if c.status in ("mismatch", "error")} for r in failing]},
                      fh, indent=1, allow_nan=False, default=str)
        report.warnings.append(f"failures saved to {save_failures}; rerun with: adcalc verify --replay {save_failures}")
    show_verify(prob, report, as_json, digits)
    return report.return_code


def _progress(items, what):
    if len(items) < 20 or not sys.stderr.isatty():
        return items
    from rich.progress import track
    return track(items, description=what, console=_stderr_console(), transient=True)


def _stderr_console():
    from rich.console import Console
    return Console(stderr=True)


def _engine_summary(checks):
    from adcalc.verify import STATUS_RANK as rank
    out = {}
    for c in checks:
        e = out.setdefault(c.engine, {"status": c.status, "max_abs_diff": None, "max_rel_diff": None,
                                      "reason": c.reason, "quantities": {}})
        if c.quantity != "*":
            e["quantities"][c.quantity] = c.as_dict()
        if rank[c.status] > rank[e["status"]]:
            e["status"], e["reason"] = c.status, c.reason
        for k, v in (("max_abs_diff", c.max_abs), ("max_rel_diff", c.max_rel)):
            if v is not None:
                e[k] = v if e[k] is None else max(e[k], v)
    return out


def show_verify(prob, report, as_json, digits):
    warnings = list(report.warnings)
    if as_json:
        value = prob.value(prob.x0())
        obj = {"command": "verify", "expression": prob.expression, "engine": "all",
               "variables": prob.variables, "shapes": {v: list(s) for v, s in prob.shapes.items()},
               "inputs": prob.inputs, "point": {v: prob.point[v].tolist() for v in prob.variables},
               "value": None, "warnings": warnings, "ok": report.ok, "reference": report.reference,
               "engines": _engine_summary(report.checks), "kinks": report.kinks, "points": report.points,
               "claims": {c.quantity: c.as_dict() for c in report.claims}}
        obj["value"] = to_json_value(value, "value", warnings)
        sys.stdout.write(dumps(_finite(obj, warnings)) + "\n")
        return
    rows = []
    for c in report.checks:
        if c.status == "unavailable":
            rows.append([c.engine, "-", "unavailable", "", "", "", c.reason or ""])
            continue
        rows.append([c.engine, c.quantity, c.status, _num(c.max_abs), _num(c.max_rel), c.worst or "",
                     ("" if c.order is None else f"taylor order {c.order:.2f}") if c.quantity == "grad"
                     else (c.reason or "")])
    for c in report.claims:
        rows.append([c.engine, c.quantity, c.status, _num(c.max_abs), _num(c.max_rel), c.worst or "", c.reason or ""])
    title = f"verify {_expr_text(prob)} at {prob.describe(prob.x0()) if report.points == 1 else f'{report.points} points'}"
    lines = [f"reference: {report.reference}"]
    lines += [f"not differentiable at this point: {k}" for k in report.kinks]
    if report.points > 1:
        worst = [c for c in report.checks if c.point and c.status != "ok"]
        lines += [f"worst point for {c.engine} {c.quantity}: {c.point}" for c in worst]
    lines += [f"warning: {w}" for w in warnings]
    lines.append("ok: every engine that ran agrees" if report.ok else "MISMATCH: see the rows marked mismatch")
    table(title, ["engine", "quantity", "status", "max abs diff", "max rel diff", "worst", "note"],
          rows, digits, "\n".join(lines))


def _num(v):
    return "" if v is None else fmt(v, 3)


def _finite(obj, warnings):
    """Replace non-finite floats anywhere in obj by None (strict JSON)."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            warnings.append("a non-finite difference was written as null")
            return None
        return obj
    if isinstance(obj, dict):
        return {k: _finite(v, warnings) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v, warnings) for v in obj]
    return obj
