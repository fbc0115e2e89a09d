"""Tokenizer and Pratt parser for the expression language; never eval/exec/sympify.

`parse(text)` returns an `Expr`: a small syntax tree plus the variable names it
uses.  `Expr.build(graph, shapes)` turns it into graph nodes through `ops` once the
shapes of the variables are known (they come from the point).  Anything outside
the whitelist below is a ParseError naming the token and its column.
"""
import math
import re

from adcalc import primitives as P
from adcalc.graph import Node
from adcalc.errors import InputError, ParseError

MAX_LENGTH = 4_000_000   # characters: a flat sum of 10^5 variables is 1.6 million
MAX_DEPTH = 200

_TOKEN = re.compile(r"""
    (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/^@()\[\],.:])
  | (?P<space>\s+)
""", re.VERBOSE)

CONSTANTS = {"pi": math.pi, "e": math.e}


FUNCTIONS = P.FUNCTIONS  # the whitelist: names, arities and builders, all from the table


class Ast:
    __slots__ = ("kind", "val", "kids", "start", "end", "k")

    def __init__(self, kind, val, kids, start, end, k=-1):
        self.kind, self.val, self.kids, self.start, self.end = kind, val, kids, start, end
        self.k = k   # its place in the parser's build order


def tokenize(text):
    """[(kind, text, column)] ending with ("end", "", len(text)); a character no token
    starts with is a ParseError naming it."""
    if len(text) > MAX_LENGTH:
        raise InputError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    out, pos = [], 0
    for num, name, op, space in _TOKEN.findall(text):   # matches in order; a gap stops them
        if num:
            out.append(("num", num, pos))
            pos += len(num)
        elif name:
            out.append(("name", name, pos))
            pos += len(name)
        elif op:
            out.append(("op", op, pos))
            pos += len(op)
        else:
            pos += len(space)
    if pos < len(text):   # findall skips what no token matches: find the first such character
        pos = 0
        for m in _TOKEN.finditer(text):
            if m.start() != pos:
                break
            pos = m.end()
        ch = text[pos]
        raise ParseError(f"unexpected character {ch!r} at column {pos + 1}", text, pos, ch)
    out.append(("end", "", len(text)))
    return out


class Expr:
    """A parsed expression: syntax tree, source text and the variable names it uses."""

    def __init__(self, text, ast, names, order=None):
        self.text, self.ast, self.names = text, ast, names  # names in order of appearance
        self.order = order   # the syntax nodes, children before parents

    def build(self, graph, shapes):
        return _build(self, graph, shapes)


def parse(text):
    p = _Parser(text)
    if p.peek()[0] == "end":
        raise ParseError("the expression is empty", text, 0, "")
    ast = p.expression(0)
    tok = p.peek()
    if tok[0] != "end":
        raise ParseError(f"unexpected {tok[1]!r} at column {tok[2] + 1}", text, tok[2], tok[1])
    return Expr(text, ast, p.names, p.order)


_BINARY = {"+": (10, 11), "-": (10, 11), "*": (20, 21), "/": (20, 21), "@": (20, 21),
           "**": (40, 39), "^": (40, 39)}
_PREFIX_BP = 30
_POSTFIX_BP = 50


class _Parser:
    def __init__(self, text):
        self.text, self.toks, self.i, self.depth, self.names = text, tokenize(text), 0, 0, []
        self.seen, self.order = set(), []

    def node(self, kind, val, kids, start, end):
        """A syntax node, listed in `order` (children before parents: the build order)."""
        ast = Ast(kind, val, kids, start, end, len(self.order))
        self.order.append(ast)
        return ast

    def peek(self):
        return self.toks[self.i]

    def next(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok, what=None):
        shown = "end of the expression" if tok[0] == "end" else repr(tok[1])
        msg = what or f"unexpected {shown}"
        if what and tok[0] != "end" and repr(tok[1]) not in what:
            msg = f"{what} (found {shown})"
        raise ParseError(f"{msg} at column {tok[2] + 1}", self.text, tok[2], tok[1])

    def expect(self, text):
        tok = self.next()
        if tok[1] != text or tok[0] != "op":
            self.fail(tok, f"expected {text!r} but found "
                           + ("the end of the expression" if tok[0] == "end" else repr(tok[1])))
        return tok

    def expression(self, min_bp):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InputError(f"the expression nests deeper than {MAX_DEPTH} levels")
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok[0] != "op":
                if tok[0] != "end":
                    self.fail(tok, f"unexpected {tok[1]!r} (missing operator?)")
                break
            if tok[1] in ("(", "[", ".") and _POSTFIX_BP >= min_bp:
                left = self.postfix(left)
                continue
            bp = _BINARY.get(tok[1])
            if bp is None or bp[0] < min_bp:
                break
            self.next()
            right = self.expression(bp[1])
            op = "**" if tok[1] == "^" else tok[1]
            left = self.node("bin", op, [left, right], left.start, right.end)
        self.depth -= 1
        return left

    def prefix(self):
        tok = self.next()
        if tok[0] == "num":
            value = float(tok[1])
            if not math.isfinite(value):
                shown = tok[1] if len(tok[1]) <= 40 else f"{tok[1][:20]}...{tok[1][-10:]} ({len(tok[1])} characters)"
                raise InputError(f"the number {shown} at column {tok[2] + 1} overflows a float64")
            return self.node("num", value, [], tok[2], tok[2] + len(tok[1]))
        if tok[0] == "name":
            end = tok[2] + len(tok[1])
            if self.peek()[1] == "(":
                return self.call(tok)
            if tok[1] in FUNCTIONS:
                self.fail(tok, f"{tok[1]!r} is a function; call it as {tok[1]}(...)")
            if tok[1] in CONSTANTS:
                return self.node("num", CONSTANTS[tok[1]], [], tok[2], end)
            if tok[1] not in self.seen:
                self.seen.add(tok[1])
                self.names.append(tok[1])
            return self.node("var", tok[1], [], tok[2], end)
        if tok[1] in ("-", "+"):
            operand = self.expression(_PREFIX_BP)
            if tok[1] == "+":
                return operand
            return self.node("neg", None, [operand], tok[2], operand.end)
        if tok[1] == "(":
            inner = self.expression(0)
            close = self.expect(")")
            if inner.kind != "var":   # the span takes the parentheses in
                inner.start, inner.end = tok[2], close[2] + 1
            return inner
        if tok[1] == "[":
            items = self.items("]")
            if not items:
                self.fail(tok, "an empty list")
            return self.node("list", None, items, tok[2], self.toks[self.i - 1][2] + 1)
        self.fail(tok)

    def items(self, close):
        items = []
        if self.peek()[1] == close:
            self.next()
            return items
        while True:
            items.append(self.expression(0))
            tok = self.next()
            if tok[1] == close:
                return items
            if tok[1] != ",":
                self.fail(tok, f"expected ',' or {close!r} but found "
                               + ("the end of the expression" if tok[0] == "end" else repr(tok[1])))

    def call(self, name_tok):
        name = name_tok[1]
        if name not in FUNCTIONS:
            import difflib
            close = difflib.get_close_matches(name, FUNCTIONS, n=1, cutoff=0.6)
            self.fail(name_tok, f"unknown function {name!r}" + (f" (did you mean {close[0]!r}?)" if close else
                                                                  " (adcalc functions lists them)"))
        self.next()
        args = self.items(")")
        lo, hi = FUNCTIONS[name].arity
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if lo == hi else (f"{lo} or more" if hi is None else f"{lo} to {hi}")
            self.fail(name_tok, f"{name} takes {want} argument{'s' if want != '1' else ''}, not {len(args)}")
        return self.node("call", name, args, name_tok[2], self.toks[self.i - 1][2] + 1)

    def postfix(self, left):
        tok = self.next()
        if tok[1] == ".":
            attr = self.next()
            if attr[1] != "T":
                self.fail(attr, "only '.T' may follow a '.'")
            return self.node("T", None, [left], left.start, attr[2] + 1)
        if tok[1] == "(":
            self.fail(tok, "only functions can be called")
        idx = []
        while True:
            idx.append(self.index_item())
            nxt = self.next()
            if nxt[1] == "]":
                break
            if nxt[1] != ",":
                self.fail(nxt, "expected ',' or ']' in an index")
        return self.node("index", tuple(idx), [left], left.start, nxt[2] + 1)

    def index_item(self):
        parts, cur = [], None
        while True:
            tok = self.peek()
            if tok[1] == ":":
                self.next()
                parts.append(cur)
                cur = None
                if len(parts) > 2:
                    self.fail(tok, "too many ':' in a slice")
                continue
            if tok[1] in (",", "]"):
                break
            cur = self.integer()
        if not parts:
            if cur is None:
                self.fail(self.peek(), "an empty index")
            return cur
        return slice(*(parts + [cur]))

    def integer(self):
        tok = self.next()
        sign = 1
        if tok[1] in ("-", "+"):
            sign = -1 if tok[1] == "-" else 1
            tok = self.next()
        if tok[0] != "num" or not tok[1].isdigit():
            self.fail(tok, "an index must be an integer literal")
        if len(tok[1]) > 18:
            self.fail(tok, f"an index of {len(tok[1])} digits is out of range")
        return sign * int(tok[1])


# ---- building the graph -----------------------------------------------------------------
def _build(expr, graph, shapes):
    """The syntax nodes in the parser's order (children first: no recursion, and flat sums
    of 10^5 terms are deep trees), each made into a graph node once."""
    text = expr.text
    graph.strict = True
    try:
        done = []
        for ast in expr.order:
            kids = [done[k.k] for k in ast.kids] if ast.kids else ()
            node = _make(graph, ast, kids, shapes, text)
            if type(node) is Node and node.span is None and node.op != "var" and node.op != "const":
                node.span = (text, ast.start, ast.end)
            done.append(node)
        return graph.lift(done[expr.ast.k])
    finally:
        graph.strict = False


def _make(graph, ast, kids, shapes, text):
    k = ast.kind
    if k == "num":
        return graph.const(ast.val)
    if k == "var":
        return graph.var(ast.val, shapes[ast.val])
    try:
        if k == "bin":
            return P.matmul(*kids) if ast.val == "@" else graph.apply(P.INFIX[ast.val], kids, {})
        if k == "neg":
            return P.neg(kids[0])
        if k == "call":
            return FUNCTIONS[ast.val].build(*[graph.lift(x) for x in kids])
        if k == "T":
            return P.transpose(kids[0], src=kids[0].shape) if kids[0].ndim >= 2 else kids[0]
        if k == "list":
            kids = [graph.lift(x) for x in kids]
            if len({x.shape for x in kids}) > 1:
                raise InputError("the entries of a list must all have the same shape; got "
                                 + ", ".join(str(list(x.shape)) for x in kids))
            return P.stack_all(kids)
        if k == "index":
            x = kids[0]
            _check_index(ast.val, x.shape, _where(text, ast))
            return P.getitem(x, idx=ast.val, src=x.shape)
    except ValueError as e:
        raise InputError(f"{e} in '{_where(text, ast)}'") from None
    except InputError as e:
        where = _where(text, ast)
        if f"'{where}'" in str(e) or "' in '" in str(e) or "constant" in str(e):
            raise
        raise InputError(f"{e} in '{where}'") from None
    raise AssertionError(k)


def _where(text, ast, limit=200):
    """The node's own text, made only for a message (a copy per node would be quadratic)."""
    end = min(ast.end, ast.start + limit)
    return text[ast.start:end] + ("..." if ast.end > end else "")


def _check_index(idx, shape, where):
    if len(idx) > len(shape):
        raise InputError(f"'{where}' indexes {len(idx)} axes of a value of shape {list(shape)}")
    for axis, (i, n) in enumerate(zip(idx, shape)):
        if isinstance(i, int) and not -n <= i < n:
            raise InputError(f"index {i} is out of range for axis {axis} of length {n} in '{where}'")
        if isinstance(i, slice) and (i.step == 0 or len(range(n)[i]) == 0):
            raise InputError(f"the slice in '{where}' selects nothing")
