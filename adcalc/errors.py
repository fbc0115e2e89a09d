"""Typed errors: each carries a `kind` for JSON output and an exit code (2)."""


class AdcalcError(Exception):
    kind = "input"
    exit_code = 2

    def __init__(self, message, **extra):
        super().__init__(message)
        self.extra = extra


class ParseError(AdcalcError):
    kind = "parse"

    def __init__(self, message, expr=None, col=None, token=None):
        super().__init__(message, token=token, column=None if col is None else col + 1)
        self.expr, self.col = expr, col

    def caret(self):
        """The expression with a caret under the column (a tab shown as a space, other
        unprintable characters and line breaks of any kind as '?': one character each, so
        the caret stays under its column)."""
        if self.expr is None or self.col is None or len(self.expr) > 400:
            return ""
        shown = "".join(c if c.isprintable() else " " if c == "\t" else "?" for c in self.expr)
        return f"  {shown}\n  {' ' * self.col}^"


class InputError(AdcalcError):
    kind = "input"


class DomainError(AdcalcError):
    kind = "domain"


class EngineUnavailable(AdcalcError):
    kind = "engine"


class EngineError(AdcalcError):
    kind = "engine"
