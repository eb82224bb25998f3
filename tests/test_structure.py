"""Structure of the course: every chapter has the shared set-up cell, its badge, small outputs, cells run
in order; the install files agree; the README's two commands are what CI runs."""
import json
import pathlib
import re

import pytest

from utils import course

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def cells(nb_path, kind=None):
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if kind is None or c["cell_type"] == kind]


def source(cell):
    return "".join(cell["source"])


def test_every_notebook_is_a_known_chapter():
    assert NOTEBOOKS, "no chapter notebooks found"
    unknown = [p.name for p in NOTEBOOKS if p.stem not in course.CHAPTERS]
    assert not unknown, f"chapters/ holds notebooks that utils.course.CHAPTERS does not list: {unknown}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_and_badge_come_from_utils_course(nb_path):
    code = cells(nb_path, "code")
    assert source(code[0]) == course.SETUP_CELL, "first code cell must be the shared set-up cell: run " \
                                                 "`python -m utils.course sync`"
    first_md = source(cells(nb_path, "markdown")[0])
    assert course.badge(nb_path.stem) in first_md


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_saved_small_in_order_and_clean(nb_path):
    assert nb_path.stat().st_size < 2_000_000, "committed outputs must stay under 2 MB"
    code = cells(nb_path, "code")
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "restart the kernel, run all cells, then save"
    for cell in code:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"saved error output in cell: {source(cell)[:80]}"
    figures = sum("image/png" in out.get("data", {}) for cell in code for out in cell.get("outputs", []))
    assert figures >= 1, "saved without its plots (was it run with a non-inline matplotlib backend?)"
    text = "".join(source(c) for c in cells(nb_path))
    assert not re.search(r"(?<![\w.])(/home/|/Users/|/work/|/tmp/|/root/|[A-Z]:\\\\)", text), "absolute path"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_has_the_course_sections(nb_path):
    headings = " ".join(source(c) for c in cells(nb_path, "markdown")).lower()
    for section in ("pitfalls", "exercises", "summary", "glossary"):
        assert section in headings, f"missing section: {section}"
    assert len([c for c in cells(nb_path, "code") if "# NBVAL_CHECK_OUTPUT" in source(c)]) >= 1


def pins(lines):
    return sorted(ln.split("#")[0].strip().lstrip("- ").strip() for ln in lines
                  if "==" in ln.split("#")[0])


def test_environment_yml_pins_equal_requirements():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    env_text = (ROOT / "environment.yml").read_text()
    assert re.search(r"- python=3\.1[0-3]\n", env_text), "environment.yml must name a Python the launcher supports"
    assert pins(env_text.splitlines()) == req
    assert any(p.startswith("torch==") for p in req), "torch must be pinned exactly (a range pulls a CUDA build)"


def quick_start_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"#+[^\n]*quick ?start[^\n]*\n(.*?)(?=\n#+ |\Z)", readme, re.I | re.S).group(1)
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_readme_quick_start_has_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert commands == ["./course lab", "./course test"]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_lists_every_chapter():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for nb_path in NOTEBOOKS:
        assert f"chapters/{nb_path.name}" in readme


def test_colab_installs_pins_that_are_missing_or_at_another_version_and_never_its_own_frameworks():
    installed = {"transformers": "4.57.0", "tokenizers": "0.23.3", "torch": "2.8.0", "nltk": None}
    text = "torch==2.13.0\ntransformers==5.24.0  # PyTorch only\ntokenizers==0.23.3\nnltk==3.10.4\n\nnbval==0.11.0\n"
    assert course.packages_to_install(text, installed.get) == ["transformers==5.24.0", "nltk==3.10.4"]
    pins = (course.ROOT / "requirements.txt").read_text()
    assert {"torch", "tensorflow", "numpy"} <= course.COLAB_SKIP
    assert course.frozen_versions(installed.get) == ["torch==2.8.0"]  # pip constraints: Colab's builds stay
    to_install = course.packages_to_install(pins, lambda name: None)
    assert to_install and all(line.split("==")[0] not in course.COLAB_SKIP for line in to_install)
