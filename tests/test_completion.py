"""adcalc.completion: bash/zsh/fish scripts that parse and complete commands, options, values."""
import shutil
import subprocess

import pytest

from adcalc.completion import DEFAULT_COMMANDS, DEFAULT_FUNCTIONS, completion_script
from adcalc.errors import InputError

SPEC = dict(
    commands={"grad": ["--at", "--engine", "-e", "--json", "--points"],
              "hvp": ["--at", "--engine", "-e", "--vector", "-v", "--json"],
              "verify": ["--at", "--quantities", "--json"],
              "engines": ["--json"]},
    options=["--help", "--version"],
    choices={"--engine": ["reverse", "forward", "symbolic", "numeric", "gpu", "all"],
             "-e": ["reverse", "forward", "symbolic", "numeric", "gpu", "all"],
             "--quantities": ["grad", "hessian", "hvp"]},
    functions=["sin", "cos", "cosh", "exp", "log", "log1p"],
    value_options={"--at": "text", "--vector": "text", "-v": "text", "--points": "file"},
)


def need(shell):
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed here")
    return path


def script_file(tmp_path, shell, **kw):
    path = tmp_path / f"adcalc.{shell}"
    path.write_text(completion_script(shell, **{**SPEC, **kw}))
    return path


def bash_complete(script, words, cword=None, cwd=None):
    cword = len(words) - 1 if cword is None else cword
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (f"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={cword}; "
            f"_adcalc_completion; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run([need("bash"), "--norc", "--noprofile", "-c", code], capture_output=True,
                         text=True, timeout=20, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.split("\n") if line]


@pytest.fixture
def bash_script(tmp_path):
    return script_file(tmp_path, "bash")


# ---- syntax -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"prog": "my-calc"}, {"commands": {}, "functions": []}],
                         ids=["spec", "prog", "empty"])
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_script_parses(tmp_path, shell, kw):
    exe = need(shell)
    path = script_file(tmp_path, shell, **kw)
    out = subprocess.run([exe, "-n", str(path)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_default_description_parses(tmp_path, shell):
    exe = need(shell)
    path = tmp_path / f"default.{shell}"
    path.write_text(completion_script(shell))
    assert subprocess.run([exe, "-n", str(path)], capture_output=True, timeout=20).returncode == 0


def test_defaults_follow_the_contract():
    text = completion_script("bash")
    for word in ("grad", "jacobian", "hessian", "hvp", "jvp", "vjp", "verify", "check", "diff",
                 "trace", "engines", "logsumexp", "sigmoid", "atan2"):
        assert word in text
    assert set(DEFAULT_COMMANDS) >= {"grad", "jacobian", "hessian", "hvp", "jvp", "vjp", "verify"}
    assert "--vector" in DEFAULT_COMMANDS["hvp"] and "--vector" not in DEFAULT_COMMANDS["grad"]
    assert {"sin", "log1p", "norm", "logsumexp"} <= set(DEFAULT_FUNCTIONS)


def test_unknown_shell_names_the_three():
    with pytest.raises(InputError, match="unknown shell 'powershell'.*bash, zsh and fish"):
        completion_script("powershell")


@pytest.mark.parametrize("kw, what", [
    ({"commands": {"grad; rm -rf /": []}}, "command"),
    ({"commands": {"grad": ["--at$(id)"]}}, "option"),
    ({"options": ["help"]}, "option"),
    ({"choices": {"--engine": ["re'verse"]}}, "value of --engine"),
    ({"choices": {"--engine": ["two words"]}}, "value of --engine"),
    ({"functions": ["sin(x)"]}, "function name"),
    ({"prog": "ad calc"}, "program name"),
])
def test_words_that_could_break_a_script_are_refused(kw, what):
    with pytest.raises(InputError, match=f"cannot put the {what}"):
        completion_script("bash", **{**SPEC, **kw})


def test_value_kind_is_checked():
    with pytest.raises(InputError, match="must be 'file' or 'text'"):
        completion_script("zsh", **{**SPEC, "value_options": {"--at": "number"}})


# ---- bash behaviour ---------------------------------------------------------------------
def test_bash_completes_engine_values(bash_script):
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--engine", "f"]) == ["forward"]
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "-e", "s"]) == ["symbolic"]
    assert sorted(bash_complete(bash_script, ["adcalc", "grad", "x", "--engine", ""])) == \
        sorted(SPEC["choices"]["--engine"])


def test_bash_completes_engine_after_equals(bash_script):
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--engine", "=", "n"]) == ["numeric"]
    assert "gpu" in bash_complete(bash_script, ["adcalc", "grad", "x", "--engine", "="])


def test_bash_completes_commands(bash_script):
    assert bash_complete(bash_script, ["adcalc", "gr"]) == ["grad"]
    assert sorted(bash_complete(bash_script, ["adcalc", ""])) == ["engines", "grad", "hvp", "verify"]
    assert bash_complete(bash_script, ["adcalc", "--ver"]) == ["--version"]


def test_bash_options_depend_on_the_command(bash_script):
    assert bash_complete(bash_script, ["adcalc", "hvp", "x*y", "--v"]) == ["--vector", "--version"]
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--v"]) == ["--version"]
    assert sorted(bash_complete(bash_script, ["adcalc", "engines", "--"])) == \
        ["--help", "--json", "--version"]


def test_bash_completes_function_names_inside_expressions(bash_script):
    assert bash_complete(bash_script, ["adcalc", "grad", "sin(x)+co"]) == ["sin(x)+cos", "sin(x)+cosh"]
    assert bash_complete(bash_script, ["adcalc", "grad", "lo"]) == ["log", "log1p"]
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--at", "1", "2*ex"]) == ["2*exp"]


def test_bash_free_values_get_no_completion(bash_script):
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--at", ""]) == []
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--at", "-1"]) == []


def test_bash_completes_files(bash_script, tmp_path):
    (tmp_path / "pts one.csv").write_text("x\n1\n")
    (tmp_path / "expr.txt").write_text("sin(x)\n")
    assert bash_complete(bash_script, ["adcalc", "grad", "x", "--points", "pts"], cwd=tmp_path) == \
        ["pts one.csv"]
    assert bash_complete(bash_script, ["adcalc", "grad", "@ex"], cwd=tmp_path) == ["@expr.txt"]


def test_bash_other_program_name(tmp_path):
    path = script_file(tmp_path, "bash", prog="my-calc")
    text = path.read_text()
    assert "complete -F _my_calc_completion my-calc" in text
    code = (f"source '{path}'; COMP_WORDS=(my-calc gr); COMP_CWORD=1; _my_calc_completion; "
            "echo \"${COMPREPLY[*]}\"; complete -p my-calc")
    out = subprocess.run([need("bash"), "--norc", "--noprofile", "-c", code], capture_output=True,
                         text=True, timeout=20)
    assert out.stdout.split("\n")[:2] == ["grad", "complete -F _my_calc_completion my-calc"]


# ---- zsh behaviour (completion builtins stubbed so the logic runs outside a widget) -----
def zsh_complete(script, words):
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (f"compdef() {{ :; }}; source '{script}'; "
            "compadd() { print -r -- \"compadd $*\"; }; compset() { return 1; }; "
            "_files() { print _files; }; "
            f"words=({quoted}); CURRENT={len(words)}; _adcalc")
    out = subprocess.run([need("zsh"), "-f", "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_zsh_logic(tmp_path):
    path = script_file(tmp_path, "zsh")
    assert zsh_complete(path, ["adcalc", "grad", "x", "--engine", "f"]) == \
        "compadd -- reverse forward symbolic numeric gpu all"
    assert zsh_complete(path, ["adcalc", "gr"]) == "compadd -- grad hvp verify engines"
    assert zsh_complete(path, ["adcalc", "hvp", "x", "--"]) == \
        "compadd -- --at --engine -e --vector -v --json --help --version"
    assert zsh_complete(path, ["adcalc", "grad", "x", "--points", ""]) == "_files"
    assert zsh_complete(path, ["adcalc", "grad", "sin(x)+co"]) == \
        "compadd -S  -- sin cos cosh exp log log1p"


def test_zsh_registers_with_compinit(tmp_path):
    path = script_file(tmp_path, "zsh")
    code = (f"autoload -Uz compinit; compinit -u -D -d '{tmp_path}/zcd'; source '{path}'; "
            "print -r -- ${_comps[adcalc]}")
    out = subprocess.run([need("zsh"), "-f", "-c", code], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "_adcalc", out.stderr


# ---- fish behaviour (fish answers `complete -C` itself) ---------------------------------
def fish_complete(script, line, cwd=None):
    code = f"source '{script}'; complete -C '{line}'"
    out = subprocess.run([need("fish"), "--no-config", "-c", code], capture_output=True,
                         text=True, timeout=20, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return [w.split("\t")[0] for w in out.stdout.split("\n") if w]


def test_fish_behaviour(tmp_path):
    path = script_file(tmp_path, "fish")
    assert fish_complete(path, "adcalc grad x --engine f") == ["forward"]
    assert fish_complete(path, "adcalc gr") == ["grad"]
    assert fish_complete(path, "adcalc grad sin(x)+co") == ["sin(x)+cos", "sin(x)+cosh"]
    assert "--vector" in fish_complete(path, "adcalc hvp x --")
    assert "--vector" not in fish_complete(path, "adcalc grad x --")
    (tmp_path / "expr.txt").write_text("x\n")
    assert fish_complete(path, "adcalc grad @ex", cwd=tmp_path) == ["@expr.txt"]
