"""The engine protocol and the six derivative commands derived from jvp and vjp.

An engine answers, over the flat inputs x (n) and flat outputs (m) of a Problem:
grad (n), jacobian (m, n), hessian (n, n), hvp (n), jvp (m) and vjp (n).  The
defaults below derive everything from `jvp` and `vjp` over standard bases (JAX's
jacfwd/jacrev recipe); engines override what their method does better.
"""
import numpy as np

from adcalc.errors import InputError

COMMANDS = ("grad", "jacobian", "hessian", "hvp", "jvp", "vjp")


class Result:
    """A derivative (flat array) with an optional per-component error estimate."""

    __slots__ = ("value", "error", "info")

    def __init__(self, value, error=None, info=None):
        self.value = np.asarray(value, dtype=float)
        self.error = None if error is None else np.asarray(error, dtype=float)
        self.info = info or {}


class Engine:
    name = None
    exact = True

    def __init__(self, **options):
        self.options = options

    def available(self):
        """None when the engine can run here, else the reason it cannot."""
        return None

    def value(self, prob, x):
        return prob.value(x)

    def jvp(self, prob, x, v):
        return self.jacobian(prob, x) @ v

    def vjp(self, prob, x, u):
        return u @ self.jacobian(prob, x)

    def grad(self, prob, x):
        scalar_only(prob, "grad")
        return self.vjp(prob, x, np.ones(1))

    def jacobian(self, prob, x):
        return np.stack([self.vjp(prob, x, u) for u in np.eye(prob.m)]).reshape(prob.m, prob.n)

    def hvp(self, prob, x, v):
        return self.hessian(prob, x) @ v

    def hessian(self, prob, x):
        scalar_only(prob, "hessian")
        return np.stack([self.hvp(prob, x, e) for e in np.eye(prob.n)], axis=1).reshape(prob.n, prob.n)


def scalar_only(prob, command):
    if prob.m != 1:
        alt = "jacobian" if command == "grad" else "jacobian of each output"
        raise InputError(f"{command} needs a scalar expression, but this one has {prob.m} "
                         f"outputs (shape {list(prob.out_shape)}); use {alt}, or jvp/vjp")


def compute(engine, prob, command, x=None, vector=None):
    """Run one of the six commands; returns a Result (flat arrays as in the contract)."""
    x = prob.x0() if x is None else x
    if command in ("grad", "hessian", "hvp"):
        scalar_only(prob, command)
    args = (prob, x) if command in ("grad", "jacobian", "hessian") else (prob, x, vector)
    out = getattr(engine, command)(*args)
    return out if isinstance(out, Result) else Result(out)
