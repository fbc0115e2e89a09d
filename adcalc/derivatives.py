"""Derivative graphs, built once per problem and memoised on it.

Each builder returns a Problem with the same variables and point whose output is a
derivative graph made of table primitives (so it can be evaluated by any engine,
differentiated again, printed as C, or drawn).  Direction variables are named
`%dK:NAME` (K the id of the output they belong to; no user can write such a name).

  gradient(prob)        (n,)   reverse sweep on nodes, seed 1
  jacobian(prob)        (m, n) one reverse sweep on nodes per output entry
  tangent(prob)         (m,)   J(x) d along direction variables d (forward on nodes)
  cotangent(prob)       (n,)   u^T J(x) along output-shaped variables u (reverse on nodes)
  hvp(prob)             (n,)   H(x) d: the tangent of the gradient (forward over reverse)
  hessian(prob)         (n, n) the Jacobian of the gradient
  partial(prob, comps)  ()     a mixed partial derivative of any order
"""
import numpy as np

from adcalc.ad import jvp_sweep, vjp_sweep
from adcalc.errors import InputError
from adcalc.graph import no_gc
from adcalc.primitives import concat, getitem, reshape, stack_all

DIRECTION = "%d"


def _ident(node):
    return node


def _memo(prob, key, build):
    hit = prob.derived.get(key)
    if hit is not None:
        return hit
    with no_gc():
        return prob.with_output(build(), key)


def flatten(prob, parts):
    """One (n,) node from per-variable derivative nodes (None = 0), in variable order."""
    g = prob.graph
    pieces = []
    for v, p in zip(prob.var_nodes, parts):
        p = g.const(np.zeros(v.shape)) if p is None else p
        pieces.append(p if p.shape == (v.size,) else reshape(p, shape=(v.size,), src=v.shape))
    if not pieces:
        return g.const(np.zeros(0))
    return pieces[0] if len(pieces) == 1 else concat(*pieces, srcs=tuple(p.shape for p in pieces))


def scalar_output(prob, what):
    if prob.m != 1:
        raise InputError(f"{what} needs a scalar expression, but this one has {prob.m} outputs "
                         f"(shape {list(prob.out_shape)})")


def gradient(prob):
    scalar_output(prob, "the gradient")

    def build():
        g = prob.graph
        seed = g.const(np.ones(prob.out_shape))
        return flatten(prob, vjp_sweep(g, [(prob.output, seed)], prob.var_nodes, _ident))
    return _memo(prob, "gradient", build)


def jacobian(prob):
    def build():
        g = prob.graph
        rows = []
        for k in range(prob.m):
            e = np.zeros(prob.m)
            e[k] = 1.0
            seed = g.const(e.reshape(prob.out_shape))
            rows.append(flatten(prob, vjp_sweep(g, [(prob.output, seed)], prob.var_nodes, _ident)))
        return stack_all(rows) if rows else g.const(np.zeros((0, prob.n)))
    return _memo(prob, "jacobian", build)


def directions(prob, shapes=None):
    """Direction variables: one per variable of `prob` (or per given (name, shape))."""
    g = prob.graph
    shapes = shapes or [(v.p["name"], v.shape) for v in prob.var_nodes]
    return [g.var(f"{DIRECTION}{prob.output.id}:{name}", shape) for name, shape in shapes]


def direction_env(dirs, V):
    """{direction variable name: array} from flat directions V (..., total size)."""
    V = np.asarray(V, dtype=float)
    out, pos = {}, 0
    for d in dirs:
        out[d.p["name"]] = V[..., pos:pos + d.size].reshape(V.shape[:-1] + d.shape)
        pos += d.size
    return out


def tangent(prob):
    """(Problem whose output is J(x) d flattened to (m,), the direction variables d)."""
    def build():
        dirs = directions(prob)
        (t,) = jvp_sweep(prob.graph, [prob.output], {v.id: d for v, d in zip(prob.var_nodes, dirs)}, _ident)
        t = prob.graph.const(np.zeros(prob.out_shape)) if t is None else t
        return t if t.shape == (prob.m,) else reshape(t, shape=(prob.m,), src=t.shape)
    p = _memo(prob, "tangent", build)
    return p, directions(prob)


def cotangent(prob):
    """(Problem whose output is u^T J(x), (n,), the output-shaped variable u)."""
    (u,) = directions(prob, [("out", prob.out_shape)])

    def build():
        return flatten(prob, vjp_sweep(prob.graph, [(prob.output, u)], prob.var_nodes, _ident))
    return _memo(prob, "cotangent", build), [u]


def hvp(prob):
    """(Problem whose output is H(x) d, (n,), the direction variables d)."""
    return tangent(gradient(prob))


def hessian(prob):
    return jacobian(gradient(prob))


def partial(prob, components, mode="forward"):
    """The mixed partial d^k f / dx_{c1} ... dx_{ck} of a scalar problem, components given
    as flat input indices; nested forward sweeps with unit tangents (mode "forward") or
    repeated reverse sweeps (mode "reverse") on nodes."""
    scalar_output(prob, "a partial derivative")
    key = ("partial", mode, tuple(components))
    hit = prob.derived.get(key)
    if hit is not None:
        return hit
    g = prob.graph
    node = prob.output
    if node.shape:
        node = reshape(node, shape=(), src=node.shape)
    for c in components:
        var, local = _locate(prob, c)
        if mode == "forward":
            e = np.zeros(var.size)
            e[local] = 1.0
            (node,) = jvp_sweep(g, [node], {var.id: g.const(e.reshape(var.shape))}, _ident)
        else:
            (ct,) = vjp_sweep(g, [(node, g.const(1.0))], [var], _ident)
            node = None if ct is None else (_entry(ct, var, local) if var.shape else ct)
        if node is None:
            node = g.const(0.0)
            break
    return prob.with_output(node, key)


def _entry(node, var, local):
    idx = np.unravel_index(local, var.shape)
    return getitem(node, idx=tuple(int(i) for i in idx), src=var.shape)


def _locate(prob, c):
    pos = 0
    for v, size in zip(prob.var_nodes, prob.sizes):
        if c < pos + size:
            return v, c - pos
        pos += size
    raise InputError(f"input index {c} is out of range (n = {prob.n})")
