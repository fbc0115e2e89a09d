"""Accuracy of the numeric engine against exact derivatives, beside SciPy and numdifftools.

    python benchmarks/numeric_accuracy.py [--repeat N] [--case NAME] [--json FILE]

For each test function (Moré, Garbow and Hillstrom's polynomial and transcendental
problems, the worked example and a badly scaled one) and each method it prints the
gradient's and the Hessian's max relative error ("err"), the largest error estimate
the method reported, relative in the same way ("estimate"), whether that estimate is
at least the true error in every component ("bounds"), and the median wall time
over rounds in which every method runs once, in a shuffled order.  The same figures, measured in the same run, for scipy.optimize.
approx_fprime (no estimate), scipy.differentiate.jacobian/hessian (SciPy >= 1.15)
and numdifftools Gradient/Hessian (when installed).  Every method differences the
same black box, adcalc's Problem.f.

numdifftools and approx_fprime call f one point at a time; adcalc and
scipy.differentiate evaluate the graph at many points per call.

Exact derivatives: SymPy's, of the graph mapped through the primitive table (float
constants and the point taken as exact binary fractions), evaluated to 40 digits; the
reverse engine is the reference where that mapping is not possible.  Relative error
of a component: |approx - exact| / |exact|, or / max|exact| where exact is 0.

Ends with issue 4's acceptance for the default method and exits 1 if it fails.
"""
import argparse
import json
import random
import statistics
import sys
import time
import warnings

import numpy as np

from adcalc.engines.numeric import NumericEngine
from adcalc.engines.reverse import ReverseEngine
from adcalc.evaluate import needed
from adcalc.primitives import PRIMS
from adcalc.problem import Problem

HELIX = "100*((x3 - 10*(atan(x2/x1)/(2*pi) + 0.5))^2 + (sqrt(x1^2 + x2^2) - 1)^2) + x3^2"
CASES = [  # name, expression, point, kind
    ("rosenbrock", "100*(x2 - x1^2)^2 + (1 - x1)^2", "-1.2,1", "smooth"),
    ("beale", "(1.5 - x1 + x1*x2)^2 + (2.25 - x1 + x1*x2^2)^2 + (2.625 - x1 + x1*x2^3)^2",
     "1,1", "smooth"),
    ("powell singular", "(x1 + 10*x2)^2 + 5*(x3 - x4)^2 + (x2 - 2*x3)^4 + 10*(x1 - x4)^4",
     "3,-1,0,1", "smooth"),
    ("wood", "100*(x2 - x1^2)^2 + (1 - x1)^2 + 90*(x4 - x3^2)^2 + (1 - x3)^2"
     " + 10.1*((x2 - 1)^2 + (x4 - 1)^2) + 19.8*(x2 - 1)*(x4 - 1)", "-3,-1,-3,-1", "smooth"),
    ("helical valley", HELIX, "-1,0,0", "smooth"),
    ("helical (atan2, hypot)", "100*((x3 - 10*atan2(x2, x1)/(2*pi))^2 + (hypot(x1, x2) - 1)^2) + x3^2",
     "-1,0.5,0.5", "smooth"),
    ("exp-sin-log-tanh", "exp(sin(x1)*x2) + log(1+x3^2)/x1 + tanh(x2*x3)", "0.8,1.5,0.6", "smooth"),
    ("worked example", "log(x1)+x1*x2-sin(x2)", "2,5", "smooth"),
    ("badly scaled", "exp(1e3*x1)*x2^2 + 1e-6*cos(x2)", "1e-3,2e4", "badly scaled"),
]
ACCEPT = {"smooth": (1e-12, 1e-9), "badly scaled": (1e-6, 1e-6)}


def exact(prob):
    """(gradient, Hessian, source) at the problem's point."""
    try:
        import sympy as sp
        syms = {v: sp.Symbol(v) for v in prob.variables}
        vals = {}
        for i in needed(prob.graph, [prob.output]):
            node = prob.graph.nodes[i]
            if node.op == "const":
                vals[i] = sp.Rational(float(node.value))
            elif node.op == "var":
                vals[i] = syms[node.p["name"]]
            else:
                prim, args = PRIMS[node.op], [vals[a.id] for a in node.args]
                if prim.kind != "elementwise" or node.shape:
                    raise ValueError(node.op)
                vals[i] = getattr(sp, prim.sympy)(*args) if isinstance(prim.sympy, str) else prim.sympy(sp, *args)
        f, xs = vals[prob.output.id], [syms[v] for v in prob.variables]
        at = {s: sp.Rational(float(prob.point[v])) for v, s in syms.items()}
        num = lambda e: float(sp.N(e, 40, subs=at))  # noqa: E731
        g = [sp.diff(f, a) for a in xs]
        return (np.array([num(e) for e in g]),
                np.array([[num(sp.diff(gi, b)) for b in xs] for gi in g]), "sympy")
    except (ImportError, ValueError, TypeError, AttributeError):
        rev, x = ReverseEngine(), prob.x0()
        return rev.grad(prob, x), rev.hessian(prob, x), "reverse"


def rel_error(approx, ex):
    approx, ex = np.asarray(approx, dtype=float), np.asarray(ex, dtype=float)
    den = np.where(ex != 0, np.abs(ex), np.max(np.abs(ex)) or 1.0)
    return float(np.max(np.abs(approx - ex) / den))


def vectorized(prob):
    """prob.f for scipy.differentiate: x of shape (n, ...) -> values of shape (...), the
    points evaluated together as the numeric engine does (one by one if that fails)."""
    def f(X):
        X = np.asarray(X, dtype=float)
        flat = X.reshape(X.shape[0], -1).T
        try:
            out = np.asarray(prob.evaluate(flat)[prob.output.id], dtype=float).reshape(len(flat))
        except Exception:  # a point outside the domain: NaN there
            out = np.array([scalar(prob)(p) for p in flat])
        return out.reshape(X.shape[1:])
    return f


def scalar(prob):
    def f(x):
        try:
            return float(prob.f(np.asarray(x, dtype=float))[0])
        except Exception:  # a peer's step outside the domain
            return float("nan")
    return f


def methods(prob):
    """{label: (gradient fn, Hessian fn)}; each fn returns (value, estimate or None)."""
    x = prob.x0()
    out = {}
    for m in ("default", "richardson", "central", "complex-step"):
        eng = NumericEngine(method=None if m == "default" else m)
        out[f"adcalc {m}"] = (lambda e=eng: _pair(e.grad(prob, x)), lambda e=eng: _pair(e.hessian(prob, x)))
    from scipy.optimize import approx_fprime
    out["scipy approx_fprime"] = (lambda: (approx_fprime(x, scalar(prob)), None), None)
    try:
        from scipy.differentiate import hessian, jacobian
        vf = vectorized(prob)
        out["scipy.differentiate"] = (lambda: _pair(jacobian(vf, x), "df"), lambda: _pair(hessian(vf, x), "ddf"))
    except ImportError:
        pass
    try:
        import numdifftools as nd
        out["numdifftools"] = (lambda: _pair(nd.Gradient(scalar(prob), full_output=True)(x), "estimate"),
                               lambda: _pair(nd.Hessian(scalar(prob), full_output=True)(x), "estimate"))
    except ImportError:
        out["numdifftools"] = None
    return out


def _pair(r, key=None):
    if key is None:
        return r.value, r.error
    err = getattr(r, "error_estimate", None) if key == "estimate" else r.error
    return np.asarray(getattr(r, key), dtype=float), None if err is None else np.asarray(err, dtype=float)


def run_interleaved(fns, repeat, seed=0):
    """{key: (last output or the exception, median seconds)}: every fn once per round,
    in a shuffled order each round, so that a noisy machine slows all of them alike."""
    keys, times, outs = list(fns), {k: [] for k in fns}, {}
    rng = random.Random(seed)
    for _ in range(repeat):
        rng.shuffle(keys)
        for k in keys:
            t = time.perf_counter()
            try:
                outs[k] = fns[k]()
            except Exception as e:  # a method that refuses (complex step on atan2) or fails
                outs[k] = e
            times[k].append(time.perf_counter() - t)
    return {k: (outs[k], statistics.median(times[k])) for k in fns}


def figures(out, t, ex):
    if isinstance(out, Exception):
        return {"error": f"{type(out).__name__}: {out}"}
    val, est = out
    val = np.reshape(val, ex.shape)
    bounds = None if est is None else bool(np.all(np.reshape(est, ex.shape) >= np.abs(val - ex)))
    est_rel = None if est is None else rel_error(ex + np.reshape(est, ex.shape), ex)
    return {"max_rel_error": rel_error(val, ex), "max_rel_estimate": est_rel, "bounds": bounds, "time_s": t}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5,
                    help="rounds; each method runs once per round, in a shuffled order (median; default 5)")
    ap.add_argument("--case", action="append", help="only this case (repeatable)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows, failures = [], []
    for name, expr, at, kind in CASES:
        if args.case and name not in args.case:
            continue
        prob = Problem(expr, at=at)
        g_ex, h_ex, source = exact(prob)
        rev, x = ReverseEngine(), prob.x0()
        default = NumericEngine().grad(prob, x).info["method"]
        print(f"\n{name}: {expr}  at ({at})\n  [default method here: {default}; exact: {source}; reverse "
              f"engine rel. error {rel_error(rev.grad(prob, x), g_ex):.1e} / {rel_error(rev.hessian(prob, x), h_ex):.1e}]")
        print(f"  {'method':<20} {'grad err':>8} {'estimate':>8} {'bounds':>6} {'time':>8}   "
              f"{'hess err':>8} {'estimate':>8} {'bounds':>6} {'time':>8}")
        table = methods(prob)
        ran = run_interleaved({(label, i): fn for label, pair in table.items() if pair
                               for i, fn in enumerate(pair) if fn}, args.repeat)
        for label, pair in table.items():
            if pair is None:
                print(f"  {label:<20} (not installed)")
                continue
            g = figures(*ran[label, 0], g_ex)
            h = figures(*ran[label, 1], h_ex) if pair[1] else None
            rows.append({"case": name, "kind": kind, "method": label, "grad": g, "hessian": h})
            print(f"  {label:<20} {_cells(g)}   {_cells(h)}")
            if label == "adcalc default":
                gmax, hmax = ACCEPT[kind]
                for what, r, lim in (("gradient", g, gmax), ("Hessian", h, hmax)):
                    if "error" in r or r["max_rel_error"] > lim or not r["bounds"]:
                        failures.append(f"{name}: {what} {r.get('error') or _cells(r)} (limit {lim:g})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    print("\nacceptance (issue 4, default method): gradient <= 1e-12 and Hessian <= 1e-9 on smooth"
          " cases, <= 1e-6 badly scaled, estimate >= true error everywhere:",
          "PASS" if not failures else "FAIL")
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


def _cells(r):
    if r is None:
        return f"{'-':>8} {'-':>8} {'-':>6} {'-':>8}"
    if "error" in r:
        return f"{'refused' if 'analytic' in r['error'] else 'failed':>8} {'':>8} {'':>6} {'':>8}"
    b = {None: "-", True: "yes", False: "NO"}[r["bounds"]]
    e = "-" if r["max_rel_estimate"] is None else f"{r['max_rel_estimate']:8.1e}"
    return f"{r['max_rel_error']:8.1e} {e:>8} {b:>6} {r['time_s'] * 1e3:6.1f}ms"


if __name__ == "__main__":
    sys.exit(main())
