"""The machinery that builds and checks the course (a learner never imports it): where the course lives, its
chapters, the Colab badge and the set-up cell (here), run times (``bench``, ``speed``), student editions
(``student``), the glossary (``glossary``), the HTML book (``book``) and the check that every figure in the prose is
backed (``prose``). ``./course`` runs them.

Facts about the course itself: where it lives, its chapters, the Colab badge and the set-up cell.

The repository address is written here and nowhere else: the badge and set-up cell of every notebook
are generated from it (``python -m utils.course sync``), and ``tests/test_structure.py`` checks them.
"""
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO_SLUG = "regression-to-bert/regression-to-bert"  # GitHub owner/name; a fork changes only this line
BRANCH = "main"
REPO_URL = f"https://github.com/{REPO_SLUG}"
ROOT = pathlib.Path(__file__).resolve().parents[2]
CHAPTERS = ["01_regression", "02_mlp", "03_cnn", "04_rnn", "05_attention", "06_bert", "07_gpt", "08_scaling",
            "09_deployment"]

# Colab ships its own builds of these; reinstalling them breaks the runtime, so we never touch them. The rest,
# from pytest on, are for developing the course (tests, lint, slides, the HTML book), not for running it.
COLAB_SKIP = {"torch", "tensorflow", "keras", "tensorboard", "numpy", "scipy", "pandas", "matplotlib", "jupyterlab",
              "ipykernel", "ipywidgets", "nbformat", "nbclient", "pytest", "nbval", "ruff", "jupyterlab-rise",
              "sphinx", "myst-parser", "myst-nb", "pydata-sphinx-theme", "sphinx-book-theme",
              "jupyter-server-mathjax", "playwright"}

SETUP_MARKER = "# Set-up: identical in every chapter"
SETUP_CELL = f'''{SETUP_MARKER} (tests/test_structure.py checks; edit utils/course/__init__.py, then sync).
# Finds the course's `utils` package (or fetches the repository in Colab), then seeds and picks devices.
import pathlib
import subprocess
import sys

REPO_URL = "{REPO_URL}"
here = pathlib.Path.cwd()
root = next((p for p in (here, *here.parents) if (p / "utils" / "course" / "__init__.py").exists()), None)
if root is None and "google.colab" in sys.modules:  # Colab: clone once, next to the notebook
    root = here / "{REPO_SLUG.split("/")[1]}"
    if not root.exists():
        subprocess.run(["git", "clone", "-q", "--depth=1", REPO_URL, str(root)], check=True)
if root is None:
    raise RuntimeError(f"Can't find the course's utils/ package in {{here}} or above: start Jupyter in the repository.")
sys.path.insert(0, str(root))
import utils
utils.install_missing()  # Colab only: installs what Colab lacks, never its torch/TensorFlow/numpy
ENV = utils.setup(seed=0)  # threads, device, profile, seeds; prints versions'''


def colab_url(chapter: str) -> str:
    """The Colab address that opens ``chapters/<chapter>.ipynb`` from GitHub."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; accepted: {', '.join(CHAPTERS)}")
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/chapters/{chapter}.ipynb"


def badge(chapter: str) -> str:
    """Markdown for the 'Open in Colab' badge of a chapter."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(chapter)})"


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def packages_to_install(requirements_text: str, version_of=installed_version) -> list[str]:
    """The pinned lines (``name==version``) of a requirements text that are missing or installed at another
    version, leaving out ``COLAB_SKIP``. ``version_of(name)`` returns the installed version or None."""
    needed = []
    for line in requirements_text.splitlines():
        req = line.split("#")[0].strip()
        if not req:
            continue
        name, _, pinned = req.partition("==")
        if name not in COLAB_SKIP and version_of(name) != pinned:
            needed.append(req)
    return needed


def frozen_versions(version_of=installed_version) -> list[str]:
    """``name==version`` for each ``COLAB_SKIP`` package that is installed: a pip constraints list that keeps
    the runtime's own builds in place while other packages are installed."""
    return [f"{name}=={version}" for name in sorted(COLAB_SKIP) if (version := version_of(name)) is not None]


def install_missing(requirements: pathlib.Path = ROOT / "requirements.txt", force: bool = False) -> list[str]:
    """In Colab (or when ``force``), pip-install the pinned packages that are missing or at another version
    (Colab's own transformers, for one, can be a major version behind the one the course is tested with).

    Packages Colab provides (torch, TensorFlow, numpy, ...) are never installed or replaced: they are passed to
    pip as constraints at their installed versions. If pip cannot satisfy both, nothing is installed and a
    warning says so (the notebook then runs with the runtime's versions). Returns the lines installed.
    """
    if not force and "google.colab" not in sys.modules:
        return []
    needed = packages_to_install(requirements.read_text())
    if not needed:
        return []
    print("Installing the pinned versions this runtime lacks:", ", ".join(needed))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(frozen_versions()) + "\n")
    try:
        result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", constraints.name, *needed])
    finally:
        os.unlink(constraints.name)
    if result.returncode != 0:
        print(f"WARNING: pip could not install {', '.join(needed)} (see its message above; this runtime's own torch, "
              "TensorFlow and numpy were held at their versions); continuing with the versions already installed.")
        return []
    importlib.invalidate_caches()
    return needed


def slide_type(cell: dict) -> str | None:
    """RISE slide type for a cell: chapter title and sections start slides, subsections sub-slides."""
    if cell["cell_type"] != "markdown":
        return None
    first = "".join(cell["source"]).lstrip().split("\n", 1)[0]
    if first.startswith(("# ", "## ")):
        return "slide"
    if first.startswith("### "):
        return "subslide"
    return None


def sync_notebook(path: pathlib.Path) -> bool:
    """Rewrite a chapter's badge line, set-up cell and slide metadata from this module. True if it changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    chapter = path.stem
    changed = False
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        kind = slide_type(cell)
        if kind and cell["metadata"].get("slideshow", {}).get("slide_type") != kind:
            cell["metadata"]["slideshow"] = {"slide_type": kind}
            changed = True
        if cell["cell_type"] == "markdown" and "colab.research.google.com" in src:
            lines = [badge(chapter) if "colab-badge" in ln else ln for ln in src.split("\n")]
            new = "\n".join(lines)
        elif cell["cell_type"] == "code" and src.startswith(SETUP_MARKER):
            new = SETUP_CELL
        else:
            continue
        if new != src:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed
