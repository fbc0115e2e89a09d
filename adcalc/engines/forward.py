"""Forward mode: dual numbers over the graph.

Every node carries a value and tangents: the graph is evaluated once at all N
points, then `jvp_sweep` pushes K tangents at once through the table's rules in
topological order (that sweep over numbers *is* dual-number arithmetic).

  jvp       one pass with the K directions.
  jacobian  (base) vector mode: the n unit directions in chunks, so memory is
            O(n x chunk) per node; grad is its row.
  hvp       (base) one pass along v over the gradient graph (forward over reverse).
  hessian   (base) the gradient graph's Jacobian: n forward passes in chunks.
"""
import numpy as np

from adcalc.ad import Underflow, jvp_sweep
from adcalc.engines.base import Engine, Result
from adcalc.engines.reverse import unflatten


class ForwardEngine(Engine):
    name = "forward"

    def jvp_batch(self, prob, X, V):
        K, N = V.shape[0], len(X)
        vals = prob.values(X)
        tangents = unflatten(prob, np.asarray(V, dtype=float), (K, N))
        with Underflow() as under:
            (t,) = jvp_sweep(prob.graph, [prob.output], tangents, lambda n: vals[n.id])
        info = {"underflow": True} if under.seen else None
        if t is None:
            return Result(np.zeros((K, N, prob.m)), info=info)
        return Result(np.reshape(np.broadcast_to(t, (K, N) + prob.out_shape), (K, N, prob.m)), info=info)
