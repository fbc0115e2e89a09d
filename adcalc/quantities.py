"""The six derivative quantities: what each takes, its shape, its labels, its JSON key.

Used by the CLI (commands, help, JSON), the engines (method names) and verify.
"""
from typing import NamedTuple


class Quantity(NamedTuple):
    name: str           # command and engine method name
    key: str            # JSON key (the contract's names)
    vector: str         # None, "inputs" (v for hvp/jvp) or "outputs" (u for vjp)
    scalar: bool        # needs a scalar expression
    doc: str

    def shape(self, n, m):
        return {"grad": (n,), "jacobian": (m, n), "hessian": (n, n), "hvp": (n,), "jvp": (m,),
                "vjp": (n,)}[self.name]

    def labels(self, inputs, outputs, sep="/"):
        """Names of the flat components: inputs, outputs, or row/column pairs."""
        if self.name in ("grad", "hvp", "vjp"):
            return list(inputs)
        if self.name == "jvp":
            return list(outputs)
        rows = outputs if self.name == "jacobian" else inputs
        return [f"{r}{sep}{c}" for r in rows for c in inputs]

    def rows(self, inputs, outputs):
        """(row labels, column labels) of a matrix quantity, (labels, None) of a vector."""
        if self.name == "jacobian":
            return list(outputs), list(inputs)
        if self.name == "hessian":
            return list(inputs), list(inputs)
        return self.labels(inputs, outputs), None


QUANTITIES = {q.name: q for q in (
    Quantity("grad", "gradient", None, True, "Gradient of a scalar expression: df/dx, one entry per input."),
    Quantity("jacobian", "jacobian", None, False, "Jacobian of a vector-valued expression: m x n."),
    Quantity("hessian", "hessian", None, True, "Hessian of a scalar expression: n x n."),
    Quantity("hvp", "hvp", "inputs", True, "Hessian-vector product H(x) v, without forming the Hessian."),
    Quantity("jvp", "jvp", "inputs", False, "Jacobian-vector product J(x) v (R-op)."),
    Quantity("vjp", "vjp", "outputs", False, "Vector-Jacobian product u^T J(x) (L-op)."),
)}
NAMES = tuple(QUANTITIES)
