"""Run chapter notebooks on fresh kernels and tabulate wall time and peak memory.

    python -m utils.course.bench                       # every chapter, current profile, prints a table
    python -m utils.course.bench 01_regression --save  # also write the executed notebook (outputs) back
    python -m utils.course.bench --readme              # also refresh the table in README.md

Not a test: timings depend on the machine. Budgets on 2 CPU cores (quick profile): each notebook
<= 3 min and <= 4 GiB, the whole suite <= 15 min.
"""
import argparse
import html
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import time

from . import CHAPTERS, ROOT

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run_one(path: pathlib.Path, save: bool, timeout: int) -> None:
    """Execute one notebook in this process's kernel child; print peak kernel memory (bytes) as JSON."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if save:
        finish_progress_bars(nb)
        nbformat.write(nb, path)
    # ru_maxrss is in KiB on Linux: the largest descendant that has exited, i.e. the kernel.
    print(json.dumps({"peak_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))


def progress_bar_text(model_id: str, state: dict) -> str | None:
    """The final look of a saved progress-bar widget (tqdm's HBox of label, bar and counts) as one text line:
    ``training: 100%|██████████| 660/660 [00:01<00:00, ...]``. None when the widget is something else."""
    model = state.get(model_id, {})
    children = [state.get(child.removeprefix("IPY_MODEL_"), {}) for child in model.get("state", {}).get("children", [])]
    names = [child.get("model_name") for child in children]
    if model.get("model_name") != "HBoxModel" or names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    label, bar, counts = (child["state"] for child in children)
    filled = round(10 * bar["value"] / bar["max"]) if bar.get("max") else 0
    text = f"{html.unescape(label['value'])}|{'█' * filled}{' ' * (10 - filled)}|{html.unescape(counts['value'])}"
    return text.replace("\u2007", " ")


def finish_progress_bars(nb) -> int:
    """Give each saved progress-bar widget the plain-text form of its *final* state; return how many.

    A notebook front end draws the bar from the widget state saved with the notebook, but viewers without
    widgets (GitHub, nbviewer, a terminal) show the text/plain fallback captured when the bar was first drawn:
    a frozen "0%". The final description, bar and counts are in the saved widget state.
    """
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    finished = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            view = out.get("data", {}).get(WIDGET_VIEW)
            text = progress_bar_text(view.get("model_id"), state) if view else None
            if text is not None:
                out["data"]["text/plain"] = text
                finished += 1
    return finished


def bench(chapter: str, save: bool, timeout: int) -> dict:
    path = ROOT / "chapters" / f"{chapter}.ipynb"
    start = time.perf_counter()
    command = [sys.executable, "-m", "utils.course.bench", "--one", str(path), *(["--save"] if save else []),
               "--timeout", str(timeout)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"chapter": chapter, "ok": False, "seconds": seconds, "peak_gib": float("nan"), "error": tail}
    peak = json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"]
    return {"chapter": chapter, "ok": True, "seconds": seconds, "peak_gib": peak / 2**30}


def table(rows: list[dict], profile: str) -> str:
    lines = ["| notebook | profile | wall time | peak memory | result |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['chapter']} | {profile} | {r['seconds']:.0f} s | {r['peak_gib']:.2f} GiB | "
                     f"{'ok' if r['ok'] else 'FAILED'} |")
    total = sum(r["seconds"] for r in rows)
    lines.append(f"| **all** | {profile} | {total:.0f} s | max {max(r['peak_gib'] for r in rows):.2f} GiB | |")
    return "\n".join(lines)


def update_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"README.md has no {README_START} ... {README_END} block to update")
    readme.write_text(pattern.sub(f"{README_START}\n{text}\n{README_END}", content), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help=f"chapters to run (default: all of {', '.join(CHAPTERS)})")
    parser.add_argument("--save", action="store_true", help="write executed notebooks back (refresh outputs)")
    parser.add_argument("--readme", action="store_true", help="refresh the timing table in README.md")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(pathlib.Path(args.one), args.save, args.timeout)
        return 0
    available = [c for c in CHAPTERS if (ROOT / "chapters" / f"{c}.ipynb").exists()]
    unknown = [c for c in args.chapters if c not in available]
    if unknown:
        parser.error(f"unknown or missing chapters {unknown}; available: {', '.join(available)}")
    from ..profile import current

    profile = current()
    os.environ["COURSE_PROFILE"] = profile  # every kernel runs the profile named in the table
    rows = []
    for chapter in args.chapters or available:
        print(f"running {chapter} ({profile}) ...", flush=True)
        rows.append(bench(chapter, args.save, args.timeout))
        if not rows[-1]["ok"]:
            print(rows[-1]["error"], file=sys.stderr)
    text = table(rows, profile)
    print(text)
    if args.readme:
        update_readme(text)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
