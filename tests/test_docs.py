"""Function lists in --help, the README and the man page come from the table."""
import json
import pathlib

from click.testing import CliRunner

from adcalc import docs
from adcalc.cli import cli, main
from adcalc.primitives import FUNCTIONS

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_and_man_page_blocks_are_current():
    """Regenerate with `python -m adcalc.docs` after adding a record."""
    assert docs.markdown() in (ROOT / "README.md").read_text()
    assert docs.roff() in (ROOT / "man" / "adcalc.1").read_text()


def test_help_lists_every_function():
    out = CliRunner().invoke(cli, ["--help"]).output
    assert all(name in out for name in FUNCTIONS)


def test_functions_command(capsys):
    assert main(["functions", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    rows = {f["name"]: f for f in obj["functions"]}
    assert set(rows) == set(FUNCTIONS)
    assert rows["log"]["domain_error"] == "log of a non-positive number"
    assert rows["abs"]["kink"].startswith("abs'(0) = +1")
    assert rows["max"]["arguments"] == "1 or more" and rows["atan2"]["arguments"] == "2"
    assert main(["functions"]) == 0
    assert "relu'(0) = 0" in capsys.readouterr().out
