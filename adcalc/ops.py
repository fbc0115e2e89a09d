"""The polymorphic op namespace used by the parser and by every derivative rule.

Each function dispatches on its arguments: if any is a graph `Node` it builds a
node (so rules applied to nodes build derivative graphs that can be differentiated
again); otherwise it evaluates with numpy.  Structural ops take the nominal shape of
their operand (`src`) so that arrays carrying leading batch axes (many tangents or
cotangents at once) are handled by the same code.
"""
import numpy as np

from adcalc.primitives import PRIMS

_Node = None


def _node_cls():
    global _Node
    if _Node is None:
        from adcalc.graph import Node
        _Node = Node
    return _Node


def bind(name, *args, **params):
    Node = _node_cls()
    for a in args:
        if isinstance(a, Node):
            return a.graph.apply(name, args, params)
    return PRIMS[name].impl(*args, **params)


def is_node(x):
    return isinstance(x, _node_cls())


def shape_of(x):
    return x.shape if is_node(x) else np.shape(x)


def _unary(name):
    return lambda x: bind(name, x)


def _binary(name):
    return lambda x, y: bind(name, x, y)


for _n, _p in PRIMS.items():
    if _p.kind in ("elementwise", "zero"):
        globals()[_n] = (_unary if _p.nargs == 1 else _binary)(_n)

add, sub, mul, div, pow, neg = add, sub, mul, div, pow, neg  # noqa: F821 (made above)
exp, log, sin, cos, sinh, cosh, sqrt = exp, log, sin, cos, sinh, cosh, sqrt  # noqa: F821
sigmoid, sign, step, eq = sigmoid, sign, step, eq  # noqa: F821


def recip(x):
    return div(1.0, x)


def add_opt(a, b):
    """Sum where None stands for zero."""
    if a is None:
        return b
    return a if b is None else add(a, b)


# ---- structural ops ------------------------------------------------------------------
def expand(t, src, rank):
    """Insert axes after the batch axes of `t` so its nominal rank grows to `rank`."""
    if is_node(t) or len(src) >= rank:
        return t
    lead = np.ndim(t) - len(src)
    return np.reshape(t, np.shape(t)[:lead] + (1,) * (rank - len(src)) + tuple(src))


def sum_to(x, shape, src):
    return bind("sum_to", x, shape=tuple(shape), src=tuple(src))


def broadcast(x, shape, src):
    return bind("broadcast", x, shape=tuple(shape), src=tuple(src))


def reshape(x, shape, src):
    return bind("reshape", x, shape=tuple(shape), src=tuple(src))


def transpose(x, src):
    if len(src) < 2:
        return x
    return bind("transpose", x, src=tuple(src))


def getitem(x, idx, src):
    return bind("getitem", x, idx=tuple(idx), src=tuple(src))


def scatter(x, idx, shape):
    return bind("scatter", x, idx=tuple(idx), shape=tuple(shape))


def prod_others(x, src):
    return bind("prod_others", x, src=tuple(src))


def stack(xs):
    """Stack equally shaped (or broadcastable) values along a new first axis."""
    shapes = [shape_of(x) for x in xs]
    src = tuple(np.broadcast_shapes(*shapes))
    xs = [broadcast(x, src, s) if tuple(s) != src else x for x, s in zip(xs, shapes)]
    return bind("stack", *xs, src=src)


def mm(a, b):
    return bind("matmul", a, b)


def matmul(a, b):
    """numpy's matmul/dot for operands of rank 0, 1 or 2, built from the 2-D primitive."""
    sa, sb = tuple(shape_of(a)), tuple(shape_of(b))
    if not sa or not sb:
        return mul(a, b)
    if len(sa) > 2 or len(sb) > 2:
        raise ValueError("matrix products of arrays of rank above 2 are not supported")
    a2 = reshape(a, (1,) + sa, sa) if len(sa) == 1 else a
    b2 = reshape(b, sb + (1,), sb) if len(sb) == 1 else b
    out = bind("matmul", a2, b2)
    shape = sa[:-1] + sb[1:]
    return reshape(out, shape, shape_of(out)) if len(sa) == 1 or len(sb) == 1 else out
