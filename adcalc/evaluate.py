"""The numpy interpreter over the graph, with a domain check at every node that has one."""
import numpy as np

from adcalc.errors import DomainError
from adcalc.graph import to_text
from adcalc.primitives import PRIMS


def needed(graph, outputs):
    """Ids of the ancestors of `outputs`, ascending (a topological order)."""
    top = max(o.id for o in outputs)
    mark = bytearray(top + 1)
    for o in outputs:
        mark[o.id] = 1
    nodes = graph.nodes
    for i in range(top, -1, -1):
        if mark[i]:
            for a in nodes[i].args:
                mark[a.id] = 1
    return [i for i in range(top + 1) if mark[i]]


def evaluate(graph, outputs, env, check=True, dtype=float):
    # `check` is a bool or the largest node id to check (the nodes of f itself: a
    # derivative graph's own division by zero is a non-finite result, not a domain error)
    """Values of every node that `outputs` need; `env` maps variable name -> array.

    Returns a list indexed by node id (None for nodes not needed).  With `check`, a
    point outside a primitive's domain raises DomainError naming the sub-expression.
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
                ok, msg = prim.domain
                if not np.all(ok(*args)):
                    raise DomainError(f"{msg} in '{to_text(node)}'")
            impl = prim.cimpl if cplx and prim.cimpl is not None else prim.impl
            vals[i] = impl(*args, **node.p) if node.p else impl(*args)
    return vals
