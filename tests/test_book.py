"""The HTML book's source pages (utils/course/book.py), checked without building or a browser
(tests/test_browser.py builds the site and opens it in Chromium)."""
import pytest
from docutils import nodes
from docutils.utils import new_document

from utils.course import CHAPTERS, ROOT, book, glossary

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_parts_are_cut_by_their_markers_and_a_missing_one_is_named():
    text = ("# Title\n\n<!-- intro:start -->\nIntro line.\n<!-- intro:end -->\n\n<!-- one:start -->\n## One\nfirst\n"
            "### Sub\nstill one\n\n<!-- one:end -->\n## Two\nsecond\n")
    assert book.readme_part(text, "intro") == "Intro line.\n"
    assert book.readme_part(text, "one") == "## One\nfirst\n### Sub\nstill one\n"
    with pytest.raises(ValueError, match="<!-- two:start -->"):  # a heading alone is not a part
        book.readme_part(text, "two")


def test_every_part_the_book_copies_is_marked_in_the_readme_with_its_heading():
    for name in book.LANDING_PARTS + book.LANDING_END_PARTS + book.RUNNING_PARTS:
        part = book.readme_part(README, name)
        assert name == "intro" or part.startswith("## "), f"README part '{name}' must start with its '## ' heading"
        assert "<!--" not in part.replace("<!-- quoted", ""), f"README part '{name}' holds another part's marker"


def test_landing_page_lists_each_chapter_with_its_measured_run_time_and_colab_link():
    times = book.bench_times(README)
    assert times and set(times) <= set(CHAPTERS)
    page = book.landing_page(README, {"01_regression": "Chapter 1 — Regression", "99_unlisted": "Chapter 99"})
    unlisted = next(line for line in page.splitlines() if line.startswith("| [Chapter 99"))
    assert "not measured yet" in unlisted and "colab" not in unlisted  # not in CHAPTERS: no Colab address yet
    row = next(line for line in page.splitlines() if line.startswith("| [Chapter 1"))
    assert f"| {times['01_regression']} |" in row and "colab.research.google.com" in row
    assert "chapters/01_regression" in page.split("```{toctree}")[1]
    for name in book.LANDING_PARTS + book.LANDING_END_PARTS:
        assert book.site_links(book.readme_part(README, name)) in page
    assert page.index("## Who it is for") < page.index("## Chapters") < page.index("## Licence and credits")


def test_a_chapter_missing_from_the_readme_table_is_described_by_its_own_what_you_will_build_line():
    assert book.what_you_build("01_regression").startswith("the normal equation")
    assert book.what_you_build("no_such_chapter") == ""


def test_chapters_come_in_course_order():
    stems = [path.stem for path in book.chapter_paths()]
    assert stems == [c for c in CHAPTERS if c in stems] + sorted(set(stems) - set(CHAPTERS))


def test_running_page_carries_every_named_readme_part_in_order():
    page = book.running_page(README)
    headings = [book.readme_part(README, name).splitlines()[0] for name in book.RUNNING_PARTS]
    assert headings[0] == "## Quick start" and all(f"\n{h}\n" in page for h in headings)
    assert [page.index(f"\n{h}\n") for h in headings] == sorted(page.index(f"\n{h}\n") for h in headings)


def test_site_links_keep_chapters_and_send_other_repository_files_to_github():
    text = ("[a](chapters/01_regression.ipynb) [g](GLOSSARY.md) [d](data/README.md) [w](https://example.org/x) "
            "![img](https://colab.research.google.com/assets/colab-badge.svg) [s](#quick-start)")
    out = book.site_links(text)
    assert "[a](chapters/01_regression.ipynb)" in out and "[g](glossary.md)" in out
    assert "[w](https://example.org/x)" in out and "[s](#quick-start)" in out
    assert "(https://github.com/" in out and "/blob/main/data/README.md)" in out
    assert "![img](https://colab.research.google.com/assets/colab-badge.svg)" in out  # images are not links


def test_glossary_links_become_myst_slugs_without_inline_maths():
    nb = {"cells": [{"cell_type": "markdown", "source": ["### 2.1 Why divide by $\\sqrt{d_k}$?\n"]}]}
    anchor = glossary.section_anchors(nb)["2.1"]
    page = book.glossary_page(f"| scaling | 缩放 | [§2.1](chapters/05_attention.ipynb#{anchor}) |")
    assert "(chapters/05_attention.ipynb#21-why-divide-by-)" in page


def test_notebook_title_is_the_first_top_level_heading():
    nb = {"cells": [{"cell_type": "code", "source": "# not markdown"},
                    {"cell_type": "markdown", "source": ["Intro\n", "# Chapter 9 — Deployment\n", "## 9.1 x"]}]}
    assert book.notebook_title(nb) == "Chapter 9 — Deployment"
    with pytest.raises(ValueError, match="title"):
        book.notebook_title({"cells": [{"cell_type": "markdown", "source": "## only a section"}]})


def test_colab_badge_image_is_served_by_the_site():
    doctree = new_document("chapter")
    badge, other = nodes.image(uri=book.COLAB_BADGE), nodes.image(uri="figure.png")
    doctree += [badge, other]
    book.local_badges(None, doctree, "chapters/01_regression")
    assert badge["uri"] == "../_static/colab-badge.svg" and other["uri"] == "figure.png"


def test_build_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="out=.*no earlier book build"):
        book.build(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_progress_bar_widgets_show_their_final_state_and_other_widgets_their_saved_text():
    state = {
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_c"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": "training:\u200750%"}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": 3.0, "max": 6.0}},
        "c": {"model_name": "HTMLModel", "state": {"value": "\u20073/6\u2007[00:01&lt;00:01]"}},
        "slider": {"model_name": "IntSliderModel", "state": {"value": 4}},
    }
    view = "application/vnd.jupyter.widget-view+json"
    nb = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}},
          "cells": [{"cell_type": "code", "outputs": [
              {"output_type": "display_data", "data": {view: {"model_id": "bar"}, "text/plain": "training: 0%"}},
              {"output_type": "display_data", "data": {view: {"model_id": "slider"}, "text/plain": "IntSlider(4)"}}]}]}
    out = book.static_widgets(nb)
    bar, slider = (o["data"] for o in out["cells"][0]["outputs"])
    assert bar == {"text/plain": "training: 50%|█████     | 3/6 [00:01<00:01]"}
    assert slider == {"text/plain": "IntSlider(4)"}
    assert "widgets" not in out["metadata"] and view in nb["cells"][0]["outputs"][0]["data"]  # input untouched


def test_the_book_needs_no_deep_learning_framework(tmp_path):
    """The Pages workflow installs only requirements-book.txt (Sphinx & co.): writing the sources and loading the
    Sphinx extensions must import none of torch, TensorFlow, numpy & co. (tests/test_browser.py builds the site)."""
    import subprocess
    import sys

    code = ("import pathlib, sys\n"
            "from utils.course import book\n"
            f"book.write_sources(pathlib.Path({str(tmp_path / 'src')!r}))\n"
            "config = book.sphinx_config()\n"
            "import myst_nb, sphinx_book_theme, sphinx.cmd.build, myst_parser.slugs, docutils.nodes  # noqa: F401\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    heavy = {"torch", "tensorflow", "keras", "numpy", "transformers", "sklearn", "scipy", "pandas", "matplotlib"}
    assert not heavy & set(result.stdout.split()), "the book build imports a framework requirements-book.txt lacks"
