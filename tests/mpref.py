"""High-precision reference for the extremes harness (issue 9): gradient, Hessian, HVP.

The rule, for one case (tests/extremes.py) at its point x:

1. Domain, kinks, range. The tree is evaluated node by node in mpmath (120 digits) with
   the language's domains: log, log2, log10 need u > 0; log1p u > -1; sqrt u >= 0;
   asin, acos |u| <= 1; acosh u >= 1; atanh |u| < 1; u / w needs w != 0; u ** w needs
   w integer where u < 0 and w >= 0 where u == 0; log(u, b) needs u > 0, b > 0, b != 1;
   any other complex or infinite node value is outside the domain too. A case outside
   the domain is "domain": adcalc must answer exit 2, kind "domain". The kinks are
   abs, relu, sign at 0, max/min at a tie, atan2, hypot, norm at 0. A node that
   exp would take past |u| = 1e40 (exp, expm1, sinh, cosh, sigmoid, softplus,
   logsumexp, u ** w with |w log|u|| > 1e40; erf, erfc past 1e20) makes the case "out of
   range": its true value lies beyond any double by a factor no float can hold, and
   mpmath would spend unbounded time on it. Nothing of it is scored.
2. Derivatives. SymPy's own `diff` differentiates the case's SymPy form (gradient, and
   the Hessian's upper triangle), built node by node with a term e_k added to every
   operation's result for step 4 (e_k = 0 here); one function, with common subexpressions shared
   (sympy.cse), is compiled for mpmath, each statement guarded: a division by zero gives
   inf, any other arithmetic failure nan. It runs at 60 and 90 digits; a component
   whose float64 roundings differ by more than one ulp, or that is exactly 0 at both
   (cancellation can round a nonzero result to exactly 0), runs again at 400 and then
   1200 digits, until two steps agree. What never agrees is "unresolved".
3. Statuses. A component is "finite" (its value rounded to float64), "not finite" (it
   overflows 1.8e308 once rounded, is infinite, or is complex although the function is
   real: an infinite slope, an undefined partial), "kink" (a kink node at the point, or
   one that a perturbation below flips, depends on this input: grad_i on x_i, H_ij on x_i
   or x_j, hvp_i on x_i or on any x_j with v_j != 0) or "unresolved" (nan: an
   indeterminate form such as 0*inf at an exact zero; or a perturbation makes it not
   finite: no tolerance is meaningful).
4. Tolerance of a finite component: the sum of
   - its condition (mixed backward error): every input is multiplied by 1 + 4 eps s_i
     and the result u_k of every operation of the tree moves by 4 eps t_k
     max(|u_k(x)|, 2**-1022) (eps = 2**-52; s, t = +1 or -1: all +1, all -1, then
     random signs; `perturbations` of them, 4 by default), evaluated at the precision
     that settled step 2; the largest change of the component. Perturbing the results
     of operations too is what makes exp(log(a)) at a = 1e300 (log a rounded to
     690 (1 + eps) moves the answer by 690 eps) or tanh(log2(v)) fair: no input
     perturbation of 4 eps moves them that far; the floor 2**-1022 is the absolute
     rounding of a result that underflows (exp(a)**0.01 at a = -3855 is 0 in float64,
     whatever the derivative rules). Input perturbations that leave the domain fall
     back to their one-input parts that stay inside (a negative base to an integer
     power: the base moves, the exponent cannot); a case whose point is outside the
     domain but a perturbation is inside is "edge", not scored;
   - 8 ulps of its value, at least 8 * 2**-1074;
   - a rounding allowance of ROUNDING * eps * M, M the running-error magnitude of the
     component: a second-order forward pass over the tree (mpmath) that adds every term
     of the chain rule in absolute value. Without it, a perfect AD fails the rule: the
     chain rule itself cancels (d/da (sin a - a) = cos a - 1 is 0 in float64 at a = 1e-8,
     d/db b/expm1(b) loses 4 bits at b = 0.07), and no input perturbation measures that.
     The local partials are the stable ones issue 9 asks of adcalc: prod without
     division, logsumexp with the softmax difference p_k * sum of the other p_j, powers
     from the exact partials; for atan2, hypot and norm, the several terms an AD rule
     differentiates into. So M measures the terms a careful evaluation must add, and a
     rule that cancels where it need not (the prod, logsumexp, power rules of issue 9)
     still falls outside.
   HVP = H v in mpmath, its change and M from the same sums.

Cost: one SymPy diff + cse + compile per distinct expression (kept for the life of the
process, never on disk), two evaluations at the point, one per perturbation, more only
when step 2 escalates.
"""
import math
import random
from dataclasses import dataclass, field

import mpmath
import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.pycode import MpmathPrinter

EPS = 2.0 ** -52
ROUNDING = 32  # the rounding allowance, in eps per unit of chain-rule magnitude
TINY = 2.0 ** -1074
RANGE, ERF_RANGE = mpmath.mpf(10) ** 40, mpmath.mpf(10) ** 20
# beyond the double range a sine's argument cannot come from a double, and reducing it modulo
# pi needs pi to as many bits as the argument has before its point (exp(1e39) would need
# 10^39 digits: the long run once spent an hour in mpmath's pi there)
TRIG_RANGE = mpmath.mpf(10) ** 330
NODE_DPS = 120
_T = mpmath.mpf(2) ** -300000
_NORMAL = mpmath.mpf(2) ** -1022  # below it, results round by an absolute 2**-1075


@dataclass
class Component:
    """One reference number: status ("finite", "not finite", "kink", "unresolved"),
    its float64 value and tolerance when finite, and a note saying why otherwise."""
    status: str
    value: float = None
    tol: float = None
    note: str = ""


@dataclass
class Reference:
    """The reference of one case. `status` is "ok", "domain" (adcalc must refuse the
    point, exit 2 kind "domain"), "edge" (the point is outside the domain but a 4 eps
    perturbation is inside), "out of range" or "unsupported" (SymPy left a derivative
    unevaluated); `note` says which node or why. `grad` [n], `hessian` [n][n] and `hvp`
    [n] hold Components (empty unless status is "ok"); `dps` is the precision that
    settled the derivatives."""
    status: str
    note: str = ""
    grad: list = field(default_factory=list)
    hessian: list = field(default_factory=list)
    hvp: list = field(default_factory=list)
    dps: int = 0

    def flat(self, command):
        """The components of `command` (grad, hessian, hvp) in adcalc's row-major order."""
        q = getattr(self, command)
        return [c for row in q for c in row] if command == "hessian" else list(q)


# ---- node-by-node evaluation: domain, kinks, range ------------------------------------------

class _Outside(Exception):
    """The point is outside the domain of a node."""


class _Range(Exception):
    """A node's argument is beyond what the reference evaluates."""


def _need(ok, why):
    if not ok:
        raise _Outside(why)


def _bounded(x, limit, why):
    if abs(x) > limit:
        raise _Range(why)
    return x


def _pow(x, y):
    _need(x >= 0 or y == mpmath.floor(y), "negative base to a non-integer power")
    _need(x != 0 or y >= 0, "zero to a negative power")
    if x == 0:
        return mpmath.mpf(1) if y == 0 else mpmath.mpf(0)
    _bounded(y * mpmath.log(abs(x)), RANGE, "power beyond 1e40 in the exponent")
    return (-1) ** int(y % 2) * abs(x) ** y if x < 0 else x ** y


def _cbrt(x):
    return mpmath.sign(x) * mpmath.cbrt(abs(x))


_UNARY = {
    "sin": lambda x: mpmath.sin(_bounded(x, TRIG_RANGE, "sin beyond 1e330")),
    "cos": lambda x: mpmath.cos(_bounded(x, TRIG_RANGE, "cos beyond 1e330")),
    "tan": lambda x: mpmath.tan(_bounded(x, TRIG_RANGE, "tan beyond 1e330")),
    "atan": mpmath.atan,
    "tanh": mpmath.tanh, "asinh": mpmath.asinh, "cbrt": _cbrt, "abs": abs, "sign": mpmath.sign,
    "relu": lambda x: max(x, 0),
    "asin": lambda x: (_need(abs(x) <= 1, "asin outside [-1, 1]"), mpmath.asin(x))[1],
    "acos": lambda x: (_need(abs(x) <= 1, "acos outside [-1, 1]"), mpmath.acos(x))[1],
    "acosh": lambda x: (_need(x >= 1, "acosh below 1"), mpmath.acosh(x))[1],
    "atanh": lambda x: (_need(abs(x) < 1, "atanh outside (-1, 1)"), mpmath.atanh(x))[1],
    "log": lambda x: (_need(x > 0, "log of a non-positive number"), mpmath.log(x))[1],
    "log2": lambda x: (_need(x > 0, "log2 of a non-positive number"), mpmath.log(x, 2))[1],
    "log10": lambda x: (_need(x > 0, "log10 of a non-positive number"), mpmath.log10(x))[1],
    "log1p": lambda x: (_need(x > -1, "log1p at or below -1"), mpmath.log1p(x))[1],
    "sqrt": lambda x: (_need(x >= 0, "sqrt of a negative number"), mpmath.sqrt(x))[1],
    "exp": lambda x: mpmath.exp(_bounded(x, RANGE, "exp beyond 1e40")),
    "expm1": lambda x: mpmath.expm1(_bounded(x, RANGE, "expm1 beyond 1e40")),
    "sinh": lambda x: mpmath.sinh(_bounded(x, RANGE, "sinh beyond 1e40")),
    "cosh": lambda x: mpmath.cosh(_bounded(x, RANGE, "cosh beyond 1e40")),
    "sigmoid": lambda x: 1 / (1 + mpmath.exp(-_bounded(x, RANGE, "sigmoid beyond 1e40"))),
    "softplus": lambda x: mpmath.log1p(mpmath.exp(_bounded(x, RANGE, "softplus beyond 1e40"))),
    "erf": lambda x: mpmath.erf(_bounded(x, ERF_RANGE, "erf beyond 1e20")),
    "erfc": lambda x: mpmath.erfc(_bounded(x, ERF_RANGE, "erfc beyond 1e20")),
    "neg": lambda x: -x,
}


def _div(x, y):
    _need(y != 0, "division by zero")
    return x / y


def _logb(x, b):
    _need(x > 0 and b > 0 and b != 1, "log(u, b) needs u > 0, b > 0, b != 1")
    return mpmath.log(x) / mpmath.log(b)


_NARY = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "div": _div, "pow": _pow, "logb": _logb, "atan2": mpmath.atan2, "hypot": mpmath.hypot,
    "max": lambda *xs: max(xs), "min": lambda *xs: min(xs),
    "sum": lambda *xs: mpmath.fsum(xs), "mean": lambda *xs: mpmath.fsum(xs) / len(xs),
    "prod": lambda *xs: mpmath.fprod(xs),
    "norm": lambda *xs: mpmath.sqrt(mpmath.fsum(x * x for x in xs)),
    "logsumexp": lambda *xs: mpmath.log(mpmath.fsum(
        mpmath.exp(_bounded(x, RANGE, "logsumexp beyond 1e40")) for x in xs)),
}


def _signature(op, xs):
    """Which side of its kink a node is on (None: not a kinked op); `at` when on it."""
    if op in ("abs", "relu", "sign"):
        s = int(mpmath.sign(xs[0]))
        return s, s == 0
    if op in ("max", "min"):
        best = max(xs) if op == "max" else min(xs)
        won = tuple(i for i, x in enumerate(xs) if x == best)
        return won, len(won) > 1
    if op in ("atan2", "hypot", "norm"):
        zero = all(x == 0 for x in xs)
        return zero, zero
    return None, False


def _walk(root, env):
    """Evaluate every node: (kinks {node: (signature, at)}, None, values {id: value}) or
    (None, (kind, why), None)."""
    values, kinks = {}, {}

    def ev(node):
        key = id(node)
        if key in values:
            return values[key]
        if node.op == "var":
            val = env[node.name]
        elif node.op == "const":
            val = mpmath.mpf(node.value)
        else:
            xs = [ev(a) for a in node.args]
            sig, at = _signature(node.op, xs)
            if sig is not None:
                kinks[node] = (sig, at)
            val = (_UNARY[node.op] if node.op in _UNARY else _NARY[node.op])(*xs)
            if isinstance(val, mpmath.mpc) or not mpmath.isfinite(val):
                raise _Outside(f"{node.text} is not a finite real number")
        values[key] = val
        return val

    try:
        with mpmath.workdps(NODE_DPS):
            ev(root)
    except _Outside as e:
        return None, ("domain", f"{e} in {_short(root)}"), None
    except _Range as e:
        return None, ("out of range", f"{e} in {_short(root)}"), None
    except ZeroDivisionError:
        return None, ("domain", f"division by zero in {_short(root)}"), None
    return kinks, None, values


def _short(node):
    return node.text if len(node.text) <= 60 else node.text[:57] + "..."


# ---- the rounding allowance: magnitudes of the chain-rule terms -----------------------------

def _unary_local(op, x):
    """|phi'(x)|, |phi''(x)| of a unary op (mpmath), as the chain rule's terms need them."""
    e2 = lambda: mpmath.exp(-x * x) * 2 / mpmath.sqrt(mpmath.pi)
    sig = lambda t: 1 / (1 + mpmath.exp(-t))
    one_m = lambda: 1 - x * x
    table = {
        "neg": lambda: (1, 0), "abs": lambda: (1, 0), "sign": lambda: (0, 0),
        "relu": lambda: (1 if x > 0 else 0, 0),
        "sin": lambda: (mpmath.cos(x), mpmath.sin(x)), "cos": lambda: (mpmath.sin(x), mpmath.cos(x)),
        "tan": lambda: (1 + mpmath.tan(x) ** 2, 2 * mpmath.tan(x) * (1 + mpmath.tan(x) ** 2)),
        "asin": lambda: (1 / mpmath.sqrt(one_m()), x / one_m() ** 1.5),
        "acos": lambda: (1 / mpmath.sqrt(one_m()), x / one_m() ** 1.5),
        "atan": lambda: (1 / (1 + x * x), 2 * x / (1 + x * x) ** 2),
        "sinh": lambda: (mpmath.cosh(x), mpmath.sinh(x)), "cosh": lambda: (mpmath.sinh(x), mpmath.cosh(x)),
        "tanh": lambda: (mpmath.sech(x) ** 2, 2 * mpmath.tanh(x) * mpmath.sech(x) ** 2),
        "asinh": lambda: (1 / mpmath.sqrt(1 + x * x), x / (1 + x * x) ** 1.5),
        "acosh": lambda: (1 / mpmath.sqrt(x * x - 1), x / (x * x - 1) ** 1.5),
        "atanh": lambda: (1 / one_m(), 2 * x / one_m() ** 2),
        "exp": lambda: (mpmath.exp(x),) * 2, "expm1": lambda: (mpmath.exp(x),) * 2,
        "log": lambda: (1 / x, 1 / x ** 2), "log1p": lambda: (1 / (1 + x), 1 / (1 + x) ** 2),
        "log2": lambda: (1 / (x * mpmath.log(2)), 1 / (x * x * mpmath.log(2))),
        "log10": lambda: (1 / (x * mpmath.log(10)), 1 / (x * x * mpmath.log(10))),
        "sqrt": lambda: (1 / (2 * mpmath.sqrt(x)), 1 / (4 * x * mpmath.sqrt(x))),
        "cbrt": lambda: (1 / (3 * mpmath.cbrt(abs(x)) ** 2), 2 / (9 * mpmath.cbrt(abs(x)) ** 5)),
        "erf": lambda: (e2(), 2 * x * e2()), "erfc": lambda: (e2(), 2 * x * e2()),
        "sigmoid": lambda: (sig(x) * sig(-x), sig(x) * sig(-x)),
        "softplus": lambda: (sig(x), sig(x) * sig(-x)),
    }
    return [abs(mpmath.mpf(t)) for t in table[op]()]


def _local(node, xs, v):
    """Magnitudes of the first and second partials of a node in its arguments:
    (d1 [k], d2 [k][l]). Stable forms where issue 9 asks for them (prod without division,
    logsumexp with the softmax difference p_k * sum of the others); the forms an AD rule
    differentiates (several terms, summed in magnitude) for atan2, hypot and norm."""
    op, k = node.op, len(xs)
    zero = [[mpmath.mpf(0)] * k for _ in range(k)]
    if op in _UNARY:
        d1, d2 = _unary_local(op, xs[0])
        return [d1], [[d2]]
    if op in ("add", "sub", "sum"):
        return [mpmath.mpf(1)] * k, zero
    if op == "mean":
        return [mpmath.mpf(1) / k] * k, zero
    if op == "mul":
        return [abs(xs[1]), abs(xs[0])], [[0, 1], [1, 0]]
    if op == "div":
        x, y = xs
        return [1 / abs(y), abs(x) / y ** 2], [[0, 1 / y ** 2], [1 / y ** 2, 2 * abs(x) / abs(y) ** 3]]
    if op == "pow":
        x, y = xs
        if x == 0:
            p = lambda e: mpmath.inf if e < 0 else mpmath.mpf(e == 0)
            return [abs(y) * p(y - 1), mpmath.mpf(0)], [[abs(y * (y - 1)) * p(y - 2), p(y - 1)], [p(y - 1), 0]]
        lx = mpmath.log(abs(x))
        return ([abs(y * v / x), abs(v * lx)],
                [[abs(y * (y - 1) * v / x ** 2), abs(v / x) * (1 + abs(y * lx))],
                 [abs(v / x) * (1 + abs(y * lx)), abs(v) * lx ** 2]])
    if op == "logb":
        u, b = xs
        lb = mpmath.log(b)
        d_bb = abs(mpmath.log(u)) * (abs(lb) + 2) / (b * b * abs(lb) ** 3)
        return ([1 / abs(u * lb), abs(mpmath.log(u)) / abs(b * lb * lb)],
                [[1 / (u * u * abs(lb)), 1 / abs(u * b * lb * lb)], [1 / abs(u * b * lb * lb), d_bb]])
    if op == "atan2":
        y, x = xs
        r2 = x * x + y * y
        cross = 1 / r2 + 2 * max(x * x, y * y) / r2 ** 2
        return [abs(x) / r2, abs(y) / r2], [[2 * abs(x * y) / r2 ** 2, cross], [cross, 2 * abs(x * y) / r2 ** 2]]
    if op in ("hypot", "norm"):
        r = mpmath.sqrt(mpmath.fsum(x * x for x in xs))
        return ([abs(x) / r for x in xs],
                [[(1 / r if i == j else 0) + abs(xs[i] * xs[j]) / r ** 3 for j in range(k)] for i in range(k)])
    if op in ("max", "min"):
        return [mpmath.mpf(x == v) for x in xs], zero
    if op == "prod":
        others = lambda skip: abs(mpmath.fprod(x for i, x in enumerate(xs) if i not in skip))
        return ([others({i}) for i in range(k)],
                [[0 if i == j else others({i, j}) for j in range(k)] for i in range(k)])
    if op == "logsumexp":
        m = max(xs)
        w = [mpmath.exp(x - m) for x in xs]
        p = [wi / mpmath.fsum(w) for wi in w]
        return p, [[p[i] * mpmath.fsum(p[:i] + p[i + 1:]) if i == j else p[i] * p[j] for j in range(k)]
                   for i in range(k)]
    raise KeyError(op)


def _mul0(a, b):
    """a * b for magnitudes, with 0 * inf = 0 (no dependence stays no dependence)."""
    return mpmath.mpf(0) if a == 0 or b == 0 else a * b


def _magnitudes(root, env, inputs):
    """Running-error magnitudes of the gradient and Hessian of root (second-order forward
    mode in mpmath over the tree, every term counted in absolute value)."""
    n, memo = len(inputs), {}
    index = {name: i for i, name in enumerate(inputs)}

    def ev(node):
        if id(node) in memo:
            return memo[id(node)]
        if node.op in ("var", "const"):
            v = env[node.name] if node.op == "var" else mpmath.mpf(node.value)
            g = [mpmath.mpf(node.op == "var" and i == index[node.name]) for i in range(n)]
            out = v, g, [[mpmath.mpf(0)] * n for _ in range(n)]
        else:
            kids = [ev(a) for a in node.args]
            xs = [kid[0] for kid in kids]
            v = (_UNARY[node.op] if node.op in _UNARY else _NARY[node.op])(*xs)
            try:
                d1, d2 = _local(node, xs, v)
            except ZeroDivisionError:  # an infinite slope (sqrt at 0, a kink of hypot at 0)
                d1, d2 = [mpmath.inf] * len(xs), [[mpmath.inf] * len(xs) for _ in xs]
            g = [mpmath.fsum(_mul0(d1[k], kid[1][i]) for k, kid in enumerate(kids)) for i in range(n)]
            h = [[mpmath.fsum(_mul0(d1[k], kid[2][i][j]) for k, kid in enumerate(kids))
                  + mpmath.fsum(_mul0(d2[k][m], _mul0(kids[k][1][i], kids[m][1][j]))
                                for k in range(len(kids)) for m in range(len(kids)))
                  for j in range(n)] for i in range(n)]
            out = v, g, h
        memo[id(node)] = out
        return out

    try:
        with mpmath.workdps(20):
            _, g, h = ev(root)
    except (_Outside, _Range):   # 20 digits round an argument onto a domain's edge (atanh of 1 - 1e-25)
        memo.clear()
        with mpmath.workdps(NODE_DPS):
            _, g, h = ev(root)
    return g, h


# ---- SymPy derivatives compiled for mpmath ---------------------------------------------------

class _Printer(MpmathPrinter):
    def _print_DiracDelta(self, e):
        return "_delta(%s)" % ", ".join(self._print(a) for a in e.args)

    def _print_RealAbs(self, e):
        return f"abs({self._print(e.args[0])})"

    def _print_RealSign(self, e):
        return f"mpmath.sign({self._print(e.args[0])})"


_PRINTER = _Printer({"fully_qualified_modules": True, "strict": True})


def _delta(z, k=0):
    return mpmath.mpf(0) if z != 0 else mpmath.inf


def _compile(exprs, symbols):
    """One mpmath function of the symbols returning every expr, statement by statement
    guarded: a division by zero gives inf, any other arithmetic failure nan."""
    reps, outs = sp.cse(exprs, symbols=sp.numbered_symbols("_t"), order="none")
    lines = [f"def _f({', '.join(_PRINTER.doprint(s) for s in symbols)}):",
             f"    _out = [None] * {len(outs)}"]
    targets = [(_PRINTER.doprint(s), e) for s, e in reps] + [(f"_out[{i}]", e) for i, e in enumerate(outs)]
    for name, e in targets:
        lines += [f"    try: {name} = {_PRINTER.doprint(e)}",
                  f"    except ZeroDivisionError: {name} = _INF",
                  f"    except (ArithmeticError, ValueError, TypeError): {name} = _NAN"]
    lines.append("    return _out")
    scope = {"mpmath": mpmath, "_delta": _delta, "_INF": mpmath.inf, "_NAN": mpmath.nan}
    exec("\n".join(lines), scope)  # noqa: S102 (our own generated code)
    return scope["_f"]


_COMPILED = {}  # (text, inputs) -> (function, literal zeros), for the cases of one process


def _operations(root):
    """The tree's operations (not its variables and constants), children first."""
    out, seen = [], set()

    def visit(node):
        if id(node) not in seen and node.op not in ("var", "const"):
            seen.add(id(node))
            for a in node.args:
                visit(a)
            out.append(node)

    visit(root)
    return out


def _noisy(root):
    """The SymPy form of the tree rebuilt node by node with every operation's result
    plus a symbol e_k (from the nodes, not their simplified forms: log(exp(a)) keeps
    both results); e_k stand for the rounding of each result: (expression, [e_k])."""
    forms, es = {}, []
    leaf = lambda node: forms[id(node)] if id(node) in forms else node.sym
    for node in _operations(root):
        es.append(sp.Symbol(f"_e{len(es)}", real=True))
        forms[id(node)] = node.fn(*[leaf(a) for a in node.args]) + es[-1]
    return leaf(root), es


def _derivatives(case):
    """The compiled gradient and Hessian upper triangle (SymPy diff of the noisy form, a
    function of the inputs and the e_k), and which of them are literally 0. Kept per
    process: the families repeat a few dozen forms."""
    key = (case.text, case.inputs)
    if key not in _COMPILED:
        expr, es = _noisy(case.root)
        syms = case.symbols
        grad = [sp.diff(expr, x) for x in syms]
        exprs = grad + [sp.diff(grad[i], syms[j]) for i in range(len(syms)) for j in range(i, len(syms))]
        _COMPILED[key] = _compile(exprs, list(syms) + es), [e == 0 for e in exprs]
    return _COMPILED[key]


def _kind(x):
    """("finite", float), ("overflow", None) past the largest double, ("infinite", None)
    for inf or a complex number, or ("nan", None), for one mpmath result."""
    if isinstance(x, mpmath.mpc):
        if x.imag != 0:
            return "infinite", None
        x = x.real
    if mpmath.isnan(x):
        return "nan", None
    if not mpmath.isfinite(x):
        return "infinite", None
    f = float(x)
    return ("finite", f) if math.isfinite(f) else ("overflow", None)


def _agree(x, y, confirmed):
    (kx, fx), (ky, fy) = _kind(x), _kind(y)
    if kx != ky:
        return False
    if kx != "finite":
        return True
    if x == 0 and y == 0:
        return confirmed
    return abs(fx - fy) <= math.ulp(max(abs(fx), abs(fy)))


def _at(fn, xs, dps, noise, signs=None):
    """fn at the inputs xs (floats, or the mpf of _sides) in mpmath at dps digits, with
    every e_k = 0; or, given signs = (s for the inputs, t for the operations), every
    input times 1 + 4 eps s_i and e_k = 4 eps t_k noise_k (noise_k = max(|result k|,
    2**-1022))."""
    with mpmath.workdps(dps):
        four = 4 * mpmath.mpf(EPS)
        args = [mpmath.mpf(x) for x in xs]
        es = [mpmath.mpf(0)] * len(noise)
        if signs is not None:
            args = [a * (1 + four * si) for a, si in zip(args, signs[0])]
            es = [four * t * u for t, u in zip(signs[1], noise)]
        return [mpmath.mpf(r) if isinstance(r, int) else r for r in fn(*args, *es)]


def _settle(fn, xs, dps, noise, literal_zero):
    """Evaluate at rising precision until every component agrees between two steps.
    Returns (results at the final precision, that precision, set of unsettled indices)."""
    ladder = sorted({dps, dps + dps // 2, 400, 1200})
    prev = _at(fn, xs, ladder[0], noise)
    todo = {i for i in range(len(prev)) if not literal_zero[i]}
    for d in ladder[1:]:
        cur = _at(fn, xs, d, noise)
        todo = {i for i in todo if not _agree(prev[i], cur[i], confirmed=d >= 400)}
        prev = cur
        if not todo:
            return cur, d, set()
    return prev, ladder[-1], todo


# ---- the reference ----------------------------------------------------------------------------

def _hvp(row_values, direction):
    return [mpmath.fsum(h * v for h, v in zip(row, direction) if v != 0) for row in row_values]


def _perturbed_inputs(case, env, kinks, count):
    """Sign vectors for the inputs, inside the domain: all +1, all -1, then random;
    where one leaves the domain, the first of its one-input parts that stays inside
    (a negative base to an integer power: perturb the base, not the exponent). Also the
    kink nodes they flip, and whether any point tried was inside."""
    rng = random.Random(case.ident)
    n = len(env)
    tries = [[1] * n, [-1] * n] + [[rng.choice((1, -1)) for _ in range(n)] for _ in range(count - 2)]
    inside, flipped = [], set()
    for s in tries[:count]:
        for c in [s] + ([[si if j == i else 0 for j, si in enumerate(s)] for i in range(n)] if n > 1 else []):
            with mpmath.workdps(NODE_DPS):
                penv = {k: v * (1 + 4 * mpmath.mpf(EPS) * ci) for (k, v), ci in zip(env.items(), c)}
            pk, trouble, _ = _walk(case.root, penv)
            if trouble is None:
                inside.append(c)
                if kinks is not None:
                    flipped |= {node for node, (sig, _) in pk.items() if node in kinks and kinks[node][0] != sig}
                break
    return inside, flipped


def reference(case, perturbations=4, dps=60):
    """The Reference of one case (see the module docstring for the rule)."""
    xs = case.flat_point()
    n = len(xs)
    env = dict(zip(case.inputs, (mpmath.mpf(x) for x in xs)))
    kinks, trouble, values = _walk(case.root, env)
    inside, flipped = _perturbed_inputs(case, env, kinks, perturbations)
    if trouble is not None:
        status = "edge" if trouble[0] == "domain" and inside else trouble[0]
        return Reference(status, trouble[1])

    kinked = {node for node, (_, at) in kinks.items() if at} | flipped
    kink_syms = set().union(*[node.sym.free_symbols for node in kinked]) if kinked else set()
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    try:
        fn, literal_zero = _derivatives(case)
    except PrintMethodNotImplementedError as e:  # a derivative SymPy left unevaluated
        return Reference("unsupported", str(e).splitlines()[0])
    noise = [max(abs(values[id(node)]), _NORMAL) for node in _operations(case.root)]
    base, used, unsettled = _settle(fn, xs, dps, noise, literal_zero)
    rng, k = random.Random(case.ident + " operations"), len(noise)
    op_signs = [[1] * k, [-1] * k] + [[rng.choice((1, -1)) for _ in range(k)] for _ in inside[2:]]
    moved = [_at(fn, xs, used, noise, (s, t)) for s, t in zip(inside, op_signs)]

    def split(vals):
        g = vals[:n]
        h = [[None] * n for _ in range(n)]
        for (i, j), val in zip(pairs, vals[n:]):
            h[i][j] = h[j][i] = val
        return g, h, _hvp(h, case.direction)

    (g0, h0, v0), others = split(base), [split(m) for m in moved]
    sides = [split(vals) for vals in _sides(fn, case, xs, used, noise, base)]
    gm, hm = _magnitudes(case.root, env, case.inputs)
    vm = [mpmath.fsum(_mul0(hm[i][j], abs(mpmath.mpf(d))) for j, d in enumerate(case.direction)) for i in range(n)]
    slot = {(i, j): n + k for k, (i, j) in enumerate(pairs)}
    slot.update({(j, i): k for (i, j), k in slot.items()})
    in_k = [s in kink_syms for s in case.symbols]
    live = [j for j in range(n) if case.direction[j] != 0]
    grad_c = [_component(g0[i], [o[0][i] for o in others], [o[0][i] for o in sides], gm[i],
                         in_k[i], i in unsettled) for i in range(n)]
    hess_c = [[_component(h0[i][j], [o[1][i][j] for o in others], [o[1][i][j] for o in sides], hm[i][j],
                          in_k[i] or in_k[j], slot[i, j] in unsettled) for j in range(n)] for i in range(n)]
    hvp_c = [_component(v0[i], [o[2][i] for o in others], [o[2][i] for o in sides], vm[i],
                        in_k[i] or any(in_k[j] for j in live),
                        any(slot[i, j] in unsettled for j in live)) for i in range(n)]
    return Reference("ok", "", grad_c, hess_c, hvp_c, used)


def _sides(fn, case, xs, dps, noise, base):
    """Where a component is nan (0*inf and the like at exact zeros), the values at the
    point with every zero coordinate replaced by +T and by -T (T = 2**-300000), for the
    sides that are inside the domain: the one-sided limits."""
    zeros = [i for i, x in enumerate(xs) if x == 0]
    if not zeros or all(_kind(v)[0] != "nan" for v in base):
        return []
    out = []
    for sign in (1, -1):
        ys = [sign * _T if i in zeros else mpmath.mpf(x) for i, x in enumerate(xs)]
        if _walk(case.root, dict(zip(case.inputs, ys)))[1] is None:
            out.append(_settle(fn, ys, dps, noise, [False] * len(base))[0])
    return out


def _component(value, perturbed, sides, magnitude, kink, unsettled):
    """The Component of one mpmath value, given its values at the perturbed points,
    where it is nan its values at the one-sided points of `_sides`, and the magnitude
    of its chain-rule terms (the rounding allowance)."""
    if kink:
        return Component("kink", note="a kink at the point or within 4 eps of it")
    if unsettled:
        return Component("unresolved", note="the precision ladder did not settle")
    kind, f = _kind(value)
    if kind == "nan":
        return _limit(sides)
    if kind != "finite":
        return Component("not finite", note="infinite or complex" if kind == "infinite" else "overflows")
    change = mpmath.mpf(0)
    for p in perturbed:
        if _kind(p)[0] in ("infinite", "nan"):
            return Component("unresolved", note="a 4 eps perturbation makes it infinite or undefined")
        change = max(change, abs(p - value))
    allowance = ROUNDING * EPS * magnitude if mpmath.isfinite(magnitude) else 0
    return Component("finite", f, min(float(change + allowance) + 8 * max(math.ulp(f), TINY), math.inf))


def _limit(sides):
    """The Component of a nan value from its one-sided limits (see _sides)."""
    kinds = [_kind(v) for v in sides]
    if not kinds or any(k == "nan" for k, _ in kinds):
        return Component("unresolved", note="indeterminate form (nan) in the SymPy derivative")
    if all(k != "finite" for k, _ in kinds):
        return Component("not finite", note="infinite limit at an exact zero")
    values = [f for k, f in kinds if k == "finite"]
    if len(values) == len(kinds) and max(values) - min(values) <= math.ulp(max(map(abs, values))):
        return Component("finite", values[0], 8 * max(math.ulp(values[0]), TINY),
                         note="limit at an exact zero")
    return Component("kink", note="one-sided limits at an exact zero differ")
