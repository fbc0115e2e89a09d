"""The package's layout: no import cycle among adcalc's modules (at import time)."""
import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[1] / "adcalc"


def module_name(path):
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(path):
    """adcalc modules imported at module level (imports inside functions are lazy)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("adcalc")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("adcalc"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def graph():
    mods = {module_name(p): p for p in PKG.rglob("*.py")}
    return {m: {i for i in top_level_imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_no_import_cycle():
    g = graph()
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(g[m]):
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path + [m, n]))
            if n not in state:
                visit(n, path + [m])
        state[m] = "done"
    for m in sorted(g):
        if m not in state:
            visit(m, [])


def test_the_table_imports_nothing_but_the_core():
    g = graph()
    assert g["adcalc.core"] == set()
    assert g["adcalc.primitives"] == {"adcalc.core"}
