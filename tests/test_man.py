"""The man page documents every command and option that --help shows."""
import re
from pathlib import Path

from click.testing import CliRunner

from adcalc.cli import cli

MAN = (Path(__file__).parent.parent / "man" / "adcalc.1").read_text().replace("\\-", "-")


def test_every_command_is_documented():
    for name in cli.commands:
        assert re.search(rf"^\.B {name}$", MAN, re.M), name


def test_every_option_is_documented():
    runner = CliRunner()
    for name, cmd in cli.commands.items():
        for p in cmd.params:
            for opt in p.opts:
                if opt.startswith("--") and opt not in ("--help", "--debug") and not getattr(p, "hidden", False):
                    assert opt in MAN, f"{name} {opt}"
        assert runner.invoke(cli, [name, "--help"]).exit_code == 0
