"""Tokenizer and Pratt parser for the expression language; never eval/exec/sympify.

`parse(text)` returns an `Expr`: a small syntax tree plus the variable names it
uses.  `Expr.build(graph, shapes)` turns it into graph nodes through `ops` once the
shapes of the variables are known (they come from the point).  Anything outside
the whitelist below is a ParseError naming the token and its column.
"""
import math
import re

from adcalc import primitives as P
from adcalc.core import is_traced
from adcalc.errors import InputError, ParseError

MAX_LENGTH = 1_000_000
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
    __slots__ = ("kind", "val", "kids", "start", "end")

    def __init__(self, kind, val, kids, start, end):
        self.kind, self.val, self.kids, self.start, self.end = kind, val, kids, start, end


class Token:
    __slots__ = ("kind", "text", "col")

    def __init__(self, kind, text, col):
        self.kind, self.text, self.col = kind, text, col


def tokenize(text):
    if len(text) > MAX_LENGTH:
        raise InputError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    out, pos = [], 0
    for m in _TOKEN.finditer(text):   # one scan; a gap between matches is a bad character
        if m.start() != pos:
            break
        kind = m.lastgroup
        if kind != "space":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    if pos < len(text):
        ch = text[pos]
        raise ParseError(f"unexpected character {ch!r} at column {pos + 1}", text, pos, ch)
    out.append(Token("end", "", len(text)))
    return out


class Expr:
    """A parsed expression: syntax tree, source text and the variable names it uses."""

    def __init__(self, text, ast, names):
        self.text, self.ast, self.names = text, ast, names  # names in order of appearance

    def build(self, graph, shapes):
        return _build(self, graph, shapes)


def parse(text):
    p = _Parser(text)
    if p.peek().kind == "end":
        raise ParseError("the expression is empty", text, 0, "")
    ast = p.expression(0)
    tok = p.peek()
    if tok.kind != "end":
        raise ParseError(f"unexpected {tok.text!r} at column {tok.col + 1}", text, tok.col, tok.text)
    return Expr(text, ast, p.names)


_BINARY = {"+": (10, 11), "-": (10, 11), "*": (20, 21), "/": (20, 21), "@": (20, 21),
           "**": (40, 39), "^": (40, 39)}
_PREFIX_BP = 30
_POSTFIX_BP = 50


class _Parser:
    def __init__(self, text):
        self.text, self.toks, self.i, self.depth, self.names = text, tokenize(text), 0, 0, []
        self.seen = set()

    def peek(self):
        return self.toks[self.i]

    def next(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok, what=None):
        shown = "end of the expression" if tok.kind == "end" else repr(tok.text)
        msg = what or f"unexpected {shown}"
        if what and tok.kind != "end" and repr(tok.text) not in what:
            msg = f"{what} (found {shown})"
        raise ParseError(f"{msg} at column {tok.col + 1}", self.text, tok.col, tok.text)

    def expect(self, text):
        tok = self.next()
        if tok.text != text or tok.kind != "op":
            self.fail(tok, f"expected {text!r} but found "
                           + ("the end of the expression" if tok.kind == "end" else repr(tok.text)))
        return tok

    def expression(self, min_bp):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InputError(f"the expression nests deeper than {MAX_DEPTH} levels")
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.kind != "op":
                if tok.kind != "end":
                    self.fail(tok, f"unexpected {tok.text!r} (missing operator?)")
                break
            if tok.text in ("(", "[", ".") and _POSTFIX_BP >= min_bp:
                left = self.postfix(left)
                continue
            bp = _BINARY.get(tok.text)
            if bp is None or bp[0] < min_bp:
                break
            self.next()
            right = self.expression(bp[1])
            op = "**" if tok.text == "^" else tok.text
            left = Ast("bin", op, [left, right], left.start, right.end)
        self.depth -= 1
        return left

    def prefix(self):
        tok = self.next()
        if tok.kind == "num":
            value = float(tok.text)
            if not math.isfinite(value):
                raise InputError(f"the number {tok.text} at column {tok.col + 1} overflows a float64")
            return Ast("num", value, [], tok.col, tok.col + len(tok.text))
        if tok.kind == "name":
            end = tok.col + len(tok.text)
            if self.peek().text == "(":
                return self.call(tok)
            if tok.text in FUNCTIONS:
                self.fail(tok, f"{tok.text!r} is a function; call it as {tok.text}(...)")
            if tok.text in CONSTANTS:
                return Ast("num", CONSTANTS[tok.text], [], tok.col, end)
            if tok.text not in self.seen:
                self.seen.add(tok.text)
                self.names.append(tok.text)
            return Ast("var", tok.text, [], tok.col, end)
        if tok.text in ("-", "+"):
            operand = self.expression(_PREFIX_BP)
            if tok.text == "+":
                return operand
            return Ast("neg", None, [operand], tok.col, operand.end)
        if tok.text == "(":
            inner = self.expression(0)
            close = self.expect(")")
            return Ast(inner.kind, inner.val, inner.kids, tok.col, close.col + 1) \
                if inner.kind != "var" else inner
        if tok.text == "[":
            items = self.items("]")
            if not items:
                self.fail(tok, "an empty list")
            return Ast("list", None, items, tok.col, self.toks[self.i - 1].col + 1)
        self.fail(tok)

    def items(self, close):
        items = []
        if self.peek().text == close:
            self.next()
            return items
        while True:
            items.append(self.expression(0))
            tok = self.next()
            if tok.text == close:
                return items
            if tok.text != ",":
                self.fail(tok, f"expected ',' or {close!r} but found "
                               + ("the end of the expression" if tok.kind == "end" else repr(tok.text)))

    def call(self, name_tok):
        name = name_tok.text
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
        return Ast("call", name, args, name_tok.col, self.toks[self.i - 1].col + 1)

    def postfix(self, left):
        tok = self.next()
        if tok.text == ".":
            attr = self.next()
            if attr.text != "T":
                self.fail(attr, "only '.T' may follow a '.'")
            return Ast("T", None, [left], left.start, attr.col + 1)
        if tok.text == "(":
            self.fail(tok, "only functions can be called")
        idx = []
        while True:
            idx.append(self.index_item())
            nxt = self.next()
            if nxt.text == "]":
                break
            if nxt.text != ",":
                self.fail(nxt, "expected ',' or ']' in an index")
        return Ast("index", tuple(idx), [left], left.start, nxt.col + 1)

    def index_item(self):
        parts, cur = [], None
        while True:
            tok = self.peek()
            if tok.text == ":":
                self.next()
                parts.append(cur)
                cur = None
                if len(parts) > 2:
                    self.fail(tok, "too many ':' in a slice")
                continue
            if tok.text in (",", "]"):
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
        if tok.text in ("-", "+"):
            sign = -1 if tok.text == "-" else 1
            tok = self.next()
        if tok.kind != "num" or not tok.text.isdigit():
            self.fail(tok, "an index must be an integer literal")
        if len(tok.text) > 18:
            self.fail(tok, f"an index of {len(tok.text)} digits is out of range")
        return sign * int(tok.text)


# ---- building the graph -----------------------------------------------------------------
def _build(expr, graph, shapes):
    """Post-order walk with an explicit stack (flat sums of 10^4 terms are deep trees)."""
    text = expr.text
    graph.strict = True
    try:
        stack, done = [(expr.ast, False)], []
        while stack:
            ast, ready = stack.pop()
            if not ready:
                stack.append((ast, True))
                stack.extend((k, False) for k in reversed(ast.kids))
                continue
            kids = [done.pop() for _ in ast.kids][::-1]
            node = _make(graph, ast, kids, shapes, text)
            if is_traced(node) and node.span is None and node.op not in ("var", "const"):
                node.span = (text, ast.start, ast.end)
            done.append(node)
        return graph.lift(done[0])
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
            f = P.matmul if ast.val == "@" else (lambda a, b: P.bind(P.INFIX[ast.val], a, b))
            return f(*kids)
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
