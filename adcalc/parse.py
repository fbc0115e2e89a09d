"""Tokenizer and Pratt parser for the expression language; never eval/exec/sympify.

`parse(text)` returns an `Expr`: the expression as postfix code (each operation after its
operands) plus the variable names it uses.  `Expr.build(graph, shapes)` runs the code into
graph nodes once the shapes of the variables are known (they come from the point).
Anything outside the whitelist below is a ParseError naming the token and its column.
Tokens are the matched strings alone, in one regular-expression pass; their columns are
found again only for a message or a node's label, so parsing is linear and light.
"""
import math
import re

from adcalc import primitives as P
from adcalc.graph import Node
from adcalc.errors import InputError, ParseError

MAX_LENGTH = 4_000_000   # characters: a flat sum of 10^5 variables is 1.6 million
MAX_DEPTH = 200

_OPS = frozenset(["**", "-", "+", "*", "/", "^", "@", "(", ")", "[", "]", ",", ".", ":"])
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_OP_CHARS = re.escape("".join(sorted({c for op in _OPS for c in op})))
_TOKEN = re.compile(rf"\s*({_NUMBER}|[A-Za-z_][A-Za-z_0-9]*|\*\*|[{_OP_CHARS}])")
_STRAY = re.compile(rf"[^\s\dA-Za-z_{_OP_CHARS}]")   # a character no token is made of (\d: any digit)

CONSTANTS = {"pi": math.pi, "e": math.e}


FUNCTIONS = P.FUNCTIONS  # the whitelist: names, arities and builders, all from the table

# postfix instructions: a variable is its name (str), a number its value (float), an operation
# (kind, value, operand count, first token, end token) with one of these kinds
BIN, NEG, CALL, LIST, TRANSPOSE, INDEX = range(6)


class Source:
    """The text and, while it is parsed, its tokens (the matched strings, ending with "");
    where each token starts and ends is found again only when a message or a label needs
    it, so a built graph keeps the text alone."""
    __slots__ = ("text", "toks", "_starts", "_ends")

    def __init__(self, text):
        if len(text) > MAX_LENGTH:
            raise InputError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
        stray = _STRAY.search(text)
        if stray:
            pos = stray.start()
            ch = text[pos]
            raise ParseError(f"unexpected character {ch!r} at column {pos + 1}", text, pos, ch)
        self.text, self.toks, self._starts, self._ends = text, _TOKEN.findall(text), None, None
        self.toks.append("")

    def _place(self):
        matches = list(_TOKEN.finditer(self.text))
        self._starts = [m.start(1) for m in matches] + [len(self.text)]
        self._ends = [m.end(1) for m in matches] + [len(self.text)]

    def start(self, i):
        """The column (0-based) where token i starts; the end token's is the text's length."""
        if self._starts is None:
            self._place()
        return self._starts[i]

    def between(self, a, b):
        """The text of tokens a to b - 1."""
        if self._starts is None:
            self._place()
        return self.text[self._starts[a]:self._ends[b - 1]]

    def where(self, a, b, limit=200):
        """The text of tokens a to b - 1 for a message, cut at `limit` characters."""
        out = self.between(a, b)
        return out if len(out) <= limit else out[:limit] + "..."


class Expr:
    """A parsed expression: its source, its postfix code (each operation after its operands:
    the build order) and the variable names it uses, in order of appearance."""

    def __init__(self, source, code, names):
        self.source, self.code, self.names = source, code, names

    @property
    def text(self):
        return self.source.text

    def build(self, graph, shapes):
        return _build(self, graph, shapes)


def parse(text):
    p = _Parser(text)
    if p.toks[0] == "":
        raise ParseError("the expression is empty", text, 0, "")
    p.expression(0)
    if p.toks[p.i] != "":
        p.fail(p.i)
    p.src.toks = None   # parsed: the code and the text are what is kept
    return Expr(p.src, p.code, p.names)


_BINARY = {"+": (10, 11), "-": (10, 11), "*": (20, 21), "/": (20, 21), "@": (20, 21),
           "**": (40, 39), "^": (40, 39)}
_NONE = (-1, -1)   # the binding power of a token that binds nothing
_PREFIX_BP = 30
_POSTFIX_BP = 50


class _Parser:
    """A Pratt parser writing postfix code; tokens are referred to by their index."""

    def __init__(self, text):
        self.src = Source(text)
        self.text, self.toks, self.i, self.depth, self.names = text, self.src.toks, 0, 0, []
        self.seen, self.code = set(), []

    def fail(self, i, what=None):
        tok = self.toks[i]
        shown = "end of the expression" if tok == "" else repr(tok)
        msg = what or f"unexpected {shown}"
        if what and tok != "" and repr(tok) not in what:
            msg = f"{what} (found {shown})"
        pos = self.src.start(i)
        raise ParseError(f"{msg} at column {pos + 1}", self.text, pos, tok)

    def expect(self, text):
        i = self.i
        self.i += 1
        tok = self.toks[i]
        if tok != text:
            self.fail(i, f"expected {text!r} but found "
                         + ("the end of the expression" if tok == "" else repr(tok)))

    def expression(self, min_bp):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InputError(f"the expression nests deeper than {MAX_DEPTH} levels")
        start = self.i
        toks, code = self.toks, self.code
        if self.plain_variable(start):   # the usual operand, without the general path
            self.i = start + 1
            self.variable(toks[start])
        else:
            self.prefix()
        while True:
            tok = toks[self.i]
            if tok not in _OPS:
                if tok != "":
                    self.fail(self.i, f"unexpected {tok!r} (missing operator?)")
                break
            if (tok == "(" or tok == "[" or tok == ".") and _POSTFIX_BP >= min_bp:
                self.postfix(start)
                continue
            bp = _BINARY.get(tok)
            if bp is None or bp[0] < min_bp:
                break
            j = self.i + 1
            self.i = j
            if self.plain_variable(j) and toks[j + 1] in _OPS and toks[j + 1] not in ("[", ".") \
                    and _BINARY.get(toks[j + 1], _NONE)[0] < bp[1] and self.depth < MAX_DEPTH:
                # a variable that the operator after it does not bind: what expression(bp[1])
                # would do, without the call
                self.i = j + 1
                self.variable(toks[j])
            else:
                self.expression(bp[1])
            code.append((BIN, P.INFIX["**" if tok == "^" else tok], 2, start, self.i))
        self.depth -= 1

    def prefix(self):
        i = self.i
        tok = self.toks[i]
        self.i = i + 1
        code = self.code
        if tok in _OPS:
            if tok == "-" or tok == "+":
                self.expression(_PREFIX_BP)
                if tok == "-":
                    code.append((NEG, None, 1, i, self.i))
                return
            if tok == "(":
                self.expression(0)
                self.expect(")")
                last = code[-1]
                if type(last) is tuple:   # an operation: its span takes the parentheses in
                    code[-1] = last[:3] + (i, self.i)
                return
            if tok == "[":
                n = self.items("]")
                if not n:
                    self.fail(i, "an empty list")
                code.append((LIST, None, n, i, self.i))
                return
            self.fail(i)
        if tok == "":
            self.fail(i)
        if tok[0] not in _LETTERS:   # a number (its digits may be any script's, as float reads them)
            value = float(tok)
            if not math.isfinite(value):
                shown = tok if len(tok) <= 40 else f"{tok[:20]}...{tok[-10:]} ({len(tok)} characters)"
                raise InputError(f"the number {shown} at column {self.src.start(i) + 1} overflows a float64")
            code.append(value)
            return
        if self.toks[i + 1] == "(":
            return self.call(i)
        if tok in FUNCTIONS:
            self.fail(i, f"{tok!r} is a function; call it as {tok}(...)")
        if tok in CONSTANTS:
            code.append(CONSTANTS[tok])
            return
        self.variable(tok)

    def plain_variable(self, i):
        """Whether token i is a variable as it stands: a name, not called, not a constant or
        a function."""
        tok = self.toks[i]
        return bool(tok) and tok[0] in _LETTERS and self.toks[i + 1] != "(" and tok not in CONSTANTS \
            and tok not in FUNCTIONS

    def variable(self, name):
        """A variable's instruction (its name), the name noted in order of appearance."""
        if name not in self.seen:
            self.seen.add(name)
            self.names.append(name)
        self.code.append(name)

    def items(self, close):
        """Parses items up to `close` (consumed); their count."""
        if self.toks[self.i] == close:
            self.i += 1
            return 0
        n = 0
        while True:
            self.expression(0)
            n += 1
            j = self.i
            tok = self.toks[j]
            self.i += 1
            if tok == close:
                return n
            if tok != ",":
                self.fail(j, f"expected ',' or {close!r} but found "
                             + ("the end of the expression" if tok == "" else repr(tok)))

    def call(self, i):
        name = self.toks[i]
        if name not in FUNCTIONS:
            import difflib
            close = difflib.get_close_matches(name, FUNCTIONS, n=1, cutoff=0.6)
            self.fail(i, f"unknown function {name!r}" + (f" (did you mean {close[0]!r}?)" if close else
                                                          " (adcalc functions lists them)"))
        self.i = i + 2   # the name and its "("
        n = self.items(")")
        lo, hi = FUNCTIONS[name].arity
        if n < lo or (hi is not None and n > hi):
            want = str(lo) if lo == hi else (f"{lo} or more" if hi is None else f"{lo} to {hi}")
            self.fail(i, f"{name} takes {want} argument{'s' if want != '1' else ''}, not {n}")
        self.code.append((CALL, name, n, i, self.i))

    def postfix(self, start):
        j = self.i
        tok = self.toks[j]
        self.i += 1
        if tok == ".":
            a = self.i
            self.i += 1
            if self.toks[a] != "T":
                self.fail(a, "only '.T' may follow a '.'")
            self.code.append((TRANSPOSE, None, 1, start, self.i))
            return
        if tok == "(":
            self.fail(j, "only functions can be called")
        idx = []
        while True:
            idx.append(self.index_item())
            k = self.i
            nxt = self.toks[k]
            self.i += 1
            if nxt == "]":
                break
            if nxt != ",":
                self.fail(k, "expected ',' or ']' in an index")
        self.code.append((INDEX, tuple(idx), 1, start, self.i))

    def index_item(self):
        parts, cur = [], None
        while True:
            tok = self.toks[self.i]
            if tok == ":":
                at = self.i
                self.i += 1
                parts.append(cur)
                cur = None
                if len(parts) > 2:
                    self.fail(at, "too many ':' in a slice")
                continue
            if tok == "," or tok == "]":
                break
            cur = self.integer()
        if not parts:
            if cur is None:
                self.fail(self.i, "an empty index")
            return cur
        return slice(*(parts + [cur]))

    def integer(self):
        i = self.i
        self.i += 1
        tok = self.toks[i]
        sign = 1
        if tok == "-" or tok == "+":
            sign = -1 if tok == "-" else 1
            i = self.i
            self.i += 1
            tok = self.toks[i]
        if not tok.isdigit():
            self.fail(i, "an index must be an integer literal")
        if len(tok) > 18:
            self.fail(i, f"an index of {len(tok)} digits is out of range")
        return sign * int(tok)


# ---- building the graph -----------------------------------------------------------------
def _build(expr, graph, shapes):
    """The postfix code run on a stack (no recursion: flat sums of 10^5 terms are deep
    trees), each operation made into a graph node once; an operation's node is labelled
    with its span of the source."""
    src = expr.source
    base = graph.span(src, 0, 0)   # this text's index, shifted: a node's span is base | a << 32 | b
    stack = []
    push, pop = stack.append, stack.pop
    var_node = graph.vars.get
    graph.strict = True
    a = b = 0
    try:
        for instr in expr.code:
            t = type(instr)
            if t is str:
                push(var_node(instr) or graph.var(instr, shapes[instr]))
                continue
            if t is float:
                push(graph.const(instr))
                continue
            kind, val, n, a, b = instr
            if kind == BIN:
                y = pop()
                x = pop()
                node = P.matmul(x, y) if val == "matmul" else graph.binary(val, x, y)
            else:
                kids = stack[len(stack) - n:]
                del stack[len(stack) - n:]
                node = _make(graph, kind, val, kids, src, a, b)
            if type(node) is Node and node.span is None and node.op != "var" and node.op != "const":
                node.span = base | a << 32 | b
            push(node)
    except ValueError as e:
        raise InputError(f"{e} in '{src.where(a, b)}'") from None
    except InputError as e:
        where = src.where(a, b)
        if f"'{where}'" in str(e) or "' in '" in str(e) or "constant" in str(e):
            raise
        raise InputError(f"{e} in '{where}'") from None
    finally:
        graph.strict = False
    return graph.lift(stack[-1])


def _make(graph, kind, val, kids, src, a, b):
    if kind == NEG:
        return P.neg(kids[0])
    if kind == CALL:
        return FUNCTIONS[val].build(*[graph.lift(x) for x in kids])
    if kind == TRANSPOSE:
        return P.transpose(kids[0], src=kids[0].shape) if kids[0].ndim >= 2 else kids[0]
    if kind == LIST:
        kids = [graph.lift(x) for x in kids]
        if len({x.shape for x in kids}) > 1:
            raise InputError("the entries of a list must all have the same shape; got "
                             + ", ".join(str(list(x.shape)) for x in kids))
        return P.stack_all(kids)
    if kind == INDEX:
        x = kids[0]
        _check_index(val, x.shape, src.where(a, b))
        return P.getitem(x, idx=val, src=x.shape)
    raise AssertionError(kind)


def _check_index(idx, shape, where):
    if len(idx) > len(shape):
        raise InputError(f"'{where}' indexes {len(idx)} axes of a value of shape {list(shape)}")
    for axis, (i, n) in enumerate(zip(idx, shape)):
        if isinstance(i, int) and not -n <= i < n:
            raise InputError(f"index {i} is out of range for axis {axis} of length {n} in '{where}'")
        if isinstance(i, slice) and (i.step == 0 or len(range(n)[i]) == 0):
            raise InputError(f"the slice in '{where}' selects nothing")
