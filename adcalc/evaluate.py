"""The numpy interpreter over the graph, batched over points, with a domain check at every
node that has one.  Values carry a leading axis of points: a variable's value is
(N,) + its shape, a constant keeps its nominal shape (numpy broadcasts it)."""
import numpy as np

from adcalc.arena import ARENA, spare_for
from adcalc.core import PRIMS
from adcalc.errors import DomainError
from adcalc.graph import to_text


def needed(graph, outputs):
    """Ids of the ancestors of `outputs`, ascending (a topological order); cached."""
    key = ("needed", tuple(o.id for o in outputs))
    hit = graph.cache.get(key)
    if hit is not None:
        return hit
    top = max(o.id for o in outputs)
    mark = bytearray(top + 1)
    for o in outputs:
        mark[o.id] = 1
    nodes = graph.nodes
    for i in range(top, -1, -1):
        if mark[i]:
            for a in nodes[i].args:
                mark[a.id] = 1
    out = graph.cache[key] = [i for i in range(top + 1) if mark[i]]
    return out


def plan(graph, outputs):
    """The steps that compute `outputs`, cached: (id, kind, payload, arg ids, params, record)
    with kind 0 a constant (payload: its value), 1 a variable (payload: its name), 2 an op."""
    key = ("plan", tuple(o.id for o in outputs))
    hit = graph.cache.get(key)
    if hit is None:
        nodes, steps = graph.nodes, []
        for i in needed(graph, outputs):
            node = nodes[i]
            if node.op == "const":
                steps.append((i, 0, node.value, (), None, None))
            elif node.op == "var":
                steps.append((i, 1, node.p["name"], (), None, None))
            else:
                steps.append((i, 2, node, tuple(a.id for a in node.args), node.p or None, PRIMS[node.op]))
        hit = graph.cache[key] = steps
    return hit


def releases(graph, outputs, keep):
    """Per step of the plan, the ids whose value is dead after it (last use there, not an
    output, not in `keep`), cached per (outputs, keep)."""
    key = ("releases", tuple(o.id for o in outputs), keep)
    hit = graph.cache.get(key)
    if hit is None:
        steps = plan(graph, outputs)
        last = {}
        for k, (i, kind, payload, args, params, prim) in enumerate(steps):
            for j in args:
                last[j] = k
        hold = set(keep) | {o.id for o in outputs}
        hit = [[] for _ in steps]
        for j, k in last.items():
            if j not in hold:
                hit[k].append(j)
        graph.cache[key] = hit
    return hit


def evaluate(graph, outputs, env, check=True, dtype=float, bad=None, keep=None):
    """Values of every node that `outputs` need; `env` maps variable name -> (N,) + shape.

    Returns a list indexed by node id (None for nodes not needed).  `check` is a bool
    or the largest node id to check (the nodes of f itself: a derivative graph's own
    division by zero is a non-finite result, not a domain error).  Outside a record's
    domain: DomainError naming the sub-expression, or, when `bad` is a dict, the
    message is recorded for each offending point {row: message} and evaluation goes on.
    With `keep` (a frozenset of ids), every other value is released after its last use,
    so memory follows liveness; only the outputs and `keep` are returned.
    """
    vals = [None] * len(graph.nodes)
    cplx = dtype is complex
    limit = len(graph.nodes) if check is True else (check or -1)
    free = releases(graph, outputs, keep) if keep is not None else None
    owned = set() if free is not None and not cplx and _large(graph, outputs, env) else None   # ids whose array no one else sees
    with np.errstate(all="ignore"):
        for k, (i, kind, payload, args, params, prim) in enumerate(plan(graph, outputs)):
            if kind == 0:
                vals[i] = payload
                continue
            if kind == 1:
                vals[i] = np.asarray(env[payload], dtype=dtype)
                continue
            a = [vals[j] for j in args]
            if prim.domain is not None and i <= limit:
                ok = prim.domain[0](*a)
                if ok is not True and not np.all(ok):
                    if bad is None:
                        raise DomainError(f"{prim.domain[1]} in '{to_text(payload)}'")
                    _record(bad, ok, payload, prim.domain[1])
            impl = prim.cimpl if cplx and prim.cimpl is not None else prim.impl
            if owned is None:
                vals[i] = impl(*a, **params) if params else impl(*a)
            elif _writes_out(prim):
                buf = _dead_buffer(a, args, free[k], owned, vals)
                if buf is None:
                    buf = spare_for(a)
                vals[i] = (impl(*a, **params) if params else impl(*a)) if buf is None else impl(*a, out=buf, **(params or {}))
                owned.add(i)
            else:   # the result may be a view of an argument: neither is free to overwrite
                vals[i] = impl(*a, **params) if params else impl(*a)
                owned.difference_update(args)
            if free is not None:
                for j in free[k]:
                    if owned is not None and j in owned:   # ours alone: kept for a later node
                        owned.discard(j)
                        ARENA.give(vals[j])
                    vals[j] = None
    return vals


def _large(graph, outputs, env):
    """Whether some value of this evaluation is large enough for in-place writing to pay."""
    key = ("widest value", tuple(o.id for o in outputs))
    widest = graph.cache.get(key)
    if widest is None:
        nodes = graph.nodes
        widest = graph.cache[key] = max([1] + [nodes[i].size for i in needed(graph, outputs)])
    points = max([1] + [np.shape(v)[0] for v in env.values() if np.ndim(v)])
    return widest * points >= _REUSE_FROM


_OUT = {}          # record name -> whether its impl computes a fresh array and takes out=
_REUSE_FROM = 4096   # entries: below this a new array is cheaper than the checks


def _writes_out(prim):
    hit = _OUT.get(prim.name)
    if hit is None:
        f = prim.impl
        hit = _OUT[prim.name] = (
            (isinstance(f, np.ufunc) and f.signature is None and f.nout == 1 and "d" * f.nin + "->d" in f.types)
            or getattr(f, "takes_out", False))
    return hit


def _dead_buffer(a, args, dead, owned, vals):
    """An argument's array that dies at this step and that nothing else refers to, of the
    result's shape, to write the result into (numpy's temporary elision, done by liveness):
    a fresh process then does not fault in new pages for every node."""
    if not dead:
        return None
    for j, v in zip(args, a):
        if j in owned and j in dead and getattr(v, "size", 0) >= _REUSE_FROM and v.dtype == np.float64:
            try:
                if np.broadcast_shapes(*[np.shape(x) for x in a]) == v.shape:
                    owned.discard(j)
                    return v
            except ValueError:
                return None
    return None


def _record(bad, ok, node, message):
    ok = np.asarray(ok)
    rows = ok.reshape(ok.shape[0], -1).all(axis=1) if ok.ndim > len(node.shape) else np.full(1, bool(ok.all()))
    text = None
    for r in np.flatnonzero(~rows):
        if int(r) not in bad:
            text = text or f"{message} in '{to_text(node)}'"
            bad[int(r)] = text


def overflows(prob, vals, count):
    """[(node, (count,) bool rows)] for each sub-expression of f that is infinite from finite
    arguments at some of `count` points (rows of a batch, `vals` as Problem.values returns
    them; count = 1 also takes Problem.evaluate's values at one point).  Inside the domain
    nothing else makes an inf of finite numbers, so that is an overflow, and what is
    computed through it there has lost its digits: cbrt(c**2) at 2e186 is inf, its slope 0."""
    nodes = prob.graph.nodes
    out = []

    def rows(a, test):
        a = np.asarray(a)
        if a.ndim == 0 or a.shape[0] != count:   # a constant (or one point): one answer for all
            return np.full(count, bool(test(a).all()))
        return test(a.reshape(count, -1)).all(axis=1)
    with np.errstate(all="ignore"):
        for i in needed(prob.graph, [prob.output]):
            node, v = nodes[i], vals[i]
            if node.op in ("const", "var") or node.op not in PRIMS or v is None:
                continue
            hit = ~rows(v, lambda a: ~np.isinf(a))
            for a in node.args:
                if not hit.any():
                    break
                hit &= rows(vals[a.id], np.isfinite)
            if hit.any():
                out.append((node, hit))
    return out


def overflow_rows(prob, vals, count):
    """(count,) bool: the points where some sub-expression of f overflows (`overflows`)."""
    out = np.zeros(count, bool)
    for _, hit in overflows(prob, vals, count):
        out |= hit
    return out


def through_overflow(a):
    """A derivative computed through an overflow: NaN, but an infinity, which is the
    overflow itself, stays."""
    return np.where(np.isinf(a), a, np.nan)
