"""Every comparison in a chapter goes through utils.stats (utils/course/comparisons.py finds those that do not).

A code finding is an ``assert`` ordering two measured quantities without ``stats.require``, or a standard error
written out by hand; a prose finding is a sentence claiming that one thing beats another in a section that prints
no verdict. Sections not yet converted are listed in NOT_YET_CONVERTED; the chapter-reading issues empty it. The
list only shrinks: a listed section that has no finding any more must be removed from it.
"""
import json
import pathlib

import pytest

from utils.course import comparisons

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))

# (chapter, "## " heading) of each section whose comparisons still await their chapter's reading (issues 29, 30, 37)
NOT_YET_CONVERTED = {
    ('01_regression', '## 1. Linear regression'),
    ('01_regression', '## 5. Over-fitting and regularisation'),
    ('01_regression', '## 6. Pitfalls'),
    ('01_regression', '## 8. Summary'),
    ('02_mlp', ''),
    ('02_mlp', '## 11. Summary'),
    ('02_mlp', '## 3. Initialisation'),
    ('02_mlp', '## 4. Optimisers from scratch'),
    ('02_mlp', '## 5. Learning-rate schedules'),
    ('02_mlp', '## 6. Regularisation in networks'),
    ('02_mlp', '## 9. Pitfalls'),
    ('03_cnn', ''),
    ('03_cnn', '## 10. Summary'),
    ('03_cnn', '## 2. The convolution formula: channels, padding, stride, pooling'),
    ('03_cnn', '## 5. Batch normalisation'),
    ('03_cnn', '## 8. Pitfalls'),
    ('04_rnn', ''),
    ('04_rnn', '## 2. Back-propagation through time: vanishing and exploding gradients'),
    ('04_rnn', '## 4. Task 1: forecasting the yearly sunspot number'),
    ('04_rnn', '## 5. Task 2: a character-level language model'),
    ('04_rnn', '## 6. Pitfalls'),
    ('04_rnn', '## 8. Summary'),
    ('05_attention', '## 10. Exercises'),
    ('05_attention', '## 2. Scaled dot-product attention'),
    ('05_attention', '## 7. A real task: reading dates'),
    ('05_attention', '## 9. Pitfalls'),
    ('06_bert', ''),
    ('06_bert', '## 1. From word vectors to contextual vectors'),
    ('06_bert', '## 4. Pre-training from scratch: masked LM and next-sentence prediction'),
    ('06_bert', '## 5. Fine-tuning on a real task: the sentiment of words never seen in training'),
    ('06_bert', '## 6. Pitfalls'),
    ('06_bert', '## 8. Summary'),
    ('07_gpt', "## 1. The corpus: Python's standard library, split by file"),
    ('07_gpt', '## 11. Summary'),
    ('07_gpt', '## 2. Byte-level BPE from scratch'),
    ('07_gpt', '## 4. Training: predict the next token'),
    ('07_gpt', '## 6. The KV cache'),
    ('07_gpt', '## 9. Pitfalls'),
    ('08_scaling', '## 2. Gradient accumulation'),
    ('08_scaling', '## 4. Mixed precision: bfloat16 on the CPU'),
    ('08_scaling', '## 5. Data parallelism with the real engine'),
    ('09_deployment', ''),
    ('09_deployment', '## 3. LoRA: fine-tuning through a low-rank update'),
    ('09_deployment', '## 4. Quantisation: int8 weights'),
    ('09_deployment', '## 7. Pitfalls'),
    ('09_deployment', '## 8. Exercises'),
}


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_comparisons_go_through_stats_outside_the_sections_not_yet_converted(nb_path):
    found = comparisons.scan_file(nb_path)
    new = [f for f in found if (nb_path.stem, f.section) not in NOT_YET_CONVERTED]
    assert not new, ("compare through utils.stats (stats.paired_seeds / mcnemar / paired_bootstrap, print the "
                     "verdict, assert with stats.require; mark a fixed bound '# threshold' and an identity "
                     "'# identity'):\n" + "\n".join(f"{f.section} | {f.kind}: {f.text}" for f in new))
    listed = {section for chapter, section in NOT_YET_CONVERTED if chapter == nb_path.stem}
    converted = listed - {f.section for f in found}
    assert not converted, f"no finding left in {sorted(converted)}: remove them from NOT_YET_CONVERTED"


def fixture(name):
    return json.loads((FIXTURES / f"comparisons_{name}.json").read_text(encoding="utf-8"))


def test_chapter_3_cells_48_49_as_they_were_fail_and_their_fixed_version_passes():
    kinds = sorted({f.kind for f in comparisons.scan(fixture("ch3_cells_48_49_before"))})
    assert kinds == ["code", "prose"]
    assert any("raised the mean validation accuracy" in f.text for f in comparisons.scan(fixture(
        "ch3_cells_48_49_before")))
    assert comparisons.scan(fixture("ch3_cells_48_49_after")) == []


def test_chapter_9s_home_made_verdict_rule_fails_and_the_stats_version_in_the_chapter_passes():
    before = comparisons.scan(fixture("ch9_cell_22_before"))
    assert [f.text for f in before if f.kind == "code"] == [
        'gap, paired_se = paired.mean(), paired.std(ddof=1) / np.sqrt(len(paired))']  # its hand-made standard error
    chapter = json.loads((ROOT / "chapters" / "09_deployment.ipynb").read_text(encoding="utf-8"))
    cell = next(c for c in chapter["cells"] if "lora_vs_full = stats.paired_seeds" in "".join(c["source"]))
    assert comparisons.code_findings("".join(cell["source"])) == []
    assert comparisons.VERDICT.search("".join("".join(o.get("text", "")) for o in cell["outputs"]))


@pytest.mark.parametrize("code, flagged", [
    ("assert acc_a > acc_b", True),
    ("assert (a - b).mean() > 0", True),
    ("assert x.mean() > max(y, np.mean(z))", True),
    ("assert all((s[n] - s[o]).mean() > 0 for n, o in pairs)", True),
    ("se = d.std(ddof=1) / np.sqrt(len(d))", True),
    ("assert acc >= CFG.target_accuracy", False),
    ("assert loss < 0.5 and len(x) > 3", False),
    ("assert diff < tol  # identity: equal to float32 precision", False),
    ("assert gap > 0  # threshold", False),
    ("assert stats.require(c).low > 0", False),
    ("assert a == b", False),
])
def test_the_code_rule_on_small_cases(code, flagged):
    assert bool(comparisons.code_findings(code)) is flagged


def test_a_claim_is_accepted_only_in_a_section_that_prints_a_verdict():
    claim = {"cell_type": "markdown", "source": "## 2. Models\nThe MLP beats softmax regression.\n"}
    verdict = "MLP better: accuracy MLP \u2212 softmax = +3.37 (95% interval +2.33 to +4.41, paired t, ...)\n"
    code = {"cell_type": "code", "source": "print(c)", "outputs": [{"output_type": "stream", "text": verdict}]}
    assert [f.kind for f in comparisons.scan({"cells": [claim]})] == ["prose"]
    assert comparisons.scan({"cells": [claim, code]}) == []
    other = {"cell_type": "markdown", "source": "## 3. Elsewhere\n"}
    assert [f.kind for f in comparisons.scan({"cells": [code, other, claim]})] == ["prose"]
