"""How well do gradient checkers tell a right gradient from a wrong one?

    python benchmarks/checker_power.py [--only adcalc,scipy,torch,jax] [--verbose]

A suite of hand-written gradient (and Jacobian) functions, each paired with the
function it claims to differentiate and a point: correct ones (float64 and float32,
badly scaled inputs spanning 1e-6..1e6, points near a kink and one exactly at a kink
with the usual subgradient convention, Jacobians, code that is not complex-analytic)
and ones with planted bugs (sign flip, missing factor, swapped components, transposed
Jacobian, wrong chain rule, off-by-one index, a bug in one component only, and a
factor 1.0001 in a single component, in float64 and in float32, for the worked
example log(x1)+x1*x2-sin(x2) at (2,5) and for the 5-variable Rosenbrock function,
every one of its components in turn, so that the component a random direction
weights little is among them).

Each checker is run on every case in the same run, with its default settings:

  adcalc   adcalc.check_grad(f, grad, x, jacobian=...): its own verdict (r.ok).
  scipy    scipy.optimize.check_grad(f, grad, x) returns a number, not a verdict:
           the 2-norm of the difference from forward differences at step sqrt(eps).
           Two rules are scored, a strict and a loose one: correct when that number
           is <= 1e-6 * max(1, |grad(x)|) (the row "<=1e-6"), or <= 1e-3 * max(1,
           |grad(x)|) (the row "<=1e-3").  A Jacobian is checked row by row (each
           output f_j against row j), correct when every row is.
  torch    torch.autograd.gradcheck on a torch.autograd.Function whose forward calls f
           and whose backward calls the gradient code (how hand-written gradients are
           checked in PyTorch), float64 or float32 tensors as the case's dtype;
           defaults eps=1e-6, atol=1e-5, rtol=1e-3.
  jax      jax.test_util.check_grads(F, (x,), order=1, modes=("rev",)) on a
           jax.custom_vjp function (forward: f through jax.pure_callback, backward:
           the gradient code), x64 enabled so float64 cases are float64; "fwd" mode
           does not apply to a custom VJP.

torch and jax are optional: the benchmark runs without them.  A checker that raises
on a case (other than its own failure verdict) is counted as an alarm.  Output: a
table of detection rate (bugs caught) and false-alarm rate (correct gradients
rejected) per checker, then every case each checker got wrong.  Exit status 1 when
adcalc misses a bug or raises a false alarm.
"""
import argparse
import math
import sys
import time
import warnings

import numpy as np

try:
    import adcalc.check as _ac
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
    import adcalc.check as _ac

F32, F64 = np.float32, np.float64


class Case:
    def __init__(self, name, f, g, x, bug=None, jac=False, dtype=F64, twin=None):
        self.name, self.f, self.g, self.bug, self.jac, self.twin = name, f, g, bug, jac, twin
        self.x = np.asarray(x, dtype=dtype)

    @property
    def correct(self):
        return self.bug is None


CASES = []


def add(*a, **k):
    CASES.append(Case(*a, **k))


def bump(g, i, factor=1.0001):
    """The gradient g with component i (flat index) multiplied by `factor`."""
    def h(x):
        out = np.array(g(x), copy=True)
        out.flat[i] = out.flat[i] * out.dtype.type(factor)
        return out
    return h


# ---- the functions -----------------------------------------------------------------------
def ex_f(x):  # the worked example: log(x1) + x1*x2 - sin(x2)
    return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])


def ex_g(x):
    return np.array([1 / x[0] + x[1], x[0] - np.cos(x[1])])


def as32(fun):
    """The float32 version of a function: computes in float32 whatever it is given."""
    def h(x):
        return fun(np.asarray(x, dtype=F32))
    h.__name__ = fun.__name__ + "_f32"
    return h


def rosen_f(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_g(x):
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_g_sign(x):  # sign flip in the coupling term of the last four components
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] -= 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_g_factor(x):  # missing factor 2 from (1 - x)^2
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_g_offbyone(x):  # loop with an off-by-one index: x[i+1] read as x[i]
    n = x.size
    g = np.zeros_like(x)
    for i in range(n - 1):
        g[i] += -400 * x[i] * (x[i + 1] - x[i] ** 2) - 2 * (1 - x[i])
        g[i + 1] += 200 * (x[i + 1] - x[i - 1 if i else i] ** 2)
    return g


def rosen_g_last(x):  # one component only: the last one misses its square
    g = rosen_g(x)
    g[-1] = 200 * (x[-1] - x[-2])
    return g


QA = np.random.default_rng(1).standard_normal((6, 6))
QA = QA @ QA.T + 6 * np.eye(6)
QB = np.random.default_rng(2).standard_normal(6)
QN = np.random.default_rng(3).standard_normal((6, 6))  # not symmetric


def quad_f(x):
    return 0.5 * x @ (QA.astype(x.dtype) @ x) + QB.astype(x.dtype) @ x


def quad_g(x):
    return QA.astype(x.dtype) @ x + QB.astype(x.dtype)


def nsym_f(x):  # x^T N x with N not symmetric
    return x @ (QN @ x)


def nsym_g(x):
    return (QN + QN.T) @ x


def nsym_g_bug(x):  # the classic: 2 N x (as if N were symmetric)
    return 2 * QN @ x


def lse_f(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def lse_g(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def lse_g_bug(x):  # forgets the normalisation
    return np.exp(x - np.max(x))


def softplus_f(x):
    return np.sum(np.log1p(np.exp(x)))


def softplus_g(x):
    return 1 / (1 + np.exp(-x))


def softplus_g_bug(x):  # sign slip in the sigmoid
    return 1 / (1 + np.exp(x))


def expsin_f(x):
    return np.sum(np.exp(x) * np.sin(x))


def expsin_g(x):
    return np.exp(x) * (np.sin(x) + np.cos(x))


def expsin_g_bug(x):  # product rule with a term missing
    return np.exp(x) * np.cos(x)


def prod_f(x):
    return np.prod(x)


def prod_g(x):
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


def prod_g_bug(x):  # off by one: leaves out x[i-1] instead of x[i]
    return np.array([np.prod(np.delete(x, i - 1)) for i in range(x.size)])


def sins_f(x):
    return np.sum(np.sin(x) * np.arange(1, x.size + 1))


def sins_g(x):
    return np.cos(x) * np.arange(1, x.size + 1)


def xtanh_f(x):
    return np.sum(x * np.tanh(x))


def xtanh_g(x):
    t = np.tanh(x)
    return t + x * (1 - t * t)


def xtanh_g_bug(x):  # wrong chain rule: tanh' taken as 1 - tanh
    t = np.tanh(x)
    return t + x * (1 - t)


# badly scaled: inputs from 1e-6 to 1e6
def logsq_f(x):
    return np.sum(np.log(x)) + np.sum(np.sqrt(x))


def logsq_g(x):
    return 1 / x + 0.5 / np.sqrt(x)


def mixed_f(x):  # x0 ~ 1e6, x1 ~ 1e-6, x2 ~ 2e-6, x3 ~ 3e5, x4 ~ 1e-3
    return x[0] * x[1] + x[2] / x[3] + x[4] ** 2 * x[0]


def mixed_g(x):
    return np.array([x[1] + x[4] ** 2, x[0], 1 / x[3], -x[2] / x[3] ** 2, 2 * x[4] * x[0]])


def mixed_g_swap(x):  # d/dx0 and d/dx1 swapped
    g = mixed_g(x)
    return g[[1, 0, 2, 3, 4]]


R_GAS = 8.314


def arr_f(x):  # Arrhenius rate A exp(-E/(R T)): A ~ 1e6, E ~ 5e4, T ~ 300
    return x[0] * np.exp(-x[1] / (R_GAS * x[2]))


def arr_g(x):
    k = arr_f(x)
    return np.array([k / x[0], -k / (R_GAS * x[2]), k * x[1] / (R_GAS * x[2] ** 2)])


def arr_g_bug(x):  # wrong chain rule in d/dE: 1/(R T) written 1/R
    k = arr_f(x)
    return np.array([k / x[0], -k / R_GAS, k * x[1] / (R_GAS * x[2] ** 2)])


W_SC = np.array([1e12, 1e6, 1.0, 1e-6, 1e-12])


def wsq_f(x):  # sum w x^2 with x spanning 1e-6..1e6 (each term ~ 1)
    return np.sum(W_SC * x * x)


def wsq_g(x):
    return 2 * W_SC * x


def wsq_g_bug(x):
    return W_SC * x


# near a kink
def abs_f(x):
    return np.sum(np.abs(x)) + x[2] ** 2


def abs_g(x):
    g = np.sign(x)
    g[2] += 2 * x[2]
    return g


def abs_g_bug(x):  # one component's sign flipped
    g = abs_g(x)
    g[1] = -g[1]
    return g


def relu1_f(x):  # relu(x0 - 1) + x1^2, near the kink at x0 = 1
    return np.maximum(x[0] - 1, 0) + x[1] ** 2


def relu1_g(x):
    return np.array([1.0 if x[0] > 1 else 0.0, 2 * x[1]], dtype=x.dtype)


def max_f(x):  # max(x0, x1) + x2, near the tie
    return np.maximum(x[0], x[1]) + x[2] * x[0]


def max_g(x):
    a = 1.0 if x[0] >= x[1] else 0.0
    return np.array([a + x[2], 1 - a, x[0]])


def max_g_bug(x):  # takes the wrong branch of the max
    a = 1.0 if x[0] >= x[1] else 0.0
    return np.array([1 - a + x[2], a, x[0]])


HA = np.array([0.5, -1.0, 2.0])


def hinge_f(w):  # hinge loss with a margin 1e-8 away from the kink, plus ridge
    return np.maximum(0.0, 1 - w @ HA) + 0.05 * w @ w


def hinge_g(w):
    active = 1 - w @ HA > 0
    return -HA * active + 0.1 * w


def relu_f(x):  # exactly at the kink of relu (x0 = 0)
    return np.sum(np.maximum(x, 0) ** 1) + 0.5 * np.sum(x * x)


def relu_g(x):  # the convention of every framework: relu'(0) = 0
    return (x > 0).astype(x.dtype) + x


def absc_f(x):  # not complex-analytic: np.abs drops the imaginary part
    return np.sum(np.abs(x) ** 3) + x[0] * x[1]


def absc_g(x):
    g = 3 * x * np.abs(x)
    g[0] += x[1]
    g[1] += x[0]
    return g


# Jacobians
def polar_f(x):
    return np.array([x[0] * np.cos(x[1]), x[0] * np.sin(x[1])])


def polar_j(x):
    return np.array([[np.cos(x[1]), -x[0] * np.sin(x[1])], [np.sin(x[1]), x[0] * np.cos(x[1])]])


def polar_j_bug(x):  # transposed
    return polar_j(x).T


def softmax_f(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def softmax_j(x):
    s = softmax_f(x)
    return np.diag(s) - np.outer(s, s)


def softmax_j_bug(x):  # forgets the -s s^T term
    return np.diag(softmax_f(x))


LW = np.random.default_rng(4).standard_normal((3, 4))
LB = np.random.default_rng(5).standard_normal(3)


def layer_f(x):
    return np.tanh(LW.astype(x.dtype) @ x + LB.astype(x.dtype))


def layer_j(x):
    t = layer_f(x)
    return (1 - t * t)[:, None] * LW.astype(x.dtype)


def layer_j_bug(x):  # wrong chain rule: tanh' = 1 - tanh
    t = layer_f(x)
    return (1 - t)[:, None] * LW.astype(x.dtype)


# ---- the suite ------------------------------------------------------------------------------
EX = [2.0, 5.0]
RX = np.array([-1.2, 1.0, 0.7, 1.1, 0.9])   # Rosenbrock point; one component is small there
RX2 = np.array([0.3, -0.4, 1.5, 2.0, -0.8])
SCALED = [1e-6, 1e-3, 1.0, 1e3, 1e6]
MIXED = [1e6, 1e-6, 2e-6, 3e5, 1e-3]
ARR = [1e6, 5e4, 300.0]
WSQ = [1e-6, 1e-3, 1.0, 1e3, 1e6]

# correct gradients
add("worked example", ex_f, ex_g, EX)
add("worked example, float32 x (generic numpy code)", ex_f, ex_g, EX, dtype=F32)
add("worked example, float32 code", as32(ex_f), as32(ex_g), EX, dtype=F32)
add("rosenbrock 5", rosen_f, rosen_g, RX)
add("rosenbrock 5, second point", rosen_f, rosen_g, RX2)
add("rosenbrock 5, at the minimum", rosen_f, rosen_g, np.ones(5))
add("rosenbrock 5, float32 code", as32(rosen_f), as32(rosen_g), RX, dtype=F32)
add("rosenbrock 5, float32 x", rosen_f, rosen_g, RX2, dtype=F32)
add("quadratic form 6", quad_f, quad_g, np.linspace(-1, 2, 6))
add("quadratic form 6, float32 code", as32(quad_f), as32(quad_g), np.linspace(-1, 2, 6), dtype=F32)
add("x'Nx, N not symmetric", nsym_f, nsym_g, np.linspace(0.5, 1.5, 6))
add("logsumexp 6", lse_f, lse_g, [0.1, -2.0, 3.0, 0.5, 1.0, -0.3])
add("logsumexp 6, float32 code", as32(lse_f), as32(lse_g), [0.1, -2.0, 3.0, 0.5, 1.0, -0.3], dtype=F32)
add("softplus sum", softplus_f, softplus_g, [-3.0, -0.5, 0.0, 0.7, 4.0])
add("exp*sin sum", expsin_f, expsin_g, [0.3, 1.2, -0.7, 2.5])
add("exp*sin sum, float32 code", as32(expsin_f), as32(expsin_g), [0.3, 1.2, -0.7, 2.5], dtype=F32)
add("product of 4", prod_f, prod_g, [1.5, -2.0, 0.5, 3.0])
add("weighted sin, n=20", sins_f, sins_g, np.linspace(-2, 3, 20))
add("x*tanh(x) sum", xtanh_f, xtanh_g, [-1.5, -0.2, 0.4, 2.0])
add("badly scaled: log + sqrt, x in 1e-6..1e6", logsq_f, logsq_g, SCALED)
add("badly scaled: mixed products, 1e-6..1e6", mixed_f, mixed_g, MIXED)
add("badly scaled: Arrhenius A exp(-E/RT)", arr_f, arr_g, ARR)
add("badly scaled: sum w x^2, x in 1e-6..1e6", wsq_f, wsq_g, WSQ)
add("badly scaled: log + sqrt, float32 x", logsq_f, logsq_g, SCALED, dtype=F32)
add("near kink: sum|x| at x = 3e-9, -5e-9", abs_f, abs_g, [3e-9, -5e-9, 1.0])
add("near kink: relu(x0-1) at x0 = 1+1e-7", relu1_f, relu1_g, [1 + 1e-7, 0.5])
add("near kink: max(x0,x1), tie 1e-6 away", max_f, max_g, [1.0 + 1e-6, 1.0, 0.5])
add("near kink: hinge loss 1e-8 from the margin", hinge_f, hinge_g, [0.0, -1.0, -5e-9])
add("at a kink: relu at 0 (relu'(0)=0)", relu_f, relu_g, [0.0, 1.0, -1.0])
add("near kink, float32 code: relu(x0-1)", as32(relu1_f), as32(relu1_g), [1.001, 0.5], dtype=F32)
add("not complex-analytic: |x|^3 + x0 x1", absc_f, absc_g, [0.7, -1.3, 2.0])
add("jacobian: polar to cartesian", polar_f, polar_j, [2.0, 0.7], jac=True)
add("jacobian: softmax 4", softmax_f, softmax_j, [0.2, -1.0, 1.5, 0.3], jac=True)
add("jacobian: tanh layer 3x4", layer_f, layer_j, [0.5, -0.3, 0.8, 0.1], jac=True)
add("jacobian: tanh layer 3x4, float32 code", as32(layer_f), as32(layer_j), [0.5, -0.3, 0.8, 0.1],
    jac=True, dtype=F32)

# planted bugs
add("worked example: sign flip in d/dx2", ex_f, lambda x: np.array([1 / x[0] + x[1], -(x[0] - np.cos(x[1]))]),
    EX, bug="sign flip")
add("worked example: missing term 1/x1", ex_f, lambda x: np.array([x[1], x[0] - np.cos(x[1])]), EX,
    bug="missing factor")
add("worked example: d sin = -cos", ex_f, lambda x: np.array([1 / x[0] + x[1], x[0] + np.cos(x[1])]), EX,
    bug="wrong chain rule")
add("worked example: components swapped", ex_f, lambda x: ex_g(x)[::-1].copy(), EX, bug="swapped components")
for i in range(2):
    add(f"worked example: x{i + 1} component x 1.0001", ex_f, bump(ex_g, i), EX, bug="1e-4 in one component")
add("worked example, float32 x: d/dx2 x 1.0001", ex_f, bump(ex_g, 1), EX, dtype=F32, bug="1e-4, float32",
    twin="worked example, float32 x (generic numpy code)")
add("worked example, float32 code: d/dx1 x 1.0001", as32(ex_f), bump(as32(ex_g), 0), EX, dtype=F32,
    bug="1e-4, float32", twin="worked example, float32 code")
for i in range(5):
    add(f"rosenbrock 5: component {i} x 1.0001", rosen_f, bump(rosen_g, i), RX, bug="1e-4 in one component")
add("rosenbrock 5, second point: component 3 x 1.0001", rosen_f, bump(rosen_g, 3), RX2,
    bug="1e-4 in one component")
add("rosenbrock 5: sign flip in the coupling term", rosen_f, rosen_g_sign, RX, bug="sign flip")
add("rosenbrock 5: missing factor 2", rosen_f, rosen_g_factor, RX, bug="missing factor")
add("rosenbrock 5: off-by-one index", rosen_f, rosen_g_offbyone, RX2, bug="off-by-one index")
add("rosenbrock 5: last component only", rosen_f, rosen_g_last, RX, bug="one component only")
add("rosenbrock 5, float32 code: component 2 x 1.0001", as32(rosen_f), bump(as32(rosen_g), 2), RX, dtype=F32,
    bug="1e-4, float32", twin="rosenbrock 5, float32 code")
add("rosenbrock 5, float32 code: sign flip", as32(rosen_f), as32(rosen_g_sign), RX, dtype=F32, bug="sign flip",
    twin="rosenbrock 5, float32 code")
add("x'Nx: 2Nx instead of (N+N')x", nsym_f, nsym_g_bug, np.linspace(0.5, 1.5, 6), bug="transposed matrix")
add("logsumexp: missing normalisation", lse_f, lse_g_bug, [0.1, -2.0, 3.0, 0.5, 1.0, -0.3], bug="missing factor")
add("logsumexp, float32 code: component 4 x 1.0001", as32(lse_f), bump(as32(lse_g), 4),
    [0.1, -2.0, 3.0, 0.5, 1.0, -0.3], dtype=F32, bug="1e-4, float32", twin="logsumexp 6, float32 code")
add("softplus: sigmoid sign slip", softplus_f, softplus_g_bug, [-3.0, -0.5, 0.0, 0.7, 4.0], bug="sign flip")
add("exp*sin: product rule term missing", expsin_f, expsin_g_bug, [0.3, 1.2, -0.7, 2.5], bug="wrong chain rule")
add("product of 4: off-by-one", prod_f, prod_g_bug, [1.5, -2.0, 0.5, 3.0], bug="off-by-one index")
add("weighted sin n=20: component 17 x 1.0001", sins_f, bump(sins_g, 17), np.linspace(-2, 3, 20),
    bug="1e-4 in one component")
add("x*tanh(x): tanh' = 1 - tanh", xtanh_f, xtanh_g_bug, [-1.5, -0.2, 0.4, 2.0], bug="wrong chain rule")
add("badly scaled log+sqrt: x=1e-6 component x 1.0001", logsq_f, bump(logsq_g, 0), SCALED,
    bug="1e-4 in one component")
add("badly scaled log+sqrt: x=1e6 component x 1.0001", logsq_f, bump(logsq_g, 4), SCALED,
    bug="1e-4 in one component")
add("badly scaled mixed: components swapped", mixed_f, mixed_g_swap, MIXED, bug="swapped components")
add("badly scaled Arrhenius: d/dE chain rule", arr_f, arr_g_bug, ARR, bug="wrong chain rule")
add("badly scaled sum w x^2: missing factor 2", wsq_f, wsq_g_bug, WSQ, bug="missing factor")
add("near kink sum|x|: sign flip in one component", abs_f, abs_g_bug, [3e-9, -5e-9, 1.0], bug="sign flip")
add("near kink max: wrong branch", max_f, max_g_bug, [1.0 + 1e-6, 1.0, 0.5], bug="wrong chain rule")
add("not complex-analytic: component 2 x 1.0001", absc_f, bump(absc_g, 2), [0.7, -1.3, 2.0],
    bug="1e-4 in one component")
add("jacobian polar: transposed", polar_f, polar_j_bug, [2.0, 0.7], jac=True, bug="transposed Jacobian")
add("jacobian softmax: missing -s s'", softmax_f, softmax_j_bug, [0.2, -1.0, 1.5, 0.3], jac=True,
    bug="wrong chain rule")
add("jacobian tanh layer: tanh' = 1 - tanh", layer_f, layer_j_bug, [0.5, -0.3, 0.8, 0.1], jac=True,
    bug="wrong chain rule")
add("jacobian tanh layer: entry [1,2] x 1.0001", layer_f, bump(layer_j, 6), [0.5, -0.3, 0.8, 0.1], jac=True,
    bug="1e-4 in one component")


# ---- the checkers: each returns True (gradient judged correct) or False --------------------
def run_adcalc(c):
    return bool(_ac.check_grad(c.f, c.g, c.x, jacobian=c.jac).ok)


_SCIPY = {}


def scipy_number(c):
    """scipy.optimize.check_grad's number relative to max(1, |grad(x)|); for a Jacobian
    the largest over its rows (each output f_j against row j)."""
    if c.name not in _SCIPY:
        from scipy.optimize import check_grad
        if not c.jac:
            err = check_grad(lambda z: float(c.f(z)), c.g, c.x)
            out = err / max(1.0, float(np.linalg.norm(np.asarray(c.g(c.x), dtype=float))))
        else:
            J = np.asarray(c.g(c.x))
            out = max(check_grad(lambda z, j=j: float(np.ravel(c.f(z))[j]), lambda z, j=j: np.asarray(c.g(z))[j], c.x)
                      / max(1.0, float(np.linalg.norm(J[j].astype(float)))) for j in range(J.shape[0]))
        _SCIPY[c.name] = float(out)
    return _SCIPY[c.name]


def run_scipy(c):
    return bool(scipy_number(c) <= 1e-6)


def run_scipy_loose(c):
    return bool(scipy_number(c) <= 1e-3)


def _torch_fn(torch, c):
    m = int(np.asarray(c.f(c.x)).size)
    n = c.x.size

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, xt):
            ctx.save_for_backward(xt)
            y = np.asarray(c.f(xt.detach().numpy()))
            return torch.as_tensor(y.reshape(m) if c.jac else y.reshape(()), dtype=xt.dtype)

        @staticmethod
        def backward(ctx, gout):
            xt, = ctx.saved_tensors
            G = torch.as_tensor(np.asarray(c.g(xt.detach().numpy())), dtype=xt.dtype)
            if c.jac:
                return gout.reshape(m) @ G.reshape(m, n)
            return gout * G.reshape(n)

    return Wrapped.apply


def run_torch(c):
    import torch
    dt = torch.float64 if c.x.dtype == F64 else torch.float32
    xt = torch.tensor(c.x, dtype=dt, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(torch.autograd.gradcheck(_torch_fn(torch, c), (xt,), raise_exception=False))


_JAX = {}


def run_jax(c):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads
    if not _JAX:
        jax.config.update("jax_enable_x64", True)
        _JAX["on"] = True
    dt = c.x.dtype
    m = int(np.asarray(c.f(c.x)).size)
    n = c.x.size
    out = jax.ShapeDtypeStruct((m,) if c.jac else (), dt)
    jout = jax.ShapeDtypeStruct((m, n), dt)

    @jax.custom_vjp
    def F(x):
        return jax.pure_callback(lambda z: np.asarray(c.f(np.asarray(z)), dtype=dt).reshape(out.shape), out, x)

    def fwd(x):
        return F(x), x

    def bwd(x, ct):
        G = jax.pure_callback(lambda z: np.asarray(c.g(np.asarray(z)), dtype=dt).reshape(m, n), jout, x)
        return ((ct.reshape(m) @ G) if c.jac else ct * G[0],)

    F.defvjp(fwd, bwd)
    try:
        check_grads(F, (jnp.asarray(c.x, dtype=dt),), order=1, modes=("rev",))
    except AssertionError:
        return False
    return True


CHECKERS = {"adcalc": run_adcalc, "scipy": run_scipy, "scipy-loose": run_scipy_loose,
            "torch": run_torch, "jax": run_jax}
LABELS = {"adcalc": "adcalc check_grad", "scipy": "scipy check_grad, <=1e-6",
          "scipy-loose": "scipy check_grad, <=1e-3", "torch": "torch gradcheck",
          "jax": "jax check_grads"}
MODULES = {"adcalc": "adcalc", "scipy": "scipy.optimize", "scipy-loose": "scipy.optimize",
           "torch": "torch", "jax": "jax"}


def available(name):
    import importlib
    try:
        mod = importlib.import_module(MODULES[name])
    except Exception as e:  # noqa: BLE001  (missing or broken install)
        return None, f"not importable ({type(e).__name__})"
    return getattr(mod, "__version__", "") or "", None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated checkers (adcalc,scipy,torch,jax)")
    ap.add_argument("--verbose", action="store_true", help="print every case's verdicts")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(CHECKERS)
    if "scipy" in names and "scipy-loose" not in names and not args.only:
        names.append("scipy-loose")
    warnings.simplefilter("ignore")  # the checkers' own steps leave some domains (log of < 0)
    np.seterr(all="ignore")
    correct = [c for c in CASES if c.correct]
    buggy = [c for c in CASES if not c.correct]
    print(f"{len(CASES)} cases: {len(correct)} correct gradients "
          f"({sum(c.x.dtype == F32 for c in correct)} float32), {len(buggy)} with planted bugs")
    print("bug kinds: " + ", ".join(f"{k} ({sum(c.bug == k for c in buggy)})"
                                    for k in dict.fromkeys(c.bug for c in buggy)))
    results, skipped, versions, times = {}, {}, {}, {}
    for name in names:
        ver, why = available(name)
        if why:
            skipped[name] = why
            continue
        versions[name] = ver
        verdicts, t0 = {}, time.perf_counter()
        for c in CASES:
            try:
                verdicts[c.name] = CHECKERS[name](c)
            except Exception as e:  # noqa: BLE001  (a crash counts as an alarm)
                verdicts[c.name] = f"raised {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
        times[name] = time.perf_counter() - t0
        results[name] = verdicts
    print()
    head = f"{'checker':<40}{'detected':>10}{'detection':>11}{'false alarms':>14}{'false-alarm':>13}{'time s':>8}"
    print(head)
    print(f"{'':<40}{'':>10}{'rate':>11}{'':>14}{'rate':>13}")
    print("-" * len(head))
    wrong = {}
    for name, v in results.items():
        det = [c for c in buggy if v[c.name] is not True]
        fa = [c for c in correct if v[c.name] is not True]
        wrong[name] = [c for c in buggy if c not in det] + fa
        label = f"{LABELS[name]} {versions[name]}".strip()
        print(f"{label:<40}{f'{len(det)}/{len(buggy)}':>10}{100 * len(det) / len(buggy):>10.1f}%"
              f"{f'{len(fa)}/{len(correct)}':>14}{100 * len(fa) / len(correct):>12.1f}%{times[name]:>8.1f}")
    for name, why in skipped.items():
        print(f"{LABELS[name]:<40}  not run: {why}")
    print()
    print("scipy rules: correct when check_grad(f, grad, x) <= 1e-6 (or 1e-3) * max(1, |grad(x)|);"
          " Jacobians row by row")
    if _SCIPY:
        print("scipy's number / max(1, |grad(x)|) for float32 cases, correct gradient vs planted bug:")
        for c in buggy:
            if c.twin in _SCIPY and c.name in _SCIPY:
                print(f"  {_SCIPY[c.twin]:<12.6g} vs {_SCIPY[c.name]:<12.6g} {c.name}")
    for name, cases in wrong.items():
        print()
        print(f"{LABELS[name]} got {len(cases)} case(s) wrong" + (":" if cases else "."))
        for c in cases:
            v = results[name][c.name]
            what = f"missed bug ({c.bug})" if not c.correct else "false alarm"
            extra = f" [{v}]" if isinstance(v, str) else ""
            print(f"  {what:<40} {c.name}{extra}")
    if args.verbose:
        print()
        for c in CASES:
            print(f"{'bug' if c.bug else 'ok ':<4}{c.name:<58}" + "  ".join(
                f"{n}={'pass' if results[n][c.name] is True else 'FAIL'}" for n in results))
    if "adcalc" in results and wrong["adcalc"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
