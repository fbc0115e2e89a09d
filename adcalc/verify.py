"""Cross-verification: every engine computes every quantity; the differences are judged.

Verdict rules, component by component, against a reference engine:

* reference: symbolic (SymPy's own diff, none of the table's rules), then forward,
  then reverse; at a point where the expression is not differentiable (a kink, from
  each record's kink predicate) forward, then reverse, whose values follow the
  documented conventions (SymPy's Heaviside(0) = 1/2 is not the convention);
* tolerance: atol + rtol max(|ref|, largest |ref| of the quantity) for exact engines;
  for the numeric engine 2 x its own error estimate + 16 eps (|ref| + largest |ref|);
* ok: |value - ref| <= tolerance (an infinite or NaN difference is never ok);
* not finite: the reference, or the engine, is infinite or NaN there (overflow, an
  infinite slope): nothing to compare; said in the summary, never a mismatch;
* kink: outside the tolerance at a point that is a kink, or wherever the engine itself
  reports one (the numeric engine's one-sided slopes): conventions differ, the
  conventions are named;
* mismatch: outside the tolerance anywhere else.  Exit status 1.

A row (engine x quantity) takes its worst component (mismatch > kink > not finite >
ok) and states its tolerance.  When nothing finite is left to compare, verify says so
and exits 2.  A Taylor test checks each gradient without any step: the remainder
|f(x+hd) - f(x) - h g.d| must shrink like h^2.
"""
import numpy as np

from adcalc.core import PRIMS
from adcalc.engines import ENGINES, engine_class
from adcalc.engines.base import compute
from adcalc.errors import AdcalcError, DomainError, EngineUnavailable, InputError
from adcalc.evaluate import computed_where, needed, overflows
from adcalc.graph import to_text
from adcalc.points import component_names
from adcalc.quantities import NAMES, QUANTITIES

REFERENCE_ORDER = ("symbolic", "forward", "reverse")
KINK_REFERENCE_ORDER = ("forward", "reverse", "symbolic")
EPS = float(np.finfo(float).eps)   # 2^-52
RANK = {"unavailable": 0, "ok": 1, "not finite": 2, "kink": 3, "mismatch": 4, "error": 5}


class NothingFinite(InputError):
    """Every component of the reference is infinite or NaN: nothing to compare."""


class Check:
    """One engine x one quantity."""

    __slots__ = ("engine", "quantity", "status", "max_abs", "max_rel", "worst", "tolerance", "reason",
                 "point", "order", "not_finite")

    def __init__(self, engine, quantity, status, max_abs=None, max_rel=None, worst=None, tolerance=None,
                 reason=None, point=None, order=None, not_finite=0):
        self.engine, self.quantity, self.status = engine, quantity, status
        self.max_abs, self.max_rel, self.worst, self.tolerance = max_abs, max_rel, worst, tolerance
        self.reason, self.point, self.order, self.not_finite = reason, point, order, not_finite

    def as_dict(self):
        return {"status": self.status, "max_abs_diff": self.max_abs, "max_rel_diff": self.max_rel,
                "tolerance": self.tolerance, "worst": self.worst, "reason": self.reason,
                "point": self.point, "taylor_order": self.order, "not_finite": self.not_finite}


class Report:
    """The outcome of a verification; `return_code` is 0 when every engine that ran agrees."""

    def __init__(self, prob, reference, checks, kinks, warnings=(), claims=(), points=1, x=None):
        self.prob, self.reference, self.checks, self.kinks = prob, reference, list(checks), list(kinks)
        self.warnings, self.claims, self.points, self.x = list(warnings), list(claims), points, x

    @property
    def ok(self):
        """No disagreement beyond a tolerance.  An engine that failed (status error) is reported
        but is no disagreement: the others, and the reference, still vouch."""
        return not any(c.status == "mismatch" for c in self.checks + self.claims)

    @property
    def return_code(self):
        return 0 if self.ok else 1

    @property
    def not_finite(self):
        return sorted({c.quantity for c in self.checks if c.status == "not finite" or c.not_finite})


def default_quantities(prob):
    return ["grad", "hessian", "hvp"] if prob.m == 1 else ["jacobian", "jvp", "vjp"]


def component_labels(prob, quantity):
    return QUANTITIES[quantity].labels(prob.inputs, component_names("f", prob.out_shape))


def find_kinks(prob, x, vals=None):
    """Sub-expressions at a point where they are not differentiable, with the convention
    the rules follow there (each record's kink predicate and text)."""
    nodes = prob.graph.nodes
    kinky = [i for i in needed(prob.graph, [prob.output])
             if nodes[i].op in PRIMS and PRIMS[nodes[i].op].kink is not None]
    if not kinky:   # smooth records only: nothing to evaluate
        return []
    vals = prob.evaluate(x) if vals is None else vals
    out = []
    with np.errstate(all="ignore"):
        for i in kinky:
            node = nodes[i]
            kink = PRIMS[node.op].kink
            if np.any(kink[0](*[vals[a.id] for a in node.args], vals[i], **node.p)):
                out.append(f"{to_text(node)} ({kink[1]})")
    return out


def find_overflows(prob, x, vals=None):
    """Sub-expressions of f that overflow at a point (evaluate.overflows), as text."""
    return [to_text(node) for node, _ in overflows(prob, prob.evaluate(x) if vals is None else vals, 1)]


TINY_NORMAL = 2.0 ** -1022


def find_underflows(prob, x, vals=None):
    """Sub-expressions of f that underflow at a point: 0 or subnormal (fewer than 53 bits)
    from finite nonzero arguments, with the underflow flag raised when the record computes
    it again (b*b at 7e-287, whose b*b/b then is 0, not b; not x - x, an exact 0).  What
    is computed through one may have lost digits or be 0."""
    nodes = prob.graph.nodes
    vals = prob.evaluate(x) if vals is None else vals
    out = []
    for i in computed_where(prob, vals, lambda a: np.abs(a) < TINY_NORMAL):
        node, prim = nodes[i], PRIMS[nodes[i].op]
        args = [vals[a.id] for a in node.args]
        if not all(np.all(np.isfinite(a) & (a != 0)) for a in args):
            continue
        try:
            with np.errstate(all="ignore", under="raise"):
                prim.impl(*args, **node.p) if node.p else prim.impl(*args)
        except FloatingPointError:
            out.append(to_text(node))
    return out


LOST_TURNS = 1e-8   # the rounding of a periodic function's computed argument, in periods, from which it warns


def _doubling(node):
    """x + x, or x times or over a constant power of two: exact (barring overflow)."""
    a, b = node.args
    if node.op == "add":
        return a is b
    c = b if b.op == "const" else a if node.op == "mul" and a.op == "const" else None
    if c is None or np.ndim(c.value):
        return False
    m, _ = np.frexp(abs(float(c.value)))
    return m == 0.5


def find_lost_turns(prob, x, vals=None):
    """(text, |argument|, digits left) for each periodic record (sin, cos, tan) whose argument
    is computed (not a variable's or a constant's own entries) and so large that its
    rounding, about eps |argument| radians, is beyond LOST_TURNS of a period: sin(b**3) at
    b = 2.9e28 is sin of a number known to within 5e69, a noise, and so is every derivative
    of it (all engines: the formulas are the same)."""
    nodes = prob.graph.nodes
    periodic = [i for i in needed(prob.graph, [prob.output])
                if nodes[i].op in PRIMS and PRIMS[nodes[i].op].period is not None]
    if not periodic:
        return []
    exact = {}

    def made_exactly(node):
        hit = exact.get(node.id)
        if hit is None:
            hit = exact[node.id] = (node.op in ("var", "const") or PRIMS[node.op].selects
                                    or node.op in ("mul", "div", "add") and _doubling(node)) \
                and all(made_exactly(a) for a in node.args)
        return hit

    out = []
    for i in periodic:
        arg = nodes[i].args[0]
        if made_exactly(arg):
            continue
        vals = prob.evaluate(x) if vals is None else vals
        with np.errstate(all="ignore"):
            big = float(np.max(np.abs(np.real(vals[arg.id])), initial=0.0))
        turns = EPS * big / PRIMS[nodes[i].op].period
        if np.isfinite(big) and turns > LOST_TURNS:
            out.append((to_text(nodes[i]), big, max(0.0, -np.log10(turns * 2 * np.pi))))
    return out


def judge(value, ref, labels, rtol, atol, error=None, kinked=False, own=None):
    """(status, max abs diff, max rel diff, worst label, tolerance there, count of components
    not finite in the reference) of one engine's quantity against the reference; `error`:
    the engine's error estimate (then the tolerance is built from it), `kinked`: the point
    is a kink, `own`: the engine's own per-component statuses (numeric)."""
    a, b = np.asarray(value, float).ravel(), np.asarray(ref, float).ravel()
    fin = np.isfinite(b)
    scale = float(np.max(np.abs(b[fin]), initial=0.0))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(a == b, 0.0, np.abs(a - b))
        diff = np.where(fin & ~np.isfinite(a), np.inf, diff)
        if error is not None:
            err = np.nan_to_num(np.asarray(error, float).ravel(), nan=np.inf, posinf=np.inf)
            tol = 2.0 * err + 16 * EPS * (np.abs(b) + scale)
        else:
            tol = atol + rtol * np.maximum(np.abs(b), scale)
        rel = diff / np.maximum(np.abs(b), 1e-300)
    within = fin & np.isfinite(diff) & (diff <= tol)
    said_kink = np.zeros(a.shape, bool) if own is None else np.isin(np.asarray(own, object).ravel(),
                                                                      ("kink", "jump"))
    # an engine that overflows (inf or nan) where the reference is finite says it cannot tell:
    # not finite, never a finite wrong number
    nf_here = ~fin | ~np.isfinite(a)
    comp = np.where(nf_here, "not finite", np.where(said_kink, "kink", np.where(
        within, "ok", np.where(kinked, "kink", "mismatch"))))
    status = max(comp, key=RANK.get, default="ok")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(fin, np.where(tol > 0, diff / np.where(tol > 0, tol, 1.0),
                                       np.where(diff > 0, np.inf, 0.0)), -1.0)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    i = int(np.argmax(ratio)) if ratio.size else 0
    worst = labels[i] if ratio.size and ratio[i] > 0 else None
    show = ~nf_here
    if not show.any():
        return status, None, None, worst, None, int(nf_here.sum())
    j = int(np.argmax(np.where(show, diff, -1.0)))       # the largest difference, and its tolerance
    max_rel = float(np.max(np.where(show, rel, 0.0), initial=0.0))
    return status, float(diff[j]), max_rel, worst, float(tol[j]), int(nf_here.sum())


def directions(prob, seed):
    rng = np.random.default_rng(seed)
    return {"hvp": rng.standard_normal(prob.n), "jvp": rng.standard_normal(prob.n),
            "vjp": rng.standard_normal(prob.m)}


def _reference(results, kinks):
    order = KINK_REFERENCE_ORDER if kinks else REFERENCE_ORDER
    ok = [n for n in order if n in results and not any(isinstance(r, Exception) for r in results[n].values())]
    if not ok:
        raise EngineUnavailable("no exact engine could compute a reference here")
    return ok[0]


def verify(prob, quantities=None, engines=None, rtol=1e-8, atol=1e-12, x=None, seed=0, vectors=None,
           options=None):
    """Run every engine on every quantity at one point and judge them: a Report."""
    x = prob.x0() if x is None else np.asarray(x, float)
    quantities = list(quantities or default_quantities(prob))
    names = list(engines or ENGINES)
    if prob.n == 0:
        raise NothingFinite("nothing to compare: the expression has no variables to differentiate by")
    vectors = dict(directions(prob, seed), **(vectors or {}))
    prob.evaluate(x)  # a point outside the domain is an input error for the whole run
    kinks = find_kinks(prob, x)
    results, unavailable = {}, {}
    for name in names:
        try:
            engine = engine_class(name)(**(options or {}).get(name, {}))
        except EngineUnavailable as e:
            unavailable[name] = str(e)
            continue
        reason = engine.available()
        if reason:
            unavailable[name] = reason
            continue
        results[name] = {}
        with np.errstate(all="ignore"):
            for q in quantities:
                try:
                    results[name][q] = compute(engine, prob, q, x, vectors.get(q))
                except EngineUnavailable as e:  # declines this problem or quantity (a size limit)
                    results[name][q] = e
                except InputError:
                    raise
                except (AdcalcError, FloatingPointError, ValueError, ZeroDivisionError, RecursionError) as e:
                    results[name][q] = e
    for name, rs in list(results.items()):   # declined every quantity for one reason: one row
        reasons = {str(r) if isinstance(r, EngineUnavailable) else None for r in rs.values()}
        if len(reasons) == 1 and None not in reasons:
            unavailable[name] = reasons.pop()
            del results[name]
    reference = _reference(results, kinks)
    checks = []
    for name in names:
        if name in unavailable:
            checks.append(Check(name, "*", "unavailable", reason=unavailable[name]))
            continue
        for q in quantities:
            r, ref = results[name][q], results[reference][q]
            if isinstance(r, EngineUnavailable):
                checks.append(Check(name, q, "unavailable", reason=str(r)))
                continue
            if isinstance(r, Exception):
                checks.append(Check(name, q, "error", reason=_one_line(r)))
                continue
            st, mabs, mrel, worst, tol, nf = judge(r.value, ref.value, component_labels(prob, q), rtol, atol,
                                                   r.error if r.error is not None else None, bool(kinks),
                                                   r.info.get("status"))
            reason = None
            if st == "kink":
                reason = "not differentiable here: " + "; ".join(kinks) if kinks else \
                    "the engine finds one-sided slopes that differ here"
            elif st == "not finite" or nf:
                in_ref = int(np.sum(~np.isfinite(np.asarray(ref.value, dtype=float))))
                reason = (f"{in_ref} component(s) not finite in the reference (overflow or an infinite slope)"
                          if in_ref else f"{nf} component(s) not finite from this engine where the reference "
                          f"is finite: it cannot tell here (no number is claimed)")
            checks.append(Check(name, q, st, mabs, mrel, worst, tol, reason, not_finite=nf))
    if "grad" in quantities and not kinks:
        _taylor(prob, x, results, checks, seed)
    compared = [c for c in checks if c.status not in ("unavailable", "error")]
    if compared and all(c.max_abs is None for c in compared):
        fx = prob.value(x)
        raise NothingFinite(f"nothing finite to compare at this point: every derivative is infinite or "
                            f"undefined in the reference ({reference}); f = {_short(fx)}")
    return Report(prob, reference, checks, kinks, x=x)


def _taylor(prob, x, results, checks, seed):
    from adcalc import numdiff   # the numerical core: a derivative command's checks do without it

    def fval(z):
        try:
            v = float(np.ravel(prob.value(z))[0])
        except DomainError:
            return None
        return v if np.isfinite(v) else None
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(x.size) * numdiff.nominal_scale(x)
    for c in checks:
        if c.quantity == "grad" and c.status in ("ok", "mismatch"):
            g = results[c.engine]["grad"].value
            if np.all(np.isfinite(g)):
                c.order, _ = numdiff.taylor_order(fval, x, g, d)


def merge(reports):
    """Worst case over many points: per engine x quantity keep the worst row."""
    merged = {}
    for rep in reports:
        for c in rep.checks:
            key = (c.engine, c.quantity)
            cur = merged.get(key)
            if cur is None or RANK[c.status] > RANK[cur.status] or (
                    RANK[c.status] == RANK[cur.status] and (c.max_abs or 0) > (cur.max_abs or 0)):
                c.point = rep.prob.describe(rep.x)
                merged[key] = c
    kinks = sorted({k for r in reports for k in r.kinks})
    claims = {}
    for c in (c for r in reports for c in r.claims):
        cur = claims.get(c.quantity)
        if cur is None or RANK[c.status] > RANK[cur.status] or (
                c.status == cur.status and (c.max_abs or 0) > (cur.max_abs or 0)):
            claims[c.quantity] = c
    first = reports[0]
    return Report(first.prob, first.reference, list(merged.values()), kinks, claims=list(claims.values()),
                  points=len(reports), x=first.x)


def random_points(prob, count, seed, box=None):
    """Points near the problem's point (or uniform in box) inside its domain and where f is
    finite: yields (x, None) or (None, reason)."""
    def inside(x):
        try:
            return bool(np.all(np.isfinite(prob.value(x))))
        except DomainError:
            return False
    from adcalc import numdiff
    return numdiff.random_points(prob.x0(), count, seed, box, inside)


def check_claims(prob, report, text, kind, x):
    """Compare a user's derived formula (gradient or Hessian) with the reference."""
    from adcalc.engines import get_engine
    from adcalc.parse import parse
    from adcalc.points import split_top
    q = "grad" if kind == "grad" else "hessian"
    ref = compute(get_engine(report.reference), prob, q, x)
    rows = text.split(";") if kind == "hessian" else [text]
    values = []
    for p in (p for r in rows for p in split_top(r)):
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
    labels = component_labels(prob, q)
    st, mabs, mrel, worst, tol, nf = judge(claimed, ref.value, labels, 1e-9, 1e-12)
    reason = None
    if st == "mismatch":
        i = labels.index(worst)
        reason = (f"claimed {kind} differs at {worst}: claim {float(claimed[i])!r}, "
                  f"{report.reference} gives {float(np.ravel(ref.value)[i])!r}")
    return Check("claim", f"expect-{kind}", st, mabs, mrel, worst, tol, reason, not_finite=nf)


def run(prob, quantities=None, engines=None, rtol=1e-8, atol=1e-12, points=None, random=None, seed=0,
        box=None, claims=()):
    """The whole `verify`: at the problem's point, at given points, or at `random` random
    points (in `box`), with claimed formulas [(kind, text)]; the worst case over points."""
    quantities = list(quantities or default_quantities(prob))
    for q in quantities:
        if q not in NAMES:
            raise InputError(f"--quantities: unknown quantity {q!r} ({', '.join(NAMES)})")
        if QUANTITIES[q].scalar and prob.m != 1:
            raise InputError(f"--quantities: {q} needs a scalar expression; this one has {prob.m} outputs")
    for n in engines or []:
        if n not in ENGINES:
            raise InputError(f"--engines: unknown engine {n!r}; choose from {', '.join(ENGINES)}")
    warnings = []
    xs = list(points) if points is not None else [prob.x0()]
    if random:
        xs = []
        for x, why in random_points(prob, random, seed, box):
            if x is None:
                warnings.append(why)
            else:
                xs.append(x)
        if not xs:
            raise InputError("--random: no point inside the expression's domain was found; give --at or --box")
    reports = []
    for x in xs:
        try:
            rep = verify(prob, quantities, engines, rtol=rtol, atol=atol, x=x, seed=seed)
        except (DomainError, NothingFinite) as e:
            if len(xs) == 1:
                raise
            warnings.append(_one_line(e))
            continue
        rep.claims = [check_claims(prob, rep, text, kind, x) for kind, text in claims]
        reports.append(rep)
    if not reports:
        raise DomainError("every point was outside the expression's domain or had nothing finite to compare")
    report = merge(reports) if len(reports) > 1 else reports[0]
    if len(reports) == 1:
        for c in report.checks:
            c.point = None
    skipped = len(xs) - len(reports)
    report.warnings = warnings + ([f"{skipped} of {len(xs)} points were skipped"] if skipped else [])
    report.failing = [r.x for r in reports if not r.ok]
    report.quantities = quantities
    return report


def _one_line(e):
    return " ".join(str(e).split())


def _short(a):
    a = np.asarray(a, float)
    return repr(float(a)) if a.ndim == 0 else np.array2string(a, threshold=6, separator=", ")
