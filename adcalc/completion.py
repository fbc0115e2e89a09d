"""Shell completion scripts (bash, zsh, fish) generated from a description of the CLI.

The description is plain data, so the CLI can build it from its own commands:
`commands` maps each command to its option spellings, `options` are valid after
any command, `choices` maps an option spelling to its values, `value_options` maps
an option that takes a free value to "file" (complete paths) or "text" (complete
nothing), and `functions` are offered as words inside expression arguments.
List every spelling that takes a value (`--engine` and `-e`) in choices or
value_options.  The bash script needs bash >= 3.2 and no bash-completion package.
"""
import re

from adcalc.errors import InputError

SHELLS = ("bash", "zsh", "fish")
DEFAULT_COMMON = ["--at", "--vars", "--engine", "-e", "--json", "--digits", "--debug"]
DEFAULT_COMMANDS = {
    **{c: DEFAULT_COMMON for c in ("grad", "jacobian", "hessian")},
    **{c: DEFAULT_COMMON + ["--vector", "-v"] for c in ("hvp", "jvp", "vjp")},
    "verify": ["--at", "--vars", "--quantities", "-q", "--engines", "--rtol", "--atol",
               "--json", "--digits", "--debug"],
    "check": ["--at", "--json", "--debug"],
    "diff": ["--at", "--vars", "--wrt", "--hessian", "--simplify", "--latex", "--json", "--debug"],
    "trace": ["--at", "--vars", "--json", "--debug"],
    "engines": ["--json", "--debug"],
}
DEFAULT_OPTIONS = ["--help", "-h"]
DEFAULT_CHOICES = {
    "--engine": ["reverse", "forward", "symbolic", "numeric", "gpu", "all"],
    "-e": ["reverse", "forward", "symbolic", "numeric", "gpu", "all"],
    "--quantities": ["grad", "jacobian", "hessian", "hvp", "jvp", "vjp"],
    "-q": ["grad", "jacobian", "hessian", "hvp", "jvp", "vjp"],
}
DEFAULT_VALUE_OPTIONS = {o: "text" for o in (
    "--at", "--vars", "--vector", "-v", "--digits", "--wrt", "--engines", "--rtol", "--atol")}
DEFAULT_FUNCTIONS = (
    "sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh exp expm1 log log1p "
    "log2 log10 sqrt cbrt abs sign pow hypot erf erfc sigmoid softplus relu max min sum mean "
    "prod dot norm logsumexp pi e").split()

_PROG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_COMMAND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_OPTION = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_VALUE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,:+-]*\Z")
_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def completion_script(shell, prog="adcalc", commands=None, options=None, choices=None,
                      functions=None, value_options=None):
    """The completion script for shell ("bash", "zsh" or "fish"), as a string.

    >>> script = completion_script("bash", commands={"grad": ["--at", "--engine"]},
    ...                            choices={"--engine": ["reverse", "forward"]})
    >>> "complete -F _adcalc_completion adcalc" in script
    True

    Install: bash `source <(adcalc completion bash)`; zsh, the output as `_adcalc`
    in a directory of $fpath; fish, as ~/.config/fish/completions/adcalc.fish.
    """
    spec = _Spec(prog,
                 DEFAULT_COMMANDS if commands is None else commands,
                 DEFAULT_OPTIONS if options is None else options,
                 DEFAULT_CHOICES if choices is None else choices,
                 DEFAULT_FUNCTIONS if functions is None else functions,
                 DEFAULT_VALUE_OPTIONS if value_options is None else value_options)
    renderers = {"bash": _bash, "zsh": _zsh, "fish": _fish}
    if shell not in renderers:
        raise InputError(f"unknown shell {shell!r}: completion scripts exist for bash, zsh and fish")
    return renderers[shell](spec)


class _Spec:
    def __init__(self, prog, commands, options, choices, functions, value_options):
        self.prog = _check(prog, _PROG, "program name")
        self.name = re.sub(r"\W", "_", prog)
        self.commands = {_check(c, _COMMAND, "command"): [_check(o, _OPTION, "option") for o in opts]
                         for c, opts in commands.items()}
        self.options = [_check(o, _OPTION, "option") for o in options]
        self.choices = {_check(o, _OPTION, "option"): [_check(v, _VALUE, f"value of {o}") for v in vals]
                        for o, vals in choices.items()}
        self.functions = [_check(f, _FUNCTION, "function name") for f in functions]
        self.value_options = {_check(o, _OPTION, "option"): _kind(o, k) for o, k in value_options.items()}

    def takes(self, kind):
        return [o for o, k in self.value_options.items() if k == kind and o not in self.choices]


def _check(word, pattern, what):
    if not isinstance(word, str) or not pattern.match(word):
        raise InputError(f"cannot put the {what} {word!r} in a completion script: "
                         f"use letters, digits, '_' and '-' only")
    return word


def _kind(option, kind):
    if kind not in ("file", "text"):
        raise InputError(f"value kind of {option} must be 'file' or 'text', not {kind!r}")
    return kind


def _words(items):
    return " ".join(items)


def _alts(items):
    return "|".join(items)


def _bash(s):
    fn = f"_{s.name}_completion"
    value_cases = [f'        {o}) COMPREPLY=( $(compgen -W "{_words(v)}" -- "$cur") ); return 0 ;;'
                   for o, v in s.choices.items()]
    if s.takes("file"):
        value_cases.append(f'        {_alts(s.takes("file"))}) local IFS=$\'\\n\'; '
                           'COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;')
    if s.takes("text"):
        value_cases.append(f"        {_alts(s.takes('text'))}) return 0 ;;")
    option_cases = [f'            {c}) opts="{_words(o)}" ;;' for c, o in s.commands.items()]
    lines = [
        f"# bash completion for {s.prog}",
        f"# load it with: source <({s.prog} completion bash)",
        f"{fn}() {{",
        "    local cur prev cmd i w opts ident prefix f",
        "    COMPREPLY=()",
        '    cur="${COMP_WORDS[COMP_CWORD]}"',
        '    prev=""',
        '    if [ "$COMP_CWORD" -gt 0 ]; then prev="${COMP_WORDS[COMP_CWORD-1]}"; fi',
        '    if [ "$cur" = "=" ]; then prev="${COMP_WORDS[COMP_CWORD-1]}"; cur=""; fi',
        '    if [ "$prev" = "=" ] && [ "$COMP_CWORD" -gt 1 ]; then prev="${COMP_WORDS[COMP_CWORD-2]}"; fi',
        '    cmd=""',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        '        case "$w" in',
        f'            {_alts(s.commands) or "__none__"}) cmd="$w"; break ;;',
        "        esac",
        "    done",
        '    case "$prev" in',
        *value_cases,
        "    esac",
        '    if [ -z "$cmd" ]; then',
        '        case "$cur" in',
        f'            -*) COMPREPLY=( $(compgen -W "{_words(s.options)}" -- "$cur") ) ;;',
        f'            *) COMPREPLY=( $(compgen -W "{_words(s.commands)}" -- "$cur") ) ;;',
        "        esac",
        "        return 0",
        "    fi",
        '    case "$cur" in',
        "        -*)",
        '            opts=""',
        '            case "$cmd" in',
        *option_cases,
        "            esac",
        f'            COMPREPLY=( $(compgen -W "$opts {_words(s.options)}" -- "$cur") )',
        "            return 0 ;;",
        "        @*)",
        "            local IFS=$'\\n'",
        '            for f in $(compgen -f -- "${cur#@}"); do COMPREPLY+=("@$f"); done',
        "            return 0 ;;",
        "    esac",
        '    ident="${cur##*[![:alnum:]_]}"',
        '    prefix="${cur%"$ident"}"',
        f'    for f in $(compgen -W "{_words(s.functions)}" -- "$ident"); do COMPREPLY+=("$prefix$f"); done',
        "    compopt -o nospace 2>/dev/null",
        "    return 0",
        "}",
        f"complete -F {fn} {s.prog}",
        "",
    ]
    return "\n".join(lines)


def _zsh(s):
    fn = f"_{s.name}"
    value_cases = [f"        ({o}) compadd -- {_words(v)}; return ;;" for o, v in s.choices.items()]
    if s.takes("file"):
        value_cases.append(f"        ({_alts(s.takes('file'))}) _files; return ;;")
    if s.takes("text"):
        value_cases.append(f"        ({_alts(s.takes('text'))}) return 1 ;;")
    option_cases = [f"            ({c}) opts=({_words(o)}) ;;" for c, o in s.commands.items()]
    lines = [
        f"#compdef {s.prog}",
        f"# zsh completion for {s.prog}: save as {fn} in a directory of $fpath,",
        f"# or load it with: source <({s.prog} completion zsh)",
        f"{fn}() {{",
        '    local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}" cmd="" i',
        "    local -a opts",
        '    if [[ "$cur" == -*=* ]]; then',
        '        prev="${cur%%=*}"',
        "        compset -P '*='",
        '        cur="${cur#*=}"',
        "    fi",
        "    for (( i = 2; i < CURRENT; i++ )); do",
        '        case "${words[i]}" in',
        f'            ({_alts(s.commands) or "__none__"}) cmd="${{words[i]}}"; break ;;',
        "        esac",
        "    done",
        '    case "$prev" in',
        *value_cases,
        "    esac",
        '    if [[ -z "$cmd" ]]; then',
        '        if [[ "$cur" == -* ]]; then',
        f"            compadd -- {_words(s.options)}",
        "        else",
        f"            compadd -- {_words(s.commands)}",
        "        fi",
        "        return",
        "    fi",
        '    if [[ "$cur" == -* ]]; then',
        '        case "$cmd" in',
        *option_cases,
        "        esac",
        f"        compadd -- $opts {_words(s.options)}",
        "        return",
        "    fi",
        '    if [[ "$cur" == @* ]]; then',
        "        compset -P '@'",
        "        _files",
        "        return",
        "    fi",
        "    compset -P '*[^A-Za-z0-9_]'",
        f"    compadd -S '' -- {_words(s.functions)}",
        "}",
        'if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then',
        f'    {fn} "$@"',
        "else",
        f"    compdef {fn} {s.prog}",
        "fi",
        "",
    ]
    return "\n".join(lines)


def _fish_flag(option):
    if option.startswith("--"):
        return f"-l {option[2:]}"
    return f"-s {option[1:]}" if len(option) == 2 else f"-o {option[1:]}"


def _fish_option(s, prog, condition, option):
    head = f"complete -c {prog}{condition} {_fish_flag(option)}"
    if option in s.choices:
        return f"{head} -x -a '{_words(s.choices[option])}'"
    kind = s.value_options.get(option)
    return {"file": f"{head} -r -F", "text": f"{head} -x", None: head}[kind]


def _fish(s):
    expr_fn = f"__{s.name}_expression_words"
    lines = [
        f"# fish completion for {s.prog}: save as ~/.config/fish/completions/{s.prog}.fish",
        f"function {expr_fn}",
        "    set -l tok (commandline -ct)",
        "    if string match -q -- '@*' \"$tok\"",
        "        for f in (__fish_complete_path (string sub -s 2 -- \"$tok\"))",
        '            echo "@$f"',
        "        end",
        "        return",
        "    end",
        "    set -l prefix (string replace -r -- '[A-Za-z0-9_]*$' '' \"$tok\")",
        f"    for f in {_words(s.functions)}",
        '        echo "$prefix$f"',
        "    end",
        "end",
        f"complete -c {s.prog} -f",
    ]
    if s.commands:
        lines.append(f"complete -c {s.prog} -n __fish_use_subcommand -a '{_words(s.commands)}'")
    lines += [_fish_option(s, s.prog, "", o) for o in s.options]
    for command, opts in s.commands.items():
        condition = f" -n '__fish_seen_subcommand_from {command}'"
        lines += [_fish_option(s, s.prog, condition, o) for o in opts]
    lines.append(f"complete -c {s.prog} -n 'not __fish_use_subcommand' -a '({expr_fn})'")
    return "\n".join(lines) + "\n"
