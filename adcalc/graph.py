"""The expression graph: a hash-consed DAG of `Node`s, numbered in topological order.

`Graph.apply` is the only way to make an operation node.  It converts plain numbers
to constant nodes, makes broadcasting explicit (a non-constant argument of a
pointwise op whose shape differs from the result's goes through a `broadcast` node,
so values carrying leading axes of points never broadcast along the wrong axis),
folds constants, applies a few algebraic identities (x*1, x+0, --x, ...), infers
the output shape from the record's shape rule and returns an existing node when an
identical one was made before (common subexpressions are shared).  Arguments exist
before the node that uses them, so node ids are a topological order: sweeps are
plain loops, never recursion.
"""
import gc
import math
import struct
import types

import numpy as np

from adcalc.core import PRIMS, Traced
from adcalc.errors import DomainError, InputError


_LOW = (1 << 32) - 1   # a span: source index << 64 | first token << 32 | end token (one int, no tuple)
_F64 = struct.Struct("=d")   # a float's bytes as numpy's float64 has them (const keys)
NO_PARAMS = types.MappingProxyType({})   # the params of every node that has none (one shared, read-only)


class Node(Traced):
    __slots__ = ("graph", "op", "args", "p", "shape", "id", "value", "span", "depends", "exact", "uniform")
    # span: where the user's text of the node is, as one int (Graph.span), or None

    def __init__(self, graph, op, args, p, shape, value=None):
        self.graph = graph
        self.op = op
        self.args = args
        self.p = p
        self.shape = shape
        self.value = value
        self.span = self.exact = self.uniform = None
        if value is not None and value.size and (value.ndim == 0 or np.all(value == value.flat[0])):
            self.uniform = float(value.flat[0])   # the one value of a constant (identities test it)
        if op == "var":
            self.depends = True
        else:
            for a in args:
                if a.depends:
                    self.depends = True
                    break
            else:
                self.depends = False
        self.id = len(graph.nodes)

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def label(self):
        """The user's own text for this node (made from a span only when asked)."""
        if self.span is None:
            return None
        return self.graph.sources[self.span >> 64].between((self.span >> 32) & _LOW, self.span & _LOW)

    def __repr__(self):
        return f"Node({self.id}, {self.op}, {self.shape})"

    def __str__(self):
        return to_text(self)


def _key(v):
    if isinstance(v, slice):
        return ("slice", v.start, v.stop, v.step)
    if isinstance(v, (tuple, list)):
        return tuple(_key(x) for x in v)
    return v


def broadcast_shapes(*shapes):
    first = shapes[0]
    if all(s == first for s in shapes):
        return tuple(first)
    return tuple(np.broadcast_shapes(*shapes))


class no_gc:
    """`with no_gc():` while building many nodes: Python's cycle collector would otherwise
    walk the growing graph again and again (40% of building a flat sum of 10^5 terms).
    Nodes are long-lived, so nothing is left for it to find; it is back on afterwards."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()
        return False


class Graph:
    """Builder and owner of nodes.  `strict` is on while user text is being folded."""

    def __init__(self):
        self.nodes = []
        self._intern = {}
        self.vars = {}
        self.strict = False
        self.cache = {}
        self.sources = []   # the parsed texts (parse.Source) that node spans refer to

    def var(self, name, shape):
        node = self.vars.get(name)   # a variable's node is found by its name alone
        if node is None:
            node = self.vars[name] = Node(self, "var", (), {"name": name}, tuple(shape))
            self.nodes.append(node)
        return node

    def const(self, value):
        """The constant node of a value: one per shape and bytes (a float's bytes packed
        directly, as numpy's float64 has them, so a number made before needs no array)."""
        if type(value) is float:
            key = ("const", (), _F64.pack(value))
            node = self._intern.get(key)
            if node is not None:
                return node
        value = np.asarray(value, dtype=float)
        key = ("const", value.shape, value.tobytes())
        node = self._intern.get(key)
        if node is None:
            node = self._intern[key] = Node(self, "const", (), NO_PARAMS, value.shape, value)
            self.nodes.append(node)
        return node

    def span(self, source, a, b):
        """The span of tokens a to b - 1 of a parsed text, as one int (Node.label reads it)."""
        for k, known in enumerate(self.sources):
            if known is source:
                break
        else:
            k = len(self.sources)
            self.sources.append(source)
        return k << 64 | a << 32 | b

    def lift(self, x):
        return x if isinstance(x, Node) else self.const(x)

    def apply(self, name, args, params):
        if not params and len(args) == 2:
            return self.binary(name, *args)
        if not params and len(args) == 1:
            return self.unary(name, args[0])
        return self._apply(PRIMS[name], args, params)

    def unary(self, name, x):
        """apply(name, (x,), {}) with its common case first: a function of one node that is
        not constant (its shape, nothing to broadcast or fold)."""
        prim = PRIMS[name]
        if prim.shape is None and type(x) is Node and x.op != "const":
            simple = _simplify(self, name, (x,), NO_PARAMS, x.shape)
            return simple if simple is not None else self._interned(prim, (x,), NO_PARAMS, x.shape)
        return self._apply(prim, (x,), {})

    def binary(self, name, x, y):
        """apply(name, (x, y), {}) with its common cases first: operands of one shape, or a
        node and a number, not both constant (nothing to broadcast or fold)."""
        prim = PRIMS[name]
        if type(x) is not Node:
            x = self.const(x)
        if type(y) is not Node:
            y = self.const(y)
        xo, yo = x.op, y.op
        if prim.shape is None and (xo != "const" or yo != "const"):
            xs, ys = x.shape, y.shape
            shape = xs if xs == ys or (not ys and yo == "const") else ys if not xs and xo == "const" else None
            if shape is not None:
                if xo in _PAIRED or yo in _PAIRED:   # the only identities of two operands
                    simple = _simplify(self, name, (x, y), NO_PARAMS, shape)
                    if simple is not None:
                        return simple
                return self._interned2(prim, x, y, shape)
        return self._apply(prim, (x, y), {})

    def _apply(self, prim, args, params):
        name = prim.name
        args = tuple([a if type(a) is Node else self.const(a) for a in args])
        if "src" in params and prim.kind in ("linear", "custom"):
            params = dict(params, src=args[0].shape)
        if "srcs" in params:
            params = dict(params, srcs=tuple(a.shape for a in args))
        shape = self._shape(prim, args, params)
        if prim.pointwise and any(a.shape != shape and a.op != "const" for a in args):
            args = tuple(a if a.shape == shape or a.op == "const"
                         else self.apply("broadcast", (a,), {"shape": shape, "src": a.shape}) for a in args)
        simple = _simplify(self, name, args, params, shape)
        if simple is not None:
            return simple
        if args and all(a.op == "const" for a in args):
            return self._fold(prim, args, params, shape)
        return self._interned(prim, args, params, shape)

    def _interned(self, prim, args, params, shape):
        """The node of prim on args, made once (x*2 and 2*x are one node: the same number)."""
        if len(args) == 2 and not params:
            return self._interned2(prim, args[0], args[1], shape)
        ids = sorted(a.id for a in args) if prim.commutative else [a.id for a in args]
        key = (prim.name, tuple(ids), _key(tuple(sorted(params.items()))) if params else ())
        node = self._intern.get(key)
        if node is None:
            node = Node(self, prim.name, args, params or NO_PARAMS, shape)
            self.nodes.append(node)
            self._intern[key] = node
        return node

    def _interned2(self, prim, x, y, shape):
        """_interned for two operands and no params: the usual node, under a flat key."""
        a, b = x.id, y.id
        key = (prim.name, b, a) if prim.commutative and b < a else (prim.name, a, b)
        node = self._intern.get(key)
        if node is None:
            node = Node(self, prim.name, (x, y), NO_PARAMS, shape)
            self.nodes.append(node)
            self._intern[key] = node
        return node

    def _shape(self, prim, args, params):
        shapes = [a.shape for a in args]
        try:
            if prim.shape is None:
                return broadcast_shapes(*shapes)
            return tuple(prim.shape(shapes, **params))
        except (ValueError, IndexError, TypeError) as e:
            shown = ", ".join(str(list(s)) for s in shapes)
            raise InputError(f"{prim.name} cannot take arguments of shapes {shown} ({e})") from None

    def _fold(self, prim, args, params, shape):
        vals = [a.value for a in args]
        if prim.domain is not None and self.strict:
            ok, msg = prim.domain
            with np.errstate(all="ignore"):
                inside = np.all(ok(*vals))
            if not inside:
                raise DomainError(f"{msg} in the constant '{to_text(Node(self, prim.name, args, params, shape))}'")
        with np.errstate(all="ignore"):
            value = np.asarray(prim.impl(*vals, **params), dtype=float)
        if self.strict and not np.all(np.isfinite(value)):
            text = to_text(Node(self, prim.name, args, params, shape))
            raise InputError(f"the constant '{text}' overflows or is not a finite number")
        out = self.const(np.broadcast_to(value, shape) if value.shape != shape else value)
        if out.exact is None and prim.pointwise and not shape:
            out.exact = (prim.name, args)   # how it was made: exact formulas keep sin(pi/6) = 1/2
        return out


def _is_const(node, c):
    return node.uniform is not None and node.uniform == c


_PAIRED = frozenset(["const", "neg"])   # an identity of two operands needs one made by these


def _simplify(g, name, args, params, shape):
    """Algebraic identities that keep derivative graphs small."""
    if name in ("add", "sub", "mul", "div", "pow"):
        x, y = args
        if x.op not in _PAIRED and y.op not in _PAIRED:   # every identity below needs one
            return None
        if name == "add" and _is_const(x, 0) and y.shape == shape:
            return y
        if name in ("add", "sub") and _is_const(y, 0) and x.shape == shape:
            return x
        if name == "sub" and _is_const(x, 0) and y.shape == shape:
            return g.apply("neg", (y,), {})
        if name == "mul":
            for a, b in ((x, y), (y, x)):
                if _is_const(a, 1) and b.shape == shape:
                    return b
                if _is_const(a, -1) and b.shape == shape:
                    return g.apply("neg", (b,), {})
                if _is_const(a, 0):
                    return g.const(np.zeros(shape))
                if a.op == "const" and b.op == "neg":   # (-b) c = b (-c), exactly
                    return g.apply("mul", (g.const(-a.value), b.args[0]), {})
        if name == "add" and shape == x.shape == y.shape:   # a + (-b) = a - b, exactly
            if y.op == "neg":
                return g.apply("sub", (x, y.args[0]), {})
            if x.op == "neg":
                return g.apply("sub", (y, x.args[0]), {})
        if name in ("div", "pow") and _is_const(y, 1) and x.shape == shape:
            return x
        if name == "pow" and _is_const(y, 0):
            return g.const(np.ones(shape))
    elif name == "neg" and args[0].op == "neg":
        return args[0].args[0]
    elif name == "neg" and args[0].op == "mul" and args[0].args[0].op == "const":   # -(c b) = (-c) b
        c, b = args[0].args
        return g.apply("mul", (g.const(-c.value), b), {})
    elif name == "select" and args[0].op == "const" and args[0].value.size \
            and (np.all(args[0].value != 0) or np.all(args[0].value == 0)):
        pick = args[1] if args[0].uniform != 0 else args[2]
        return pick if pick.shape == shape else g.apply("broadcast", (pick,), {"shape": shape, "src": pick.shape})
    elif name in ("sum_to", "broadcast", "reshape") and params["shape"] == args[0].shape:
        return args[0]
    elif name == "reshape" and args[0].op == "reshape":
        return g.apply("reshape", args[0].args, dict(params, src=args[0].args[0].shape))
    return None


# ---- printing -----------------------------------------------------------------------
def to_text(node, limit=200):
    """Infix text of a node; the user's own text when the node came from user input."""
    out = _text(node, 12)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _fmt_const(v):
    if v.ndim == 0:
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return np.array2string(v, separator=", ", threshold=6)


def _text(node, depth):
    if node.span is not None:
        return node.label
    if node.op == "var":
        return node.p["name"]
    if node.op == "const":
        return _fmt_const(node.value)
    if depth <= 0:
        return "..."
    prim = PRIMS[node.op]
    parts = [_text(a, depth - 1) for a in node.args]
    if prim.infix and len(parts) == 2:
        return f"({parts[0]} {prim.infix} {parts[1]})"
    if prim.infix and len(parts) == 1:
        return f"-({parts[0]})"
    if node.op == "getitem":
        return f"{parts[0]}[{', '.join(_idx_text(i) for i in node.p['idx'])}]"
    if node.op == "transpose":
        return f"{parts[0]}.T"
    if node.op == "stack":
        return f"[{', '.join(parts)}]"
    if node.op in ("broadcast", "reshape"):
        return parts[0]
    if node.op == "sum_to" and not node.shape:
        return f"sum({parts[0]})"
    return f"{node.op}({', '.join(parts)})"


def _idx_text(i):
    if isinstance(i, slice):
        s = "" if i.start is None else str(i.start)
        s += ":" + ("" if i.stop is None else str(i.stop))
        return s + ("" if i.step is None else f":{i.step}")
    return str(i)
