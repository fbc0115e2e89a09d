"""The commands that show the work: trace, graph, derivative, newton, plot, completion.

Each maps its options to one call into adcalc.explain (or adcalc.completion) and renders
the result as a table, text or one JSON object.  `register(cli)` adds them to the click
group; calling it again changes nothing.  Heavy modules are imported inside the commands.
"""
import sys

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}   # as cli.py's
ENGINE_HELP = "reverse (default), forward, symbolic, numeric, or another engine that adcalc engines lists."

_OPTIONS = {
    "at": lambda: click.option("--at", "at", metavar="POINT",
                               help="Point: 2,5 or x1=2,x2=5 or 'x=[1,2],W=[[1,0],[0,1]]'."),
    "vars": lambda: click.option("--vars", "vars_", metavar="A,B,...",
                                 help="Variable order (default: natural order of names)."),
    "engine": lambda: click.option("--engine", "-e", default="reverse", show_default=True, metavar="NAME",
                                   help=ENGINE_HELP),
    "json": lambda: click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object."),
    "digits": lambda: click.option("--digits", type=click.IntRange(1, 17), metavar="N",
                                   help="Significant digits shown."),
    "debug": lambda: click.option("--debug", is_flag=True, help="Show tracebacks."),
}


def options(*names):
    def deco(f):
        for name in reversed(names):
            f = _OPTIONS[name]()(f)
        return f
    return deco


def _problem(expr, at, vars_, point=None):
    from adcalc.problem import Problem
    return Problem(list(expr), at=at, vars=vars_, point=point)


def _expr_text(prob):
    t = prob.expression if isinstance(prob.expression, str) else ", ".join(prob.expression)
    return t if len(t) <= 60 else t[:57] + "..."


def compact(a, digits=None):
    """A number as fmt shows it; an array on one line, long ones shortened."""
    import numpy as np

    from adcalc.render import fmt
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return fmt(float(a), digits)
    text = np.array2string(a, separator=", ", threshold=8, edgeitems=2, max_line_width=10 ** 6,
                           formatter={"float_kind": lambda v: fmt(v, digits)})
    return " ".join(text.split())


def _warn(warnings):
    from adcalc.render import warning_line
    for w in warnings:
        warning_line(w)


def _cell(a, digits):
    import numpy as np
    return float(a) if np.ndim(a) == 0 else compact(a, digits)


# ---- trace --------------------------------------------------------------------------------
@click.command("trace", context_settings=CONTEXT)
@click.argument("expr", nargs=-1, required=True)
@options("at", "vars")
@click.option("--mode", type=click.Choice(["forward", "reverse", "both"]), default="both", show_default=True,
              help="Forward tangents, reverse adjoints, or both columns.")
@click.option("--wrt", metavar="INPUT", help="The input the forward tangents are taken along (default: the first).")
@options("json", "digits", "debug")
def trace(expr, at, vars_, mode, wrt, as_json, digits, debug):
    """The evaluation trace: inputs v-1, v0, ..., operations v1, v2, ... with their values,
    forward tangents and reverse adjoints (the inputs' adjoints are the gradient).

    \b
    Example:
      adcalc trace "log(x1)+x1*x2-sin(x2)" --at 2,5
    """
    from adcalc.explain import trace as make_trace
    prob = _problem(expr, at, vars_)
    tr = make_trace(prob, mode, wrt)
    if as_json:
        return _trace_json(prob, tr)
    _trace_table(prob, tr, digits)


def _trace_json(prob, tr):
    from adcalc.envelope import emit, envelope, finite
    warnings = list(tr.warnings)
    obj = envelope("trace", prob, tr.mode, warnings)
    rows = []
    for r in tr.rows:
        row = {"node": r.name, "id": r.id, "op": r.op, "formula": r.formula, "shape": list(r.shape),
               "value": r.value.tolist()}
        if r.tangent is not None:
            row["tangent"] = r.tangent.tolist()
        if r.adjoint is not None:
            row["adjoint"] = r.adjoint.tolist()
        rows.append(row)
    obj.update({"mode": tr.mode, "direction": tr.direction, "rows": rows,
                "tangent": None if tr.tangent is None else tr.tangent.tolist(),
                "gradient": None if tr.gradient is None else tr.gradient.tolist()})
    emit(finite(obj, warnings))


def _trace_table(prob, tr, digits):
    from adcalc.render import fmt, table
    fwd, rev = tr.rows and tr.rows[0].tangent is not None, tr.gradient is not None
    headers = ["node", "op", "formula", "value"] + ([f"tangent d/d{tr.direction}"] if fwd else []) \
        + (["adjoint"] if rev else [])
    body = []
    for r in tr.rows:
        cells = [r.name, r.op, r.formula, _cell(r.value, digits)]
        cells += [_cell(r.tangent, digits)] if fwd else []
        cells += [_cell(r.adjoint, digits)] if rev else []
        body.append(cells)
    notes = []
    if fwd:
        notes.append(f"forward: tangents dv/d{tr.direction} (seed 1 at {tr.direction}); the output's "
                     f"tangent is df/d{tr.direction} = {compact(tr.tangent, digits)}")
    if rev:
        grad = ", ".join(f"{c} = {fmt(v, digits)}" for c, v in zip(prob.inputs, tr.gradient))
        notes.append(f"reverse: adjoints df/dv (seed 1 at the output); the inputs' adjoints are the "
                     f"gradient: {grad}")
    table(f"trace of {_expr_text(prob)} at {prob.describe(prob.x0())}", headers, body, digits,
          "\n".join(notes), kinds=["label", "text", "text"] + ["value"] * (len(headers) - 3))
    _warn(tr.warnings)


# ---- graph --------------------------------------------------------------------------------
@click.command("graph", context_settings=CONTEXT)
@click.argument("expr", nargs=-1, required=True)
@options("at", "vars")
@click.option("--derivative", is_flag=True, help="Draw the gradient's graph instead of the expression's.")
@click.option("--out", metavar="FILE", help="Write FILE.dot, or render FILE.png / FILE.svg with Graphviz's dot.")
@options("json", "debug")
def graph(expr, at, vars_, derivative, out, as_json, debug):
    """The expression graph as Graphviz DOT on stdout (edges run from argument to user).

    Without --at every variable is a scalar.  PNG and SVG need Graphviz's dot program
    (apt-get install graphviz, brew install graphviz).

    \b
    Example:
      adcalc graph "log(x1)+x1*x2-sin(x2)" | dot -Tsvg > graph.svg
      adcalc graph "sum(x**2)" --at 'x=[1,2]' --derivative --out grad.png
    """
    from adcalc import derivatives, explain
    from adcalc.envelope import emit, envelope
    prob = _problem(expr, at, vars_, None if at is not None else explain.scalar_point())
    shown = derivatives.gradient(prob) if derivative else prob
    title = ("gradient of " if derivative else "") + _expr_text(prob)
    text = explain.to_dot(shown, title)
    nodes, edges = explain.graph_counts(shown)
    if out:
        explain.render_dot(text, out)
    if as_json:
        warnings = []
        obj = envelope("graph", prob, "graph", warnings, value=at is not None)
        obj.update({"derivative": bool(derivative), "nodes": nodes, "edges": edges, "out": out, "dot": text})
        emit(obj)
    elif out:
        click.echo(f"wrote {out} ({nodes} nodes, {edges} edges)")
    else:
        sys.stdout.write(text)


# ---- derivative ---------------------------------------------------------------------------
@click.command("derivative", context_settings=CONTEXT)
@click.argument("expr", nargs=-1, required=True)
@options("at", "vars")
@click.option("--wrt", metavar="X[,Y,...]",
              help="The inputs to differentiate by, in order: x1,x1,x2 is d^3f/dx1^2 dx2.")
@click.option("--order", type=click.IntRange(1), metavar="N", help="Differentiate N times by the one --wrt input.")
@click.option("--engine", "-e", default="reverse", show_default=True, metavar="NAME",
              help="forward (nested forward sweeps), reverse (repeated reverse sweeps), symbolic (SymPy), "
                   "numeric (order <= 2), or all.")
@options("json", "digits", "debug")
def derivative(expr, at, vars_, wrt, order, engine, as_json, digits, debug):
    """The N-th derivative or a mixed partial of a scalar expression at a point.

    \b
    Example:
      adcalc derivative "sin(x)" --wrt x --order 5 --at 0
      adcalc derivative "x1**2*x2**3" --wrt x1,x1,x2 --at 1,2 --engine all
    """
    from adcalc import explain
    from adcalc.derivatives import scalar_output
    from adcalc.envelope import emit, envelope, finite
    prob = _problem(expr, at, vars_)
    scalar_output(prob, "derivative")
    names, comps = explain.parse_wrt(prob, wrt, order)
    label = derivative_label(names)
    warnings = []
    obj = envelope("derivative", prob, engine, warnings)
    obj.update({"order": len(names), "with_respect_to": names, "label": label})
    if engine == "all":
        ref, engines = explain.compare_derivatives(prob, comps, label)
        obj.update({"reference": ref, "derivative": engines[ref]["derivative"], "engines": engines})
    else:
        d = explain.nth_derivative(prob, comps, engine)
        obj["derivative"] = d.value
        if d.error is not None:
            obj.update({"error_estimate": d.error, "status": d.status, "method": d.method})
    if as_json:
        emit(finite(obj, warnings))
        return
    _derivative_table(prob, obj, digits)
    _warn(warnings)


def derivative_label(names):
    """d^3f/dx1^2 dx2 for [x1, x1, x2]; df/dx for [x]."""
    groups = []
    for nm in names:
        if groups and groups[-1][0] == nm:
            groups[-1][1] += 1
        else:
            groups.append([nm, 1])
    n = len(names)
    below = " ".join(f"d{nm}" + (f"^{k}" if k > 1 else "") for nm, k in groups)
    return f"d^{n}f/{below}" if n > 1 else f"df/{below}"


def _derivative_table(prob, obj, digits):
    from adcalc.render import table
    title = f"{obj['label']} of {_expr_text(prob)} at {prob.describe(prob.x0())}"
    if obj["engine"] != "all":
        headers = ["derivative", obj["engine"]] + (["error estimate"] if "error_estimate" in obj else [])
        row = [obj["label"], obj["derivative"]] + ([obj["error_estimate"]] if "error_estimate" in obj else [])
        table(title, headers, [row], digits)
        return
    rows = [[n, e["derivative"], e["status"], e["max_abs_diff"], e["tolerance"], e["reason"] or ""]
            for n, e in obj["engines"].items()]
    table(title, ["engine", obj["label"], "status", "abs diff", "tolerance", "note"], rows, digits,
          f"reference: {obj['reference']}")


# ---- newton -------------------------------------------------------------------------------
@click.command("newton", context_settings=CONTEXT)
@click.argument("expr", nargs=-1, required=True)
@click.option("--at", "at", metavar="X0", required=True, help="The starting point, as for every command.")
@options("vars", "engine")
@click.option("--tol", type=click.FloatRange(0, min_open=True), default=1e-10, show_default=True,
              help="Stop when |grad| <= tol * max(1, |grad(x0)|) and no negative curvature is left.")
@click.option("--max-iter", type=click.IntRange(1, 10 ** 5), default=100, show_default=True,
              help="Most iterations before giving up (exit 1).")
@click.option("--solver", type=click.Choice(["auto", "dense", "cg"]), default="auto", show_default=True,
              help="dense: exact trust-region steps from the Hessian; cg: Steihaug CG on Hessian-vector "
                   "products; auto: dense up to 500 inputs.")
@options("json", "digits", "debug")
def newton(expr, at, vars_, engine, tol, max_iter, solver, as_json, digits, debug):
    """Newton's method (trust region) for a minimum of a scalar expression, from --at.

    Prints the iterations (k, x, f, |grad|, step, action).  Exit status 0 when it
    converged, 1 when it did not (the message says why), 2 on bad input.

    \b
    Example:
      adcalc newton "100*(y-x**2)**2+(1-x)**2" --at -1.2,1
    """
    from adcalc import explain
    prob = _problem(expr, at, vars_)
    res = explain.newton(prob, engine, tol, max_iter, solver)
    if as_json:
        _newton_json(prob, res, engine, tol, max_iter)
    else:
        _newton_table(prob, res, digits)
    raise click.exceptions.Exit(0 if res.converged else 1)


def _newton_json(prob, res, engine, tol, max_iter):
    from adcalc.envelope import emit, envelope, finite
    warnings = []
    obj = envelope("newton", prob, engine, warnings)
    its = [{"k": r["k"], "x": r["x"].tolist(), "f": r["f"], "grad_norm": r["grad_norm"], "step": r["step"],
            "radius": r["radius"], "rho": r["rho"], "action": r["action"]} for r in res.iterations]
    obj.update({"converged": bool(res.converged), "message": res.message, "tol": tol, "max_iter": max_iter,
                "x": {v: a.tolist() for v, a in prob.split(res.x).items()}, "x_flat": res.x.tolist(),
                "f": res.f, "grad_norm": res.grad_norm, "iterations": its})
    if not res.converged:
        warnings.append(res.message)
    emit(finite(obj, warnings))


def _newton_table(prob, res, digits):
    from adcalc.render import fmt, table
    rows = [[r["k"], compact(r["x"], digits), r["f"], r["grad_norm"], r["step"], r["action"]]
            for r in res.iterations]
    end = f"x = {compact(res.x, digits)}, f = {fmt(res.f, digits)}, |grad| = {fmt(res.grad_norm, 3)}"
    footer = [("minimum at " if res.converged else "stopped at ") + end, res.message]
    table(f"newton on {_expr_text(prob)} from {prob.describe(prob.x0())}",
          ["k", "x", "f", "|grad|", "step", "action"], rows, digits, "\n".join(footer),
          kinds=["label", "text", "value", "diff", "diff", "text"])
    if not res.converged:
        _warn([res.message])


# ---- plot ---------------------------------------------------------------------------------
@click.command("plot", context_settings=CONTEXT)
@click.argument("expr", nargs=-1, required=True)
@click.option("--over", required=True, metavar="X=LO:HI", help="The variable along the x axis and its range.")
@click.option("--at", "at", metavar="POINT", help="Values of the other variables.")
@options("vars")
@click.option("--order", type=click.IntRange(0, 4), default=1, show_default=True,
              help="Plot f and its derivatives up to this order.")
@click.option("--points", "npoints", type=click.IntRange(2, 10 ** 6), default=200, show_default=True,
              help="Number of points along the range.")
@options("engine")
@click.option("--out", metavar="FILE", help="Save the figure as FILE.png or FILE.svg (needs matplotlib).")
@options("json", "debug")
def plot(expr, over, at, vars_, order, npoints, engine, out, as_json, debug):
    """f and its derivatives along one variable (the others fixed by --at): a terminal
    plot, or a PNG/SVG figure with --out.  All points in one batched engine call.

    \b
    Example:
      adcalc plot "sin(x)*exp(-x**2/4)" --over x=-4:4 --order 2
      adcalc plot "x**3 - y*x" --over x=-2:2 --at y=1 --out plot.png
    """
    import shutil

    import numpy as np

    from adcalc import explain, plotting
    prob, c, lo, hi = explain.plot_problem(list(expr), over, at, vars_)
    xs = np.linspace(lo, hi, npoints)
    series, warnings = explain.plot_series(prob, c, xs, order, engine)
    var = prob.inputs[c]
    labels = ["f"] + [derivative_label([var] * k) for k in range(1, order + 1)]
    fixed = [p for p in prob.describe(prob.x0()).split(", ") if not p.startswith(var + "=")]
    title = _expr_text(prob) + (f" at {', '.join(fixed)}" if fixed else "")
    if out:
        plotting.save_plot(out, xs, series, labels, title=title)
    if as_json:
        return _plot_json(prob, engine, var, lo, hi, xs, series, labels, out, warnings)
    if out:
        click.echo(f"wrote {out} ({npoints} points, {len(series)} curves)")
    else:
        size = shutil.get_terminal_size((80, 24))
        height = max(plotting.MIN_HEIGHT, min(20, size.lines - 8))
        click.echo(plotting.terminal_plot(xs, series, width=max(40, size.columns), height=height,
                                          labels=labels, title=title))
    _warn(warnings)


def _plot_json(prob, engine, var, lo, hi, xs, series, labels, out, warnings):
    from adcalc.envelope import emit, envelope
    from adcalc.render import to_json_value
    obj = envelope("plot", prob, engine, warnings, value=False)
    obj.update({"over": {"variable": var, "lo": lo, "hi": hi}, "x": xs.tolist(),
                "series": {lab: to_json_value(ys, lab, warnings) for lab, ys in zip(labels, series)},
                "out": out})
    emit(obj)


# ---- completion ---------------------------------------------------------------------------
@click.command("completion", context_settings=CONTEXT)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx, shell):
    """Print a shell completion script (commands, options, engine names, quantities,
    function names).

    \b
    Install:
      bash: source <(adcalc completion bash)
      zsh:  adcalc completion zsh > "${fpath[1]}/_adcalc"
      fish: adcalc completion fish > ~/.config/fish/completions/adcalc.fish
    """
    from adcalc.completion import completion_script
    sys.stdout.write(completion_script(shell, **completion_spec(ctx.find_root().command)))


FILE_WORDS = ("FILE", "MODULE")


def completion_spec(group):
    """completion_script's keyword arguments read from the click group itself."""
    from adcalc.engines import ENGINES
    from adcalc.primitives import FUNCTIONS
    from adcalc.quantities import NAMES
    engines = list(ENGINES) + ["all"]
    commands, choices, values = {}, {"--engine": engines, "-e": engines, "--quantities": list(NAMES),
                                     "-q": list(NAMES)}, {}
    for name, cmd in group.commands.items():
        if getattr(cmd, "hidden", False):
            continue
        opts = []
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.hidden:
                continue
            spellings = [o for o in p.opts + p.secondary_opts if o.startswith("-")]
            opts += spellings
            if p.is_flag:
                continue
            if isinstance(p.type, click.Choice):
                for o in spellings:
                    choices.setdefault(o, [])
                    choices[o] += [c for c in p.type.choices if c not in choices[o]]
            for o in spellings:
                kind = "file" if any(w in (p.metavar or "") for w in FILE_WORDS) else "text"
                values[o] = "file" if values.get(o) == "file" else kind
        commands[name] = opts
    ctx_opts = group.context_settings.get("help_option_names", ["--help"])
    functions = sorted(FUNCTIONS) + ["pi", "e"]
    return {"prog": "adcalc", "commands": commands, "options": list(ctx_opts), "choices": choices,
            "functions": functions, "value_options": values}


COMMANDS = (trace, graph, derivative, newton, plot, completion)


def register(cli):
    """Add the commands to the click group `cli` (idempotent); returns it."""
    for cmd in COMMANDS:
        if cmd.name not in cli.commands:
            cli.add_command(cmd)
    return cli
