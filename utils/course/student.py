"""Student editions: every chapter with its worked solutions taken out.

    python -m utils.course.student                 # writes student/<chapter>.ipynb for every chapter
    python -m utils.course.student --out handout   # another folder

A solution is a code cell tagged ``solution`` whose source starts with ``# SOLUTION``. It must assign one or
more top-level names ending in ``_answer``. In the student edition its code is replaced by a short prompt
and those names are set to ``None``, so the self-check cell that follows says "no answer yet" until the
learner writes their own. Outputs of solution and check cells are cleared; every other cell is unchanged.
"""
import argparse
import ast
import copy
import json
import pathlib
import sys

from . import ROOT

SOLUTION_TAG, SOLUTION_MARKER = "solution", "# SOLUTION"


def is_solution(cell: dict) -> bool:
    return cell["cell_type"] == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def answer_names(source: str) -> list[str]:
    """Top-level names ending in ``_answer`` that a solution assigns, in order."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            for leaf in ast.walk(target) if target is not None else []:
                if isinstance(leaf, ast.Name) and leaf.id.endswith("_answer") and leaf.id not in names:
                    names.append(leaf.id)
    return names


def blank_solution(source: str) -> str:
    names = answer_names(source)
    if not source.startswith(SOLUTION_MARKER) or not names:
        raise ValueError(f"a solution cell must start with {SOLUTION_MARKER!r} and assign names ending in "
                         f"'_answer'; got:\n{source[:200]}")
    return "\n".join(["# Your solution here: replace None (see the exercise above).",
                      *(f"{name} = None" for name in names)])


def student_edition(nb: dict) -> dict:
    """A copy of notebook ``nb`` (nbformat JSON) with solutions blanked and their outputs cleared."""
    nb = copy.deepcopy(nb)
    clear_next_code_cell = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        if is_solution(cell):
            cell["source"] = blank_solution("".join(cell["source"]))
            cell["outputs"], cell["execution_count"] = [], None
            clear_next_code_cell = True
        elif clear_next_code_cell:  # the self-check: its saved "✓ correct" belongs to the solution
            cell["outputs"], cell["execution_count"] = [], None
            clear_next_code_cell = False
    return nb


def write_student_editions(out: pathlib.Path) -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        target = out / path.name
        target.write_text(json.dumps(student_edition(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "student"), help="folder for the student editions")
    args = parser.parse_args(argv)
    for path in write_student_editions(pathlib.Path(args.out)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
