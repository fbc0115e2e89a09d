"""The numpy interpreter over the graph, batched over points, with a domain check at every
node that has one.  Values carry a leading axis of points: a variable's value is
(N,) + its shape, a constant keeps its nominal shape (numpy broadcasts it)."""
import numpy as np

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


def evaluate(graph, outputs, env, check=True, dtype=float, bad=None):
    """Values of every node that `outputs` need; `env` maps variable name -> (N,) + shape.

    Returns a list indexed by node id (None for nodes not needed).  `check` is a bool
    or the largest node id to check (the nodes of f itself: a derivative graph's own
    division by zero is a non-finite result, not a domain error).  Outside a record's
    domain: DomainError naming the sub-expression, or, when `bad` is a dict, the
    message is recorded for each offending point {row: message} and evaluation goes on.
    """
    nodes = graph.nodes
    vals = [None] * len(nodes)
    cplx = dtype is complex
    limit = len(nodes) if check is True else (check or -1)
    with np.errstate(all="ignore"):
        for i in needed(graph, outputs):
            node = nodes[i]
            op = node.op
            if op == "const":
                vals[i] = node.value
                continue
            if op == "var":
                vals[i] = np.asarray(env[node.p["name"]], dtype=dtype)
                continue
            prim = PRIMS[op]
            args = [vals[a.id] for a in node.args]
            if prim.domain is not None and i <= limit:
                ok = prim.domain[0](*args)
                if not np.all(ok):
                    if bad is None:
                        raise DomainError(f"{prim.domain[1]} in '{to_text(node)}'")
                    _record(bad, ok, node, prim.domain[1])
            impl = prim.cimpl if cplx and prim.cimpl is not None else prim.impl
            vals[i] = impl(*args, **node.p) if node.p else impl(*args)
    return vals


def _record(bad, ok, node, message):
    ok = np.asarray(ok)
    rows = ok.reshape(ok.shape[0], -1).all(axis=1) if ok.ndim > len(node.shape) else np.full(1, bool(ok.all()))
    text = None
    for r in np.flatnonzero(~rows):
        if int(r) not in bad:
            text = text or f"{message} in '{to_text(node)}'"
            bad[int(r)] = text
