"""Every figure in a chapter's prose is backed by the chapter (an output, a code cell, or a quoted line), and the
finder in utils.course.prose catches a figure that is not."""
import pathlib

import pytest

from utils.course import prose

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def notebook(markdown: str, code: str = "", output: str = "") -> dict:
    """A one-markdown, one-code-cell notebook whose code cell printed ``output``."""
    outputs = [{"output_type": "stream", "name": "stdout", "text": output}] if output else []
    return {"cells": [{"cell_type": "markdown", "source": markdown},
                      {"cell_type": "code", "source": code, "outputs": outputs}]}


def flagged(markdown: str, code: str = "", output: str = "") -> list[str]:
    return [f.text for f in prose.unbacked_figures(notebook(markdown, code, output))]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_in_the_prose_is_backed(nb_path):
    missing = prose.unbacked_in_file(nb_path)
    assert not missing, (f"{nb_path.name}: figures in the prose that no output, code cell or quoted line backs; "
                         f"print each from code, or mark the line <!-- quoted: source -->:\n{prose.describe(missing)}")


def test_a_figure_no_output_shows_is_flagged_and_printing_it_backs_it():
    sentence = "The MLP reaches 87.3% test accuracy, a ratio of 1.2e-20 and a ×5 speed-up; its loss is 0.412."
    assert flagged(sentence) == ["87.3%", "1.2e-20", "×5", "0.412"]
    printed = "test accuracy 0.8734\nratio 1.23e-20\nspeed-up 4.8 times\nloss 0.41249"
    assert flagged(sentence, output=printed) == []
    assert flagged(sentence, output="test accuracy 87.3%\nratio 1.2e-20\n5.1\n0.412") == []


def test_a_figure_is_backed_only_at_its_written_precision():
    assert flagged("It scores 0.958.", output="accuracy 0.9556") == ["0.958"]
    assert flagged("It scores 0.96.", output="accuracy 0.9556") == []
    assert flagged("It scores 96%.", output="accuracy 0.9556") == []
    assert flagged("It scores 95.8%.", output="accuracy 0.9556") == ["95.8%"]
    assert flagged("About 0.93 of them.", output="93.0% of them") == []


def test_quoted_figures_are_not_flagged_but_only_on_their_own_line():
    quoted = "BERT-base reached 84.6% on MNLI. <!-- quoted: Devlin et al. 2019, Table 1 -->"
    assert flagged(quoted) == []
    assert flagged(quoted + "\nOurs reached 71.2%.") == ["71.2%"]
    assert flagged("BERT-base reached 84.6% on MNLI. <!-- quoted: -->") == ["84.6%"], "a quote names its source"


def test_maths_code_links_headings_references_and_versions_are_not_figures():
    markdown = ("## 3.1 Losses\nSee §3.2, sections 4.1 and 4.2, chapter 2.5 and Exercise 1.3. With $\\eta = 0.5$,\n"
                "$$\\sigma(0.25)$$ and `lr=0.01`, [the docs](https://example.org/v1.5/page) say Keras 3.13 and\n"
                "torch 2.13 (Python 3.11, numpy 2.1.3) work; 28×28 images, 3 × 3 kernels.\n"
                "```python\nx = 0.75\n```")
    assert flagged(markdown) == []


def test_numbers_are_read_robustly():
    assert flagged("It took 1,234.5 s and −0.25 of it, 1.2 × 10^8 and 3.4×10⁻⁵, 5× and 2x faster.") == [
        "1234.5", "0.25", "1.2 × 10^8", "3.4×10⁻⁵", "5×", "2x"]
    backing = "1234.5\n-0.25\n1.2e+08\n3.4e-05\n5.0\n2.0"
    assert flagged("It took 1,234.5 s and −0.25 of it, 1.2 × 10^8 and 3.4×10⁻⁵, 5× and 2x faster.",
                   output=backing) == []


def test_a_format_spec_in_code_backs_nothing():
    assert flagged("It stalls near 60% exact match.", code='print(f"{bleu:.6f}")') == ["60%"]
    assert flagged("It stalls near 60% exact match.", code="assert exact_match < 0.6") == []


def test_bad_path_is_refused():
    with pytest.raises(ValueError, match="path must be a .ipynb"):
        prose.unbacked_in_file(ROOT / "README.md")
