"""Find comparisons a chapter makes without ``utils.stats``: the check behind tests/test_comparisons.py.

Two kinds of finding, each tied to the chapter section (``## `` heading) it sits in:

- ``code``: an ``assert`` that orders two *measured* quantities (``acc_a > acc_b``, ``(a - b).mean() > 0``,
  ``x.mean() > max(y, z)``) instead of going through ``stats.require``; and a standard error computed by hand
  (``s.std(...) / np.sqrt(n)``), the sign of a home-made verdict rule. A comparison with a fixed threshold
  (a literal, ``CFG.name``, an UPPER_CASE constant, ``len(...)``) is not a comparison of two measurements. An
  identity or a bound that is not an effect is marked on its line with ``# identity`` or ``# threshold``.
- ``prose``: a markdown sentence that claims one thing beats another ("beats", "better than", "outperforms",
  "raised", "improved", ...) in a section whose outputs print no ``utils.stats`` verdict.

    python -m utils.course.comparisons chapters/03_cnn.ipynb   # lists the findings
"""
import ast
import json
import pathlib
import re
import sys
from dataclasses import dataclass

CLAIM = re.compile(r"\b(beats?|beaten|outperforms?|outperformed|better than|worse than|raised|improved?|improves"
                   r"|helped|helps|wins?|won)\b", re.I)
VERDICT = re.compile(r"(better|no detectable difference at this budget): .+ \u2212 .+ \(\d+(\.\d+)?% interval")
MARKERS = ("# identity", "# threshold")
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


@dataclass(frozen=True)
class Finding:
    section: str  # the "## " heading above it ("" before the first)
    kind: str     # "code" or "prose"
    text: str     # the line or sentence


def _constant(node) -> bool:
    """A fixed threshold rather than a measurement: literals, CFG.x, UPPER_CASE names, len(...), arithmetic of these."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and (node.value.id == "CFG" or node.attr.isupper())
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _constant(node.left) and _constant(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return True
    return False


def _has_difference_of_measurements(node) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub | ast.Div)
               and not _constant(n.left) and not _constant(n.right) for n in ast.walk(node))


def _compares_measurements(test) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Compare) and any(isinstance(op, ORDERING) for op in node.ops):
            sides = [node.left, *node.comparators]
            if all(not _constant(s) for s in sides) or any(_has_difference_of_measurements(s) for s in sides):
                return True
    return False


def _uses_require(test) -> bool:
    return any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) == "require"
               for n in ast.walk(test))


def _hand_standard_error(node) -> bool:
    """``<...>.std(...) / <...>sqrt(...)``: a standard error written out instead of taken from utils.stats."""
    def calls(n, name):
        return any(isinstance(c, ast.Call) and getattr(c.func, "attr", getattr(c.func, "id", None)) == name
                   for c in ast.walk(n))
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and calls(node.left, "std") \
        and calls(node.right, "sqrt")


def code_findings(source: str) -> list[str]:
    """The offending lines of one code cell (IPython magics and shell lines are skipped)."""
    lines = source.splitlines()
    try:
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines))
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        bad = (isinstance(node, ast.Assert) and _compares_measurements(node.test) and not _uses_require(node.test)) \
            or _hand_standard_error(node)
        if bad:
            span = lines[node.lineno - 1:node.end_lineno]
            if not any(m in ln for ln in span for m in MARKERS):
                found.append(lines[node.lineno - 1].strip())
    return found


def _sections(nb: dict):
    """(heading, [cells]) for each "## " section, in order."""
    heading, cells, out = "", [], []
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.lstrip().startswith("## "):
            out.append((heading, cells))
            heading, cells = text.lstrip().split("\n", 1)[0].strip(), []
        cells.append(cell)
    out.append((heading, cells))
    return out


def _outputs(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def scan(nb: dict) -> list[Finding]:
    """Every finding of a notebook (a dict as read from .ipynb JSON)."""
    findings = []
    for heading, cells in _sections(nb):
        printed = "".join(_outputs(c) for c in cells if c["cell_type"] == "code")
        has_verdict = bool(VERDICT.search(printed))
        for cell in cells:
            text = "".join(cell["source"])
            if cell["cell_type"] == "code":
                findings += [Finding(heading, "code", line) for line in code_findings(text)]
            elif cell["cell_type"] == "markdown" and not has_verdict:
                prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|<!--.*?-->", " ", text, flags=re.S)
                for sentence in re.split(r"(?<=[.!?])\s+", prose):
                    if CLAIM.search(sentence) and not sentence.lstrip().startswith("#"):
                        findings.append(Finding(heading, "prose", " ".join(sentence.split())[:160]))
    return findings


def scan_file(path) -> list[Finding]:
    return scan(json.loads(pathlib.Path(path).read_text(encoding="utf-8")))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        for f in scan_file(arg):
            print(f"{pathlib.Path(arg).stem} | {f.section} | {f.kind}: {f.text}")
