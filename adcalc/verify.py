"""Cross-verification: every engine computes every quantity; differences are judged.

Exact engines are compared with the reference (symbolic where it runs, else forward)
with a tolerance scaled to the size of the quantity; the numeric engine is judged
against its own per-component error estimate.  A point where the expression is not
differentiable (abs or relu at 0, a max/min tie, ...) is reported as a kink, never
as a mismatch.  A Taylor test checks each gradient without any step tolerance: the
remainder |f(x+hd) - f(x) - h g.d| must shrink like h^2.
"""
import math

import numpy as np

from adcalc.engines import ENGINES, engine_class
from adcalc.engines.base import compute
from adcalc.errors import AdcalcError, DomainError, EngineUnavailable, InputError
from adcalc.core import PRIMS
from adcalc.evaluate import needed
from adcalc.graph import to_text
from adcalc.points import component_names, quantity_labels

REFERENCE_ORDER = ("symbolic", "forward", "reverse")
EPS = np.finfo(float).eps
STATUS_RANK = {"error": 4, "mismatch": 3, "kink": 2, "ok": 1, "unavailable": 0}


class Check:
    """One engine x one quantity: status ok | mismatch | kink | unavailable | error."""

    __slots__ = ("engine", "quantity", "status", "max_abs", "max_rel", "worst", "reason", "point", "order")

    def __init__(self, engine, quantity, status, max_abs=None, max_rel=None, worst=None,
                 reason=None, point=None, order=None):
        self.engine, self.quantity, self.status = engine, quantity, status
        self.max_abs, self.max_rel, self.worst, self.reason = max_abs, max_rel, worst, reason
        self.point, self.order = point, order

    def as_dict(self):
        return {"status": self.status, "max_abs_diff": self.max_abs, "max_rel_diff": self.max_rel,
                "worst": self.worst, "reason": self.reason, "point": self.point,
                "taylor_order": self.order}


def default_quantities(prob):
    return ["grad", "hessian", "hvp"] if prob.m == 1 else ["jacobian", "jvp", "vjp"]


def component_labels(prob, quantity):
    return quantity_labels(prob.inputs, component_names("f", prob.out_shape), quantity)


def find_kinks(prob, x):
    """Sub-expressions at a point where they are not differentiable, with the convention
    the rules follow there (each record's kink predicate and text)."""
    vals = prob.evaluate(x)
    nodes = prob.graph.nodes
    out = []
    with np.errstate(all="ignore"):
        for i in needed(prob.graph, [prob.output]):
            node = nodes[i]
            kink = PRIMS[node.op].kink if node.op in PRIMS else None
            if kink is None:
                continue
            if np.any(kink[0](*[vals[a.id] for a in node.args], vals[i], **node.p)):
                out.append(f"{to_text(node)} ({kink[1]})")
    return out


def taylor_order(f, x, g, d=None, seed=0, hessian=None):
    """Observed order of |f(x+hd) - f(x) - h g.d (- h^2/2 d.H.d)| over a ladder of h.

    A correct gradient gives 2 (3 with the Hessian term); a wrong one gives 1 (or 2).
    Returns (order or None when the remainder stays at rounding level, remainders).
    """
    rng = np.random.default_rng(seed)
    if d is None:
        d = rng.standard_normal(x.size) * np.maximum(np.abs(x), 1.0)
    f0 = float(f(x))
    gd = float(np.dot(g, d))
    hd = 0.0 if hessian is None else float(d @ hessian @ d)
    hs = 1e-2 * 0.5 ** np.arange(10)
    rem = []
    for h in hs:
        fx = float(f(x + h * d))
        rem.append(abs(fx - f0 - h * gd - 0.5 * h * h * hd))
    rem = np.array(rem)
    floor = 64 * EPS * (abs(f0) + abs(gd) * hs + 1e-300)
    good = rem > 1e3 * floor
    orders = [math.log2(rem[i] / rem[i + 1]) for i in range(len(hs) - 1)
              if good[i] and good[i + 1] and rem[i + 1] > 0]
    if not orders:
        return None, rem
    return float(np.median(orders)), rem


class Report:
    """The outcome of a verification; `return_code` is 0 when every engine that ran agrees."""

    def __init__(self, prob, reference, checks, kinks, warnings, claims=(), points=1, failures=()):
        self.prob, self.reference, self.checks, self.kinks = prob, reference, checks, kinks
        self.warnings, self.claims, self.points, self.failures = warnings, list(claims), points, list(failures)

    @property
    def ok(self):
        return not any(c.status in ("mismatch", "error") for c in self.checks + self.claims)

    @property
    def return_code(self):
        return 0 if self.ok else 1


def _compare(a, b, labels, rtol, atol, err=None):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    diff = np.abs(a - b)
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan | (a == b), 0.0, diff)
    scale = np.max(np.abs(b[np.isfinite(b)]), initial=0.0)
    rel = diff / np.maximum(np.abs(b), np.maximum(scale * 1e-300, 1e-300))
    if err is not None:  # judged by its own estimate, with a rounding allowance
        tol = 2.0 * np.nan_to_num(np.asarray(err, float).ravel(), nan=np.inf) + 16 * EPS * (np.abs(b) + scale)
    else:
        tol = atol + rtol * np.maximum(np.abs(b), scale)
    bad = ~(diff <= tol)
    i = int(np.argmax(np.where(np.isfinite(diff), diff - tol, np.inf))) if diff.size else 0
    worst = labels[i] if diff.size and np.any(diff != 0) else None
    mx_abs = float(np.max(np.where(np.isfinite(diff), diff, np.inf))) if diff.size else 0.0
    mx_rel = float(np.max(np.where(np.isfinite(rel), rel, np.inf))) if diff.size else 0.0
    return bool(bad.any()), mx_abs, mx_rel, worst, float(tol[i]) if diff.size else 0.0


def directions(prob, seed):
    rng = np.random.default_rng(seed)
    return {"hvp": rng.standard_normal(prob.n), "jvp": rng.standard_normal(prob.n),
            "vjp": rng.standard_normal(prob.m)}


def verify(prob, quantities=None, engines=None, rtol=1e-8, atol=1e-12, x=None, seed=0,
           vectors=None, options=None):
    """Run every engine on every quantity at one point and judge them (a Report)."""
    x = prob.x0() if x is None else np.asarray(x, float)
    quantities = list(quantities or default_quantities(prob))
    names = list(engines or ENGINES)
    vectors = dict(directions(prob, seed), **(vectors or {}))
    prob.evaluate(x)  # a point outside the domain is an input error for the whole run
    kinks = find_kinks(prob, x)
    results, unavailable = {}, {}
    for name in names:
        try:
            engine = engine_class(name)(**(options or {}).get(name, {}))
            reason = engine.available()
            if reason:
                unavailable[name] = reason
                continue
            results[name] = {}
            for q in quantities:
                try:
                    results[name][q] = compute(engine, prob, q, x, vectors.get(q))
                except InputError:
                    raise
                except (AdcalcError, FloatingPointError, ValueError, ZeroDivisionError) as e:
                    results[name][q] = e
        except EngineUnavailable as e:
            unavailable[name] = str(e)
    reference = next((n for n in REFERENCE_ORDER if n in results
                      and not any(isinstance(r, Exception) for r in results[n].values())), None)
    if reference is None:
        raise EngineUnavailable("no exact engine could compute a reference here")
    checks = []
    for name in names:
        if name in unavailable:
            checks.append(Check(name, "*", "unavailable", reason=unavailable[name]))
            continue
        for q in quantities:
            r, ref = results[name][q], results[reference][q]
            if isinstance(r, Exception):
                checks.append(Check(name, q, "error", reason=str(r)))
                continue
            labels = component_labels(prob, q)
            err = r.error if name == "numeric" or r.error is not None else None
            bad, mabs, mrel, worst, tol = _compare(r.value, ref.value, labels, rtol, atol, err)
            status = "ok"
            if bad:
                status = "kink" if kinks else "mismatch"
            checks.append(Check(name, q, status, mabs, mrel, worst,
                                reason=(f"not differentiable here: {kinks[0]}" if bad and kinks else None)))
    if "grad" in quantities and not kinks:
        f = lambda z: prob.value(z)  # noqa: E731
        for c in checks:
            if c.quantity == "grad" and c.status in ("ok", "mismatch"):
                order, _ = taylor_order(f, x, results[c.engine]["grad"].value, seed=seed)
                c.order = order
    report = Report(prob, reference, checks, kinks, [])
    report.x = x
    return report


def merge(reports):
    """Worst case over many points: per engine x quantity keep the largest difference."""
    first = reports[0]
    merged = {}
    for rep in reports:
        for c in rep.checks:
            key = (c.engine, c.quantity)
            cur = merged.get(key)
            rank = STATUS_RANK
            better = cur is None or rank[c.status] > rank[cur.status] or (
                rank[c.status] == rank[cur.status] and (c.max_abs or 0) > (cur.max_abs or 0))
            if better:
                c.point = rep.prob.describe(rep.x)
                merged[key] = c
    kinks = sorted({k for r in reports for k in r.kinks})
    claims = [c for r in reports for c in r.claims]
    return Report(first.prob, first.reference, list(merged.values()), kinks, first.warnings,
                  claims=_worst_claims(claims), points=len(reports))


def _worst_claims(claims):
    out = {}
    for c in claims:
        if c.quantity not in out or (c.status == "mismatch" and out[c.quantity].status != "mismatch") or (
                c.status == out[c.quantity].status and (c.max_abs or 0) > (out[c.quantity].max_abs or 0)):
            out[c.quantity] = c
    return list(out.values())


def random_points(prob, n, seed, box=None, tries=50):
    """Points near --at (or uniform in --box lo,hi) inside the domain; yields (x, None)
    or (None, reason) for a draw that found no point inside the domain."""
    rng = np.random.default_rng(seed)
    x0 = prob.x0()
    for _ in range(n):
        for _ in range(tries):
            if box is not None:
                x = rng.uniform(box[0], box[1], prob.n)
            else:
                x = x0 + rng.uniform(-0.5, 0.5, prob.n) * np.maximum(np.abs(x0), 1.0)
            try:
                prob.evaluate(x)
            except DomainError:
                continue
            yield x, None
            break
        else:
            yield None, "no point inside the domain found"


def check_claims(prob, report, text, kind, x):
    """Compare a user's derived formula (gradient or Hessian) with the reference."""
    from adcalc.engines import get_engine
    from adcalc.parse import parse
    from adcalc.points import split_top
    ref = compute(get_engine(report.reference), prob, "grad" if kind == "grad" else "hessian", x)
    rows = [r for r in text.split(";")] if kind == "hessian" else [text]
    parts = [p for r in rows for p in split_top(r)]
    values = []
    for p in parts:
        expr = parse(p)
        unknown = [nm for nm in expr.names if nm not in prob.variables]
        if unknown:
            raise InputError(f"the claimed formula {p.strip()!r} uses {unknown[0]!r}, which is not a variable")
        node = expr.build(prob.graph, prob.shapes)
        values.append(np.ravel(prob.evaluate(x, [node])[node.id]))
    claimed = np.concatenate(values) if values else np.zeros(0)
    want = prob.n if kind == "grad" else prob.n * prob.n
    if claimed.size != want:
        raise InputError(f"the claimed {kind} has {claimed.size} components; the expression has {want}")
    labels = component_labels(prob, "grad" if kind == "grad" else "hessian")
    bad, mabs, mrel, worst, _ = _compare(claimed, ref.value, labels, 1e-9, 1e-12)
    status = "mismatch" if bad else "ok"
    reason = None
    if bad:
        i = labels.index(worst)
        reason = (f"claimed {kind} differs at {worst}: claim {float(claimed[i])!r}, "
                  f"{report.reference} gives {float(np.ravel(ref.value)[i])!r}")
    return Check("claim", f"expect-{kind}", status, mabs, mrel, worst, reason=reason)
