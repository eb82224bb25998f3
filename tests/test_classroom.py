"""Classroom features: student editions, slides, glossary, reproducible runs, TensorBoard logs."""
import json
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from utils import course
from utils.course import glossary, student

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def src(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_have_solutions_and_checks(nb_path):
    cells = load(nb_path)["cells"]
    solutions = [i for i, c in enumerate(cells) if student.is_solution(c)]
    assert len(solutions) >= 3, "each chapter has at least three exercises with solutions"
    for i in solutions:
        names = student.answer_names(src(cells[i]))
        assert src(cells[i]).startswith(student.SOLUTION_MARKER) and names
        check = next(c for c in cells[i + 1:] if c["cell_type"] == "code")
        for name in names:
            assert ("check_answer(" in src(check) or "check_property(" in src(check)) and name in src(check), \
                f"no self-check of {name}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_is_valid_and_has_no_solution_code(nb_path):
    teacher = load(nb_path)
    edition = student.student_edition(teacher)
    nbformat.validate(nbformat.from_dict(edition))
    text = "\n".join(src(c) for c in edition["cells"])
    for cell, blank in zip(teacher["cells"], edition["cells"], strict=True):
        if student.is_solution(cell):
            assert not blank["outputs"]
            for line in src(cell).splitlines():
                code = line.strip()
                if code and not code.startswith("#") and not code.endswith("= None"):
                    assert code not in text, f"solution line left in the student edition: {code}"


@pytest.mark.integration  # executes a whole student edition: about a minute
def test_student_edition_checks_fail_blank_and_the_rest_runs_like_the_teacher_edition(tmp_path):
    """Runs chapter 1 twice on fresh kernels: once as the student edition, once as written.

    In the student edition every self-check must fail with 'no answer yet' and nothing else may fail;
    and every printed line outside the exercises must be identical in both runs (reproducible on CPU).
    """
    path = ROOT / "chapters" / "01_regression.ipynb"
    runs = {}
    for edition in ("student", "teacher"):
        nb = load(path)
        if edition == "student":
            nb = student.student_edition(nb)
        nb = nbformat.reads(json.dumps(nb), as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        runs[edition] = nb
    cells = load(path)["cells"]
    solution_idx = {i for i, c in enumerate(cells) if student.is_solution(c)}
    check_idx = {min(j for j in range(i + 1, len(cells)) if cells[j]["cell_type"] == "code") for i in solution_idx}

    def printed(cell):  # stdout and error names; how the stream was chunked may differ between runs
        return "".join("".join(o.get("text", "")) if o["output_type"] == "stream" else o.get("ename", "")
                       for o in cell.get("outputs", [])
                       if o["output_type"] in ("stream", "error") and o.get("name") != "stderr")

    for i, (s_cell, t_cell) in enumerate(zip(runs["student"].cells, runs["teacher"].cells, strict=True)):
        errors = [o for o in s_cell.get("outputs", []) if o["output_type"] == "error"]
        if i in check_idx:
            assert errors and "no answer yet" in errors[0]["evalue"], f"check cell {i} did not fail when blank"
        else:
            assert not errors, f"cell {i} failed in the student edition: {errors[:1]}"
            assert not [o for o in t_cell.get("outputs", []) if o["output_type"] == "error"]
        if i not in check_idx | solution_idx and s_cell["cell_type"] == "code":
            assert printed(s_cell) == printed(t_cell), f"cell {i} printed different numbers in two runs"


def test_student_edition_and_sync_keep_cell_tags(tmp_path):
    """nbval's nbval-check-output and the solution marker are cell tags: neither rewrite of a chapter may drop one."""
    path = NOTEBOOKS[0]
    teacher = load(path)
    tags = [c["metadata"].get("tags") for c in teacher["cells"]]
    assert {"nbval-check-output", student.SOLUTION_TAG} <= {tag for cell_tags in tags for tag in cell_tags or []}
    assert [c["metadata"].get("tags") for c in student.student_edition(teacher)["cells"]] == tags
    for cell in teacher["cells"]:
        cell["metadata"].pop("slideshow", None)  # so that sync has something to rewrite
    copy = tmp_path / path.name
    copy.write_text(json.dumps(teacher), encoding="utf-8")
    assert course.sync_notebook(copy)
    assert [c["metadata"].get("tags") for c in load(copy)["cells"]] == tags


def test_write_student_editions(tmp_path):
    written = student.write_student_editions(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    with pytest.raises(ValueError, match="_answer"):
        student.blank_solution("# SOLUTION\nx = 1")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_section_headings_carry_slide_metadata(nb_path):
    for cell in load(nb_path)["cells"]:
        kind = course.slide_type(cell)
        if kind:
            assert cell["metadata"].get("slideshow", {}).get("slide_type") == kind, src(cell)[:60]


def test_glossary_is_current_and_every_link_resolves():
    text = glossary.build()  # raises if a term points to a section its chapter does not have
    assert (ROOT / "GLOSSARY.md").read_text(encoding="utf-8") == text, "run `python -m utils.course.glossary`"
    for path in NOTEBOOKS:
        anchors = glossary.section_anchors(load(path))
        rows = glossary.glossary_rows(load(path))
        assert len(rows) >= 10
        for _english, _chinese, section in rows:
            assert f"chapters/{path.name}#{anchors[section]})" in text


def test_fit_writes_tensorboard_logs(tmp_path):
    import numpy as np

    from utils.regression import fit_softmax_regression

    rng = np.random.default_rng(0)
    fit_softmax_regression(rng.normal(size=(32, 3)), rng.integers(0, 2, 32), 2, epochs=2, log_dir=tmp_path / "run")
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
