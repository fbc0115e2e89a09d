"""Forward mode: dual numbers over the graph.

Every node carries a value and tangents.  The tangent graph (derivatives.tangent: the
table's rules applied once to nodes, so every tangent node is the dual part of a node)
is evaluated at all N points along K directions at once as a precomputed program;
where that meets a non-finite number or an underflow, `jvp_sweep` pushes the tangents
through the rules over numbers instead (the same dual-number arithmetic, with zero
tangents masked where a partial is infinite).

  jvp       one pass with the K directions.
  jacobian  (base) vector mode: the n unit directions in chunks of `chunk_bytes`
            per node (2 MiB: the tangents stay in the cache), so memory is
            O(n x chunk); grad is its row.
  hvp       (base) one pass along v over the gradient graph (forward over reverse).
  hessian   (base) the gradient graph's Jacobian: n forward passes in chunks.
"""
import numpy as np

from adcalc import derivatives
from adcalc.ad import Underflow, jvp_sweep
from adcalc.engines.base import Engine, Result, through_graph
from adcalc.engines.reverse import unflatten


class ForwardEngine(Engine):
    name = "forward"
    chunk_bytes = 2 << 20   # directions per chunk: a node's tangents stay in the cache (n = 10^4: 26)

    def jvp_batch(self, prob, X, V):
        """The tangent graph (forward mode done once on nodes) evaluated along the K
        directions; points where it meets a non-finite number or an underflow take the
        sweep over numbers (`jvp_sweep`: dual numbers, zero tangents masked)."""
        tp, dirs = derivatives.tangent(prob)
        V = np.asarray(V, dtype=float)
        return through_graph(tp, X, derivatives.direction_env(dirs, V),
                             lambda rows: self.dual_batch(prob, X[rows], V[:, rows]), lead=V.shape[:2])

    def dual_batch(self, prob, X, V):
        K, N = V.shape[0], len(X)
        vals = prob.values(X)
        tangents = unflatten(prob, np.asarray(V, dtype=float), (K, N))
        with Underflow() as under:
            (t,) = jvp_sweep(prob.graph, [prob.output], tangents, lambda n: vals[n.id])
        info = {"underflow": True} if under.seen else None
        if t is None:
            return Result(np.zeros((K, N, prob.m)), info=info)
        return Result(np.reshape(np.broadcast_to(t, (K, N) + prob.out_shape), (K, N, prob.m)), info=info)
