"""A derivative problem: parsed expressions, ordered variables, their shapes, a point."""
import numpy as np

from adcalc import ops
from adcalc.errors import DomainError, InputError
from adcalc.evaluate import evaluate
from adcalc.graph import Graph
from adcalc.parse import parse
from adcalc.points import component_names, order_variables, parse_point


class Problem:
    """Expressions over named variables, flattened to f: R^n -> R^m at a point.

    Inputs are the variables' entries in variable order, each array row-major;
    outputs are the entries of the expression's value (several expressions stack).
    """

    def __init__(self, exprs, at=None, vars=None, point=None):
        if isinstance(exprs, str):
            exprs = [exprs]
        self.texts = list(exprs)
        parsed = [parse(t) for t in self.texts]
        names = []
        for p in parsed:
            names += [n for n in p.names if n not in names]
        self.variables = order_variables(names, vars)
        if point is None:
            if at is None:
                if self.variables:
                    raise InputError(f"--at is required: give values for {', '.join(self.variables)}")
                point = {}
            else:
                point = parse_point(at, self.variables)
        self.point = {v: np.asarray(point[v], dtype=float) for v in self.variables}
        self.shapes = {v: self.point[v].shape for v in self.variables}
        self.graph = g = Graph()
        self.var_nodes = [g.var(v, self.shapes[v]) for v in self.variables]
        outs = [p.build(g, self.shapes) for p in parsed]
        if len(outs) > 1:
            if len({o.shape for o in outs}) > 1:
                raise InputError("several expressions must have the same shape; "
                                 "shapes: " + ", ".join(str(list(o.shape)) for o in outs))
            out = ops.stack(outs)
        else:
            out = outs[0]
        self.output = out
        self.sizes = [int(np.prod(self.shapes[v])) if self.shapes[v] else 1 for v in self.variables]
        self.n, self.m = sum(self.sizes), out.size
        self.out_shape = out.shape
        self._inputs = None

    @property
    def inputs(self):
        """Flat component names (x1, W[0,1], ...), made on first use: n can be 10^5."""
        if self._inputs is None:
            self._inputs = [c for v in self.variables for c in component_names(v, self.shapes[v])]
        return self._inputs

    @property
    def expression(self):
        return self.texts[0] if len(self.texts) == 1 else self.texts

    def x0(self):
        if not self.variables:
            return np.zeros(0)
        return np.concatenate([self.point[v].ravel() for v in self.variables])

    def split(self, x):
        """Flat vector (or batch (..., n)) -> {name: array} in the variables' shapes."""
        x = np.asarray(x)
        lead = x.shape[:-1]
        out, pos = {}, 0
        for v, size in zip(self.variables, self.sizes):
            out[v] = x[..., pos:pos + size].reshape(lead + self.shapes[v])
            pos += size
        return out

    def describe(self, x):
        parts = []
        for v, a in self.split(x).items():
            parts.append(f"{v}={_short(a)}")
        return ", ".join(parts) if parts else "(no variables)"

    def evaluate(self, x, nodes=None, env=None, check=True, dtype=float):
        """Node values at flat point x; domain errors name the sub-expression and point."""
        env = dict(self.split(x), **(env or {}))
        try:
            limit = self.output.id if check is True else check
            return evaluate(self.graph, nodes or [self.output], env, check=limit, dtype=dtype)
        except DomainError as e:
            raise DomainError(f"{e} at {self.describe(np.real(x))}") from None

    def value(self, x):
        return np.asarray(self.evaluate(x)[self.output.id], dtype=float)

    def f(self, x):
        """Flat outputs at flat x (the black-box view used by the numeric engine)."""
        return np.asarray(self.evaluate(x)[self.output.id]).ravel()


def _short(a):
    if a.ndim == 0:
        return repr(float(a))
    return np.array2string(a, separator=",", threshold=8, floatmode="maxprec").replace("\n", "")
