"""Trust-region Newton minimization over plain callables.

Dense mode solves the trust-region subproblem exactly from an eigen-decomposition of
the Hessian (indefinite Hessians and the hard case included); CG mode uses
Steihaug-Toint truncated conjugate gradients on Hessian-vector products.  A point
with a small gradient is accepted only when no direction of negative curvature is
found, so a start at a saddle or a maximum moves off it.
"""
from dataclasses import dataclass, field

import numpy as np

from adcalc.errors import DomainError, InputError

EPS = np.finfo(float).eps
DENSE_MAX_N = 500
ETA = 1e-4
LANCZOS_STEPS = 20
CG_RTOL = 1e-6
MAX_RADIUS_GROWTH = 1e10


@dataclass
class NewtonResult:
    """Where minimize stopped, why, and the iteration table.

    Each row of `iterations` is a dict: k, x (a copy), f, grad_norm, step (norm),
    radius, rho (actual / predicted decrease, None when not finite) and action:
    "newton", "boundary", "negative curvature", "rejected", "not finite", and
    "converged" or "stopped" on the last row.
    """

    x: np.ndarray
    f: float
    grad_norm: float
    iterations: list = field(default_factory=list)
    converged: bool = False
    message: str = ""


@dataclass
class _Point:
    x: np.ndarray
    f: float
    g: np.ndarray

    @property
    def gnorm(self):
        return float(np.linalg.norm(self.g))


def minimize(f, grad, x0, *, hess=None, hvp=None, tol=1e-10, max_iter=100, method="auto"):
    """Minimize f from x0 by trust-region Newton steps.

    f(x) -> float, grad(x) -> (n,), and either hess(x) -> (n, n) or
    hvp(x, v) -> (n,).  method is "auto" (dense when hess is given and n <= 500,
    else CG), "dense" or "cg".  Stops when |grad| <= tol * max(1, |grad(x0)|) with
    no negative curvature left, when the step no longer changes x, or after
    max_iter iterations; `message` says which.

    >>> r = minimize(lambda x: (x[0] - 3) ** 2, lambda x: 2 * (x - 3), [0.0],
    ...              hess=lambda x: np.array([[2.0]]))
    >>> r.converged, float(r.x[0])
    (True, 3.0)
    """
    x = np.atleast_1d(np.asarray(x0, dtype=float)).reshape(-1).copy()
    mode = _choose_method(method, x.size, hess, hvp)
    start = _evaluate(f, grad, x, strict=True)
    if start is None:
        raise InputError(f"the function is not finite at the starting point x0 = {_short(x)}: "
                         f"f or its gradient is NaN or infinite there")
    solver = _Solver(f, grad, hess, hvp, mode, tol, max_iter, start)
    return solver.run()


def _choose_method(method, n, hess, hvp):
    if method not in ("auto", "dense", "cg"):
        raise InputError(f"unknown method {method!r}: use 'auto', 'dense' or 'cg'")
    if hess is None and hvp is None:
        raise InputError("Newton's method needs second derivatives: give hess or hvp")
    if method == "dense" and hess is None:
        raise InputError("method 'dense' needs hess(x); give it, or use method 'cg' with hvp")
    if method == "auto":
        return "dense" if hess is not None and n <= DENSE_MAX_N else "cg"
    return method


def _evaluate(f, grad, x, strict=False):
    try:
        with np.errstate(all="ignore"):
            fx = float(f(x))
            gx = np.asarray(grad(x), dtype=float).reshape(-1)
    except (ArithmeticError, ValueError, DomainError) as e:
        if strict and isinstance(e, DomainError):
            raise
        if strict:
            raise InputError(f"the function could not be evaluated at the starting point "
                             f"x0 = {_short(x)}: {e}") from e
        return None
    if gx.size != x.size:
        raise InputError(f"grad returned {gx.size} values for {x.size} variables")
    if not (np.isfinite(fx) and np.all(np.isfinite(gx))):
        return None
    return _Point(x, fx, gx)


def _short(x):
    return np.array2string(x, precision=6, threshold=6)


class _Solver:
    def __init__(self, f, grad, hess, hvp, mode, tol, max_iter, start):
        self.f, self.grad, self.hess, self.hvp = f, grad, hess, hvp
        self.mode, self.max_iter = mode, max_iter
        self.gtol = tol * max(1.0, start.gnorm)
        self.pt = start
        self.radius = max(1.0, float(np.linalg.norm(start.x)))
        self.max_radius = MAX_RADIUS_GROWTH * self.radius
        self.rows = []
        self.rng = np.random.default_rng(0)

    def run(self):
        for k in range(self.max_iter):
            model = self._model()
            if model is None:
                return self._finish(False, "the Hessian is not finite at the current point")
            step, action = self._step(model, k)
            if step is None:
                return self._finish(True, f"converged: |grad| {self.pt.gnorm:.1e} <= tol")
            if not np.all(np.isfinite(step)):
                return self._non_finite_products()
            outcome = self._try(step, action, model)
            if outcome:
                return outcome
        model = self._model() if self.pt.gnorm <= self.gtol else None
        if model is not None and self._negative_curvature(model) is None:
            return self._finish(True, f"converged: |grad| {self.pt.gnorm:.1e} <= tol")
        return self._finish(False, self._not_converged_message())

    def _non_finite_products(self):
        if not self.rows:
            raise InputError(f"the Hessian-vector products are not finite at the starting point "
                             f"x0 = {_short(self.pt.x)}")
        return self._finish(False, "the Hessian-vector products are not finite at the current point")

    def _model(self):
        x = self.pt.x
        if self.mode == "dense":
            H = np.asarray(self.hess(x), dtype=float).reshape(x.size, x.size)
            if not np.all(np.isfinite(H)):
                if not self.rows:
                    raise InputError(f"the Hessian is not finite at the starting point x0 = {_short(x)}")
                return None
            H = 0.5 * (H + H.T)
            return lambda v: H @ v, np.linalg.eigh(H)
        if self.hvp is not None:
            return (lambda v: np.asarray(self.hvp(x, v), dtype=float).reshape(-1)), None
        H = np.asarray(self.hess(x), dtype=float).reshape(x.size, x.size)
        return (lambda v: H @ v), None

    def _step(self, model, k):
        Hv, eig = model
        if self.pt.gnorm <= self.gtol:
            neg = self._negative_curvature(model)
            if neg is None:
                return None, "converged"
            if eig is None:
                return self._along(neg), "negative curvature"
        if eig is not None:
            if k == 0:
                self._widen_to_newton(eig)
            return trust_region_dense(self.pt.g, None, self.radius, eig=eig)
        if k == 0:
            return self._newton_first(Hv)
        return steihaug_cg(self.pt.g, Hv, self.radius)

    def _newton_first(self, Hv):
        with np.errstate(all="ignore"):
            p, action = steihaug_cg(self.pt.g, Hv, np.inf)
        if action == "newton":
            self.radius = min(max(self.radius, float(np.linalg.norm(p))), self.max_radius)
            if np.linalg.norm(p) <= self.radius:
                return p, action
        return steihaug_cg(self.pt.g, Hv, self.radius)

    def _widen_to_newton(self, eig):
        lam, Q = eig
        if lam[0] > 0:
            newton = float(np.linalg.norm((Q.T @ self.pt.g) / lam))
            self.radius = min(max(self.radius, newton), self.max_radius)

    def _negative_curvature(self, model):
        Hv, eig = model
        lam, Q = eig if eig is not None else _lanczos(Hv, self.pt.x.size, self.rng)
        scale = max(1.0, float(np.max(np.abs(lam))))
        return Q[:, 0] if lam[0] < -1e-8 * scale else None

    def _along(self, v):
        v = v / np.linalg.norm(v)
        return self.radius * (v if self.pt.g @ v <= 0 else -v)

    def _try(self, step, action, model):
        Hv = model[0]
        snorm = float(np.linalg.norm(step))
        trial = _evaluate(self.f, self.grad, self.pt.x + step)
        pred = -(self.pt.g @ step + 0.5 * step @ Hv(step))
        if trial is None:
            rho, action = -np.inf, "not finite"
        else:
            rho = _ratio(self.pt, trial, pred)
            if rho < ETA:
                action = "rejected"
        self._record(snorm, action, rho)
        self._update_radius(rho, snorm, action)
        if rho >= ETA:
            self.pt = trial
            if action == "newton" and snorm <= 4 * EPS * max(1.0, float(np.linalg.norm(trial.x))):
                return self._finish(True, f"converged: the Newton step {snorm:.1e} no longer changes x "
                                          f"(|grad| {trial.gnorm:.1e})")
        elif self.radius <= 4 * EPS * max(1.0, float(np.linalg.norm(self.pt.x))):
            return self._finish(False, f"the step became too small before |grad| reached tol: "
                                       f"|grad| still {self.pt.gnorm:.1e}")
        return None

    def _update_radius(self, rho, snorm, action):
        if rho < 0.25:
            self.radius = 0.25 * min(snorm, self.radius)
        elif rho > 0.75 and action != "newton":
            self.radius = min(2.0 * self.radius, self.max_radius)

    def _record(self, snorm, action, rho):
        finite_rho = rho is not None and np.isfinite(rho)
        self.rows.append({"k": len(self.rows), "x": self.pt.x.copy(), "f": self.pt.f,
                          "grad_norm": self.pt.gnorm, "step": snorm, "radius": self.radius,
                          "rho": float(rho) if finite_rho else None, "action": action})

    def _finish(self, converged, message):
        self._record(0.0, "converged" if converged else "stopped", None)
        return NewtonResult(self.pt.x.copy(), self.pt.f, self.pt.gnorm, self.rows, converged, message)

    def _not_converged_message(self):
        msg = f"did not converge in {self.max_iter} iterations: |grad| still {self.pt.gnorm:.1e}"
        tail = self.rows[-min(5, len(self.rows)):]
        if tail and all(r["action"] in ("boundary", "negative curvature") for r in tail) \
                and self.radius >= self.max_radius:
            msg += (f"; f fell to {self.pt.f:.3g} with steps at the largest trust radius, "
                    f"so f may be unbounded below")
        return msg


def _ratio(pt, trial, pred):
    actual = pt.f - trial.f
    noise = 16 * EPS * max(abs(pt.f), abs(trial.f))
    if abs(actual) <= noise and abs(pred) <= noise:
        return 1.0 if trial.gnorm < pt.gnorm else 0.0
    return actual / pred if pred > 0 else -1.0


def trust_region_dense(g, H, radius, eig=None):
    """Exact trust-region step: argmin g.p + p.H.p/2 over |p| <= radius.

    Returns (p, action), action "newton" (interior), "boundary" or
    "negative curvature" (the hard case, or a zero gradient with H indefinite).
    eig, when given, is np.linalg.eigh(H) already computed (H is then unused).

    >>> p, a = trust_region_dense(np.array([1.0]), np.array([[2.0]]), 10.0)
    >>> float(p[0]), a
    (-0.5, 'newton')
    """
    lam, Q = np.linalg.eigh(H) if eig is None else eig
    gt = Q.T @ g
    if lam[0] > 0:
        p = -Q @ (gt / lam)
        if np.linalg.norm(p) <= radius:
            return p, "newton"
    scale = max(1.0, float(np.max(np.abs(lam))))
    low = lam <= lam[0] + 1e-10 * scale
    if lam[0] <= 0 and np.linalg.norm(gt[low]) <= 1e-10 * max(1.0, float(np.linalg.norm(g))):
        hard = _hard_case(g, Q, lam, gt, low, radius)
        if hard is not None:
            return hard, "negative curvature"
    shift = _secular_root(gt, lam, radius)
    return -Q @ (gt / (lam + shift)), "boundary"


def _hard_case(g, Q, lam, gt, low, radius):
    coef = np.where(low, 0.0, -gt / np.where(low, 1.0, lam - lam[0]))
    p = Q @ coef
    rest = radius ** 2 - p @ p
    if rest < 0:
        return None
    q = Q[:, 0]
    tau = np.sqrt(rest)
    return p + tau * q if g @ q <= 0 else p - tau * q


def _secular_root(gt, lam, radius):
    lo = max(0.0, -float(lam[0]))
    hi = lo + float(np.linalg.norm(gt)) / radius + float(np.max(np.abs(lam))) + 1.0
    shift = hi
    for _ in range(200):
        d = lam + shift
        pn = float(np.linalg.norm(gt / d))
        if abs(pn - radius) <= 1e-12 * radius:
            break
        lo, hi = (shift, hi) if pn > radius else (lo, shift)
        dpn = -float(np.sum(gt ** 2 / d ** 3)) / pn
        phi, dphi = 1 / radius - 1 / pn, dpn / pn ** 2
        newton = shift - phi / dphi if dphi != 0 else hi
        shift = newton if lo < newton < hi else 0.5 * (lo + hi)
    return shift


def steihaug_cg(g, Hv, radius, max_cg=None):
    """Steihaug-Toint truncated CG for the trust-region step, using only H.v.

    Returns (p, action): "newton" when CG converged inside the region,
    "boundary" when it reached the radius, "negative curvature" when it found a
    direction d with d.H.d <= 0 and followed it to the boundary.

    >>> p, a = steihaug_cg(np.array([2.0, 0.0]), lambda v: 2 * v, 5.0)
    >>> p.tolist(), a
    ([-1.0, 0.0], 'newton')
    """
    n = g.size
    tol = CG_RTOL * float(np.linalg.norm(g))
    z, r, d = np.zeros(n), g.copy(), -g.copy()
    for _ in range(max_cg or max(n, 10)):
        Bd = Hv(d)
        dBd = float(d @ Bd)
        if dBd <= 0:
            return _to_boundary(z, d, radius), "negative curvature"
        alpha = float(r @ r) / dBd
        z_next = z + alpha * d
        if np.linalg.norm(z_next) >= radius:
            return _to_boundary(z, d, radius), "boundary"
        r_next = r + alpha * Bd
        if np.linalg.norm(r_next) <= tol:
            return z_next, "newton"
        d = -r_next + (float(r_next @ r_next) / float(r @ r)) * d
        z, r = z_next, r_next
    return z, "newton"


def _to_boundary(z, d, radius):
    a, b, c = d @ d, 2 * (z @ d), z @ z - radius ** 2
    tau = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    return z + tau * d


def _lanczos(Hv, n, rng):
    k = min(n, LANCZOS_STEPS)
    q = rng.standard_normal(n)
    Q = [q / np.linalg.norm(q)]
    alphas, betas = [], []
    for j in range(k):
        w = Hv(Q[j])
        if not np.all(np.isfinite(w)):
            return np.zeros(1), np.zeros((n, 1))
        alphas.append(float(Q[j] @ w))
        for qi in Q:
            w = w - (qi @ w) * qi
        b = float(np.linalg.norm(w))
        if j == k - 1 or b <= 1e-12 * max(1.0, abs(alphas[-1])):
            break
        betas.append(b)
        Q.append(w / b)
    T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    theta, S = np.linalg.eigh(T)
    return theta, np.array(Q).T @ S
