"""The extended Rosenbrock function's closed forms (the ground truth and the unit of the
benchmarks) and the difference measure they share."""
import numpy as np


def rosen_f(x):
    a, b = x[:-1], x[1:]
    return float(np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2))


def rosen_grad(x):
    a, b = x[:-1], x[1:]
    t = b - a * a
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * t - 2.0 * (1.0 - a)
    g[1:] += 200.0 * t
    return g


def rosen_hess(x):
    n = len(x)
    a, b = x[:-1], x[1:]
    H = np.zeros((n, n))
    d = np.zeros(n)
    d[:-1] = 1200.0 * a * a - 400.0 * b + 2.0
    d[1:] += 200.0
    H[np.arange(n), np.arange(n)] = d
    off = -400.0 * a
    H[np.arange(n - 1), np.arange(1, n)] = off
    H[np.arange(1, n), np.arange(n - 1)] = off
    return H


def rosen_hvp(x, v):
    a, b = x[:-1], x[1:]
    diag = np.zeros_like(x)
    diag[:-1] = 1200.0 * a * a - 400.0 * b + 2.0
    diag[1:] += 200.0
    off = -400.0 * a  # H[i, i+1] = H[i+1, i]
    hv = diag * v
    hv[:-1] += off * v[1:]
    hv[1:] += off * v[:-1]
    return hv


def rel_diff(a, b):
    """max_i |a_i - b_i| / max(|b_i|, 1e-8 * max|b|): elementwise, floored near zero."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    floor = 1e-8 * max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))
