"""Generated derivative cases that reach the extremes of float64 (the harness of issue 9).

A case is an expression of adcalc's language (cli-contract.md), a point and a direction
for `hvp`. Every node of the expression is built here twice: as adcalc text and as a
SymPy form written from the mathematics (sigmoid is 1/(1+exp(-x)), softplus is
log(1+exp(x)), hypot is sqrt(x**2+y**2), cbrt is sign(x)*|x|**(1/3), ...). Nothing is
taken from adcalc's code, so the reference (tests/mpref.py) shares none of its rules.

Variables: scalars `a`, `b`, `c` and a vector `v` of length 2..4 (`case()` accepts any
names). Coordinates have exponents spread over the double range (1e-320 .. 1e300, both
signs), with exact zeros and small integers mixed in. Besides the plain generator
("generic") there is a family for every class of wrong answer in issue 9; FAMILIES lists
them with their weights.

The tree (`Case.root`, `Node`) is what mpref evaluates node by node (domain, kinks,
range); its ops are "var", "const", "neg", "add", "sub", "mul", "div", "pow", "logb",
"atan2", "hypot", "max", "min" (any number of arguments), "sum", "mean", "prod",
"norm", "logsumexp" (over the entries of a vector) and the unary functions by their
adcalc names. A vector is a `Vec` of scalar nodes, one per entry.
"""
import math
import random
import re
import shlex
from dataclasses import dataclass

import sympy as sp
from sympy.codegen.cfunctions import expm1 as sp_expm1, log1p as sp_log1p

# ---- the language: SymPy forms ----------------------------------------------------------

class RealSign(sp.Function):
    """sign(u) for a real u, with derivative 0. SymPy's sign and Abs differentiate as
    functions of a complex variable unless they can prove u real (log(b), atanh(b): they
    cannot), which brings re(), DiracDelta(b) and unevaluated Derivatives into the
    formulas; every argument is real inside the language's domain, and the kinks at
    u = 0 are mpref's business, not the formula's."""

    @classmethod
    def eval(cls, u):
        if u.is_Number:
            return sp.sign(u)

    def fdiff(self, argindex=1):
        return sp.S.Zero


class RealAbs(sp.Function):
    """|u| for a real u, with derivative RealSign(u) (see RealSign)."""

    @classmethod
    def eval(cls, u):
        if u.is_Number:
            return abs(u)

    def fdiff(self, argindex=1):
        return RealSign(self.args[0])


def _max(*xs):
    """Max that orders numbers (and refuses complex ones) but leaves symbolic arguments
    unevaluated: SymPy's ordering of Max(sinh(c**0.333), a) asks whether the sinh is real,
    which took Mod of a Float power through a polynomial gcd and over 9 GB (seed 1, case 18005)."""
    return sp.Max(*xs) if all(sp.sympify(x).is_number for x in xs) else sp.Max(*xs, evaluate=False)


def _pow(x, y):
    """x**y, unevaluated between two numbers: SymPy simplifies a power of exact binary
    rationals ((0.1**-0.5)**(1/3) as 2**-55 fractions) by factoring their huge integers,
    past 3 GB (seed 1, case 59510). The reference evaluates it at 60 digits anyway."""
    if sp.sympify(x).is_number and sp.sympify(y).is_number:
        return sp.Pow(x, y, evaluate=False)
    return x ** y


def _min(*xs):
    """Min, with the same care as _max."""
    return sp.Min(*xs) if all(sp.sympify(x).is_number for x in xs) else sp.Min(*xs, evaluate=False)


_UNARY = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "asin": sp.asin, "acos": sp.acos,
    "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh,
    "acosh": sp.acosh, "atanh": sp.atanh, "exp": sp.exp, "expm1": sp_expm1, "log": sp.log,
    "log1p": sp_log1p, "log2": lambda u: sp.log(u) / sp.log(2),
    "log10": lambda u: sp.log(u) / sp.log(10), "sqrt": sp.sqrt,
    "cbrt": lambda u: RealSign(u) * RealAbs(u) ** sp.Rational(1, 3), "abs": RealAbs,
    "sign": RealSign, "erf": sp.erf, "erfc": sp.erfc,
    "sigmoid": lambda u: 1 / (1 + sp.exp(-u)), "softplus": lambda u: sp.log(1 + sp.exp(u)),
    "relu": lambda u: _max(u, 0),
}
_ATOM, _POW, _NEG, _MUL, _ADD = 9, 7, 6, 5, 4  # precedence of a node's text
_BINARY = {  # element-wise functions of two arguments
    "pow": lambda x, y: _pow(x, y), "atan2": sp.atan2, "hypot": lambda x, y: sp.sqrt(x ** 2 + y ** 2),
    "max": lambda *xs: _max(*xs), "min": lambda *xs: _min(*xs),
}
_INFIX = {"+": ("add", _ADD), "-": ("sub", _ADD), "*": ("mul", _MUL), "/": ("div", _MUL),
          "**": ("pow", _POW)}
_SYM_OF = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
          "div": lambda x, y: x / y, "pow": lambda x, y: _pow(x, y)}
_REDUCE = {
    "sum": lambda xs: sp.Add(*xs), "mean": lambda xs: sp.Add(*xs) / len(xs),
    "prod": lambda xs: sp.Mul(*xs), "norm": lambda xs: sp.sqrt(sp.Add(*[x ** 2 for x in xs])),
    "logsumexp": lambda xs: sp.log(sp.Add(*[sp.exp(x) for x in xs])),
    "max": lambda xs: _max(*xs), "min": lambda xs: _min(*xs),
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


@dataclass(frozen=True, eq=False)
class Node:
    """A scalar node: adcalc text, SymPy form and, for mpref, the op and its arguments.

    `fn` builds the SymPy form from the arguments' forms (sym == fn(*arg syms)); `value`
    is the float of a "const" node; `name` is the flat input name of a "var" node
    (`a`, `v[1]`)."""
    op: str
    args: tuple
    text: str
    sym: sp.Expr
    prec: int = _ATOM
    value: float = None
    name: str = None
    fn: object = None


@dataclass(frozen=True, eq=False)
class Vec:
    """A vector-valued expression: its text and one scalar Node per entry."""
    parts: tuple
    text: str
    prec: int = _ATOM


@dataclass(frozen=True, eq=False)
class Case:
    """One generated (or hand-written) case.

    `variables` are adcalc's variable names in its order, `point` maps each to a float
    or a list of floats, `inputs` are the flat input names (`a`, `v[0]`, ...) and
    `symbols` the matching real SymPy symbols, `expr` the SymPy form of `text`,
    `direction` the v of `hvp` over the inputs, `root` the tree mpref evaluates, and
    `ident` says where the case comes from (`family seed:index`)."""
    text: str
    variables: tuple
    point: dict
    expr: sp.Expr
    symbols: tuple
    inputs: tuple
    direction: tuple
    root: Node
    family: str
    ident: str

    def argv(self, command, engine):
        """The adcalc argv (JSON output) of `command` (grad, hessian, hvp) with `engine`."""
        argv = [command, self.text, "--at=" + format_point(self.point)]
        if command == "hvp":
            argv.append("--vector=" + ",".join(_num(x) for x in self.direction))
        return argv + ["--engine", engine, "--json"]

    def shell(self, command, engine):
        """The same command as a shell line, to reproduce it by hand."""
        return "adcalc " + " ".join(shlex.quote(a) for a in self.argv(command, engine))

    def flat_point(self):
        """The coordinates in input order (the order of `symbols` and `inputs`)."""
        out = []
        for name in self.variables:
            x = self.point[name]
            out.extend(x if isinstance(x, list) else [x])
        return out


def format_point(point):
    """`a=1e-17,v=[1.0,2.0]`: a point in the syntax of --at, every float repr-exact."""
    def one(x):
        return "[" + ",".join(_num(y) for y in x) + "]" if isinstance(x, list) else _num(x)
    return ",".join(f"{k}={one(x)}" for k, x in point.items())


def _num(x):
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


# ---- building nodes: every builder returns the text and the SymPy form together --------

_SYMBOLS = {}


def _symbol(name):
    if name not in _SYMBOLS:
        _SYMBOLS[name] = sp.Symbol(re.sub(r"\[(\d+)\]", r"_\1", name), real=True)
    return _SYMBOLS[name]


def _var(name, value):
    if isinstance(value, list):
        parts = tuple(Node("var", (), f"{name}[{i}]", _symbol(f"{name}[{i}]"), name=f"{name}[{i}]")
                      for i in range(len(value)))
        return Vec(parts, name)
    return Node("var", (), name, _symbol(name), name=name)


def _const(x):
    x = float(x)
    return Node("const", (), _num(x), sp.Rational(x), _NEG if x < 0 else _ATOM, value=x)


def _wrap(x, need):
    return f"({x.text})" if need else x.text


def _parts(x, n):
    return x.parts if isinstance(x, Vec) else (x,) * n


def _size(*xs):
    sizes = {len(x.parts) for x in xs if isinstance(x, Vec)}
    if len(sizes) > 1:
        raise ValueError(f"vectors of lengths {sorted(sizes)} in one operation")
    return sizes.pop() if sizes else None


def _elementwise(op, args, text, prec, sym):
    """Apply a scalar op entry by entry (broadcasting scalars), or once to scalars."""
    n = _size(*args)
    if n is None:
        return Node(op, tuple(args), text, sym(*[a.sym for a in args]), prec, fn=sym)
    parts = tuple(Node(op, ps, f"({text})[{i}]", sym(*[p.sym for p in ps]), _ATOM, fn=sym)
                  for i, ps in enumerate(zip(*[_parts(a, n) for a in args])))
    return Vec(parts, text, prec)


def _infix(sign, x, y):
    op, p = _INFIX[sign]
    if sign == "**":
        text = f"{_wrap(x, x.prec <= p)}**{_wrap(y, y.prec < _ATOM)}"
    else:
        text = f"{_wrap(x, x.prec < p)} {sign} {_wrap(y, y.prec < p or (sign in '-/' and y.prec == p))}"
    return _elementwise(op, (x, y), text, p, _SYM_OF[op])


def _neg(x):
    return _elementwise("neg", (x,), "-" + _wrap(x, x.prec < _POW), _NEG, lambda u: -u)


def _call(name, *args):
    """A call of one of the language's functions, with its meaning for vectors."""
    text = f"{name}({', '.join(a.text for a in args)})"
    if name in _REDUCE and len(args) == 1:
        xs, fn = _parts(args[0], 1), lambda *ys: _REDUCE[name](ys)
        return Node(name, xs, text, fn(*[p.sym for p in xs]), fn=fn)
    if name == "dot":  # the sum of the entry-wise products
        xs = _parts(_infix("*", *args), 1)
        return Node("sum", xs, text, sp.Add(*[p.sym for p in xs]), fn=sp.Add)
    if name == "log" and len(args) == 2:
        return _elementwise("logb", args, text, _ATOM, lambda u, b: sp.log(u) / sp.log(b))
    return _elementwise(name, args, text, _ATOM, _BINARY[name] if name in _BINARY else _UNARY[name])


def _index(x, i):
    return x.parts[i]


def _list(*xs):
    return Vec(tuple(xs), "[" + ", ".join(x.text for x in xs) + "]")


# ---- a reader for hand-written cases (the subset of the language the generator writes) ---

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_]\w*)|(\*\*|[-+*/^(),\[\]]))")


def _parse(text, point):
    toks, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read {text[pos:]!r}")
        toks.append(("num", m.group(1)) if m.group(1) else ("name", m.group(2)) if m.group(2)
                    else ("op", "**" if m.group(3) == "^" else m.group(3)))
        pos = m.end()
    toks.append(("end", ""))
    i = 0

    def peek():
        return toks[i]

    def take(want=None):
        nonlocal i
        tok = toks[i]
        if want is not None and tok[1] != want:
            raise ValueError(f"expected {want!r}, found {tok[1]!r} in {text!r}")
        i += 1
        return tok

    def expr():
        x = term()
        while peek()[1] in ("+", "-"):
            x = _infix(take()[1], x, term())
        return x

    def term():
        x = unary()
        while peek()[1] in ("*", "/"):
            x = _infix(take()[1], x, unary())
        return x

    def unary():
        if peek()[1] == "-":
            take()
            return _neg(unary())
        x = postfix()
        if peek()[1] == "**":
            take()
            x = _infix("**", x, unary())
        return x

    def postfix():
        x = atom()
        while peek()[1] == "[":
            take()
            k = int(take()[1])
            take("]")
            x = _index(x, k)
        return x

    def atom():
        kind, tok = take()
        if kind == "num":
            return _const(float(tok))
        if kind == "name" and peek()[1] == "(":
            take()
            args = [expr()]
            while peek()[1] == ",":
                take()
                args.append(expr())
            take(")")
            return _call(tok, *args)
        if kind == "name":
            return _var(tok, point[tok]) if tok in point else _const(_CONSTANTS[tok])
        if tok == "(":
            x = expr()
            take(")")
            return Vec(x.parts, f"({x.text})") if isinstance(x, Vec) else \
                Node(x.op, x.args, f"({x.text})", x.sym, _ATOM, x.value, x.name, x.fn)
        if tok == "[":
            xs = [expr()]
            while peek()[1] == ",":
                take()
                xs.append(expr())
            take("]")
            return _list(*xs)
        raise ValueError(f"unexpected {tok!r} in {text!r}")

    root = expr()
    take("")
    return root


def _natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _make(root, point, family, ident, direction=None, rng=None):
    """The Case of a scalar tree: variables in natural order, flat inputs, direction."""
    if isinstance(root, Vec):
        raise ValueError(f"{root.text!r} is not scalar")
    names = sorted(set(re.findall(r"[A-Za-z_]\w*", root.text)) & set(point), key=_natural)
    point = {n: [float(x) for x in point[n]] if isinstance(point[n], (list, tuple)) else float(point[n])
             for n in names}
    inputs = tuple(x for n in names for x in ([f"{n}[{i}]" for i in range(len(point[n]))]
                                              if isinstance(point[n], list) else [n]))
    if direction is None:
        direction = _direction(rng, len(inputs)) if rng else [1.0] * len(inputs)
    if len(direction) != len(inputs):
        raise ValueError(f"direction has {len(direction)} entries for {len(inputs)} inputs")
    text = f"({root.text})" if root.text.startswith("-") else root.text
    return Case(text, tuple(names), point, root.sym, tuple(_symbol(n) for n in inputs),
                inputs, tuple(float(x) for x in direction), root, family, ident)


def case(text, point, direction=None, family="manual"):
    """A case from adcalc text (the subset the generator writes: infix, unary minus,
    calls, lists, indexing), a point {name: float or list} and the hvp direction."""
    return _make(_parse(text, point), point, family, f"{family} {text}", direction)


# ---- drawing numbers ----------------------------------------------------------------------

def _extreme(rng, lo=-320, hi=300):
    """A float whose decimal exponent is uniform in [lo, hi], with 1, 3 or 17 digits."""
    digits = rng.choice((1, 3, 17))
    return float(f"{rng.uniform(1, 10):.{digits - 1}f}e{rng.randint(lo, hi)}")


def _coordinate(rng):
    r = rng.random()
    if r < 0.08:
        return 0.0
    if r < 0.2:
        return float(rng.randint(-5, 5))
    x = 10 ** rng.uniform(-3, 3) if r < 0.55 else _extreme(rng)
    return x if rng.random() < 0.7 else -x


def _direction(rng, n):
    d = [rng.choice((1.0, 2.0, -1.0, 0.5, -2.0, 3.0, 0.0)) for _ in range(n)]
    return d if any(d) else [1.0] * n


# ---- the plain generator ------------------------------------------------------------------

_EXPONENTS = (2.0, 3.0, -1.0, -2.0, 0.5, 0.25, 1.5, -0.5, 1 / 3)
_FACTORS = (2.0, 3.0, 0.5, 0.25, 1.5, 10.0, 0.1, 1e-3, 1e3, -1.0)


class _Tree:
    """Random expression trees over the variables of one case."""

    def __init__(self, rng, point):
        self.rng, self.point = rng, point
        self.scalars = [n for n in point if not isinstance(point[n], list)]
        self.vec = "v" if "v" in point else None

    def scalar(self, depth):
        r, rng = self.rng.random(), self.rng
        if depth == 0 or r < 0.2:
            return self.leaf()
        if r < 0.5:
            return _call(rng.choice(tuple(_UNARY)), self.scalar(depth - 1))
        if r < 0.72:
            sign = rng.choice(("+", "-", "*", "/", "*", "+"))
            return _infix(sign, self.scalar(depth - 1), self.scalar(depth - 1))
        if r < 0.8:
            return _infix("**", self.scalar(depth - 1), _const(rng.choice(_EXPONENTS)))
        if r < 0.87:
            f = rng.choice(("atan2", "hypot", "max", "min", "pow", "log"))
            y = _const(rng.choice((2.0, 10.0, 0.5))) if f == "log" else self.scalar(depth - 1)
            return _call(f, self.scalar(depth - 1), y)
        if self.vec is None:
            return _infix("*", _const(rng.choice(_FACTORS)), self.scalar(depth - 1))
        f = rng.choice(("sum", "mean", "prod", "norm", "logsumexp", "max", "min", "dot"))
        if f == "dot":
            return _call("dot", self.vector(depth - 1), self.vector(depth - 1))
        return _call(f, self.vector(depth - 1))

    def vector(self, depth):
        r, rng = self.rng.random(), self.rng
        n = len(self.point[self.vec])
        if depth == 0 or r < 0.3:
            return _var(self.vec, self.point[self.vec])
        if r < 0.4:
            return _list(*[self.scalar(depth - 1) for _ in range(n)])
        if r < 0.7:
            return _call(rng.choice(tuple(_UNARY)), self.vector(depth - 1))
        if r < 0.9:
            sign = rng.choice(("+", "-", "*", "/"))
            x, y = self.vector(depth - 1), (self.vector if rng.random() < 0.5 else self.scalar)(depth - 1)
            return _infix(sign, *((x, y) if rng.random() < 0.5 else (y, x)))
        return _infix("**", self.vector(depth - 1), _const(rng.choice(_EXPONENTS[:5])))

    def leaf(self):
        rng = self.rng
        r = rng.random()
        if self.vec and (r < 0.25 or not self.scalars):
            return _index(_var(self.vec, self.point[self.vec]), rng.randrange(len(self.point[self.vec])))
        if r < 0.85 and self.scalars:
            name = rng.choice(self.scalars)
            return _var(name, self.point[name])
        return _const(rng.choice(_FACTORS + (math.pi, math.e)))


def _generic(rng):
    names = rng.sample(("a", "b", "c", "v"), rng.randint(1, 3))
    point = {n: ([_coordinate(rng) for _ in range(rng.randint(2, 4))] if n == "v" else _coordinate(rng))
             for n in sorted(names)}
    tree = _Tree(rng, point)
    root = tree.scalar(rng.randint(1, 3))
    return root, point


# ---- targeted families (one per class of wrong answer in issue 9) --------------------------

def _tiny(rng):
    return rng.choice((0.0, 5e-324, 1e-320, 1e-310, 1e-300, 1e-17, _extreme(rng, -320, -15)))


def _prod_tiny(rng):
    n = rng.randint(2, 4)
    v = [rng.choice((1.0, 2.0, 1.07, -1.5, 2.320992567935017, 10 ** rng.uniform(-1, 1))) for _ in range(n)]
    for k in rng.sample(range(n), rng.randint(1, 2)):
        v[k] = _tiny(rng) * rng.choice((1, -1))
    form = rng.choice(("prod(v)", "prod(v) * a", "prod([a, b])", "prod(v)**2", "log(abs(prod(v)) + 1)"))
    point = {"a": rng.choice((-1.731938749625388, 2.0, _tiny(rng))), "b": v[0], "v": v}
    return form, point


def _lse_dominant(rng):
    n = rng.randint(2, 4)
    form = rng.choice(("logsumexp(exp(v))", "logsumexp(expm1(v))", "logsumexp(v)", "logsumexp(a * v)"))
    top = rng.uniform(20, 90) if "exp" in form else rng.choice((rng.uniform(40, 800), _extreme(rng, 3, 300)))
    v = [rng.uniform(-5, 5) for _ in range(n)]
    v[rng.randrange(n)] = top
    return form, {"a": rng.choice((1.0, 0.5, 2.0)), "v": v}


def _huge_tiny(rng):
    form = rng.choice(("asinh(a)", "acosh(a)", "atan2(a, b)", "hypot(a, b)", "norm(v)",
                       "asinh(a) * b", "atan2(a, b) + hypot(a, b)", "sum(asinh(v))"))
    big = lambda: _extreme(rng, 100, 300) * rng.choice((1, 1, -1))
    small = lambda: _extreme(rng, -320, -100) * rng.choice((1, -1))
    pick = lambda: rng.choice((big, small, big, lambda: rng.choice((1.0, -2.0, 0.5))))()
    a = abs(big()) if form.startswith("acosh") else pick()
    v = [pick() for _ in range(rng.randint(2, 4))]
    return form, {"a": a, "b": rng.choice((a, pick())), "v": v}


def _tanh_sigmoid(rng):
    form = rng.choice(("tanh(a)", "sigmoid(a)", "tanh(a) * b", "sigmoid(a) * b", "tanh(a * b)"))
    a = rng.choice((rng.uniform(19, 1000), _extreme(rng, 3, 300))) * rng.choice((1, -1))
    return form, {"a": a, "b": rng.choice((1.0, 0.5, 2.0))}


def _power_moderate(rng):
    k = rng.randrange(4)
    if k == 0:
        return "log(exp(expm1(a))**0.25)", {"a": rng.uniform(5.5, 6.6)}
    p = rng.choice((0.25, 0.5, 0.125, -0.5, 0.01))
    if k == 1:
        return f"log(exp(a)**{_num(p)})", {"a": rng.uniform(300, 700)}
    if k == 2:
        return f"exp(a)**{_num(p)}", {"a": rng.uniform(1, 40) / abs(p) * rng.choice((1, -1))}
    return f"(a**b)**{_num(p)}", {"a": rng.uniform(1.5, 10), "b": rng.uniform(100, 300)}


def _neg_pow(rng):
    form = rng.choice(("a**b", "pow(a, b)", "a**b * c", "exp(a**b)"))
    a = -rng.choice((rng.uniform(0.5, 5), 2.0, _extreme(rng, -20, 20)))
    b = float(rng.randint(-4, 5))
    return form, {"a": a, "b": b, "c": rng.choice((1.0, 3.0))}


def _domain_edge(rng):
    forms = {"sqrt(a)": (0.0, 1e-320, 5e-324), "cbrt(a)": (0.0, 1e-320, -1e-320),
             "acos(a)": (1.0, -1.0, 1 - 2 ** -53, -1 + 2 ** -53), "asin(a)": (1.0, -1.0, 1 - 2 ** -53),
             "acosh(a)": (1.0, 1 + 2 ** -52), "a**0.5": (0.0, 1e-300), "a**a": (0.0, 5e-324),
             "a**1.5": (0.0,), "sqrt(a) * b": (0.0, 1e-310), "atanh(a)": (1 - 2 ** -53, -1 + 2 ** -53)}
    form = rng.choice(sorted(forms))
    return form, {"a": rng.choice(forms[form]), "b": rng.choice((1.0, 2.0))}


def _softplus_large(rng):
    form, sign = rng.choice((("softplus(a)", 1), ("sigmoid(a)", -1), ("softplus(a)", -1),
                             ("softplus(a) * b", 1), ("sigmoid(a) * b", -1)))
    return form, {"a": sign * rng.uniform(700, 1000), "b": rng.choice((1.0, 2.0))}


def _tiny_steps(rng):
    form = rng.choice(("a", "a * a", "a + b", "a * b", "a - b", "a / b", "sin(a) * b"))
    a = rng.choice((5e-324, 1e-320, 1e-200, 1e200, 1e300, _extreme(rng)))
    return form, {"a": a * rng.choice((1, -1)), "b": rng.choice((1.0, 2.0, _extreme(rng)))}


FAMILIES = {  # name: (weight, drawer); "generic" draws trees, the others (form, point)
    "generic": (50, None), "prod_tiny": (7, _prod_tiny), "lse_dominant": (6, _lse_dominant),
    "huge_tiny": (8, _huge_tiny), "tanh_sigmoid": (5, _tanh_sigmoid),
    "power_moderate": (5, _power_moderate), "neg_pow": (5, _neg_pow),
    "domain_edge": (5, _domain_edge), "softplus_large": (4, _softplus_large),
    "tiny_steps": (5, _tiny_steps),
}


def _one(seed, index, attempt):
    rng = random.Random(f"{seed}:{index}:{attempt}")
    names = list(FAMILIES)
    family = rng.choices(names, weights=[FAMILIES[n][0] for n in names])[0]
    if family == "generic":
        root, point = _generic(rng)
    else:
        form, point = FAMILIES[family][1](rng)
        root = _parse(form, point)
    return _make(root, point, family, f"{family} {seed}:{index}", rng=rng)


def generate(seed, count, start=0):
    """Cases number start .. start+count-1 of the stream `seed` (each reproducible alone:
    case i depends on (seed, i) only)."""
    out = []
    for index in range(start, start + count):
        for attempt in range(100):  # a generic tree can come out constant, or with a
            try:                    # constant SymPy cannot order (Max of a complex number)
                c = _one(seed, index, attempt)
            except ValueError:
                continue
            if c.symbols:
                break
        out.append(c)
    return out
