"""The textbook table: expressions with hand-derived values, used by every engine.

Each Case gives the expression(s), the `--at` point, the `--vector` strings (`v` for
hvp and jvp, over the flat inputs; `u` for vjp, over the flat outputs) and the
expected value and derivatives over the contract's flat inputs (variables in natural
order, arrays row-major).  Expected numbers are derived by hand and written either
as literals (from the issue and the contract) or as the hand-derived formula
evaluated with `math`; nothing here calls adcalc.
"""
import math
from dataclasses import dataclass, field

COMMANDS = ("grad", "jacobian", "hessian", "hvp", "jvp", "vjp")


@dataclass
class Case:
    id: str
    exprs: object                # str, or a list of str (several EXPR arguments)
    at: str                      # the --at string
    expected: dict               # "value", and any of COMMANDS
    v: str = None                # --vector for hvp and jvp
    u: str = None                # --vector for vjp
    vars: str = None             # --vars
    inputs: list = field(default=None)  # expected flat input names, when worth pinning

    @property
    def commands(self):
        return [c for c in COMMANDS if c in self.expected]

    def argv(self, command):
        exprs = [self.exprs] if isinstance(self.exprs, str) else list(self.exprs)
        out = [command, *exprs, "--at", self.at]
        if self.vars:
            out += ["--vars", self.vars]
        vec = self.u if command == "vjp" else self.v
        if command in ("hvp", "jvp", "vjp"):
            out += ["--vector", vec]
        return out


def sig(t):
    return 1.0 / (1.0 + math.exp(-t))


def eye(n, scale=1.0):
    return [[scale if i == j else 0.0 for j in range(n)] for i in range(n)]


def matvec(a, v):
    return [sum(x * y for x, y in zip(row, v)) for row in a]


def vecmat(u, a):
    return [sum(u[i] * a[i][j] for i in range(len(u))) for j in range(len(a[0]))]


CASES = []


def case(*args, **kw):
    c = Case(*args, **kw)
    CASES.append(c)
    return c


# ---- the contract's worked example ----------------------------------------------------
_H = [[-0.25, 1.0], [1.0, -0.9589242746631385]]   # [[-1/x1^2, 1], [1, sin x2]]
_g = [5.5, 1.7163378145367738]                   # [1/x1 + x2, x1 - cos x2]
case("worked-example", "log(x1)+x1*x2-sin(x2)", "2,5",
     {"value": 11.652071455223084, "grad": _g, "jacobian": [_g], "hessian": _H,
      "hvp": matvec(_H, [1.0, -2.0]), "jvp": [_g[0] * 1.0 + _g[1] * -2.0],
      "vjp": [3.0 * _g[0], 3.0 * _g[1]]},
     v="1,-2", u="3", inputs=["x1", "x2"])
case("worked-example-by-name", "log(x1)+x1*x2-sin(x2)", "x2=5,x1=2",
     {"value": 11.652071455223084, "grad": _g})

# ---- sum of sigmoids over a matrix (issue 3) --------------------------------------------
_X = [0.0, 1.0, -1.0, -2.0]
_s = [sig(t) for t in _X]
_gs = [s * (1 - s) for s in _s]                   # sigma' = s(1-s)
_hs = [s * (1 - s) * (1 - 2 * s) for s in _s]     # sigma'' = s(1-s)(1-2s)
assert all(abs(a - b) < 5e-9 for a, b in zip(_gs, [0.25, 0.19661193, 0.19661193, 0.10499359]))
case("sigmoid-sum", "sum(1/(1+exp(-x)))", "x=[[0,1],[-1,-2]]",
     {"value": sum(_s), "grad": _gs, "hessian": [[_hs[i] if i == j else 0.0 for j in range(4)] for i in range(4)],
      "hvp": [h * t for h, t in zip(_hs, [1, 2, 3, 4])], "vjp": [2 * g for g in _gs]},
     v="x=[[1,2],[3,4]]", u="2", inputs=["x[0,0]", "x[0,1]", "x[1,0]", "x[1,1]"])
case("sigmoid-builtin", "sum(sigmoid(x))", "x=[[0,1],[-1,-2]]", {"value": sum(_s), "grad": _gs})

# ---- Jacobian of x**2 is 2 diag(x) -------------------------------------------------------
case("square-jacobian", "x**2", "x=[4,4]",
     {"value": [16.0, 16.0], "jacobian": eye(2, 8.0), "jvp": [8.0, 16.0], "vjp": [8.0, -8.0]},
     v="1,2", u="1,-1")
case("square-jacobian-caret", "x^2", "[3,-4]",
     {"value": [9.0, 16.0], "jacobian": [[6.0, 0.0], [0.0, -8.0]]})

# ---- Hessian of sum(x**2) is 2 I; HVP [8, 10] (issue 3) ---------------------------------
case("sum-squares", "sum(x**2)", "x=[1,2]",
     {"value": 5.0, "grad": [2.0, 4.0], "hessian": eye(2, 2.0), "hvp": [8.0, 10.0],
      "jvp": [2.0 * 4 + 4.0 * 5], "vjp": [-2.0, -4.0], "jacobian": [[2.0, 4.0]]},
     v="4,5", u="-1")
case("sum-squares-3", "sum(x**2)", "x=[1,-2,3]", {"hessian": eye(3, 2.0), "grad": [2.0, -4.0, 6.0]})

# ---- dot(x, W): inputs W[0,0], W[0,1], W[1,0], W[1,1], x[0], x[1] (issue 3) ---------------
# f_j = sum_i x_i W_ij:  df_j/dW_ik = x_i [j == k],  df_j/dx_i = W_ij
_J = [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0],
      [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]
case("dot-xW", "dot(x, W)", "x=[0,1],W=[[1,1],[1,1]]",
     {"value": [1.0, 1.0], "jacobian": _J, "jvp": [2.0, 2.0], "vjp": [0.0, 0.0, 2.0, 2.0, 4.0, 4.0]},
     v="W=[[2,2],[2,2]],x=[0,0]", u="2,2",
     inputs=["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]", "x[0]", "x[1]"])
case("dot-xW-positional-vector", "dot(x, W)", "[[1,1],[1,1]],[0,1]",
     {"jvp": [2.0, 2.0], "vjp": [0.0, 0.0, 2.0, 2.0, 4.0, 4.0]},
     v="2,2,2,2,0,0", u="2,2")
case("x-matmul-W", "x @ W", "x=[0,1],W=[[1,1],[1,1]]",
     {"jacobian": _J, "jvp": [2.0, 2.0]}, v="W=[[2,2],[2,2]],x=[0,0]")

# ---- y/x - x + y at (2, 3) (issue 3) ------------------------------------------------------
# d/dx = -y/x^2 - 1, d/dy = 1/x + 1;  d2/dx2 = 2y/x^3, d2/dxdy = -1/x^2, d2/dy2 = 0
_H2 = [[0.75, -0.25], [-0.25, 0.0]]
case("quotient", "y/x - x + y", "2,3",
     {"value": 2.5, "grad": [-1.75, 1.5], "hessian": _H2, "hvp": matvec(_H2, [1.0, 1.0]),
      "jvp": [-1.75 + 1.5]}, v="1,1")
case("quotient-vars", "y/x - x + y", "3,2", {"grad": [1.5, -1.75], "value": 2.5}, vars="y,x")

# ---- Rosenbrock ---------------------------------------------------------------------------
_x, _y = -1.2, 1.0
_Hr = [[2 - 400 * (_y - _x ** 2) + 800 * _x ** 2, -400 * _x], [-400 * _x, 200.0]]
case("rosenbrock", "(1-x)**2 + 100*(y-x**2)**2", "-1.2,1",
     {"value": (1 - _x) ** 2 + 100 * (_y - _x ** 2) ** 2,
      "grad": [-2 * (1 - _x) - 400 * _x * (_y - _x ** 2), 200 * (_y - _x ** 2)],
      "hessian": _Hr, "hvp": matvec(_Hr, [0.5, -1.0])}, v="0.5,-1")
case("rosenbrock-minimum", "(1-x)^2 + 100*(y-x^2)^2", "1,1",
     {"value": 0.0, "grad": [0.0, 0.0], "hessian": [[802.0, -400.0], [-400.0, 200.0]]})


def _rosen_nd(x):
    n = len(x)
    f = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(n - 1))
    g = [0.0] * n
    H = [[0.0] * n for _ in range(n)]
    for i in range(n - 1):
        r = x[i + 1] - x[i] ** 2
        g[i] += -400 * x[i] * r - 2 * (1 - x[i])
        g[i + 1] += 200 * r
        H[i][i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        H[i][i + 1] += -400 * x[i]
        H[i + 1][i] += -400 * x[i]
        H[i + 1][i + 1] += 200
    return f, g, H


_f, _g3, _H3 = _rosen_nd([0.5, -1.0, 2.0, 1.5])
case("rosenbrock-slices", "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)", "x=[0.5,-1,2,1.5]",
     {"value": _f, "grad": _g3, "hessian": _H3, "hvp": matvec(_H3, [1, 0, -1, 2])}, v="1,0,-1,2")

# ---- matrix expressions -----------------------------------------------------------------------
# sum(W @ x): d/dW_ij = x_j, d/dx_j = sum_i W_ij, d2/dW_ij dx_k = [j == k]
_Hm = [[0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1],
       [1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0]]
case("sum-W-matmul-x", "sum(W @ x)", "W=[[1,2],[3,4]],x=[5,6]",
     {"value": 56.0, "grad": [5.0, 6.0, 5.0, 6.0, 4.0, 6.0], "hessian": _Hm,
      "hvp": matvec(_Hm, [1, 2, 3, 4, 5, 6])}, v="W=[[1,2],[3,4]],x=[5,6]")
# W @ x: f_i = sum_j W_ij x_j
_Jm = [[5, 6, 0, 0, 1, 2], [0, 0, 5, 6, 3, 4]]
case("W-matmul-x", "W @ x", "W=[[1,2],[3,4]],x=[5,6]",
     {"value": [17.0, 39.0], "jacobian": _Jm, "jvp": matvec(_Jm, [1, 0, 0, 1, 1, -1]),
      "vjp": vecmat([1, -1], _Jm)}, v="1,0,0,1,1,-1", u="1,-1")
# x.T for a 2x3 matrix: f[i,j] = x[j,i]; output (i, j) is row 2i+j, input (j, i) is column 3j+i
_Jt = [[1.0 if c == 3 * (r % 2) + r // 2 else 0.0 for c in range(6)] for r in range(6)]
case("transpose", "x.T", "x=[[1,2,3],[4,5,6]]",
     {"value": [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]], "jacobian": _Jt,
      "jvp": [10.0, 40.0, 20.0, 50.0, 30.0, 60.0], "vjp": [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]},
     v="x=[[10,20,30],[40,50,60]]", u="1,2,3,4,5,6")
# sum((A.T @ A)): = sum_jk sum_i A_ij A_ik = sum_i (row sum_i)^2 -> d/dA_ij = 2 rowsum_i
case("gram-sum", "sum(A.T @ A)", "A=[[1,2],[3,-1]]",
     {"value": 13.0, "grad": [6.0, 6.0, 4.0, 4.0],
      "hessian": [[2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]]})
# trace-like: sum of W*W.T entries = sum_ij W_ij W_ji
case("W-times-WT", "sum(W * W.T)", "W=[[1,2],[3,4]]",
     {"value": 1 + 2 * 6 + 16.0, "grad": [2.0, 6.0, 4.0, 8.0],
      "hessian": [[2, 0, 0, 0], [0, 0, 2, 0], [0, 2, 0, 0], [0, 0, 0, 2]]})

# ---- indexing and slicing ---------------------------------------------------------------------
case("slice-times-index", "x[1:3] * x[0]", "x=[2,3,4,5]",
     {"value": [6.0, 8.0], "jacobian": [[3, 2, 0, 0], [4, 0, 2, 0]],
      "jvp": [3 + 2 * 1.0, 4 + 2 * 2.0], "vjp": [3.0, 2.0, 0.0, 0.0]}, v="1,1,2,0", u="1,0")
case("negative-index-and-step", "x[-1] * x[::2]", "x=[1,2,3,4,5]",
     {"value": [5.0, 15.0, 25.0],
      "jacobian": [[5, 0, 0, 0, 1], [0, 0, 5, 0, 3], [0, 0, 0, 0, 10]]})
case("matrix-element-and-row", "W[1,0] * sum(W[0]) + W[1][1]", "W=[[1,2],[3,4]]",
     {"value": 3 * 3 + 4.0, "grad": [3.0, 3.0, 3.0, 1.0],
      "hessian": [[0, 0, 1, 0], [0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]})
case("column-slice", "W[:, 1] * 2", "W=[[1,2],[3,4]]",
     {"value": [4.0, 8.0], "jacobian": [[0, 2, 0, 0], [0, 0, 0, 2]]})

# ---- lists and several expressions -------------------------------------------------------------
_Jl = [[2.0, 1.0], [1.0, 1.0], [math.cos(1.0), 0.0]]
case("list-literal", "[x*y, x+y, sin(x)]", "1,2",
     {"value": [2.0, 3.0, math.sin(1.0)], "jacobian": _Jl, "jvp": matvec(_Jl, [1, -1]),
      "vjp": vecmat([1, 1, 1], _Jl)}, v="1,-1", u="1,1,1")
case("several-exprs", ["x*y", "x+y", "sin(x)"], "1,2", {"value": [2.0, 3.0, math.sin(1.0)], "jacobian": _Jl})

# ---- broadcasting: gradients sum back to the operand's shape -----------------------------------
case("broadcast-scalar", "sum(x * b)", "b=2,x=[1,2,3]",
     {"value": 12.0, "grad": [6.0, 2.0, 2.0, 2.0],
      "hessian": [[0, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]})
case("broadcast-row", "sum((W + b)**2)", "W=[[1,2],[3,4]],b=[1,-1]",
     {"value": 4 + 1 + 16 + 9.0, "grad": [4.0, 2.0, 8.0, 6.0, 4 + 8.0, 2 + 6.0]},
     inputs=["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]", "b[0]", "b[1]"])

# ---- reductions ------------------------------------------------------------------------------
case("prod", "prod(x)", "x=[2,3,4]",
     {"value": 24.0, "grad": [12.0, 8.0, 6.0], "hessian": [[0, 4, 3], [4, 0, 2], [3, 2, 0]]})
case("prod-with-zero", "prod(x)", "x=[0,3,4]", {"value": 0.0, "grad": [12.0, 0.0, 0.0]})
case("norm", "norm(x)", "x=[3,4]",   # grad x/r, Hessian (I - x x^T / r^2) / r
     {"value": 5.0, "grad": [0.6, 0.8], "hessian": [[0.128, -0.096], [-0.096, 0.072]]})
case("logsumexp", "logsumexp(x)", f"x=[0,{math.log(3.0)!r}]",   # softmax p = [1/4, 3/4]
     {"value": math.log(4.0), "grad": [0.25, 0.75],
      "hessian": [[0.1875, -0.1875], [-0.1875, 0.1875]]})
case("mean", "mean(x**2)", "x=[1,2,3,4]",
     {"value": 7.5, "grad": [0.5, 1.0, 1.5, 2.0], "hessian": eye(4, 0.5)})

# ---- binary functions, log base, constants ----------------------------------------------------------
case("atan2", "atan2(y, x)", "1,1",      # d/dx = -y/(x^2+y^2), d/dy = x/(x^2+y^2)
     {"value": math.pi / 4, "grad": [-0.5, 0.5], "hessian": [[0.5, 0.0], [0.0, -0.5]]})
case("hypot", "hypot(x, y)", "3,4",
     {"value": 5.0, "grad": [0.6, 0.8], "hessian": [[0.128, -0.096], [-0.096, 0.072]]})
case("log-base", "log(x, 2)", "8",
     {"value": 3.0, "grad": [1 / (8 * math.log(2.0))], "hessian": [[-1 / (64 * math.log(2.0))]]})
case("constants", "sin(pi*x) + e**x", "0.5",
     {"value": 1 + math.exp(0.5), "grad": [math.exp(0.5)], "hessian": [[-math.pi ** 2 + math.exp(0.5)]]})
case("pow-both", "x**y", "2,3",   # d/dx = y x^(y-1), d/dy = x^y ln x
     {"value": 8.0, "grad": [12.0, 8 * math.log(2.0)],
      "hessian": [[12.0, 4 + 12 * math.log(2.0)], [4 + 12 * math.log(2.0), 8 * math.log(2.0) ** 2]]})
case("natural-order", "x10 - x2 + 2*x1", "1,2,3",
     {"value": 3 - 2 + 2.0, "grad": [2.0, -1.0, 1.0]}, inputs=["x1", "x2", "x10"])
