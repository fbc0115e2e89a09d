"""Forward mode: dual numbers over the graph.

Every node carries a value and a tangent: the graph is evaluated once, then
`jvp_sweep` pushes tangents through the primitive table's rules in topological
order (that sweep over numbers *is* dual-number arithmetic).  Tangents carry one
leading batch axis, so vector mode pushes many directions in one pass.

  jvp       one pass, tangent v.
  jacobian  one pass with the n unit directions at once (vector mode); grad is its row.
  vjp       u^T J from the vector-mode Jacobian: forward passes only.
  hvp       forward-over-forward.  Inner level: the tangent graph t(x, V) = f'(x) V,
            built once per expression by `jvp_sweep` on nodes with direction
            variables V.  Outer level: vector-mode dual numbers over that graph at
            V = v with tangents e_1..e_n: one pass gives d/dx (f'(x) v) = H v.
  hessian   the forward gradient graph g_i = t(x, e_i) (one tangent graph per unit
            direction, constant seeds, hash-consed together, built once), then its
            Jacobian by one vector-mode pass: H exact, one outer pass.  Above
            BATCH_LIMIT inputs it is n hvp passes instead, which build nothing.

No reverse sweep is used anywhere, so this engine checks the reverse one.
"""
import numpy as np

from adcalc import ops as o
from adcalc.ad import jvp_sweep
from adcalc.engines.base import Engine, scalar_only

BATCH_LIMIT = 64


def _node_val(node):
    return node


def _scalar(prob, t):
    """A scalar node from an output tangent node (None stands for zero)."""
    return prob.graph.const(0.0) if t is None else o.reshape(t, (), t.shape)


class ForwardEngine(Engine):
    name = "forward"

    # ---- dual numbers ---------------------------------------------------------------
    def _basis(self, prob):
        """The n unit directions as batched tangents {variable id: (n,) + shape}."""
        eye, pos, out = np.eye(prob.n), 0, {}
        for v, s in zip(prob.var_nodes, prob.sizes):
            out[v.id] = eye[:, pos:pos + s].reshape((prob.n,) + v.shape)
            pos += s
        return out

    def _dual(self, prob, x, out, tangents, env=None, lead=()):
        """Tangent of node `out` (shape lead + out.shape): values, then one jvp sweep."""
        vals = prob.evaluate(x, [out], env=env)
        with np.errstate(all="ignore"):
            (t,) = jvp_sweep(prob.graph, [out], tangents, lambda n: vals[n.id])
        shape = lead + out.shape
        return np.zeros(shape) if t is None else np.broadcast_to(np.asarray(t, dtype=float), shape)

    def jvp(self, prob, x, v):
        parts = prob.split(np.asarray(v, dtype=float)).values()
        t = self._dual(prob, x, prob.output, {n.id: p for n, p in zip(prob.var_nodes, parts)})
        return t.ravel().copy()

    def jacobian(self, prob, x):
        t = self._dual(prob, x, prob.output, self._basis(prob), lead=(prob.n,))
        return t.reshape(prob.n, prob.m).T.copy()

    def grad(self, prob, x):
        scalar_only(prob, "grad")
        return self.jacobian(prob, x)[0]

    def vjp(self, prob, x, u):
        return np.asarray(u, dtype=float).reshape(prob.m) @ self.jacobian(prob, x)

    # ---- second order: dual numbers over tangent graphs -----------------------------
    def _tangent_node(self, prob):
        """(direction variables V, scalar node f'(x) V), built once per expression."""
        key = ("forward.tangent", prob.output.id)
        cache = prob.graph.cache
        if key not in cache:
            vs = [prob.graph.var(f"%f:{v.p['name']}", v.shape) for v in prob.var_nodes]
            seeds = {v.id: d for v, d in zip(prob.var_nodes, vs)}
            (t,) = jvp_sweep(prob.graph, [prob.output], seeds, _node_val)
            cache[key] = (vs, _scalar(prob, t))
        return cache[key]

    def hvp(self, prob, x, v):
        scalar_only(prob, "hvp")
        vs, t = self._tangent_node(prob)
        env = {d.p["name"]: a for d, a in zip(vs, prob.split(np.asarray(v, dtype=float)).values())}
        return self._dual(prob, x, t, self._basis(prob), env=env, lead=(prob.n,)).copy()

    def _grad_node(self, prob):
        """The gradient as one (n,) node: forward tangent graphs along unit directions."""
        key = ("forward.grad", prob.output.id)
        cache = prob.graph.cache
        if key not in cache:
            g, parts = prob.graph, []
            for v, s in zip(prob.var_nodes, prob.sizes):
                for row in np.eye(s):
                    (t,) = jvp_sweep(g, [prob.output], {v.id: g.const(row.reshape(v.shape))}, _node_val)
                    parts.append(_scalar(prob, t))
            cache[key] = o.stack(parts) if parts else g.const(np.zeros(0))
        return cache[key]

    def hessian(self, prob, x):
        scalar_only(prob, "hessian")
        n = prob.n
        if n > BATCH_LIMIT:
            return np.stack([self.hvp(prob, x, e) for e in np.eye(n)], axis=1)
        h = self._dual(prob, x, self._grad_node(prob), self._basis(prob), lead=(n,))
        return h.T.copy()  # h[j, i] = d g_i / d x_j
