"""Forward and reverse sweeps over the graph, generic in what a value is.

`vjp_sweep` and `jvp_sweep` apply the rules of the table to values given by
`val(node)`.  When the values are numpy arrays the sweeps compute numbers (the
reverse engine's tape, the forward engine's dual numbers); when `val` is the
identity on nodes they build derivative graphs, which can be differentiated again.

Array layout: a node's value is (N,) + its nominal shape (N points); a tangent or
cotangent is (K, N) + nominal shape (K directions), so numpy's right-aligned
broadcasting lines the point axes up.  None stands for a zero.
"""
import math

import numpy as np

from adcalc.arena import ARENA, spare_for
from adcalc.core import MINUS, ONE, PRIMS, Quotient, bind


def active(graph, outputs, wrt):
    """(ids in descending order of the nodes between `wrt` and `outputs`, reach mask);
    cached per (outputs, wrt): repeated sweeps at new points do only arithmetic."""
    key = ("active", tuple(n.id for n in outputs), tuple(v.id for v in wrt))
    hit = graph.cache.get(key)
    if hit is not None:
        return hit
    top = max(n.id for n in outputs)
    nodes = graph.nodes
    reach = bytearray(top + 1)
    for v in wrt:
        if v.id <= top:
            reach[v.id] = 1
    for i in range(top + 1):
        if not reach[i] and nodes[i].depends:
            reach[i] = any(reach[a.id] for a in nodes[i].args)
    mark = bytearray(top + 1)
    for n in outputs:
        mark[n.id] = reach[n.id]
    order = []
    for i in range(top, -1, -1):
        if mark[i]:
            order.append(i)
            for a in nodes[i].args:
                if reach[a.id]:
                    mark[a.id] = 1
    graph.cache[key] = order, reach
    return order, reach


class Underflow:
    """Watches a numeric sweep for floating-point underflow (an intermediate derivative below
    2.2e-308, where a product of a tiny and a huge factor loses its digits or becomes 0), and
    for an undefined partial (x**y along y at x < 0) met by a zero (co)tangent, which may be
    a tiny one that underflowed: `with Underflow() as u: ...; u.seen`."""

    def __enter__(self):
        self.seen = False
        self._state = np.errstate(all="ignore", under="call", call=self._hit)
        self._state.__enter__()
        _WATCH.append(self)
        return self

    def _hit(self, kind, flag):
        self.seen = True

    def __exit__(self, *exc):
        _WATCH.pop()
        self._state.__exit__(*exc)
        return False


_WATCH = []   # the sweeps being watched (innermost last)


def _add(a, b):
    if a is None:
        return b
    return a if b is None else a + b


def _sweep_plan(graph, outputs, wrt):
    """Per node of the backward sweep, cached: (id, node, which arguments need a cotangent)."""
    key = ("sweep", tuple(n.id for n in outputs), tuple(v.id for v in wrt))
    hit = graph.cache.get(key)
    if hit is None:
        order, reach = active(graph, outputs, wrt)
        wrt_ids = {v.id for v in wrt}
        nodes = graph.nodes
        hit = graph.cache[key] = (
            [(i, nodes[i], None if i in wrt_ids or nodes[i].op == "var" else [bool(reach[a.id]) for a in nodes[i].args])
             for i in order], reach)
    return hit


def _reads(graph, seeds, wrt):
    """Per step of the backward sweep, the ids whose values its rule reads (empty for
    linear and piecewise-constant records and for add/sub/neg, whose partials are
    constants)."""
    key = ("reads", tuple(n.id for n in seeds), tuple(v.id for v in wrt))
    hit = graph.cache.get(key)
    if hit is not None:
        return hit
    steps, _ = _sweep_plan(graph, seeds, wrt)
    out = graph.cache[key] = []
    for i, node, need in steps:
        prim = PRIMS.get(node.op)
        if need is None or prim is None or prim.kind in ("linear", "zero") or prim.constant_partials:
            out.append(())
        else:
            out.append((i,) + tuple(a.id for a in node.args))
    return out


def rule_inputs(graph, seeds, wrt):
    """Ids whose values the backward sweep's rules read (cached)."""
    key = ("rule_inputs", tuple(n.id for n in seeds), tuple(v.id for v in wrt))
    hit = graph.cache.get(key)
    if hit is None:
        hit = graph.cache[key] = frozenset(j for ids in _reads(graph, seeds, wrt) for j in ids)
    return hit


def _last_reads(graph, seeds, wrt):
    """Per step of the backward sweep, the ids whose values no later step reads (cached):
    the sweep can drop them there, so memory shrinks as it goes."""
    key = ("last_reads", tuple(n.id for n in seeds), tuple(v.id for v in wrt))
    hit = graph.cache.get(key)
    if hit is None:
        reads = _reads(graph, seeds, wrt)
        last = {}
        for k, ids in enumerate(reads):
            for j in ids:
                last[j] = k
        hit = [[] for _ in reads]
        for j, k in last.items():
            hit[k].append(j)
        graph.cache[key] = hit
    return hit


def vjp_sweep(graph, seeds, wrt, val, vals=None):
    """Cotangents of the `wrt` variables given `seeds` [(node, cotangent)].  With `vals`
    (the list `val` reads, owned by the caller and not needed after the sweep), each value
    is dropped after the last rule that reads it.

    Over arrays the sweep writes in place where it can: a product of a cotangent and a
    partial that the rule has just made goes into the partial's array, and a sum of
    cotangents into an array only this sweep holds (`mine`), so a fresh process does not
    fault in new pages at every node (numpy's temporary elision, done by ownership)."""
    steps, reach = _sweep_plan(graph, [n for n, _ in seeds], wrt)
    cts, mine = {}, set()
    for n, s in seeds:
        if reach[n.id]:
            cts[n.id] = _add(cts.get(n.id), s)
    result = {}
    drop = _last_reads(graph, [n for n, _ in seeds], wrt) if vals is not None else None
    for k, (i, node, need) in enumerate(steps):
        if drop is not None and k:
            for j in drop[k - 1]:
                vals[j] = None
        ct = cts.pop(i, None)
        if ct is None:
            continue
        ours = i in mine
        mine.discard(i)
        if need is None:
            result[i] = ct
            continue
        fresh = []
        parts = vjp_rule(node, val, ct, need, fresh)
        if ours and not any(type(c) is np.ndarray and np.may_share_memory(c, ct) for c in parts):
            ARENA.give(ct)   # spent, and no argument's cotangent is a view of it
        for a, c, nd, fr in zip(node.args, parts, need, fresh):
            if c is None or not nd:
                continue
            j = a.id
            old = cts.get(j)
            if old is None:
                cts[j] = c
                if fr:
                    mine.add(j)
            elif j in mine and _fits(old, c):
                np.add(old, c, out=old)
            elif fr and _fits(c, old):
                cts[j] = np.add(c, old, out=c)
                mine.add(j)
            else:
                cts[j] = old + c
                if type(cts[j]) is np.ndarray:
                    mine.add(j)
                else:
                    mine.discard(j)
    return [result.get(v.id) for v in wrt]


_INPLACE_FROM = 4096   # entries: below this a new array is cheaper than the checks


def _fits(buf, other):
    """Whether buf + other can be written into buf (same shape after broadcasting)."""
    return (type(buf) is np.ndarray and buf.size >= _INPLACE_FROM and buf.dtype == np.float64
            and np.ndim(other) <= buf.ndim and np.broadcast_shapes(buf.shape, np.shape(other)) == buf.shape
            and np.result_type(other) == np.float64)


def _made_here(d, args, ans):
    """Whether the partial `d` is an array its rule has just made (not an argument, the
    result, or a view of them), so it may be overwritten."""
    return (type(d) is np.ndarray and d.size >= _INPLACE_FROM and d.dtype == np.float64
            and d.flags.owndata and d.flags.c_contiguous and d is not ans
            and all(d is not a for a in args))


def vjp_rule(node, val, ct, need, fresh=None):
    """The cotangents of node's arguments given its cotangent `ct` (None where not needed).
    With a list `fresh`, one flag per argument is appended: the cotangent is an array that
    nothing else refers to."""
    prim = PRIMS[node.op]
    kind = prim.kind
    if kind == "zero":
        return _flags(fresh, [None] * len(node.args))
    if kind == "linear":
        out = prim.transpose(ct, node)
        if fresh is not None:   # a transpose sees only ct: an array of its own data is new
            fresh.extend(type(c) is np.ndarray and c.flags.owndata and c is not ct for c in out)
        return out
    args = [val(a) for a in node.args]
    if prim.vjp is not None:
        if prim.name in NEEDS:   # rules that can skip the cotangents nobody needs
            return _flags(fresh, prim.vjp(node, args, val(node), ct, need))
        return _flags(fresh, prim.vjp(node, args, val(node), ct))
    ans = val(node)
    out = []
    mask = _masks(prim, node, ct)
    arrays = fresh is not None and type(ct) is np.ndarray and ct.size >= _INPLACE_FROM
    for f, nd in zip(prim.partials, need):
        if not nd:
            out.append(None)
            if fresh is not None:
                fresh.append(False)
            continue
        d = f(*args, ans)
        if d is ONE:
            c, fr = ct, False
        elif d is MINUS:
            c = np.negative(ct, out=spare_for((ct,))) if arrays else -ct
            fr = arrays
        elif arrays and not mask and _made_here(d, args, ans):
            shape = np.broadcast_shapes(ct.shape, d.shape)
            if math.prod(shape) == d.size:
                c, fr = np.multiply(ct, d, out=d.reshape(shape)), True
            else:
                c = _times(ct, d, mask)
                fr = type(c) is np.ndarray
        elif arrays and not mask and not isinstance(d, Quotient):
            c, fr = np.multiply(ct, d, out=spare_for((ct, d))), True
        else:
            c = _times(ct, d, mask)
            fr = arrays and type(c) is np.ndarray and c is not ct and c is not d and c.flags.owndata
        out.append(c)
        if fresh is not None:
            fresh.append(fr)
    return out


def _flags(fresh, cts):
    """Cotangents a rule made elsewhere (transposes, custom rules): none counted as fresh."""
    if fresh is not None:
        fresh.extend([False] * len(cts))
    return cts


def _masks(prim, node, t):
    """Whether a zero (co)tangent must contribute 0 where the partial is infinite or undefined
    (the record is `singular` here); only arrays need it (nodes carry no numbers yet)."""
    s = prim.singular
    if not s or hasattr(t, "graph"):
        return False
    return s(node) if callable(s) else True


def _times(t, d, mask):
    out = d.apply(t) if isinstance(d, Quotient) else t * d
    if mask:
        zero = t == 0
        if _WATCH and np.any(zero & np.isnan(out)):
            _WATCH[-1].seen = True   # an undefined partial met a zero that may only be tiny
        out = np.where(zero, 0.0, out)
    return out


NEEDS = {"matmul"}


def jvp_sweep(graph, outputs, tangents, val):
    """Tangents of `outputs` given {variable id: tangent}; returns a list (None = 0)."""
    order, _ = active(graph, outputs, [graph.nodes[i] for i in tangents])
    tans = dict(tangents)
    nodes = graph.nodes
    for i in reversed(order):
        node = nodes[i]
        if node.op in ("var", "const") or i in tans:
            continue
        targs = [tans.get(a.id) for a in node.args]
        if all(t is None for t in targs):
            continue
        tans[i] = jvp_rule(node, val, targs)
    return [tans.get(n.id) for n in outputs]


def jvp_rule(node, val, tans):
    prim = PRIMS[node.op]
    kind = prim.kind
    if kind == "zero":
        return None
    if kind == "linear":
        if len(tans) > 1:
            tans = _fill_zeros(node, tans)
        return bind(node.op, *tans, **node.p)
    args = [val(a) for a in node.args]
    if prim.jvp is not None:
        return prim.jvp(node, args, val(node), tans)
    ans = val(node)
    total = None
    for f, t in zip(prim.partials, tans):
        if t is None:
            continue
        d = f(*args, ans)
        total = _add(total, t if d is ONE else -t if d is MINUS else _times(t, d, _masks(prim, node, t)))
    return total


def _fill_zeros(node, tans):
    ref = next(t for t in tans if t is not None)
    if hasattr(ref, "graph"):
        g = ref.graph
        return [g.const(np.zeros(a.shape)) if t is None else t for a, t in zip(node.args, tans)]
    a0 = next(a for a, t in zip(node.args, tans) if t is not None)
    lead = np.shape(ref)[:np.ndim(ref) - len(a0.shape)]
    return [np.zeros(lead + a.shape) if t is None else t for a, t in zip(node.args, tans)]
