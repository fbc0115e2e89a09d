"""The long run of the issue-9 harness (tests/test_extremes.py), outside CI.

    python benchmarks/extremes.py --cases 100000 --seed 1 --engines reverse,forward,numeric --jobs 2
    python benchmarks/extremes.py --cases 5000 --out offenders.jsonl --show 5

Generates the cases of tests/extremes.py (seed, count), runs each through
`adcalc grad/hessian/hvp ... --engine E --json` in-process for every engine asked,
judges every component against the 60-digit reference of tests/mpref.py and prints:
the counts of calls per engine x quantity x class (error, silent wrong, bad estimate,
flagged, ok, unscored: see tests/test_extremes.py), where the time went, and the first
calls of each class but ok, each with the command line that reproduces it. With --out,
every offending call (error, silent wrong, bad estimate) is written as one JSON object
per line. Exit status 1 when there is an offender, else 0.
"""
import argparse
import json
import os
import sys
from dataclasses import asdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import test_extremes as T  # noqa: E402 (tests/ first: this file is also called extremes.py)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100000, help="number of generated cases (default 100000)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--engines", default=",".join(T.ENGINES), help="comma-separated engines (default %(default)s)")
    ap.add_argument("--commands", default=",".join(T.COMMANDS), help="comma-separated commands (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: every core)")
    ap.add_argument("--show", type=int, default=10, help="calls shown per class (default 10)")
    ap.add_argument("--out", metavar="FILE.jsonl", help="write every offending call as JSON lines")
    args = ap.parse_args(argv)
    engines, commands = args.engines.split(","), args.commands.split(",")
    report = T.check_stream(args.seed, args.cases, engines, commands, jobs=args.jobs)
    print(f"seed {args.seed}, engines {','.join(engines)}, commands {','.join(commands)}, {args.jobs} jobs")
    print(report.summary())
    for cls in T.CLASSES:
        found = [f for f in report.offenders + report.samples if f.cls == cls]
        if found and cls != "ok":
            total = report.count(cls)
            print(f"\n== {cls}: {total} calls, the first {min(args.show, len(found))}")
            print(T.offenders_table(found, args.show))
    if args.out:
        with open(args.out, "w") as fh:
            for f in report.offenders:
                fh.write(json.dumps(asdict(f)) + "\n")
        print(f"\n{len(report.offenders)} offending calls written to {args.out}")
    return 1 if report.offenders else 0


if __name__ == "__main__":
    sys.exit(main())
