"""The numpy interpreter over the graph, batched over points, with a domain check at every
node that has one.  Values carry a leading axis of points: a variable's value is
(N,) + its shape, a constant keeps its nominal shape (numpy broadcasts it); a value that
depends on direction variables carries (K, N).

`evaluate` interprets the plan the first time an evaluation is asked for and runs it as a
compiled `Program` from the second time on (when only some values are kept: the usual
case of the engines).  Also here: the overflow checks of a point or of batch rows."""
import functools
import math
import operator
import threading
import weakref

import numpy as np

from adcalc.core import PRIMS
from adcalc.derivatives import DIRECTION
from adcalc.primitives import full_index
from adcalc.errors import DomainError
from adcalc.graph import no_gc, to_text


_ID = operator.attrgetter("id")


def needed(graph, outputs):
    """Ids of the ancestors of `outputs`, ascending (a topological order); cached."""
    key = ("needed", tuple(o.id for o in outputs))
    hit = graph.cache.get(key)
    if hit is not None:
        return hit
    top = max(o.id for o in outputs)
    mark = bytearray(top + 1)
    for o in outputs:
        mark[o.id] = 1
    nodes = graph.nodes
    for i in range(top, -1, -1):
        if mark[i]:
            for a in nodes[i].args:
                mark[a.id] = 1
    out = graph.cache[key] = [i for i in range(top + 1) if mark[i]]
    return out


def plan(graph, outputs):
    """The steps that compute `outputs`, cached: (id, kind, payload, arg ids, params, record)
    with kind 0 a constant (payload: its value), 1 a variable (payload: its name), 2 an op."""
    key = ("plan", tuple(o.id for o in outputs))
    hit = graph.cache.get(key)
    if hit is None:
        with no_gc():
            hit = graph.cache[key] = _plan(graph, outputs)
    return hit


def _plan(graph, outputs):
    nodes, steps = graph.nodes, []
    for i in needed(graph, outputs):
        node = nodes[i]
        if node.op == "const":
            steps.append((i, 0, node.value, (), None, None))
        elif node.op == "var":
            steps.append((i, 1, node.p["name"], (), None, None))
        else:
            steps.append((i, 2, node, tuple(map(_ID, node.args)), node.p or None, PRIMS[node.op]))
    return steps


def releases(graph, outputs, keep):
    """Per step of the plan, the ids whose value is dead after it (last use there, not an
    output, not in `keep`), cached per (outputs, keep)."""
    key = ("releases", tuple(o.id for o in outputs), keep)
    hit = graph.cache.get(key)
    if hit is None:
        with no_gc():
            hit = graph.cache[key] = _dead_after(plan(graph, outputs), set(keep) | {o.id for o in outputs})
    return hit


def _last_reads(steps):
    """{id: the index of the last step that reads it}."""
    last = {}
    for k, step in enumerate(steps):
        for j in step[3]:
            last[j] = k
    return last


def _dead_after(steps, hold):
    """Per step, the ids (not in `hold`) that no later step reads."""
    dead = {}
    for j, k in _last_reads(steps).items():
        if j not in hold:
            dead.setdefault(k, []).append(j)
    return [dead.get(k, ()) for k in range(len(steps))]


def evaluate(graph, outputs, env, check=True, dtype=float, bad=None, keep=None, watch=False):
    """Values of every node that `outputs` need; `env` maps variable name -> (N,) + shape.

    Returns a list indexed by node id (None for nodes not needed).  `check` is a bool
    or the largest node id to check (the nodes of f itself: a derivative graph's own
    division by zero is a non-finite result, not a domain error).  Outside a record's
    domain: DomainError naming the sub-expression, or, when `bad` is a dict, the
    message is recorded for each offending point {row: message} and evaluation goes on.
    With `keep` (a frozenset of ids), every other value is released after its last use,
    so memory follows liveness; only the outputs and `keep` are returned (real values:
    the evaluation runs as a precomputed `Program`).  `watch`: underflow calls the
    handler of the enclosing np.errstate (adcalc.ad.Underflow) instead of passing unseen.
    """
    limit = len(graph.nodes) if check is True else (check or -1)
    if keep is not None and bad is None and dtype is float:
        prog = program(graph, outputs, keep, limit, first=True)
        if prog is not None:
            return prog.run(env, None if watch else "ignore")
    vals = [None] * len(graph.nodes)
    cplx = dtype is complex
    free = releases(graph, outputs, keep) if keep is not None else None
    with np.errstate(all="ignore", under="call" if watch else "ignore"):
        for k, (i, kind, payload, args, params, prim) in enumerate(plan(graph, outputs)):
            if kind == 0:
                vals[i] = payload
                continue
            if kind == 1:
                vals[i] = np.asarray(env[payload], dtype=dtype)
                continue
            a = [vals[j] for j in args]
            if prim.domain is not None and i <= limit:
                ok = prim.domain[0](*a)
                if not _holds(ok):
                    if bad is None:
                        raise _outside(prim.domain[1], payload)
                    _record(bad, ok, payload, prim.domain[1])
            impl = prim.cimpl if cplx and prim.cimpl is not None else prim.impl
            vals[i] = impl(*a, **params) if params else impl(*a)
            if free is not None:
                for j in free[k]:
                    vals[j] = None
    return vals


_OUT = {}          # record name -> whether its impl computes a fresh array and takes out=
_REUSE_FROM = 4096   # entries: below this a new array is cheaper than writing into a kept one
HELD_BYTES = 128 << 20   # arrays kept between calls by all programs together, at most
_HELD = [0]                # bytes the live programs keep now


def _forget(held):
    _HELD[0] -= held[0]


def _writes_out(prim):
    hit = _OUT.get(prim.name)
    if hit is None:
        f = prim.impl
        hit = _OUT[prim.name] = (
            (isinstance(f, np.ufunc) and f.signature is None and f.nout == 1 and "d" * f.nin + "->d" in f.types)
            or getattr(f, "takes_out", False))
    return hit


def always_inside(node):
    """Whether node's domain holds whatever its variable arguments are: the predicate answers
    True itself (not a mask) with NaN in their place (pow with a constant exponent 2)."""
    dom = PRIMS[node.op].domain
    if dom is None:
        return True
    try:
        return dom[0](*[a.value if a.op == "const" else np.float64("nan") for a in node.args]) is True
    except Exception:   # a predicate that needs arrays: checked at run time
        return False


def checked(graph, outputs, limit):
    """Ids of the nodes (up to `limit`) that `outputs` need whose domain is checked (cached)."""
    key = ("checked", tuple(o.id for o in outputs), limit)
    hit = graph.cache.get(key)
    if hit is None:
        nodes = graph.nodes
        hit = graph.cache[key] = frozenset(i for i in needed(graph, outputs) if i <= limit and nodes[i].op in PRIMS
                                           and not always_inside(nodes[i]))
    return hit


def _rewrite(steps, nodes, hold):
    """(steps, {id: fused implementation}, value count) from a plan, with two rewrites that
    leave every value the same:
    - a uniform constant array that a pointwise step broadcasts against a variable's value
      is read as one number (no second array streamed through memory);
    - `add` of a `scatter` used nowhere else (the transpose of an index: the cotangents of
      x[1:] and x[:-1] meet in x's) adds the slice into the sum's array in place, instead
      of making a zero-filled array of x's shape for the scatter first."""
    uses = {}
    for step in steps:
        for j in step[3]:
            uses[j] = uses.get(j, 0) + 1
    scalars, out, fused = {}, [], {}
    size = len(nodes)
    for step in steps:
        i, kind, payload, args, params, prim = step
        if kind == 2 and prim.pointwise and _writes_out(prim):
            node = nodes[i]
            full = [nodes[j].depends and nodes[j].shape == node.shape for j in args]
            if any(full):
                new = []
                for j, f in zip(args, full):
                    c = nodes[j]
                    if not f and c.op == "const" and c.uniform is not None and c.value.ndim:
                        if c.uniform not in scalars:
                            scalars[c.uniform] = size + len(scalars)
                        j = scalars[c.uniform]
                    new.append(j)
                args = tuple(new)
        if kind == 2 and payload.op == "concat" and len(args) > 1 and all(
                _number_piece(a, uses, hold) for a in payload.args):
            fused[i] = _stack_numbers(len(args))
            args = tuple(a.args[0].id for a in payload.args)
        if kind == 2 and payload.op == "add":
            parts, inner = [], []
            for a in payload.args:
                take = a.op == "scatter" and uses.get(a.id) == 1 and a.id not in hold
                parts.append(full_index(a.p["idx"], a.p["shape"]) if take else None)
                inner.append(a.args[0].id if take else a.id)
            if any(p is not None for p in parts):
                fused[i] = _scatter_sum(parts, [nodes[j].ndim for j in inner], payload.shape)
                args = tuple(inner)
        out.append((i, kind, payload, args, params, prim))
    if fused:   # the scatters folded into a sum and the reshapes into a stack are not computed
        taken = {a.id for i in fused for a in nodes[i].args if a.op in ("scatter", "reshape")} \
            - {j for s in out for j in s[3]}
        out = [s for s in out if s[0] not in taken]
    consts = [(j, 0, np.float64(u), (), None, None) for u, j in scalars.items()]
    return consts + out, fused, size + len(scalars)


def _number_piece(a, uses, hold):
    """Whether concat's argument `a` is one number made a vector of one (the gradient's
    entry for a scalar variable), used nowhere else."""
    return a.op == "reshape" and a.shape == (1,) and not a.args[0].shape and uses.get(a.id) == 1 \
        and a.id not in hold


def _stack_numbers(k):
    """concat of k numbers each reshaped to (1,), written into one array: each number is
    copied into its column (no reshape views, no concatenate)."""
    def stack_numbers(*vals, out=None):
        if out is None:
            lead = vals[0].shape
            for v in vals:
                if v.shape != lead:
                    lead = np.broadcast_shapes(*[v.shape for v in vals])
                    break
            if not lead:   # numbers (one point of Program._run_point)
                return np.array(vals, dtype=float)
            out = np.empty(lead + (k,))
        for j, v in enumerate(vals):
            out[..., j] = v
        return out
    return stack_numbers


def _scatter_sum(parts, ndims, shape):
    """x + scatter(y) (or scatter(x) + scatter(y)) written into one array: parts[k] is the
    full index of argument k's scatter, or None for an argument added whole."""
    def scatter_sum(*vals, out=None):
        if out is None:
            lead = max((np.shape(v)[:np.ndim(v) - d] for v, d in zip(vals, ndims)), key=len)
            out = np.empty(lead + shape)
        dense = [v for v, p in zip(vals, parts) if p is None]
        if dense:
            np.copyto(out, dense[0])
        else:
            out.fill(0.0)
        for v, p in zip(vals, parts):
            if p is not None:
                out[p] += v
        return out
    return scatter_sum


def program(graph, outputs, keep, limit, first=False):
    """The `Program` of one evaluation (cached per outputs, keep and domain limit).  With
    `first`, None the first time it is asked for: a one-shot evaluation (a command on a long
    expression) is cheaper interpreted than compiled, and a repeated one compiles at the
    second call."""
    key = ("program", tuple(o.id for o in outputs), keep, limit)
    hit = graph.cache.get(key)
    if hit is None and first:
        graph.cache[key] = False   # asked for once
        return None
    if not hit:
        with no_gc():
            hit = graph.cache[key] = Program(graph, outputs, keep, limit)
    return hit


def compiled(graph, outputs, keep, limit):
    """The evaluation's `Program` when it has been compiled (its second call), else None."""
    return graph.cache.get(("program", tuple(o.id for o in outputs), keep, limit)) or None


class Program:
    """An evaluation with everything that does not depend on the numbers decided once: each
    step's bound implementation, its domain check (nodes of f only), the values that die
    after it, and the array it writes into.

    Memory follows liveness.  A pointwise step whose value is used only inside the
    evaluation writes into a slot: an array of its shape that it shares with values whose
    lives do not overlap its own (a view's life counts for the array it views).  Slots are
    kept between calls (within HELD_BYTES over all programs), so a repeated evaluation in a
    fresh process neither asks the allocator for memory nor faults pages in; the outputs
    and `keep` are fresh arrays every call, never overwritten later.  A second thread (or a
    nested call) finding the slots taken runs with fresh arrays."""

    def __init__(self, graph, outputs, keep, limit):
        nodes = graph.nodes
        hold = set(keep) | {o.id for o in outputs}
        steps, fused, self.size = _rewrite(plan(graph, outputs), nodes, hold)
        free = _dead_after(steps, hold)
        end = _last_reads(steps)   # the step after which each value's array is no longer read, views counted
        bound = dict(fused)   # implementations specialised to their node (the record's impl.bind)
        for i, kind, payload, args, params, prim in steps:
            if i in fused:
                continue
            bind = getattr(prim.impl, "bind", None) if kind == 2 else None
            f = bind(payload) if bind is not None else None
            if f is not None:
                bound[i] = f
        escape, slotted = set(hold), set()   # escape: handed out, or viewed by what is
        for k in range(len(steps) - 1, -1, -1):   # consumers before producers
            i, kind, payload, args, params, prim = steps[k]
            if kind != 2:
                continue
            if (_writes_out(prim) or i in fused) and nodes[i].depends:
                if i not in escape:
                    slotted.add(i)
                continue
            if getattr(bound.get(i), "fresh", False):
                continue
            for j in args:   # the value may be a view of its arguments: they live as long
                end[j] = max(end.get(j, k), end.get(i, k))
                if i in escape:
                    escape.add(j)
        # a value that depends on a direction variable (derivatives.directions) carries the
        # directions' leading axes (K, N) where the others carry the points' (N,)
        tang = set()
        for i, kind, payload, args, params, prim in steps:
            if (kind == 1 and payload.startswith(DIRECTION)) or any(j in tang for j in args):
                tang.add(i)
        # slots, by nominal shape: a value takes one that is idle at its step
        slots, slot_of, idle, due = [], {}, {}, {}   # due: step -> slots idle from it on
        for k, (i, *_rest) in enumerate(steps):
            for t in due.pop(k, ()):   # an argument read for the last time here may be overwritten here
                idle.setdefault(slots[t], []).append(t)
            if i not in slotted:
                continue
            shape = (i in tang, nodes[i].shape)
            spare = idle.get(shape)
            if spare:
                t = spare.pop()
            else:
                t = len(slots)
                slots.append(shape)
            slot_of[i] = t
            last = end.get(i, k)
            if last <= k:
                idle.setdefault(shape, []).append(t)
            else:
                due.setdefault(last, []).append(t)
        self.slot_shapes = slots
        steps_kind = {st[0]: st[1] for st in steps}
        # the constants stand in a template of the values; a step is (id, implementation or
        # None for a variable, argument ids or the variable's name, domain check, slot, dead ids)
        self.template = [None] * self.size
        self.steps = []
        checks = checked(graph, outputs, limit)
        for k, (i, kind, payload, args, params, prim) in enumerate(steps):
            dead = tuple(j for j in free[k] if steps_kind.get(j) != 0) or None
            if kind == 0:
                self.template[i] = payload
            elif kind == 1:
                self.steps.append((i, None, payload, None, -1, dead))
            else:
                impl = bound.get(i) or (prim.impl if not params else functools.partial(prim.impl, **params))
                check = (prim.domain[0], prim.domain[1], payload) if i in checks else None
                self.steps.append((i, impl, args, check, slot_of.get(i, -1), dead))
        self.probes = [next(((s[2], nodes[s[0]].ndim) for s in steps if s[1] == 1 and s[2].startswith(DIRECTION) == t),
                            None) for t in (False, True)]
        if self.probes[0] is None:   # no variable of the points: nothing to size the slots by
            self.slot_shapes = []
        self.widest = max([1] + [math.prod(s) for _, s in self.slot_shapes])
        # one point of numbers: every variable is a number, and every step only moves numbers
        # (`selects`, the stack of numbers) or computes a number pointwise by a numpy ufunc or
        # an implementation marked `on_numbers` (one that does on a number what it does on an
        # array; not one that looks at np.ndim, as pow's and math-module functions do)
        first_op = next((k for k, st in enumerate(steps) if st[1] == 2), len(steps))
        self.numbers = self.probes[1] is None and all(st[1] != 1 for st in steps[first_op:]) and all(
            (kind == 1 and not nodes[i].shape) or
            (kind == 2 and (i in fused or prim.selects or (
                prim.pointwise and not nodes[i].shape and _on_numbers(bound.get(i) or prim.impl))))
            for i, kind, _, _, _, prim in steps if kind != 0)
        if self.numbers:   # arithmetic by the numbers' own operators; 0-d constants as numbers
            self.point_steps = [(i, _ON_NUMBERS.get(x, x), args, check) for i, x, args, check, _, _ in self.steps]
            self.point_template = [np.float64(v) if type(v) is np.ndarray and v.ndim == 0 else v
                                   for v in self.template]
        self.held = sorted(i for i in hold if steps_kind.get(i, 0) != 0)
        self.lead, self.buffers, self.kept = None, [], [0]
        self.lock = threading.Lock()
        weakref.finalize(self, _forget, self.kept)

    def _slots(self, env):
        """The slots for this call's leading shape of points, or None when the values are too
        small for kept arrays to pay."""
        (name, ndim), tangent = self.probes
        a = env[name]
        points = np.shape(a)[:np.ndim(a) - ndim]
        both = points
        if tangent is not None:   # the leading axes of a value with directions
            a = env[tangent[0]]
            both = np.shape(a)[:np.ndim(a) - tangent[1]]
            if both != points:
                both = np.broadcast_shapes(points, both)
        if math.prod(both) * self.widest < _REUSE_FROM:
            return None
        lead = (points, both)
        if lead != self.lead or not self.buffers:
            self.buffers = [np.empty(lead[t] + s) for t, s in self.slot_shapes]
            self.lead = lead
            self._hold(sum(b.nbytes for b in self.buffers))
        return self.buffers

    def _hold(self, nbytes):
        _HELD[0] += nbytes - self.kept[0]
        self.kept[0] = nbytes

    def run(self, env, under="ignore"):
        """The values (a list by node id: the outputs, `keep` and the constants; None for
        the others).  `under`: np.errstate's underflow setting, or None when the caller
        holds an errstate that ignores the rest (adcalc.ad.Underflow)."""
        if self.numbers:
            vals = self.run_numbers(env, under)
            if vals is not None:
                return vals
        mine = bool(self.slot_shapes) and self.lock.acquire(blocking=False)
        try:
            bufs = self._slots(env) if mine else None
            if under is None:
                return self._steps(env, bufs)
            with np.errstate(all="ignore", under=under):
                return self._steps(env, bufs)
        finally:
            if mine:
                if _HELD[0] > HELD_BYTES:   # used in this call, not kept
                    self.buffers, self.lead = [], None
                    self._hold(0)
                self.lock.release()

    def run_numbers(self, env, under="ignore"):
        """run() at one point, each variable given as a number (float64) or a one-point
        array (1,); None when the program cannot run on numbers there (a value of more
        points, a Python float's division by zero): the caller then runs it on arrays."""
        try:
            return self._run_point(env, under)
        except (_NotOnePoint, ArithmeticError):
            return None

    def _run_point(self, env, under):
        """One point of a program of numbers: each variable is taken as a number (numpy's
        float64, not a one-element array), arithmetic is the numbers' own operators (one
        IEEE operation each) and every other step is its ufunc called on numbers, with the
        floating-point flags of arrays (numpy's scalars raise and call on underflow as its
        arrays do), at a fraction of the cost of a call on an array.  Numbers are not
        released as they die; the values handed out get their axis of one point back."""
        if under is None:
            work = self._numbers(env)
        else:
            with np.errstate(all="ignore", under=under):
                work = self._numbers(env)
        vals = self.template.copy()
        for i in self.held:
            vals[i] = work[i][None].copy()
        return vals

    def _numbers(self, env):
        vals = self.point_template.copy()
        get = vals.__getitem__
        for i, x, args, check in self.point_steps:
            if x is None:   # a variable: args is its name
                vals[i] = _number(env[args])
                continue
            a = list(map(get, args))
            if check is not None:
                _inside(check, a)
            vals[i] = x(*a)
        return vals

    def _steps(self, env, bufs):
        """The loop over the steps on arrays, writing into the slots `bufs` where given."""
        vals = self.template.copy()
        get = vals.__getitem__
        for i, x, args, check, slot, free in self.steps:
            if x is None:   # a variable: args is its name
                vals[i] = np.asarray(env[args], dtype=float)
                continue
            a = list(map(get, args))
            if check is not None:
                _inside(check, a)
            vals[i] = x(*a) if slot < 0 or bufs is None else x(*a, out=bufs[slot])
            if free:
                for j in free:
                    vals[j] = None
        return vals


# numpy's arithmetic ufuncs and the operators that do the same on numpy's numbers (its
# scalar arithmetic: one IEEE operation, its flags raised as the ufunc's are)
_ON_NUMBERS = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
               np.true_divide: operator.truediv, np.negative: operator.neg}


def _on_numbers(f):
    """Whether the implementation f computes on numpy's numbers exactly what it computes on
    one-element arrays: a numpy ufunc (the same loop), or one marked `on_numbers`."""
    return isinstance(f, np.ufunc) or getattr(f, "on_numbers", False)


def _holds(ok):
    """Whether a domain predicate's answer (True, a numpy bool or a mask) holds everywhere."""
    return ok is True or (bool(ok) if type(ok) is np.bool_ else bool(ok.all()) if type(ok) is np.ndarray
                          else bool(np.all(ok)))


def _outside(message, node):
    """The DomainError of a record's `message` at `node`, named by its text."""
    return DomainError(f"{message} in '{to_text(node)}'")


def _inside(check, a):
    """A compiled step's domain check (predicate, message, node) on its arguments `a`."""
    if not _holds(check[0](*a)):
        raise _outside(check[1], check[2])


class _NotOnePoint(Exception):
    """A variable's value is not one number of one point: the program runs on arrays."""


def _number(a):
    """The one entry of a one-point value (1,) as a float64 number (a number stays)."""
    if type(a) is np.float64:
        return a
    if type(a) is not np.ndarray or a.shape != (1,):
        raise _NotOnePoint
    v = a[0]
    return v if type(v) is np.float64 else np.float64(v)


def _record(bad, ok, node, message):
    ok = np.asarray(ok)
    rows = ok.reshape(ok.shape[0], -1).all(axis=1) if ok.ndim > len(node.shape) else np.full(1, bool(ok.all()))
    text = None
    for r in np.flatnonzero(~rows):
        if int(r) not in bad:
            text = text or f"{message} in '{to_text(node)}'"
            bad[int(r)] = text


def overflows(prob, vals, count):
    """[(node, (count,) bool rows)] for each sub-expression of f that is infinite from finite
    arguments at some of `count` points (rows of a batch, `vals` as Problem.values returns
    them; count = 1 also takes Problem.evaluate's values at one point).  Inside the domain
    nothing else makes an inf of finite numbers, so that is an overflow, and what is
    computed through it there has lost its digits: cbrt(c**2) at 2e186 is inf, its slope 0."""
    nodes = prob.graph.nodes
    out = []

    def rows(a, test):
        a = np.asarray(a)
        if a.ndim == 0 or a.shape[0] != count:   # a constant (or one point): one answer for all
            return np.full(count, bool(test(a).all()))
        return test(a.reshape(count, -1)).all(axis=1)
    with np.errstate(all="ignore"):
        for i in computed_where(prob, vals, np.isinf):
            node, v = nodes[i], vals[i]
            hit = ~rows(v, lambda a: ~np.isinf(a))
            for a in node.args:
                if not hit.any():
                    break
                hit &= rows(vals[a.id], np.isfinite)
            if hit.any():
                out.append((node, hit))
    return out


def computed_where(prob, vals, test):
    """The ids of f's computed sub-expressions (not its variables or constants) whose value
    has an entry where the element-wise `test` holds (`some_entry`)."""
    nodes = prob.graph.nodes
    return some_entry(vals, [i for i in needed(prob.graph, [prob.output])
                             if nodes[i].op in PRIMS and vals[i] is not None], test)


def some_entry(vals, ids, test):
    """The ids (in order) whose value has an entry where the element-wise `test` holds, found
    in one pass over all their values: the per-node checks then look at those alone (a long
    expression has 10^5 nodes, and almost none overflow or underflow)."""
    arrays = [v.ravel() if type(v) is np.ndarray else np.ravel(v) for v in map(vals.__getitem__, ids)]
    keep = [k for k, a in enumerate(arrays) if a.size]
    if not keep:
        return []
    arrays = [arrays[k] for k in keep]
    with np.errstate(all="ignore"):
        hit = test(np.concatenate(arrays))
    if not hit.any():
        return []
    starts = np.cumsum([0] + [a.size for a in arrays[:-1]])
    return [ids[k] for k, h in zip(keep, np.logical_or.reduceat(hit, starts)) if h]


def overflow_rows(prob, vals, count):
    """(count,) bool: the points where some sub-expression of f overflows (`overflows`)."""
    out = np.zeros(count, bool)
    for _, hit in overflows(prob, vals, count):
        out |= hit
    return out


def through_overflow(a):
    """A derivative computed through an overflow: NaN, but an infinity, which is the
    overflow itself, stays."""
    return np.where(np.isinf(a), a, np.nan)
