"""Failure files: what `verify --save-failures` and `check --save-failures` write, and what
`--replay` reads back.  A file is data only: replaying a `check` file imports nothing that
the command line does not name itself (the file's function names are compared with the
ones given, never imported on their own)."""
import json

import numpy as np

from adcalc.errors import InputError


def load(path, command):
    """The saved object of a file written by `adcalc COMMAND --save-failures`."""
    try:
        with open(path) as fh:
            saved = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"--replay: no such file {path!r}") from None
    except (OSError, ValueError) as e:
        raise InputError(f"--replay: {path!r} is not a failure file ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]})") from None
    if not isinstance(saved, dict) or saved.get("command") not in ("verify", "check"):
        raise InputError(f"--replay: {path!r} was not written by --save-failures")
    if saved["command"] != command:
        if saved["command"] == "check":
            raise InputError(f"--replay: {path!r} was saved by 'adcalc check'; replay it with "
                             f"adcalc check MOD:FUNC --grad MOD:GRAD --replay {path}")
        raise InputError(f"--replay: {path!r} was saved by 'adcalc verify'; replay it with "
                         f"adcalc verify --replay {path}")
    try:
        if command == "verify":
            saved["points"] = [{k: np.asarray(v, float) for k, v in p.items()} for p in saved["points"]]
            if not saved["points"] or not isinstance(saved["expression"], (str, list)):
                raise ValueError("no points or no expression")
        else:
            saved["points"] = [np.asarray(p, dtype=saved.get("dtype", "float64")) for p in saved["points"]]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"--replay: {path!r} is damaged ({type(e).__name__}: {e})") from None
    return saved


def save(path, obj):
    try:
        with open(path, "w") as fh:
            json.dump(obj, fh, indent=1, allow_nan=False, default=_plain)
    except OSError as e:
        raise InputError(f"--save-failures: cannot write {path!r} ({e.strerror})") from None


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return str(v)


def save_verify(path, prob, report, seed, claims):
    from adcalc.envelope import finite
    failing = report.failing or [report.x]
    save(path, finite({
        "command": "verify", "expression": prob.expression, "vars": ",".join(prob.variables),
        "wrt": prob.wrt if prob.wrt != prob.variables else None, "seed": seed,
        "quantities": report.quantities, "claims": [list(c) for c in claims],
        "points": [{v: np.asarray(a).tolist() for v, a in prob.split(x).items()} for x in failing],
        "differences": {f"{c.engine}:{c.quantity}": c.as_dict() for c in report.checks + report.claims
                        if c.status in ("mismatch", "error")}}, []))
