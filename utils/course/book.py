"""The course as a static HTML book, built from the chapters with their saved outputs (nothing is re-executed).

    python -m utils.course.book                   # writes _build/book/ (open _build/book/index.html)
    python -m utils.course.book --out site        # another folder

Tool: Sphinx with MyST-NB (notebooks and Markdown) and the Sphinx Book Theme: the stack Jupyter Book 1 was made
of, used directly. Jupyter Book 2 (mystmd) needs Node.js and fetches its site template from the network on the
first build, so it can't build offline; this stack is pure Python, pinned in requirements.txt, and builds with
no network. The site is offline too: MathJax is copied from the pinned ``jupyter-server-mathjax`` package into
the site, search is Sphinx's own index, fonts and icons ship with the theme, and the notebooks' remote "Open in
Colab" badge image is swapped for a copy served by the site (the link still goes to Colab).

Pages: a landing page (README's introduction, audience and chapter table with measured run times, then its licence
and credits), one page per chapter in ``CHAPTERS`` order (those that exist), the glossary, and "Running the course"
(README's quick start, Colab, classroom and student-edition sections). The README parts come from between explicit
``<!-- name:start -->`` / ``<!-- name:end -->`` markers (as the bench table does), so renaming or moving a heading
does not silently drop a part: a missing marker is an error that names it. Each chapter page has the theme's
previous/next links, an "On this page" table of contents, a Colab launch button and a download button for the
``.ipynb``. Progress-bar widgets are shown as the text of their final state, so the site loads no widget library.
"""
import argparse
import copy
import json
import pathlib
import re
import shutil
import sys
import time
import warnings
from urllib.parse import unquote

from . import BRANCH, CHAPTERS, REPO_SLUG, REPO_URL, ROOT, colab_url
from .bench import progress_bar_text

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
MATHJAX_DIR = "mathjax"  # under the site's _static/
# README parts copied into the book, by the name of their <!-- name:start --> ... <!-- name:end --> markers (each part
# holds its own "## " heading). The landing page has "intro" (before the chapter table), "audience" and, after the
# chapter table, "credits"; the "Running the course" page has the RUNNING_PARTS in this order.
LANDING_PARTS = ["intro", "audience"]
LANDING_END_PARTS = ["credits"]
RUNNING_PARTS = ["quick-start", "colab", "classroom", "profiles", "website"]

# Our own drawing of the badge (a rounded label and the word Colab), so no page asks Colab's server for it.
BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
<rect width="117" height="20" rx="3" fill="#555"/><rect x="75" width="42" height="20" rx="3" fill="#f9ab00"/>
<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="8" y="14">Open in</text><text x="80" y="14" fill="#000">Colab</text></g></svg>
"""

# The course's icon: a regression line through three points.
FAVICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3"
fill="#1f4e79"/><line x1="2" y1="13" x2="14" y2="3" stroke="#f9ab00" stroke-width="1.5"/><g fill="#fff">
<circle cx="4" cy="10" r="1.4"/><circle cx="8" cy="9" r="1.4"/><circle cx="12" cy="4" r="1.4"/></g></svg>
"""


def readme_part(text: str, name: str) -> str:
    """The text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a Markdown text, stripped."""
    match = re.search(rf"^<!-- {re.escape(name)}:start -->\n(.*?)^<!-- {re.escape(name)}:end -->", text, re.M | re.S)
    if not match:
        raise ValueError(f"README.md has no part '{name}': the book copies the text between the lines "
                         f"'<!-- {name}:start -->' and '<!-- {name}:end -->'; put them back around that section")
    return match.group(1).strip() + "\n"


def bench_times(text: str) -> dict[str, str]:
    """{chapter: "21 s"} from the README's measured run-time table (``./course bench --readme``)."""
    times = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in CHAPTERS and cells[4] == "ok":
            times[cells[0]] = cells[2]
    return times


def chapter_rows(text: str) -> dict[str, str]:
    """{chapter: "what you build"} from the README's chapter table."""
    rows = {}
    for match in re.finditer(r"^\| \[chapters/(\w+)\.ipynb\]\([^)]*\) \| (.*?) \| (.*?) \|$", text, re.M):
        rows[match.group(1)] = match.group(2)
    return rows


def notebook_title(nb: dict) -> str:
    """The text of a notebook's first ``# `` heading."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError("notebook has no '# ' title heading")


def what_you_build(chapter: str) -> str:
    """A chapter's "**What you will build:**" sentence, for a chapter the README's table does not list yet."""
    path = ROOT / "chapters" / f"{chapter}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"cells": []}
    for cell in nb["cells"]:
        # The sentence runs to a blank line or to the next bold lead-in ("**Run time:**").
        match = re.search(r"\*\*What you will build:?\*\*:?\s*(.+(?:\n(?!\n|\*\*).+)*)", "".join(cell["source"]))
        if cell["cell_type"] == "markdown" and match:
            return " ".join(match.group(1).split()).replace("|", "/")
    return ""


def static_widgets(nb: dict) -> dict:
    """A copy of notebook ``nb`` whose progress-bar widgets are replaced by the text of their final state (the
    saved text/plain is the bar's first frame, 0%), and whose widget state is dropped."""
    nb = copy.deepcopy(nb)
    state = nb.get("metadata", {}).pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    state = state.get("state", {})
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
            text = progress_bar_text(view["model_id"], state) if view else None
            if text is not None:
                output["data"]["text/plain"] = text
    return nb


def site_links(markdown: str) -> str:
    """Rewrite a README-style text's links for the book: chapters and the glossary stay inside the site, any
    other file of the repository becomes a link to it on GitHub (the site does not hold it)."""
    def fix(match):
        label, target = match.group(1), match.group(2)
        if target.startswith(("http://", "https://", "#", "mailto:")) or target.startswith("chapters/"):
            return match.group(0)
        if target == "GLOSSARY.md":
            return f"[{label}](glossary.md)"
        return f"[{label}]({REPO_URL}/blob/{BRANCH}/{target})"
    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", fix, markdown)


def glossary_page(glossary: str) -> str:
    """GLOSSARY.md with its JupyterLab heading anchors turned into the book's (MyST's GitHub-style slugs)."""
    from myst_parser.slugs import github_slugify

    def fix(match):  # MyST's slug leaves out inline maths
        heading = re.sub(r"\$[^$]*\$", "", unquote(match.group(2)))
        return f"(chapters/{match.group(1)}.ipynb#{github_slugify(heading)})"
    return re.sub(r"\(chapters/(\w+)\.ipynb#([^)]+)\)", fix, glossary)


def landing_page(readme: str, titles: dict[str, str]) -> str:
    times, builds = bench_times(readme), chapter_rows(readme)
    lines = ["# Regression to BERT", ""]
    for name in LANDING_PARTS:
        lines += [site_links(readme_part(readme, name)), ""]
    lines += ["## Chapters", "",
              "Each chapter runs on a laptop CPU in its quick profile; the run times are measured by `./course bench` "
              "(fresh kernel, 2 CPU cores). Every chapter page has an *Open in Colab* button and a download button "
              "for its notebook.", "",
              "| chapter | what you build | run time (quick) | |", "| --- | --- | --- | --- |"]
    for chapter, title in titles.items():
        what = builds.get(chapter) or what_you_build(chapter)
        colab = f"[Colab]({colab_url(chapter)})" if chapter in CHAPTERS else ""
        lines.append(f"| [{title}](chapters/{chapter}.ipynb) | {what} | {times.get(chapter, 'not measured yet')} | "
                     f"{colab} |")
    lines += ["", "Also here: the [glossary](glossary.md) (English / 中文) and [how to run the course](running.md) "
              "(JupyterLab, Colab, offline lab machines, student editions without solutions).", ""]
    for name in LANDING_END_PARTS:
        lines += [site_links(readme_part(readme, name)), ""]
    lines += ["```{toctree}", ":hidden:", ":caption: Chapters", "", *(f"chapters/{c}" for c in titles), "```", "",
              "```{toctree}", ":hidden:", ":caption: Reference", "", "running", "glossary", "```", ""]
    return "\n".join(lines)


def running_page(readme: str) -> str:
    lines = ["# Running the course", ""]
    for name in RUNNING_PARTS:
        lines += [site_links(readme_part(readme, name)), ""]
    return "\n".join(lines)


def chapter_paths() -> list[pathlib.Path]:
    """Every ``chapters/*.ipynb``, in ``CHAPTERS`` order; a notebook not listed there yet comes last."""
    order = {name: i for i, name in enumerate(CHAPTERS)}
    return sorted((ROOT / "chapters").glob("*.ipynb"), key=lambda p: (order.get(p.stem, len(order)), p.stem))


def write_sources(src: pathlib.Path) -> dict[str, str]:
    """Lay out the book's sources in ``src`` (made fresh). Returns {chapter: title} of the chapters included."""
    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    titles = {}
    for path in chapter_paths():
        nb = json.loads(path.read_text(encoding="utf-8"))
        titles[path.stem] = notebook_title(nb)
        (src / "chapters" / path.name).write_text(json.dumps(static_widgets(nb), ensure_ascii=False), encoding="utf-8")
    if not titles:
        raise ValueError(f"no chapter notebooks found in {ROOT / 'chapters'} (expected names: {', '.join(CHAPTERS)})")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (src / "index.md").write_text(landing_page(readme, titles), encoding="utf-8")
    (src / "running.md").write_text(running_page(readme), encoding="utf-8")
    (src / "glossary.md").write_text(glossary_page((ROOT / "GLOSSARY.md").read_text(encoding="utf-8")),
                                     encoding="utf-8")
    static = src / "_static"
    static.mkdir()
    (static / "colab-badge.svg").write_text(BADGE_SVG, encoding="utf-8")
    (static / "favicon.svg").write_text(FAVICON_SVG, encoding="utf-8")
    import jupyter_server_mathjax
    mathjax = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
    # Only what the HTML-CSS output with the TeX input needs (the package also carries 2 MB of translations).
    shutil.copytree(mathjax, static / MATHJAX_DIR, ignore=shutil.ignore_patterns("localization", "SVG"))
    (src / "conf.py").write_text("from utils.course.book import sphinx_config, setup  # noqa: F401\n"
                                 "globals().update(sphinx_config())\n", encoding="utf-8")
    return titles


def sphinx_config() -> dict:
    """Sphinx settings of the book (conf.py reads them from here)."""
    org, repo = REPO_SLUG.split("/")
    return dict(
        project="Regression to BERT",
        author="The Regression to BERT authors",
        extensions=["myst_nb"],
        exclude_patterns=["_build"],
        nb_execution_mode="off",  # the saved outputs are the ones `./course bench --save` checked
        # Progress bars were widgets: the book shows their final state as text (static_widgets) and loads no
        # widget library.
        nb_ipywidgets_js={},
        nb_mime_priority_overrides=[("html", "application/vnd.jupyter.widget-view+json", None),
                                    ("html", "application/vnd.jupyter.widget-state+json", None)],
        myst_enable_extensions=["dollarmath", "amsmath"],
        myst_dmath_double_inline=True,  # the chapters write $$...$$ inside paragraphs, as Jupyter allows
        myst_heading_anchors=4,
        html_theme="sphinx_book_theme",
        html_title="Regression to BERT",
        html_static_path=["_static"],
        html_favicon="_static/favicon.svg",  # without one, browsers ask for /favicon.ico and get a 404
        html_last_updated_fmt=None,
        html_theme_options=dict(
            repository_url=f"https://github.com/{org}/{repo}",
            repository_branch=BRANCH,
            path_to_docs="",  # chapters/ in the book is chapters/ in the repository
            use_repository_button=True,
            use_download_button=True,
            launch_buttons={"colab_url": "https://colab.research.google.com"},
            show_toc_level=2,
            home_page_in_toc=True,
        ),
        html_context={"default_mode": "light"},  # left empty, the theme logs a console error on every page
        # MathJax 2 from the site itself. The package ships it as one combined file (TeX in, HTML-CSS with STIX
        # web fonts out; what Jupyter's classic notebook loads): named here because Sphinx refuses a local script
        # path with "?config=". The preview pass is off: the package does not carry it.
        mathjax_path=f"{MATHJAX_DIR}/MathJax.js",
        mathjax2_config={
            "config": ["TeX-AMS-MML_HTMLorMML-full.js"],
            "TeX": {"extensions": ["AMSmath.js", "AMSsymbols.js", "noErrors.js", "noUndefined.js"]},
            "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": True,
                        "processClass": "math", "ignoreClass": "document"},
            # MathJax_Blank is a measuring font MathJax 2 loads from "about:blank", which Chromium reports as a
            # console error; a local() name that does not exist gives the same blank font with no request.
            "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None,
                         "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax_Blank')"}}},
            # The hidden MathML copy for screen readers is styled with TeX fonts the package does not carry.
            "menuSettings": {"CHTMLpreview": False, "assistiveMML": False},
            "fast-preview": {"disabled": True},
            "showMathMenu": False,
            "messageStyle": "none",
        },
    )


def local_badges(app, doctree, docname) -> None:
    """Point every Colab badge image at the site's own copy (the link around it is left alone)."""
    from docutils import nodes
    depth = docname.count("/")
    for image in doctree.findall(nodes.image):
        if image["uri"] == COLAB_BADGE:
            image["uri"] = "../" * depth + "_static/colab-badge.svg"
            image["candidates"] = {"*": image["uri"]}


def setup(app):
    app.connect("doctree-resolved", local_badges)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def build(out: pathlib.Path, quiet: bool = True) -> dict:
    """Build the book into ``out``, replacing an earlier build there (any other non-empty folder is refused).
    Returns {"pages": number of HTML files, "chapters": [...], "seconds": ..., "warnings": [Sphinx's lines]}."""
    from sphinx.cmd.build import build_main

    out = pathlib.Path(out).resolve()
    if out.exists() and any(out.iterdir()) and not (out / ".buildinfo").exists():
        raise ValueError(f"out={str(out)!r} is a non-empty folder that holds no earlier book build (no .buildinfo); "
                         "accepted: a new or empty folder, or one that `./course book` wrote")
    start = time.perf_counter()
    work = out.parent / f".{out.name}-work"
    titles = write_sources(work / "src")
    if out.exists():
        shutil.rmtree(out)
    warnings_file = work / "warnings.txt"
    sys.path.insert(0, str(ROOT))
    args = ["-b", "html", "-E", "-d", str(work / "doctrees"), "-w", str(warnings_file), str(work / "src"), str(out)]
    with warnings.catch_warnings():  # the theme and MyST use Sphinx APIs that Sphinx 11 will remove
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        code = build_main(args + (["-q"] if quiet else []))
    if code != 0:
        raise RuntimeError(f"sphinx-build failed with exit code {code}; its warnings are in {warnings_file}")
    for chapter in titles:  # the download button offers the notebook itself, not the book's copy of it
        shutil.copyfile(ROOT / "chapters" / f"{chapter}.ipynb", out / "_sources" / "chapters" / f"{chapter}.ipynb")
    pages = [page for page in out.rglob("*.html") if "_static" not in page.parts]  # the theme's templates
    return {"pages": len(pages), "chapters": list(titles), "seconds": time.perf_counter() - start,
            "warnings": [line for line in warnings_file.read_text().splitlines() if line.strip()]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "_build" / "book"), help="folder for the HTML site (replaced)")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args(argv)
    result = build(pathlib.Path(args.out).resolve(), quiet=not args.verbose)
    for line in result["warnings"]:
        print("warning:", line)
    print(f"built {result['pages']} pages ({len(result['chapters'])} chapters: {', '.join(result['chapters'])}) "
          f"in {result['seconds']:.0f} s: open {pathlib.Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
