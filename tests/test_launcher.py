"""The `./course` launcher picks a supported Python for a new .venv, or says exactly how to get one.

Each test copies the launcher into an empty folder (so no .venv exists there) and runs it with a PATH holding
stand-in interpreters: scripts that answer the launcher's version question with a chosen version and otherwise
hand over to the real Python running these tests.
"""
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAUNCHER = (ROOT / "course").read_text()
SUPPORTED = re.search(r'^PY_SUPPORTED="([^"]+)"', LAUNCHER, re.M).group(1).split()


def fake_python(folder: pathlib.Path, name: str, version: str) -> None:
    """A `name` on PATH that reports `version` to the launcher's probe and is the real Python otherwise."""
    script = folder / name
    script.write_text(f"""#!/bin/bash
if [[ "$1" == "-c" && "$2" == *version_info* ]]; then echo {version}; exit 0; fi
if [[ "$1" == "--version" ]]; then echo "Python {version}.0"; exit 0; fi
exec {sys.executable} "$@"
""")
    script.chmod(0o755)


def run_launcher(tmp_path, interpreters: dict, extra_env=None):
    course_dir, bin_dir = tmp_path / "course", tmp_path / "bin"
    course_dir.mkdir()
    bin_dir.mkdir()
    (course_dir / "course").write_text(LAUNCHER)
    (course_dir / "requirements.txt").write_text("")  # nothing to install: the test is about the interpreter
    for name, version in interpreters.items():
        fake_python(bin_dir, name, version)
    tools = pathlib.Path(tmp_path / "tools")
    tools.mkdir()
    for tool in ("bash", "sha256sum", "cut", "cat", "sort", "printf", "dirname", "sed", "env"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found.startswith("/"):
            (tools / tool).symlink_to(found)
    env = {"PATH": f"{bin_dir}:{tools}", "HOME": str(tmp_path), **(extra_env or {})}
    return subprocess.run(["bash", str(course_dir / "course"), "python", "-c", "print('ran')"], env=env,
                          capture_output=True, text=True, timeout=300), course_dir


def test_supported_range_is_the_one_the_readme_environment_yml_and_pyproject_state():
    from packaging.specifiers import SpecifierSet

    assert SUPPORTED == ["3.11", "3.12", "3.13"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Python {SUPPORTED[0]}–{SUPPORTED[-1]}" in readme
    env_python = re.search(r"- python=(3\.\d+)", (ROOT / "environment.yml").read_text()).group(1)
    assert env_python in SUPPORTED
    said = re.search(r"environment\.yml`? \(Python (3\.\d+)\)", readme)
    assert said and said.group(1) == env_python, "the README must say which Python environment.yml creates"
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    allowed = [f"3.{minor}" for minor in range(30) if any(requires.contains(f"3.{minor}.{p}") for p in (0, 99))]
    assert allowed == SUPPORTED, f"pyproject.toml's requires-python = {requires} allows {allowed}, the launcher " \
                                 f"{SUPPORTED}"


def test_a_python3_outside_the_range_with_no_other_gets_a_way_out_and_nothing_is_created(tmp_path):
    result, course_dir = run_launcher(tmp_path, {"python3": "3.14"})
    assert result.returncode == 2
    assert "found Python 3.14" in result.stderr and "3.11, 3.12, 3.13" in result.stderr
    assert "COURSE_PYTHON=python3.13 ./course lab" in result.stderr and "environment.yml" in result.stderr
    assert not (course_dir / ".venv").exists()


def test_a_python3_outside_the_range_picks_the_newest_supported_one_on_path(tmp_path):
    result, course_dir = run_launcher(tmp_path, {"python3": "3.14", "python3.11": "3.11", "python3.12": "3.12"})
    assert result.returncode == 0, result.stderr
    assert "python3 is 3.14" in result.stderr and "using python3.12" in result.stderr
    assert result.stdout.strip() == "ran" and (course_dir / ".venv" / "bin" / "python").exists()


def test_course_python_outside_the_range_is_refused_by_name(tmp_path):
    result, _ = run_launcher(tmp_path, {"python3": "3.11", "python3.9": "3.9"}, {"COURSE_PYTHON": "python3.9"})
    assert result.returncode == 2
    assert "COURSE_PYTHON=python3.9 is Python 3.9" in result.stderr and "3.13" in result.stderr


def test_a_course_python_that_does_not_run_is_named_not_a_silent_exit(tmp_path):
    # A missing command made the version probe fail, and `set -e` ended the script with no word at all.
    result, course_dir = run_launcher(tmp_path, {"python3": "3.11"}, {"COURSE_PYTHON": "python3.99"})
    assert result.returncode == 2
    assert "COURSE_PYTHON=python3.99 is not a working Python" in result.stderr and "3.13" in result.stderr
    assert not (course_dir / ".venv").exists()


def test_no_python3_at_all_still_gets_the_way_out(tmp_path):
    result, _ = run_launcher(tmp_path, {})
    assert result.returncode == 2
    assert "found Python none" in result.stderr and "COURSE_PYTHON=python3.13 ./course lab" in result.stderr


def linux_tags(version: str) -> set:
    """Every wheel tag pip accepts for CPython ``version`` on 64-bit Linux with glibc 2.17-2.39."""
    from packaging import tags

    python_version = tuple(int(x) for x in version.split("."))
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(39, 16, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    return set(tags.cpython_tags(python_version, platforms=platforms)) | set(
        tags.compatible_tags(python_version, "cp" + version.replace(".", ""), platforms=platforms))


def wheel_files(name: str) -> list[str]:
    """File names of every release of ``name`` on the package index (PEP 691 JSON simple API)."""
    import urllib.request

    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(f"{index}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return [f["filename"] for f in json.load(response)["files"]]


def pins_for(version: str) -> set[tuple[str, str]]:
    """(name, version) that pip installs on CPython ``version`` (any patch release), Linux x86-64: every pin of
    requirements.txt and every line of constraints.txt whose environment marker holds there."""
    from packaging.markers import Marker, default_environment
    from packaging.utils import canonicalize_name

    found = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            name, pinned = line.split("#")[0].strip().split("==")
            found.add((canonicalize_name(name), pinned))
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        requirement, _, marker = line.split("#")[0].partition(";")
        if "==" not in requirement or line.startswith(" "):
            continue
        name, pinned = (part.strip() for part in requirement.split("=="))
        for patch in ("0", "99"):  # markers such as python_full_version < '3.11.5' split a minor version
            env = default_environment() | {"python_version": version, "python_full_version": f"{version}.{patch}",
                                           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                                           "platform_machine": "x86_64", "implementation_name": "cpython",
                                           "platform_python_implementation": "CPython"}
            if not marker.strip() or Marker(marker).evaluate(env):
                found.add((canonicalize_name(name), pinned))
    return found


@pytest.mark.integration
@pytest.mark.skipif(os.environ.get("CI") != "true" and os.environ.get("COURSE_CHECK_WHEELS") != "1",
                    reason="asks the package index (runs in CI, or with COURSE_CHECK_WHEELS=1)")
def test_every_pin_and_constraint_has_a_linux_wheel_for_each_supported_python():
    """For each pin of requirements.txt and constraints.txt that applies, a wheel (no source build) whose tags fit
    each supported CPython on Linux x86-64."""
    from concurrent.futures import ThreadPoolExecutor

    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    def tags_of(name: str, pinned: str) -> set:
        found = set()
        for filename in files[name]:
            try:
                _, release, _, tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:  # an sdist, or an old release's non-standard name
                continue
            if str(release) == pinned:
                found |= set(tags)
        return found

    try:
        wheel_files("pip")
    except OSError as error:
        pytest.skip(f"the package index cannot be reached ({error}); nothing was checked")
    wanted = {version: pins_for(version) for version in SUPPORTED}
    names = sorted({name for pins in wanted.values() for name, _ in pins})
    def patiently(name: str) -> list[str]:  # a busy resolver can drop one of many parallel lookups: ask again
        for attempt in range(4):
            try:
                return wheel_files(name)
            except OSError:
                if attempt == 3:
                    raise
                time.sleep(2.0 * (attempt + 1))

    with ThreadPoolExecutor(4) as pool:
        files = dict(zip(names, pool.map(patiently, names), strict=True))
    missing = []
    for version, pins in wanted.items():
        tag_set = linux_tags(version)
        for name, pinned in sorted(pins):
            if not tag_set & tags_of(name, pinned):
                missing.append(f"{name}=={pinned} on Python {version}")
    assert not missing, "no Linux x86-64 wheel for: " + ", ".join(missing)


def test_lab_turns_jupyter_news_and_update_checks_off_without_writing_to_home(tmp_path):
    """`./course lab` hands JupyterLab default settings with news and update checks off (it runs offline, on pinned
    versions), through JUPYTER_CONFIG_PATH; a stand-in Python reports what JupyterLab would have been given."""
    course_dir, env_dir, home = tmp_path / "course", tmp_path / "env", tmp_path / "home"
    (env_dir / "bin").mkdir(parents=True)
    course_dir.mkdir()
    (course_dir / "course").write_text(LAUNCHER)
    (course_dir / "requirements.txt").write_text("")
    (env_dir / ".course-requirements.sha256").write_text(hashlib.sha256(b"").hexdigest() + "\n")  # nothing to install
    report = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ.get('JUPYTER_CONFIG_PATH')]))"
    (env_dir / "bin" / "python").write_text(f'#!/bin/bash\nexec {sys.executable} -c "{report}" "$@"\n')
    (env_dir / "bin" / "python").chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "VIRTUAL_ENV": str(env_dir), "JUPYTER_CONFIG_PATH": "/theirs"}
    result = subprocess.run(["bash", str(course_dir / "course"), "lab", "--no-browser"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    argv, config_path = json.loads(result.stdout)
    assert argv[:2] == ["-m", "jupyterlab"] and argv[-1] == "--no-browser"
    ours = course_dir / "utils" / "course" / "jupyter"
    assert config_path == f"{ours}{os.pathsep}/theirs", "the course's config comes first, the learner's path stays"
    overrides_file = ROOT / ours.relative_to(course_dir) / "labconfig" / "default_setting_overrides.json"
    overrides = json.loads(overrides_file.read_text())["@jupyterlab/apputils-extension:notification"]
    assert overrides == {"fetchNews": "false", "checkForUpdates": False}
    # the installed JupyterLab still names these settings so (fetchNews "none" is the first-start question)
    import jupyterlab

    schema_file = pathlib.Path(jupyterlab.__file__).parent / "schemas/@jupyterlab/apputils-extension/notification.json"
    schema = json.loads(schema_file.read_text())["properties"]
    assert schema["fetchNews"]["default"] == "none"
    assert {"const": "false", "title": "Never"} in schema["fetchNews"]["oneOf"]
    assert schema["checkForUpdates"]["type"] == "boolean"
    assert not home.exists(), "nothing may be written to the learner's home"


def test_gpu_check_refuses_clearly_without_a_gpu_and_runs_nothing(tmp_path):
    """`./course gpu-check` asks PyTorch for CUDA first; without it, it says so and runs no test."""
    course_dir, env_dir = tmp_path / "course", tmp_path / "env"
    (env_dir / "bin").mkdir(parents=True)
    course_dir.mkdir()
    (course_dir / "course").write_text(LAUNCHER)
    (course_dir / "requirements.txt").write_text("")
    (env_dir / ".course-requirements.sha256").write_text(hashlib.sha256(b"").hexdigest() + "\n")
    ran = tmp_path / "ran"
    # a stand-in Python: the CUDA probe answers "no GPU" (exit 3); anything else would record that it ran
    (env_dir / "bin" / "python").write_text(f'#!/bin/bash\nif [[ "$1" == "-c" && "$2" == *cuda* ]]; then exit 3; fi\n'
                                            f'echo "$@" >> {ran}\n')
    (env_dir / "bin" / "python").chmod(0o755)
    result = subprocess.run(["bash", str(course_dir / "course"), "gpu-check"], capture_output=True, text=True,
                            env={**os.environ, "VIRTUAL_ENV": str(env_dir)}, timeout=60)
    assert result.returncode == 2 and "needs a CUDA GPU" in result.stderr and "Nothing was run" in result.stderr
    assert not ran.exists()
