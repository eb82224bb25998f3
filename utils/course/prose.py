"""Figures in a chapter's prose that nothing in the chapter backs.

A sentence that quotes a measured result ("reaches 95.8%", "a ratio of 1.2e-20", "×5 faster") must be backed by
the same notebook: the figure appears (to the precision it is written with) in an output or a code cell, or the
markdown line carries ``<!-- quoted: source -->`` because the figure comes from a paper or documentation.

    python -m utils.course.prose                   # every chapter; exit status 1 if any figure is unbacked
    python -m utils.course.prose 01_regression     # one chapter

What counts as a figure (outside maths, code, links, HTML, headings, section/chapter numbers and versions):
decimals (``0.9556``), percentages (``93%``, ``95.8 %``), scientific notation (``1.2e-20``, ``1.2 × 10^8``) and
ratios (``×5``, ``5×``, ``5x``). Bare integers ("2 layers", "5 seeds") are not: they are mostly counts of things
the code sets. A figure is backed when some number ``x`` in an output or code cell rounds to it at the figure's
own last digit (prose "0.96" is backed by an output 0.9583; "93%" by 0.9302 or 93.0); a percentage is also
compared as a fraction, and an output percentage as a fraction, so "0.93" and "93%" back each other.
"""
import bisect
import dataclasses
import json
import pathlib
import re
import sys

QUOTED = re.compile(r"<!--\s*quoted:\s*\S.*?-->", re.I)

# Removed before figures are looked for: each is replaced by a space, so neighbouring words stay apart.
_STRIP = [
    re.compile(r"```.*?```", re.S),                                   # fenced code
    re.compile(r"`[^`\n]*`"),                                         # code spans
    re.compile(r"\$\$.*?\$\$", re.S),                                 # display maths
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),           # LaTeX environments
    re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S),                     # \( \) and \[ \] maths
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),                        # inline maths
    re.compile(r"<!--.*?-->", re.S),                                  # HTML comments
    re.compile(r"<[^>\n]+>"),                                         # HTML tags
    re.compile(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)"),                   # link targets (the link text stays)
    re.compile(r"https?://\S+|www\.\S+"),                             # bare addresses
    re.compile(r"(?m)^\s{0,3}#{1,6}\s.*$"),                           # headings
]
_NUMBER_LIST = r"\d+(?:\.\d+)*(?:\s*(?:,|–|—|-|and|or|to|&)\s*\d+(?:\.\d+)*)*"
_REFERENCES = re.compile(
    r"(?:§§?|\b(?:sections?|chapters?|ch\.|exercises?|figures?|fig\.|steps?|parts?|tables?|equations?|eqs?\.|"
    r"cells?|pitfalls?|lines?|issues?|pages?|pp?\.|appendix)\s*)" + _NUMBER_LIST, re.I)
_VERSIONS = re.compile(
    r"\b(?:python|pytorch|torch|tensorflow|tf|keras|numpy|scipy|pandas|matplotlib|transformers|tokenizers|"
    r"scikit-learn|sklearn|statsmodels|cuda|cudnn|jupyter|jupyterlab|nbval|pytest|colab|version|versions|release|"
    r"v)\s*\d+(?:\.\d+)*(?:\s*(?:,|–|-|and|or|to)\s*\d+(?:\.\d+)*)*", re.I)
_DOTTED = re.compile(r"(?<![\w.])\d+\.\d+\.\d+(?:\.\d+)*(?![\w.])")    # 2.13.0: a version, never a measurement
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_MANTISSA = r"\d+(?:\.\d+)?"
_FIGURE = re.compile(
    r"(?P<times10>(?<![\w.])" + _MANTISSA + r")\s*[×x·]\s*10\s*(?:\^\s*\{?\s*(?P<exp1>[-−+]?\d+)\s*\}?|"
    r"(?P<exp2>[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))"
    r"|(?P<sci>(?<![\w.])" + _MANTISSA + r"[eE][-−+]?\d+)(?!\w|\.\d)"
    r"|(?P<percent>(?<![\w.])" + _MANTISSA + r")\s*%"
    r"|(?:(?<=[\s(\[])|^)[×](?P<times_after>" + _MANTISSA + r")(?![\w.]|\s*[×x]\s*\d)"
    r"|(?P<times_before>(?<![\w.×])" + _MANTISSA + r")(?:×|x\b)(?!\s*\d)(?!\.\d)"
    r"|(?P<decimal>(?<![\w.])\d+\.\d+)(?!\w|\.\d|\s*[×x]\s*\d)",
    re.M)
# No bare ".5": in code that is a format spec ("{x:.6f}"), never a value worth backing prose with.
_ANY_NUMBER = re.compile(r"(?<![\w.])[-−+]?\d+(?:\.\d*)?(?:[eE][-−+]?\d+)?(?P<pct>\s*%)?")


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure as written in the prose: ``text`` as the reader sees it, ``value`` its number, ``half_step``
    half a unit of its last written digit (the rounding interval), ``percent`` whether it was written as one."""
    text: str
    value: float
    half_step: float
    percent: bool = False
    cell: int = -1
    line: str = ""


def _half_step(mantissa: str, exponent: int = 0) -> float:
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 0.5 * 10.0 ** (exponent - decimals)


def prose_text(markdown: str) -> str:
    """The markdown with quoted lines, maths, code, links, HTML, headings, references and versions blanked."""
    lines = [" " if QUOTED.search(line) else line for line in markdown.splitlines()]
    text = "\n".join(lines)
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    for pattern in (_REFERENCES, _VERSIONS, _DOTTED):
        text = pattern.sub(" ", text)
    return _THOUSANDS.sub("", text)


def figures_in_markdown(markdown: str, cell: int = -1) -> list[Figure]:
    """Every figure a reader of this markdown would take for a measured (or quoted) number."""
    found = []
    for line in prose_text(markdown).splitlines():
        for m in _FIGURE.finditer(line):
            kind = m.lastgroup if m.lastgroup not in ("exp1", "exp2") else "times10"
            text = m.group(0).strip()
            if m.group("times10"):
                mantissa = m.group("times10")
                exp_text = m.group("exp1") or (m.group("exp2") or "").translate(_SUPERSCRIPTS)
                exponent = int(exp_text.replace("−", "-"))
                found.append(Figure(text, float(mantissa) * 10.0 ** exponent, _half_step(mantissa, exponent),
                                    cell=cell, line=line.strip()))
                continue
            number = m.group(kind)
            if kind == "sci":
                mantissa, exp_text = re.split(r"[eE]", number)
                exponent = int(exp_text.replace("−", "-"))
                found.append(Figure(text, float(mantissa) * 10.0 ** exponent, _half_step(mantissa, exponent),
                                    cell=cell, line=line.strip()))
            else:
                found.append(Figure(text, float(number), _half_step(number), percent=kind == "percent",
                                    cell=cell, line=line.strip()))
    return found


def numbers_in_text(text: str) -> list[float]:
    """Every number in ``text`` (signs dropped); a percentage also counts as its fraction (93% -> 93 and 0.93)."""
    values = []
    for m in _ANY_NUMBER.finditer(_THOUSANDS.sub("", text)):
        raw = m.group(0).replace("%", "").strip().replace("−", "-").lstrip("+-")
        try:
            value = float(raw)
        except ValueError:
            continue
        values.append(value)
        if m.group("pct"):
            values.append(value / 100)
    return values


def is_backed(figure: Figure, sorted_numbers: list[float]) -> bool:
    """Whether some number rounds to ``figure`` at its written precision (a percentage also as a fraction)."""
    targets = [(figure.value, figure.half_step)]
    if figure.percent:
        targets.append((figure.value / 100, figure.half_step / 100))
    for value, half in targets:
        slack = half * (1 + 1e-9) + 1e-12 * abs(value)
        i = bisect.bisect_left(sorted_numbers, value - slack)
        if i < len(sorted_numbers) and sorted_numbers[i] <= value + slack:
            return True
    return False


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def backing_text(nb: dict) -> str:
    """Everything in a notebook that can back a figure: code cells' source and every text-like output."""
    parts = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        parts.append(_source(cell))
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))
            for mime in ("text/plain", "text/markdown", "text/html", "text/latex"):
                value = out.get("data", {}).get(mime, "")
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def unbacked_figures(nb: dict) -> list[Figure]:
    """Figures in the notebook's markdown that no output, no code cell and no quoted line backs."""
    numbers = sorted(numbers_in_text(backing_text(nb)))
    missing = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "markdown":
            missing += [f for f in figures_in_markdown(_source(cell), cell=index) if not is_backed(f, numbers)]
    return missing


def unbacked_in_file(path) -> list[Figure]:
    """``unbacked_figures`` of the notebook saved at ``path``."""
    path = pathlib.Path(path)
    if path.suffix != ".ipynb":
        raise ValueError(f"path must be a .ipynb notebook; got {str(path)!r}")
    return unbacked_figures(json.loads(path.read_text(encoding="utf-8")))


def describe(figures: list[Figure]) -> str:
    """One line per figure: the cell, the figure and the sentence around it."""
    return "\n".join(f"  cell {f.cell}: {f.text!r} in: {f.line[:160]}" for f in figures)


def main(argv=None) -> int:
    from . import CHAPTERS, ROOT

    names = list(argv if argv is not None else sys.argv[1:]) or CHAPTERS
    unknown = [n for n in names if n not in CHAPTERS]
    if unknown:
        raise SystemExit(f"unknown chapter(s) {unknown}; accepted: {', '.join(CHAPTERS)}")
    status = 0
    for name in names:
        figures = unbacked_in_file(ROOT / "chapters" / f"{name}.ipynb")
        if figures:
            status = 1
            print(f"{name}: {len(figures)} figure(s) in the prose that no output, code cell or quoted line backs "
                  f"(print each from code, or mark the line <!-- quoted: source -->):\n{describe(figures)}")
        else:
            print(f"{name}: every figure in the prose is backed")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
