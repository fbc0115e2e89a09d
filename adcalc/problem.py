"""A derivative problem: parsed expressions, ordered variables, their shapes, a point.

Flat layout: the inputs are the variables' entries in variable order, each array
row-major (n of them); the outputs are the entries of the expression's value (m).
Many points are an array X of shape (N, n); one point is x of shape (n,).
"""
import numpy as np

from adcalc.errors import DomainError, InputError
from adcalc.evaluate import checked, compiled, evaluate, needed
from adcalc.graph import Graph, no_gc
from adcalc.parse import parse
from adcalc.points import component_names, listed, order_variables, parse_point
from adcalc.primitives import stack_all


class Problem:
    """Expressions over named variables, flattened to f: R^n -> R^m at a point."""

    def __init__(self, exprs, at=None, vars=None, point=None, wrt=None):
        if isinstance(exprs, str):
            exprs = [exprs]
        with no_gc():
            self._build(exprs, at, vars, point, wrt)

    def _build(self, exprs, at, vars, point, wrt):
        self.texts = [t.lstrip() for t in exprs]
        parsed = [parse(t) for t in self.texts]
        names = parsed[0].names if len(parsed) == 1 else list(dict.fromkeys(n for p in parsed for n in p.names))
        self.variables = order_variables(names, vars)
        self.warnings = []
        if point is None:
            if at is None:
                if self.variables:
                    raise InputError(f"--at is required: give values for {listed(self.variables)}")
                point = {}
            else:
                point = parse_point(at, self.variables, notes=self.warnings)
        self.point, self.shapes, self.graph = {}, {}, Graph()
        self.all_var_nodes = nodes = []
        var = self.graph.var
        for v in self.variables:
            value = point[v]   # a number as numpy's float64 (0-d, as cheap as it gets), else an array
            value = self.point[v] = np.float64(value) if type(value) is float else np.asarray(value, dtype=float)
            shape = self.shapes[v] = value.shape
            nodes.append(var(v, shape))
        outs = [p.build(self.graph, self.shapes) for p in parsed]
        if len(outs) > 1:
            if len({o.shape for o in outs}) > 1:
                raise InputError("several expressions must have the same shape; "
                                 "shapes: " + ", ".join(str(list(o.shape)) for o in outs))
            out = stack_all(outs)
        else:
            out = outs[0]
        self.output = out
        self._set_wrt(wrt)
        self._inputs = None
        self.derived = {}

    def _set_wrt(self, wrt):
        """Differentiate with respect to `wrt` (names) only; the others are constants."""
        if wrt is None:
            chosen = list(self.variables)
        else:
            chosen = list(wrt)
            unknown = [w for w in chosen if w not in self.variables]
            if unknown:
                raise InputError(f"--wrt: {unknown[0]!r} is not a variable of the expression "
                                 f"(variables: {listed(self.variables, none='none')})")
            chosen = [v for v in self.variables if v in chosen]
        self.wrt = chosen
        self.var_nodes = [self.graph.vars[v] for v in chosen]
        self.sizes = [int(np.prod(self.shapes[v])) if self.shapes[v] else 1 for v in chosen]
        self.n, self.m = sum(self.sizes), self.output.size
        self.scalars = len(chosen) == len(self.variables) and all(not self.shapes[v] for v in chosen)
        self.out_shape = self.output.shape

    def with_output(self, node, key):
        """The same variables and point with another output node (a derivative graph);
        memoised under `key`."""
        hit = self.derived.get(key)
        if hit is None:
            hit = object.__new__(Problem)
            hit.__dict__.update(self.__dict__)
            hit.output, hit.derived = node, {}
            hit.m, hit.out_shape = node.size, node.shape
            hit.base = getattr(self, "base", self)
            self.derived[key] = hit
        return hit

    @property
    def inputs(self):
        """Flat component names (x1, W[0,1], ...), made on first use: n can be 10^5."""
        if self._inputs is None:
            self._inputs = [c for v in self.wrt for c in component_names(v, self.shapes[v])]
        return self._inputs

    @property
    def expression(self):
        return self.texts[0] if len(self.texts) == 1 else self.texts

    def x0(self):
        if not self.wrt:
            return np.zeros(0)
        return np.concatenate([self.point[v].ravel() for v in self.wrt])

    def split(self, x):
        """Flat vector (or batch (..., n)) -> {name: array} in the variables' shapes; the
        variables held constant (not in --wrt) take their values from the point."""
        x = np.asarray(x)
        lead = x.shape[:-1]
        out, pos = {}, 0
        for v, size in zip(self.wrt, self.sizes):
            out[v] = x[..., pos:pos + size].reshape(lead + self.shapes[v])
            pos += size
        for v in self.variables:
            if v not in out:
                out[v] = np.broadcast_to(self.point[v], lead + self.shapes[v])
        return out

    def describe(self, x):
        parts = [f"{v}={_short(a)}" for v, a in self.split(x).items()]
        return ", ".join(parts) if parts else "(no variables)"

    def values(self, X, nodes=None, env=None, check=True, dtype=float, bad=None, keep=None, watch=False):
        """Values of the nodes `nodes` needs (default: the output) at the points X (N, n),
        each (N,) + its shape.  Outside the domain: DomainError naming the sub-expression
        and the point, or with a dict `bad` {row: message} and NaN rows."""
        X = np.asarray(X)
        limit = self.base_output_id() if check is True else check
        usual = keep is not None and nodes is None and check is True and bad is None and dtype is float
        # the engines' call, repeated, goes straight to its compiled program
        prog = self.graph.cache.get(("values", self.output.id, limit, keep)) if usual else None
        try:
            if prog is not None and prog.numbers and self.scalars and not env and X.shape == (1, self.n) \
                    and X.dtype == np.float64:   # one point of numbers, read from its row
                vals = prog.run_numbers(dict(zip(self.wrt, X[0])), None if watch else "ignore")
                if vals is not None:
                    return vals
            env = dict(self.split(X), **env) if env else self.split(X)
            if prog is not None:
                return prog.run(env, None if watch else "ignore")
            nodes = list(nodes or [self.output])
            if check is True and self.output is not getattr(self, "base", self).output:
                nodes += self._unchecked(nodes, limit)  # the domain is f's, also when only f' is wanted
            vals = evaluate(self.graph, nodes, env, check=limit, dtype=dtype, bad=bad, keep=keep, watch=watch)
            if usual:
                prog = compiled(self.graph, nodes, keep, limit or -1)   # the limit as evaluate keys it
                if prog is not None:
                    self.graph.cache[("values", self.output.id, limit, keep)] = prog
            return vals
        except DomainError as e:
            where = self.describe(np.real(X[0])) if len(X) == 1 else "one of the points"
            raise DomainError(f"{e} at {where}") from None

    def _unchecked(self, nodes, limit):
        """The nodes of f with a domain to check that evaluating `nodes` would not reach (they
        are evaluated too, with what they need, and no more of f)."""
        key = ("unchecked", tuple(n.id for n in nodes), limit)
        hit = self.graph.cache.get(key)
        if hit is None:
            reached = set(needed(self.graph, nodes))
            hit = self.graph.cache[key] = [self.graph.nodes[i] for i in
                                           sorted(checked(self.graph, [self.base.output], limit) - reached)]
        return hit

    def widest(self):
        """The largest entry count of a node that carries tangents (sizes the chunks)."""
        key = ("widest", self.output.id, tuple(v.id for v in self.var_nodes))
        hit = self.graph.cache.get(key)
        if hit is None:   # only nodes that carry (co)tangents: between the variables and the output
            from adcalc.ad import active
            order, _ = active(self.graph, [self.output], self.var_nodes)
            nodes = self.graph.nodes
            hit = self.graph.cache[key] = max([1] + [nodes[i].size for i in order])
        return hit

    def base_output_id(self):
        return getattr(self, "base", self).output.id

    def evaluate(self, x, nodes=None, env=None, check=True, dtype=float):
        """Node values at one flat point x, without the leading axis."""
        env = {k: np.asarray(v)[None] for k, v in (env or {}).items()}
        vals = self.values(np.asarray(x)[None], nodes, env, check, dtype)
        return [None if v is None else (v[0] if self.graph.nodes[i].op != "const" else v)
                for i, v in enumerate(vals)]

    def _output_at(self, x):
        """The output at one flat point x; intermediates are freed (and their arrays reused)
        as soon as they are dead."""
        v = self.values(np.asarray(x)[None], keep=frozenset())[self.output.id]
        return v if self.output.op == "const" else v[0]

    def value(self, x):
        return np.asarray(self._output_at(x), dtype=float)

    def f(self, x):
        """Flat outputs at flat x (the black-box view)."""
        return np.asarray(self._output_at(x)).ravel()


def _short(a):
    a = np.asarray(a)
    if a.ndim == 0:
        return repr(float(a))
    return np.array2string(a, separator=",", threshold=8, floatmode="maxprec").replace("\n", "")
