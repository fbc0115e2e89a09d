"""The command-line interface (see cli-contract.md): thin commands over Problem + engines.

`main()` owns the exit codes: AdcalcError -> `error: ...` on stderr (and a JSON error
object with --json) and exit 2; no traceback unless --debug.
"""
import sys
import warnings

import click

from adcalc.errors import AdcalcError

from adcalc.quantities import QUANTITIES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    def format_epilog(self, ctx, formatter):
        """The function list, from the table (imported only when help is shown)."""
        from adcalc.docs import names_line
        with formatter.section("Functions (adcalc functions shows domains and kink conventions)"):
            formatter.write_text(names_line())


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="adcalc", prog_name="adcalc")
def cli():
    """adcalc: derivatives you can trust, from five engines over one expression graph.

    \b
    Example:
      adcalc grad "log(x1)+x1*x2-sin(x2)" --at 2,5
      adcalc hessian "sum(x**2)" --at 'x=[1,2]' --json
    """


def common(f):
    for opt in reversed([
        click.argument("expr", nargs=-1, required=True),
        click.option("--at", "at", metavar="POINT", multiple=True,
                     help="Point: 2,5 or x1=2,x2=5 or 'x=[1,2],W=[[1,0],[0,1]]'; several --at: many points."),
        click.option("--points", metavar="FILE", help="Many points: .csv (header of names), .npy (N, n), .npz "
                     "(an array per variable), .jsonl, or - for standard input (CSV or JSON lines)."),
        click.option("--out", metavar="FILE", help="With many points: write .npy, .npz, .csv or .jsonl (by suffix); "
                     "default JSON lines on stdout."),
        click.option("--vars", "vars_", metavar="A,B,...", help="Variable order (default: natural order of names)."),
        click.option("--wrt", metavar="A,B,...", help="Differentiate with respect to these variables only; "
                     "the others are constants."),
        click.option("--engine", "-e", default="reverse", show_default=True, metavar="NAME",
                     help="reverse, forward, symbolic, numeric, compiled, gpu, or all."),
        click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object."),
        click.option("--digits", type=click.IntRange(1, 17), metavar="N", help="Significant digits shown."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]):
        f = opt(f)
    return f


def _make(command):
    needs_vector = command in ("hvp", "jvp", "vjp")

    @common
    @click.option("--vector", "-v", metavar="V", required=False,
                  help=("v for hvp/jvp (over the inputs), u for vjp (over the outputs)."
                        if needs_vector else "Not used by this command."), hidden=not needs_vector)
    @click.option("--method", metavar="M", help="Numeric engine: auto (default: complex step when the expression is complex-analytic, else richardson), central, richardson or complex-step.")
    @click.option("--fast", is_flag=True, help="Compiled and gpu engines: SIMD vector math (glibc's libmvec, "
                  "CUDA intrinsics) instead of scalar libm; agrees with the exact path to about 1e-15.")
    @click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
                  help="gpu engine: arithmetic precision (default float64).")
    def cmd(expr, at, points, out, vars_, wrt, engine, as_json, digits, debug, vector, method, fast, dtype):
        from adcalc.commands import engine_options
        options = engine_options(engine, method, fast, dtype)
        if points or len(at) > 1 or out:
            from adcalc.commands import run_batch
            return run_batch(command, expr, at, points, out, vars_, wrt, engine, vector, options)
        from adcalc.commands import run_derivative
        return run_derivative(command, expr, at[0] if at else None, vars_, engine, as_json, digits, vector,
                              options, wrt)

    cmd.__doc__ = QUANTITIES[command].doc
    return cli.command(command, context_settings=CONTEXT)(cmd)


for _c in QUANTITIES:
    _make(_c)


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def engines(as_json, debug):
    """List the engines and whether each can run here."""
    from adcalc.commands import run_engines
    return run_engines(as_json)


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def functions(as_json, debug):
    """List the functions of the expression language, with domains and kink conventions."""
    from adcalc.docs import run_functions
    return run_functions(as_json)


@cli.command(context_settings=CONTEXT)
@click.argument("expr", nargs=-1, required=True)
@click.option("--wrt", metavar="A,B", help="Differentiate only with respect to these variables.")
@click.option("--at", "at", metavar="POINT", help="Gives array variables their shapes (and evaluates the formulas there).")
@click.option("--vars", "vars_", metavar="A,B,...", help="Variable order.")
@click.option("--hessian", is_flag=True, help="Second derivatives instead of the gradient.")
@click.option("--simplify", is_flag=True, help="Simplify the formulas with SymPy.")
@click.option("--cse", is_flag=True, help="Show common subexpressions pulled out.")
@click.option("--latex", is_flag=True, help="Print LaTeX.")
@click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def diff(expr, wrt, at, vars_, hessian, simplify, cse, latex, as_json, debug):
    """Symbolic derivative formulas (SymPy), e.g. diff "log(x1)+x1*x2-sin(x2)"."""
    from adcalc.diff import run_diff
    run_diff(list(expr), wrt=wrt, at=at, vars_=vars_, hessian=hessian, simplify=simplify,
             cse=cse, latex=latex, as_json=as_json)


@cli.command(context_settings=CONTEXT)
@click.argument("expr", nargs=-1)
@click.option("--at", "at", metavar="POINT", help="The point (also the scale for --random).")
@click.option("--vars", "vars_", metavar="A,B,...", help="Variable order.")
@click.option("--wrt", metavar="A,B,...", help="Differentiate with respect to these variables only.")
@click.option("--quantities", "-q", metavar="Q,...", help="Any of grad,jacobian,hessian,hvp,jvp,vjp.")
@click.option("--engines", metavar="E,...", help="Engines to run (default: all).")
@click.option("--rtol", type=float, default=1e-8, show_default=True, help="Relative tolerance for exact engines.")
@click.option("--atol", type=float, default=1e-12, show_default=True, help="Absolute tolerance for exact engines.")
@click.option("--random", "random_n", type=click.IntRange(1, 10**6), metavar="N", help="Check N random points in the domain.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random and the directions.")
@click.option("--box", metavar="LO,HI", help="Draw --random points uniformly in this box.")
@click.option("--expect-grad", metavar="F1, F2, ...", help="Your gradient formulas, one per input.")
@click.option("--expect-hessian", metavar="ROW; ROW", help="Your Hessian formulas, rows separated by ';'.")
@click.option("--save-failures", metavar="FILE", help="Write a replayable counterexample on failure.")
@click.option("--replay", metavar="FILE", help="Run a saved counterexample again.")
@click.option("--junit", metavar="FILE", help="Also write a JUnit XML report: one test case per engine and quantity.")
@click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object.")
@click.option("--digits", type=click.IntRange(1, 17), metavar="N", help="Significant digits shown.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def verify(expr, at, vars_, wrt, quantities, engines, rtol, atol, random_n, seed, box, expect_grad,
           expect_hessian, save_failures, replay, junit, as_json, digits, debug):
    """Cross-verify every engine on every quantity; exit 1 on a disagreement."""
    from adcalc.commands import run_verify
    code = run_verify(list(expr), at, vars_, quantities, rtol, atol, engines, random_n, seed, box,
                      expect_grad, expect_hessian, save_failures, replay, as_json, digits, wrt, junit)
    raise click.exceptions.Exit(code)


@cli.command("check", context_settings=CONTEXT)
@click.argument("function", metavar="MODULE:FUNC", required=False)
@click.option("--grad", "grad", metavar="MODULE:GRADFUNC",
              help="Your gradient (n,) or, with --jacobian, Jacobian (m, n). MODULE defaults to FUNC's.")
@click.option("--at", "at", metavar="P", help="The point: 1,2,3 or '[1,2,3]' (also the centre for --random).")
@click.option("--random", "random_n", type=click.IntRange(1, 10 ** 5), metavar="N",
              help="Check N random points (around --at, in --box, or standard normal of --dim).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random and the directions.")
@click.option("--dim", type=click.IntRange(1), metavar="N", help="Number of inputs, for --random without --at.")
@click.option("--box", metavar="LO,HI", help="Draw --random points uniformly in this box.")
@click.option("--float32", is_flag=True, help="Pass the points as float32 arrays (float32 code).")
@click.option("--jacobian", is_flag=True, help="FUNC is vector-valued; GRADFUNC returns its Jacobian (m, n).")
@click.option("--rtol", type=click.FloatRange(0), metavar="R",
              help="Relative tolerance (default: from the precision; the reference's error is always added).")
@click.option("--atol", type=click.FloatRange(0), metavar="A", help="Absolute tolerance (default: from the precision).")
@click.option("--method", type=click.Choice(["auto", "complex-step", "richardson"]), default="auto",
              show_default=True, help="Reference: complex step where f is complex-analytic, else differences.")
@click.option("--save-failures", metavar="FILE", help="On a mismatch, write a replayable counterexample.")
@click.option("--replay", metavar="FILE", help="Run a counterexample saved by --save-failures again.")
@click.option("--junit", metavar="FILE", help="Also write a JUnit XML report: one test case per point and component.")
@click.option("--json", "as_json", is_flag=True, help="Print one strict JSON object.")
@click.option("--digits", type=click.IntRange(1, 17), metavar="N", help="Significant digits shown.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=300.0, show_default=True,
              metavar="SECONDS", help="Stop the user's code after this long (the whole check).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def check(function, grad, at, random_n, seed, dim, box, float32, jacobian, rtol, atol, method,
          save_failures, replay, junit, as_json, digits, timeout, debug):
    """Check your own gradient code against numerical differentiation; exit 1 if wrong.

    \b
    FUNC takes one 1-D numpy array x and returns a scalar (a vector with --jacobian);
    GRADFUNC returns the gradient (n,) or the Jacobian (m, n).  MODULE is a module
    importable from the current directory or a path to a .py file.
    \b
    Example:
      adcalc check mymodel:loss --grad mymodel:loss_grad --at 1,2,3
      adcalc check model.py:f --grad model.py:g --random 20 --at 1,1 --seed 1
    """
    from adcalc.check.report import run_check
    code = run_check(function, grad, at=at, random_n=random_n, seed=seed, dim=dim, box=box,
                     jacobian=jacobian, rtol=rtol, atol=atol, method=method, as_json=as_json,
                     save_failures=save_failures, digits=digits, replay=replay, float32=float32,
                     timeout=timeout, junit=junit)
    raise click.exceptions.Exit(code)


from adcalc.cli_explain import register  # noqa: E402  (click only; the rest is imported on use)

register(cli)


def _argv_has(flag, argv):
    return any(a == flag for a in argv)


def _expressions_first(argv):
    """An expression that starts with '-' (`adcalc grad -x**2 --at 3`) is given a leading
    space so that click takes it as the expression, not as an option: a token that is not
    one of the command's options and is not the value of the option before it."""
    if not argv or argv[0] not in cli.commands:
        return argv
    options, takes_value = set(CONTEXT["help_option_names"]), set()
    for p in cli.commands[argv[0]].params:
        if isinstance(p, click.Option):
            options.update(p.opts + p.secondary_opts)
            if not p.is_flag and not p.count:
                takes_value.update(p.opts)
    out, after_value = [argv[0]], False
    for tok in argv[1:]:
        if tok == "--":
            return out + argv[len(out):]
        flag = tok.split("=", 1)[0]
        if not after_value and tok.startswith("-") and len(tok) > 1 and flag not in options \
                and not any(o.startswith(flag) for o in options if flag.startswith("--")):
            tok = " " + tok
        after_value = flag in takes_value and "=" not in tok
        out.append(tok)
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json, debug = _argv_has("--json", argv), _argv_has("--debug", argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's floating-point chatter
            rv = cli.main(args=_expressions_first(argv), prog_name="adcalc", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        _fail("interrupted", "input", as_json)
        return 130
    except click.exceptions.ClickException as e:
        if debug:
            raise
        msg = e.format_message()
        if isinstance(e, click.exceptions.UsageError) and e.ctx is not None and "--help" not in msg:
            msg = msg.rstrip(".") + f" (see 'adcalc {e.ctx.info_name} --help')" \
                if e.ctx.info_name != "adcalc" else msg
        _fail(msg, "input", as_json)
        return 2
    except AdcalcError as e:
        if debug:
            raise
        _fail(str(e), e.kind, as_json, e)
        return e.exit_code
    except KeyboardInterrupt:
        _fail("interrupted", "input", as_json)
        return 130
    except (RecursionError, MemoryError) as e:
        if debug:
            raise
        _fail(f"the input is too large or too deeply nested to process ({type(e).__name__})", "input", as_json)
        return 2
    except Exception as e:  # a bug: still one sentence, never a traceback without --debug
        if debug:
            raise
        _fail(f"internal error ({type(e).__name__}: {e}); rerun with --debug and report it", "engine", as_json)
        return 2


MAX_MESSAGE = 600


def one_line(message, limit=MAX_MESSAGE):
    """An error message as one bounded line: control characters and line breaks escaped."""
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(message))
    return text if len(text) <= limit else text[:limit - 30] + f"... ({len(text)} characters)"


def _fail(message, kind, as_json, exc=None):
    from adcalc.render import dumps, error_line
    message = one_line(message)
    error_line(message)
    caret = exc.caret() if exc is not None and hasattr(exc, "caret") else ""
    if caret:
        sys.stderr.write(caret + "\n")
    if as_json:
        obj = {"error": message, "kind": kind}
        if exc is not None:
            obj.update({k: one_line(v, 200) if isinstance(v, str) else v for k, v in exc.extra.items()
                        if v is not None})
        sys.stdout.write(dumps(obj) + "\n")

