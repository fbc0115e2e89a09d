"""Reverse mode: the graph in topological order is the tape; sweep it backwards.

grad and vjp: one backward sweep over numbers.  jacobian: one sweep whose cotangent
carries all m seeds at once.  hvp: double backprop, the gradient swept once more as
a graph (grad of v.grad f), built once per expression and evaluated without forming
the Hessian.  hessian: one batched sweep over the gradient graph.  jvp: the
transpose of the vjp (Theano's R-op through L-op).
"""
import numpy as np

from adcalc import ops as o
from adcalc.ad import vjp_sweep
from adcalc.engines.base import Engine, scalar_only


def _node_val(node):
    return node


class ReverseEngine(Engine):
    name = "reverse"

    # ---- numeric sweeps -----------------------------------------------------------
    def _sweep(self, prob, x, seed, env=None, outputs=None):
        outputs = outputs or [(prob.output, seed)]
        vals = prob.evaluate(x, [n for n, _ in outputs], env=env)
        with np.errstate(all="ignore"):
            cts = vjp_sweep(prob.graph, outputs, prob.var_nodes, lambda n: vals[n.id])
        return cts, vals

    def _flatten(self, prob, cts, batch=None):
        lead = () if batch is None else (batch,)
        parts = [np.zeros(lead + (s,)) if c is None else np.reshape(np.broadcast_to(c, lead + v.shape), lead + (s,))
                 for c, v, s in zip(cts, prob.var_nodes, prob.sizes)]
        return np.concatenate(parts, axis=-1) if parts else np.zeros(lead + (0,))

    def vjp(self, prob, x, u):
        seed = np.reshape(np.asarray(u, dtype=float), prob.out_shape)
        cts, _ = self._sweep(prob, x, seed)
        return self._flatten(prob, cts)

    def grad(self, prob, x):
        scalar_only(prob, "grad")
        return self.vjp(prob, x, np.ones(1))

    def jacobian(self, prob, x):
        seed = np.eye(prob.m).reshape((prob.m,) + prob.out_shape)
        cts, _ = self._sweep(prob, x, seed)
        return self._flatten(prob, cts, batch=prob.m)

    # ---- second sweeps through derivative graphs ----------------------------------
    def _grad_nodes(self, prob):
        key = ("reverse.grad", prob.output.id)
        cache = prob.graph.cache
        if key not in cache:
            one = prob.graph.const(np.ones(prob.out_shape))
            cts = vjp_sweep(prob.graph, [(prob.output, one)], prob.var_nodes, _node_val)
            cache[key] = [prob.graph.const(np.zeros(v.shape)) if c is None else c
                          for c, v in zip(cts, prob.var_nodes)]
        return cache[key]

    def _directions(self, prob, tag):
        return [prob.graph.var(f"%{tag}:{v.p['name']}", v.shape) for v in prob.var_nodes]

    def _hvp_nodes(self, prob):
        key = ("reverse.hvp", prob.output.id)
        cache = prob.graph.cache
        if key not in cache:
            g = self._grad_nodes(prob)
            vs = self._directions(prob, "v")
            dot = None
            for gi, vi in zip(g, vs):
                dot = o.add_opt(dot, o.sum_to(o.mul(gi, vi), (), vi.shape))
            one = prob.graph.const(1.0)
            h = vjp_sweep(prob.graph, [(dot, one)], prob.var_nodes, _node_val)
            cache[key] = (vs, [prob.graph.const(np.zeros(v.shape)) if c is None else c
                               for c, v in zip(h, prob.var_nodes)])
        return cache[key]

    def hvp(self, prob, x, v):
        scalar_only(prob, "hvp")
        vs, h = self._hvp_nodes(prob)
        env = {n.p["name"]: a for n, a in zip(vs, prob.split(v).values())}
        vals = prob.evaluate(x, h, env=env)
        return self._flatten(prob, [vals[n.id] for n in h])

    def hessian(self, prob, x):
        scalar_only(prob, "hessian")
        g = self._grad_nodes(prob)
        rows = []  # one sweep per variable: a nan in one row cannot leak into another
        for gi, size in zip(g, prob.sizes):
            seed = np.eye(size).reshape((size,) + gi.shape)
            cts, _ = self._sweep(prob, x, None, outputs=[(gi, seed)])
            rows.append(self._flatten(prob, cts, batch=size))
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, 0))

    def _jvp_nodes(self, prob):
        key = ("reverse.jvp", prob.output.id)
        cache = prob.graph.cache
        if key not in cache:
            u = prob.graph.var("%u", prob.out_shape)
            g = vjp_sweep(prob.graph, [(prob.output, u)], prob.var_nodes, _node_val)
            vs = self._directions(prob, "v")
            dot = None
            for gi, vi in zip(g, vs):
                if gi is not None:
                    dot = o.add_opt(dot, o.sum_to(o.mul(gi, vi), (), vi.shape))
            if dot is None:
                cache[key] = (vs, None)
            else:
                (ju,) = vjp_sweep(prob.graph, [(dot, prob.graph.const(1.0))], [u], _node_val)
                cache[key] = (vs, ju)
        return cache[key]

    def jvp(self, prob, x, v):
        vs, ju = self._jvp_nodes(prob)
        if ju is None:
            return np.zeros(prob.m)
        env = {n.p["name"]: a for n, a in zip(vs, prob.split(v).values())}
        env["%u"] = np.zeros(prob.out_shape)
        vals = prob.evaluate(x, [ju], env=env)
        return np.broadcast_to(vals[ju.id], prob.out_shape).ravel().astype(float)
