"""Reverse mode: a tape (the graph's nodes in topological order) swept backwards.

  grad      the gradient graph (one backward sweep done once, on nodes) evaluated at all
            N points as a precomputed program (adcalc.evaluate.Program); points where it
            meets a non-finite number or an underflow take the numeric sweep (vjp).
  vjp       one forward evaluation at all N points, one backward sweep carrying K
            cotangents at once (the Jacobian's rows, or one u).
  jacobian  (base) one batched sweep with the m unit cotangents.
  hvp       double backprop done once on nodes: the cotangent graph of the gradient
            graph, evaluated along the K directions (the Hessian is never formed), with
            the same fallback to the numeric sweeps.
  hessian   (base) the gradient graph's Jacobian: one batched sweep with n cotangents.
  jvp       the transpose of the vjp (Theano's R-op from two L-ops): J v is the
            gradient with respect to u of (u^T J) . v, one backward sweep over the
            cotangent graph, which is linear in u.
"""
import numpy as np

from adcalc import derivatives
from adcalc.ad import Underflow, rule_inputs, vjp_sweep
from adcalc.engines.base import Engine, Result, through_graph


def flat_parts(prob, parts, lead):
    """(lead..., n) from per-variable (co)tangents (None = 0) in variable order."""
    out = []
    for v, s, p in zip(prob.var_nodes, prob.sizes, parts):
        if p is None:
            out.append(np.zeros(lead + (s,)))
            continue
        if np.shape(p) != lead + v.shape:
            p = np.broadcast_to(p, lead + v.shape)
        out.append(np.reshape(p, lead + (s,)))
    if len(out) == 1:
        return out[0]
    return np.concatenate(out, axis=-1) if out else np.zeros(lead + (0,))


def unflatten(prob, V, lead):
    """{variable id: (lead..., shape)} from flat (lead..., n) directions."""
    out, pos = {}, 0
    for v, s in zip(prob.var_nodes, prob.sizes):
        out[v.id] = V[..., pos:pos + s].reshape(lead + v.shape)
        pos += s
    return out


class ReverseEngine(Engine):
    name = "reverse"

    def grad(self, prob, x):
        """One point: straight to the gradient (a loop over points pays no batching)."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 1 or prob.m != 1:
            return super().grad(prob, x)
        r = self.grad_batch(prob, x[None])
        return Result(r.value[0], info=r.info)

    def grad_batch(self, prob, X):
        """The gradient graph evaluated (its sweep was done once, on nodes); points where
        that meets a non-finite number or an underflow take the numeric sweep instead."""
        if prob.m != 1:
            return super().grad_batch(prob, X)
        return through_graph(derivatives.gradient(prob), X, None,
                             lambda rows: super(ReverseEngine, self).grad_batch(prob, X[rows]))

    def hvp_batch(self, prob, X, V):
        """Double backprop, done once on nodes: the cotangent graph of the gradient graph
        (u^T H = (H u)^T, H symmetric) evaluated along the K directions, with the same
        fallback (the forward engine's HVP is forward over reverse: the two stay apart)."""
        if prob.m != 1:
            return super().hvp_batch(prob, X, V)
        gp = derivatives.gradient(prob)
        cp, (u,) = derivatives.cotangent(gp)
        return through_graph(cp, X, {u.p["name"]: np.asarray(V, dtype=float)},
                             lambda rows: super(ReverseEngine, self).hvp_batch(prob, X[rows], V[:, rows]),
                             lead=V.shape[:2])

    def vjp_batch(self, prob, X, U, env=None):
        K, N = U.shape[0], len(X)
        keep = rule_inputs(prob.graph, [prob.output], prob.var_nodes)
        vals = prob.values(X, env=env, keep=keep)   # values the rules do not read are freed early
        seed = np.asarray(U, dtype=float).reshape((K, N) + prob.out_shape)
        with Underflow() as under:
            parts = vjp_sweep(prob.graph, [(prob.output, seed)], prob.var_nodes, lambda n: vals[n.id], vals)
        return Result(flat_parts(prob, parts, (K, N)), info={"underflow": under.seen} if under.seen else None)

    def jvp_batch(self, prob, X, V):
        K, N = V.shape[0], len(X)
        cp, (u,) = derivatives.cotangent(prob)
        env = {u.p["name"]: np.zeros((N,) + u.shape)}
        vals = prob.values(X, nodes=[cp.output], env=env)
        seed = np.asarray(V, dtype=float).reshape(K, N, prob.n)
        with Underflow() as under:
            (t,) = vjp_sweep(prob.graph, [(cp.output, seed)], [u], lambda n: vals[n.id])
        info = {"underflow": True} if under.seen else None
        if t is None:
            return Result(np.zeros((K, N, prob.m)), info=info)
        return Result(np.reshape(np.broadcast_to(t, (K, N) + u.shape), (K, N, prob.m)), info=info)
