"""Straight-line C and CUDA C from a graph: the code of one point, wrapped two ways.

The generator only prints.  Every node the outputs need becomes `real` temporaries, one per
entry (a scalar node one, an array node one per entry, row-major), spelled from the record's
C spelling for pointwise records and unrolled over the static shapes for reductions, matmul
and the structural ops.  Derivatives are the derivative graphs of adcalc.derivatives printed
the same way: there is no second list of rules.  Structural ops (reshape, transpose, getitem,
broadcast, stack, concat, scatter) print nothing: their entries are their operand's entries
(or 0.0).  Common subexpressions stay shared (one temporary per node entry, and identical
statements once); entries whose operands are all constants are folded with the record's own
numpy implementation; statements that no output needs are dropped.

Summation orders follow numpy's (pairwise over trailing axes, as np.sum; sequential
otherwise), so the exact path agrees with the reverse engine to rounding.

Domain: every node of f whose record has a domain (the nodes evaluate.py checks) gets a
check; a point failing one gets NaN outputs and, in FLAG, the 1-based number of the first
failing check (`Kernel.messages[k - 1]` says which: the same sentence evaluate.py gives).

The body reads the point's inputs with IN(j), its direction entries with DIR(j), writes
OUT(j) and sets `flag`; the wrappers define those macros, so the C function and the CUDA
kernel contain the same body text:

    long long NAME(long long n_points, const real *X, const real *D, long long d_stride,
                   real *OUT, int *FLAG)                     (C: returns the flagged count)
    extern "C" __global__ void NAME(...the same arguments...)  (CUDA)

X is (n_points, n_in), OUT (n_points, n_out), FLAG (n_points,) (NULL allowed in C: no
flags written), D (n_points, n_dir) with d_stride = n_dir, or one shared direction with
d_stride = 0.
"""
import math
import re

import numpy as np

from adcalc.core import PRIMS
from adcalc.errors import EngineError, EngineUnavailable
from adcalc.evaluate import needed
from adcalc.graph import to_text

DTYPES = ("float64", "float32")
MAX_STATEMENTS = 30000   # a kernel's C statements: beyond, compiling takes minutes; declined

def spelling(name):
    """The C spelling the generator uses for a pointwise record (the table's `c`)."""
    return PRIMS[name].c


def domain_spelling(node):
    """C condition (placeholders {0}, {1}) true inside the domain; None: always inside."""
    s = PRIMS[node.op].c_domain
    return s(node) if callable(s) else s


_FLOAT_LITERAL = re.compile(r"(?<![\w.])(\d+\.\d*|\.\d+)([eE][-+]?\d+)?(?![\w.])")


class _Program:
    """Statements (text, deps) in order; an entry is a float (a literal) or an int (a
    statement's index)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.stmts = []
        self._seen = {}

    def lit(self, v):
        v = float(v)
        if math.isnan(v):
            return "ADC_NAN"
        if math.isinf(v):
            return "ADC_INF" if v > 0 else "(-ADC_INF)"
        s = f"{v:.17g}"
        if not any(c in s for c in ".en"):
            s += ".0"
        if self.dtype == "float32":
            s += "f"
        return f"({s})" if v < 0 or s.startswith("-") else s

    def ref(self, e):
        return self.lit(e) if isinstance(e, float) else f"t{e}"

    def emit(self, template, args):
        """A statement applying `template` ({0}, {1}, ... ) to entries `args`."""
        text = template.format(*[self.ref(a) for a in args])
        hit = self._seen.get(text)
        if hit is None:
            hit = self._seen[text] = len(self.stmts)
            self.stmts.append((text, tuple(sorted({a for a in args if not isinstance(a, float)}))))
        return hit

    def spell(self, template):
        return _FLOAT_LITERAL.sub(lambda m: m.group(0) + "f", template) if self.dtype == "float32" else template


def _fold(impl, vals):
    with np.errstate(all="ignore"):
        return float(np.asarray(impl(*[np.float64(v) for v in vals]), dtype=float))


def _op2(p, template, impl, a, b):
    if isinstance(a, float) and isinstance(b, float):
        return _fold(impl, (a, b))
    return p.emit(template, (a, b))


def _add(p, a, b):
    return _op2(p, "({0} + {1})", np.add, a, b)


def _mul(p, a, b):
    return _op2(p, "({0} * {1})", np.multiply, a, b)


def _pairwise(p, items):
    """numpy's pairwise summation (np.add.reduce over a contiguous run), order for order."""
    n = len(items)
    if n < 8:
        acc = 0.0
        for v in items:
            acc = _add(p, acc, v)
        return acc
    if n <= 128:
        r = list(items[:8])
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] = _add(p, r[j], items[i + j])
            i += 8
        res = _add(p, _add(p, _add(p, r[0], r[1]), _add(p, r[2], r[3])),
                   _add(p, _add(p, r[4], r[5]), _add(p, r[6], r[7])))
        for v in items[i:]:
            res = _add(p, res, v)
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _add(p, _pairwise(p, items[:n2]), _pairwise(p, items[n2:]))


def _sequential(p, items):
    acc = items[0]
    for v in items[1:]:
        acc = _add(p, acc, v)
    return acc


def _chooser(p, items, cmp):
    """np.max / np.min of the entries: NaN propagates."""
    impl = np.maximum if cmp == ">" else np.minimum
    m = items[0]
    for v in items[1:]:
        m = _op2(p, f"((({{0}}) {cmp} ({{1}}) || ({{0}}) != ({{0}})) ? ({{0}}) : ({{1}}))", impl, m, v)
    return m


def _call(p, fn, impl, a):
    return _fold(impl, (a,)) if isinstance(a, float) else p.emit(f"{fn}({{0}})", (a,))


# ---- index maps of the structural ops (entry k of the result = entry map[k] of the operand) --
def _arange(shape):
    return np.arange(int(np.prod(shape)) if shape else 1).reshape(shape)


def bmap(src, shape):
    """Broadcasting (numpy's, right-aligned) of an operand of shape src to shape."""
    src, shape = tuple(src), tuple(shape)
    if src == shape:
        return np.arange(int(np.prod(shape)) if shape else 1)
    idx = _arange(src).reshape((1,) * (len(shape) - len(src)) + src)
    return np.broadcast_to(idx, shape).ravel()


def _take(E, a, m):
    x = E[a.id]
    return [x[i] for i in m]


def _structural_map(node):
    """Per argument, the entries of the result it provides: [(arg index, result positions,
    operand entries)]; positions not covered are 0.0."""
    op, p, args = node.op, node.p, node.args
    size = node.size
    if op == "broadcast":
        return [(0, np.arange(size), bmap(p["src"], p["shape"]))]
    if op == "reshape":
        return [(0, np.arange(size), np.arange(size))]
    if op == "transpose":
        return [(0, np.arange(size), _arange(p["src"]).T.ravel())]
    if op == "getitem":
        from adcalc.primitives import full_index
        idx = _arange(p["src"])[full_index(p["idx"], p["src"])[1:]]
        return [(0, np.arange(size), np.ravel(idx))]
    if op == "scatter":
        out = np.full(node.shape, -1, dtype=np.int64)
        from adcalc.primitives import full_index
        out[full_index(p["idx"], p["shape"])[1:]] = _arange(args[0].shape)
        out = out.ravel()
        pos = np.flatnonzero(out >= 0)
        return [(0, pos, out[pos])]
    if op == "stack":
        inner = int(np.prod(p["src"])) if p["src"] else 1
        return [(i, np.arange(i * inner, (i + 1) * inner), bmap(a.shape, p["src"])) for i, a in enumerate(args)]
    if op == "concat":
        out, pos = [], 0
        for i, a in enumerate(args):
            out.append((i, np.arange(pos, pos + a.size), np.arange(a.size)))
            pos += a.size
        return out
    raise KeyError(op)


def _print_structural(p, node, E):
    out = [0.0] * node.size
    for i, pos, src in _structural_map(node):
        x = E[node.args[i].id]
        for k, s in zip(pos.tolist(), src.tolist()):
            out[k] = x[s]
    return out


def _print_sum_to(p, node, E):
    src, shape = tuple(node.args[0].shape), tuple(node.p["shape"])
    x = E[node.args[0].id]
    extra = len(src) - len(shape)
    reduced = list(range(extra)) + [extra + i for i, (a, b) in enumerate(zip(src[extra:], shape))
                                    if b == 1 and a != 1]
    if not reduced:
        return list(x)
    multi = np.indices(src).reshape(len(src), -1)[extra:] if src else np.zeros((0, 1), dtype=int)
    for i, b in enumerate(shape):
        if b == 1:
            multi[i] = 0
    target = np.ravel_multi_index(tuple(multi), shape) if shape else np.zeros(len(x), dtype=int)
    trailing = reduced == list(range(len(src) - len(reduced), len(src)))
    add = _pairwise if trailing else _sequential
    groups = [[] for _ in range(int(np.prod(shape)) if shape else 1)]
    for s, t in enumerate(target.tolist()):
        groups[t].append(x[s])
    return [add(p, g) for g in groups]


def _print_others_sum(p, node, E):
    """Exclusive prefix plus suffix sums, as np.cumsum builds them."""
    x = E[node.args[0].id]
    n = len(x)
    before = [0.0]
    for v in x[:-1]:
        before.append(_add(p, before[-1], v))
    after = [0.0]
    for v in x[:0:-1]:
        after.append(_add(p, after[-1], v))
    after = after[::-1]
    return [_add(p, before[k], after[k]) for k in range(n)]


def _print_chooser(cmp):
    def printer(p, node, E):
        return [_chooser(p, E[node.args[0].id], cmp)]
    return printer


def _print_softmax(p, node, E):
    x = E[node.args[0].id]
    if not node.args[0].shape:
        return [1.0]
    m = _chooser(p, x, ">")
    e = [_call(p, "exp", np.exp, _op2(p, "({0} - {1})", np.subtract, v, m)) for v in x]
    s = _pairwise(p, e)
    return [_op2(p, "({0} / {1})", np.divide, v, s) for v in e]


def _print_logsumexp(p, node, E):
    x = E[node.args[0].id]
    if not node.args[0].shape:
        return [x[0]]
    m = _chooser(p, x, ">")
    m = _op2(p, "(ADC_ISFINITE({0}) ? ({0}) : {1})", lambda a, b: np.where(np.isfinite(a), a, b), m, 0.0)
    # primitives._lse: log1p of the other terms, each maximum counted as exactly 1
    e = [_op2(p, "(({0}) == ({1}) ? 0.0 : exp(({0}) - ({1})))",
              lambda a, b: np.where(a == b, 0.0, np.exp(a - b)), v, m) for v in x]
    tied = [_op2(p, "(({0}) == ({1}) ? 1.0 : 0.0)", lambda a, b: np.where(a == b, 1.0, 0.0), v, m) for v in x]
    rest = _add(p, _pairwise(p, e), _add(p, _pairwise(p, tied), -1.0))
    return [_add(p, m, _call(p, "log1p", np.log1p, rest))]


def _print_norm(p, node, E):
    """The scaled form of primitives._norm: no overflow at 1e200, no underflow at 1e-200."""
    x = E[node.args[0].id]
    if not node.args[0].shape:
        return [_call(p, "fabs", np.abs, x[0])]
    m = _chooser(p, [_call(p, "fabs", np.abs, v) for v in x], ">")
    safe = _op2(p, "((({0}) > 0.0 && ADC_ISFINITE({0})) ? ({0}) : {1})",
                lambda a, b: np.where((a > 0) & np.isfinite(a), a, b), m, 1.0)
    q = [_op2(p, "({0} / {1})", np.divide, v, safe) for v in x]
    s = _pairwise(p, [_mul(p, v, v) for v in q])
    out = _mul(p, safe, _call(p, "sqrt", np.sqrt, s))
    return [_op2(p, "(ADC_ISINF({0}) ? ADC_INF : {1})", lambda a, b: np.where(np.isinf(a), np.inf, b), m, out)]


def _print_matmul(p, node, E):
    (rows, inner), (_, cols) = node.args[0].shape, node.args[1].shape
    a, b = E[node.args[0].id], E[node.args[1].id]
    out = []
    for i in range(rows):
        for j in range(cols):
            out.append(_sequential(p, [_mul(p, a[i * inner + k], b[k * cols + j]) for k in range(inner)]))
    return out


PRINTERS = {
    "sum_to": _print_sum_to,
    "broadcast": _print_structural, "reshape": _print_structural, "transpose": _print_structural,
    "getitem": _print_structural, "scatter": _print_structural, "stack": _print_structural,
    "concat": _print_structural,
    "others_sum": _print_others_sum,
    "max": _print_chooser(">"), "min": _print_chooser("<"),
    "softmax": _print_softmax, "logsumexp": _print_logsumexp, "norm": _print_norm,
    "matmul": _print_matmul,
}


def printable(name):
    """Whether the generator can print the record `name` (pointwise: a C spelling)."""
    prim = PRIMS[name]
    return bool(spelling(name)) if prim.pointwise else name in PRINTERS


def _print_pointwise(p, node, E):
    prim = PRIMS[node.op]
    template = p.spell(spelling(node.op))
    maps = [bmap(a.shape, node.shape) for a in node.args]
    out = []
    for k in range(node.size):
        vals = [E[a.id][m[k]] for a, m in zip(node.args, maps)]
        if all(isinstance(v, float) for v in vals):
            out.append(_fold(prim.impl, vals))
        else:
            out.append(p.emit(template, vals))
    return out


# ---- the program of one point ----------------------------------------------------------------
class Kernel:
    """The straight-line program of one point: `body` (lines using IN, DIR, OUT, flag),
    sizes, and the messages of its domain checks."""

    def __init__(self, body, n_in, n_dir, n_out, messages, dtype, n_statements):
        self.body, self.n_in, self.n_dir, self.n_out = body, n_in, n_dir, n_out
        self.messages, self.dtype, self.n_statements = messages, dtype, n_statements
        self.functions = sorted(set(re.findall(r"\b([a-z][a-z0-9]*)\(", body)) & set(MATH_FUNCTIONS))


MATH_FUNCTIONS = ("sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh",
                  "acosh", "atanh", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "cbrt", "pow",
                  "hypot", "erf", "erfc", "fabs", "floor", "fmax", "fmin")


def domain_nodes(graph, outputs, base_output):
    """The nodes whose domain is checked: those of f (ids up to f's output) that the
    outputs or f itself need, as Problem.values checks them."""
    top = base_output.id
    ids = needed(graph, list(outputs) + [base_output])
    return [graph.nodes[i] for i in ids if i <= top and PRIMS.get(graph.nodes[i].op) is not None
            and PRIMS[graph.nodes[i].op].domain is not None]


def generate(graph, inputs, outputs, directions=(), fixed=None, checks=(), dtype="float64"):
    """The Kernel computing `outputs` (nodes, their entries concatenated) at one point.

    inputs: variable nodes read from X in flat order; directions: variable nodes read from
    D; fixed: {variable node id: value} printed as constants; checks: nodes whose domain
    is checked (domain_nodes)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    fixed = fixed or {}
    p = _Program(dtype)
    E = {}
    for group, macro in ((inputs, "IN"), (directions, "DIR")):
        pos = 0
        for v in group:
            E[v.id] = [p.emit(f"{macro}({pos + k})", ()) for k in range(v.size)]
            pos += v.size
    for vid, value in fixed.items():
        E[vid] = [float(v) for v in np.ravel(np.asarray(value, dtype=float))]
    checks = list(checks)
    want = list(outputs) + [a for c in checks for a in c.args]
    for i in needed(graph, want) if want else []:
        node = graph.nodes[i]
        if i in E:
            continue
        if node.op == "const":
            E[i] = [float(v) for v in np.ravel(node.value)]
        elif node.op == "var":
            raise EngineError(f"the variable {node.p['name']!r} is neither an input nor a direction")
        elif PRIMS[node.op].pointwise:
            E[i] = _print_pointwise(p, node, E)
        elif node.op in PRINTERS:
            E[i] = PRINTERS[node.op](p, node, E)
        else:
            raise EngineError(f"the code generator cannot print the primitive {node.op!r}")
        if len(p.stmts) > 4 * MAX_STATEMENTS:   # before unused statements are dropped
            raise too_large("the kernel", "C statements", len(p.stmts), MAX_STATEMENTS)
    lines_checks, messages, live_roots, seen = [], [], [], set()
    for node in checks:
        cond = domain_spelling(node)
        if cond is None:
            continue
        maps = [bmap(a.shape, node.shape) for a in node.args]
        message = f"{PRIMS[node.op].domain[1]} in '{to_text(node)}'"
        for k in range(node.size):
            vals = [E[a.id][m[k]] for a, m in zip(node.args, maps)]
            if all(isinstance(v, float) for v in vals):
                with np.errstate(all="ignore"):
                    if bool(np.all(PRIMS[node.op].domain[0](*[np.float64(v) for v in vals]))):
                        continue
                text = "0"
            else:
                text = p.spell(cond).format(*[p.ref(v) for v in vals])
            if text in seen:
                continue
            seen.add(text)
            if not messages or messages[-1] != message:
                messages.append(message)
            lines_checks.append(f"    flag = (flag == 0 && !({text})) ? {len(messages)} : flag;")
            live_roots += [v for v in vals if not isinstance(v, float)]
    stores, j = [], 0
    for o in outputs:
        for e in E[o.id]:
            stores.append(f"    OUT({j}) = flag ? ADC_NAN : {p.ref(e)};")
            if not isinstance(e, float):
                live_roots.append(e)
            j += 1
    live = bytearray(len(p.stmts))
    for r in live_roots:
        live[r] = 1
    for i in range(len(p.stmts) - 1, -1, -1):
        if live[i]:
            for d in p.stmts[i][1]:
                live[d] = 1
    body = [f"    const real t{i} = {text};" for i, (text, _) in enumerate(p.stmts) if live[i]]
    n_in = sum(v.size for v in inputs)
    n_dir = sum(v.size for v in directions)
    return Kernel("\n".join(body + lines_checks + stores), n_in, n_dir, j, messages, dtype, len(body))


# ---- what each quantity prints ------------------------------------------------------------
QUANTITIES = ("value", "grad", "jacobian", "hessian", "hvp", "jvp", "vjp")


def target(prob, quantity):
    """(Problem whose output the kernel computes, direction variable nodes)."""
    from adcalc import derivatives
    if quantity == "value":
        return prob, []
    if quantity in ("grad", "jacobian", "hessian"):
        return {"grad": derivatives.gradient, "jacobian": derivatives.jacobian,
                "hessian": derivatives.hessian}[quantity](prob), []
    if quantity in ("hvp", "jvp", "vjp"):
        return {"hvp": derivatives.hvp, "jvp": derivatives.tangent, "vjp": derivatives.cotangent}[quantity](prob)
    raise ValueError(f"unknown quantity {quantity!r}; one of {', '.join(QUANTITIES)}")


def too_large(what, unit, count, limit):
    """The EngineUnavailable of a kernel over the size limit."""
    return EngineUnavailable(
        f"{what} would have {count} {unit}; generated kernels take up to {limit}, beyond which "
        f"compiling takes minutes; the reverse engine computes the same without compiling")


def problem_kernel(prob, quantity, dtype="float64"):
    """The Kernel of `quantity` for a Problem, memoised on its graph.  Inputs: the problem's
    flat inputs; variables outside --wrt are printed as their values at the problem's point."""
    fixed_names = [v for v in prob.variables if v not in prob.wrt]
    key = ("codegen", quantity, dtype, prob.output.id, prob.base_output_id(), tuple(v.id for v in prob.var_nodes),
           tuple((v, prob.point[v].tobytes()) for v in fixed_names))
    hit = prob.graph.cache.get(key)
    if hit is None:
        tp, dirs = target(prob, quantity)
        fixed = {prob.graph.vars[v].id: prob.point[v] for v in fixed_names}
        base = prob.graph.nodes[prob.base_output_id()]
        checks = domain_nodes(prob.graph, [tp.output], base)
        hit = generate(prob.graph, prob.var_nodes, [tp.output], dirs, fixed, checks, dtype)
        if hit.n_statements > MAX_STATEMENTS:
            hit = too_large(f"the {quantity} kernel", "C statements", hit.n_statements, MAX_STATEMENTS)
        prob.graph.cache[key] = hit
    if isinstance(hit, EngineUnavailable):
        raise hit
    return hit


# ---- the two wrappers --------------------------------------------------------------------------
LIBMVEC = {  # glibc's vector math library: the functions with SIMD variants, by glibc version
    (2, 22): ("sin", "cos", "log", "exp", "pow"),
    (2, 35): ("sin", "cos", "log", "exp", "pow", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh",
              "cbrt", "cosh", "erf", "erfc", "expm1", "hypot", "log10", "log1p", "log2", "sinh", "tan", "tanh"),
}
_TWO_ARGS = ("pow", "atan2", "hypot")


# classification without isfinite/isinf (macros whose availability differs between C and NVRTC)
ADC_MACROS = "#define ADC_ISFINITE(x) (fabs(x) < ADC_INF)\n#define ADC_ISINF(x) (fabs(x) == ADC_INF)"


def _c_header(dtype, simd_functions=()):
    lines = ["/* generated by adcalc.codegen */"]
    if dtype == "float32":
        lines += ["#include <tgmath.h>", "typedef float real;"]
    else:
        lines += ["#include <math.h>", "typedef double real;"]
    lines += ["#define ADC_NAN ((real)NAN)", "#define ADC_INF ((real)INFINITY)", ADC_MACROS]
    for f in simd_functions:
        args = "double, double" if f in _TWO_ARGS else "double"
        lines += ["#pragma omp declare simd notinbranch", f"extern double {f}({args});"]
    return "\n".join(lines) + "\n"


def _c_function(name, k, openmp, fast):
    nx, nd, no = max(1, k.n_in), max(1, k.n_dir), k.n_out
    sig = (f"long long {name}(long long n_points, const real *restrict X, const real *restrict D, "
           f"long long d_stride, real *restrict OUT, int *restrict FLAG)")
    # dynamic chunks of about 4096 points: a core taken by another process slows a call by its
    # share, not (as a static split does) by the whole of its thread's half
    chunk = "4096" if not fast else "16"
    par = (f"  #pragma omp parallel for schedule(dynamic, {chunk}) reduction(+:nbad) if(n_points >= 256)\n"
           if openmp else "")
    if not fast:
        pre = [f"    const real *x_ = X + i * {k.n_in};", f"    real *o_ = OUT + i * {no};"]
        if k.n_dir:
            pre.append("    const real *d_ = D + i * d_stride;")
        return "\n".join([
            f"{sig}\n{{", "  long long nbad = 0;", par + "  for (long long i = 0; i < n_points; ++i) {", *pre,
            "    int flag = 0;", "#define IN(j) x_[j]", "#define DIR(j) d_[j]", "#define OUT(j) o_[j]",
            k.body, "#undef IN", "#undef DIR", "#undef OUT",
            "    if (FLAG) FLAG[i] = flag;", "    nbad += flag != 0;", "  }", "  return nbad;", "}", ""])
    # --fast: a block of points is copied into columns, one SIMD loop over the block writes
    # columns, which are copied out.  gcc 12 vectorises calls to vector math only over
    # consecutive loads and stores, and fuses sin(x) and cos(x) of one x into a sincos that
    # has no SIMD variant: cos(0.0 + x) is cos(x) exactly (cos is even; only -0.0 changes)
    # and keeps them apart.
    blk = max(8, min(256, (16384 // (nx + nd + no)) // 8 * 8))
    copy = [f"    real xs_[{nx}][{blk}];", f"    real os_[{max(1, no)}][{blk}];", f"    int fs_[{blk}];",
            f"    for (long long p = 0; p < nb; ++p) for (int j = 0; j < {k.n_in}; ++j) "
            f"xs_[j][p] = X[(b0 + p) * {k.n_in} + j];"]
    if k.n_dir:
        copy.append(f"    real ds_[{nd}][{blk}];")
        copy.append(f"    for (long long p = 0; p < nb; ++p) for (int j = 0; j < {k.n_dir}; ++j) "
                    f"ds_[j][p] = D[(b0 + p) * d_stride + j];")
    body = fast_body(k.body)
    return "\n".join([
        f"{sig}\n{{", "  long long nbad = 0;", par + f"  for (long long b0 = 0; b0 < n_points; b0 += {blk}) {{",
        f"    const long long nb = n_points - b0 < {blk} ? n_points - b0 : {blk};", *copy,
        "    #pragma omp simd", "    for (long long p = 0; p < nb; ++p) {", "    int flag = 0;",
        "#define IN(j) xs_[j][p]", "#define DIR(j) ds_[j][p]", "#define OUT(j) os_[j][p]",
        body, "#undef IN", "#undef DIR", "#undef OUT",
        "    fs_[p] = flag;", "    }",
        f"    for (long long p = 0; p < nb; ++p) {{ for (int j = 0; j < {no}; ++j) "
        f"OUT[(b0 + p) * {no} + j] = os_[j][p]; nbad += fs_[p] != 0; }}",
        "    if (FLAG) for (long long p = 0; p < nb; ++p) FLAG[b0 + p] = fs_[p];",
        "  }", "  return nbad;", "}", ""])


_COS = re.compile(r"(?<![\w])cos\(")
_POW_INT = re.compile(r"(?<![\w])pow\((t\d+), \(?(-?\d+)\.0\)?\)")


def _pow_int(m):
    """pow(x, n) for an integer n as pow(|x|, n), with x's sign for odd n: equal for every x
    (pow is even or odd in x there), and libmvec's pow takes its slow scalar path for x < 0."""
    x, n = m.group(1), int(m.group(2))
    body = f"pow(fabs({x}), {n}.0)" if n >= 0 else f"pow(fabs({x}), ({n}.0))"
    return body if n % 2 == 0 else f"copysign({body}, {x})"


def fast_body(body):
    """The body as the SIMD wrapper prints it: cos(0.0 + x) for cos(x) and pow(|x|, n) for
    pow(x, n), equal value for value (see _c_function and _pow_int)."""
    return _POW_INT.sub(_pow_int, _COS.sub("cos(0.0 + ", body))
SIMD_MAX_COLUMNS = 4096   # wider kernels take the plain loop (their columns would not fit the stack)


def c_source(kernels, openmp=True, fast=False, simd_functions=()):
    """C source of {function name: Kernel} (all of one dtype).  fast: the SIMD layout, with
    `#pragma omp declare simd` for `simd_functions` (those with a libmvec variant)."""
    dtypes = {k.dtype for k in kernels.values()}
    if len(dtypes) > 1:
        raise ValueError("kernels of one source share a dtype")
    dtype = dtypes.pop() if dtypes else "float64"
    if fast and dtype != "float64":
        raise ValueError("the SIMD layout is for float64")
    used = sorted({f for k in kernels.values() for f in k.functions} & set(simd_functions)) if fast else ()
    return _c_header(dtype, used) + "\n".join(
        _c_function(n, k, openmp, fast and k.n_in + k.n_dir + k.n_out <= SIMD_MAX_COLUMNS) for n, k in kernels.items())


CUDA_HEADER = """/* generated by adcalc.codegen (CUDA C++; compiles with nvcc and NVRTC, no includes) */
typedef {real} real;
#define ADC_NAN ((real)__longlong_as_double(0x7ff8000000000000ULL))
#define ADC_INF ((real)__longlong_as_double(0x7ff0000000000000ULL))
""" + ADC_MACROS + "\n"


def cuda_source(kernels):
    """CUDA source of {function name: Kernel}: one thread per point, grid-stride loop."""
    dtypes = {k.dtype for k in kernels.values()}
    if len(dtypes) > 1:
        raise ValueError("kernels of one source share a dtype")
    real = "float" if dtypes == {"float32"} else "double"
    out = [CUDA_HEADER.format(real=real)]
    for name, k in kernels.items():
        pre = [f"    const real *x_ = X + i * {k.n_in};", f"    real *o_ = OUT + i * {k.n_out};"]
        if k.n_dir:
            pre.append("    const real *d_ = D + i * d_stride;")
        out.append("\n".join([
            f'extern "C" __global__ void {name}(long long n_points, const real *__restrict__ X, '
            f"const real *__restrict__ D, long long d_stride, real *__restrict__ OUT, int *__restrict__ FLAG)\n{{",
            "  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_points;"
            " i += (long long)blockDim.x * gridDim.x) {",
            *pre, "    int flag = 0;", "#define IN(j) x_[j]", "#define DIR(j) d_[j]", "#define OUT(j) o_[j]",
            k.body, "#undef IN", "#undef DIR", "#undef OUT",
            "    FLAG[i] = flag;", "  }", "}", ""]))
    return "\n".join(out)
