"""The course's own text corpus: a pinned snapshot of Python 3.11.7's standard library, shipped in ``data/``.

Chapters 4, 6 and 7 learn from Python's own text: its help topics (``pydoc_data/topics.py``) and its source
files. Reading them from the *running* interpreter made every figure depend on the Python version (3.13's files
differ, so its BPE merges, models and printed numbers differed, and one check failed). The chapters therefore read
one frozen copy, identical on every supported Python::

    files = utils.corpus.stdlib_files()          # {"argparse.py": "...", "json/__init__.py": "...", ...}
    topics = utils.corpus.pydoc_topics()         # {"assert": "The \\"assert\\" statement\\n...", ...}
    source = utils.corpus.module_source("textwrap")

The snapshot (``data/python-3.11.7-stdlib.tar.xz``) holds every ``.py`` file of CPython 3.11.7's ``Lib/`` except
the test suites, IDLE, ``site-packages`` and the ``encodings`` codec tables, plus Python's ``LICENSE.txt`` (the PSF
licence, which allows redistribution with that notice). It is checked against its sha256 every time it is read, so a
damaged or edited copy fails loudly instead of silently changing the chapters' numbers. ``python -m utils.corpus
build`` rebuilds it byte for byte from a Python 3.11.7 installation (``data/README.md``).
"""
import ast
import functools
import hashlib
import io
import pathlib
import sys
import tarfile

VERSION = "3.11.7"
ARCHIVE = pathlib.Path(__file__).resolve().parents[1] / "data" / f"python-{VERSION}-stdlib.tar.xz"
SHA256 = "b6e0d97267311407f202a637d2eac7507efeb7bfdffa26e71856ec7e59f2c132"
SKIPPED = ("test", "tests", "idlelib", "site-packages", "__pycache__", "encodings")  # folder names left out
LICENSE = "LICENSE.txt"


class CorpusError(RuntimeError):
    """The shipped snapshot is missing or does not carry its pinned sha256."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def _members() -> dict[str, bytes]:
    """Every file of the snapshot, read once per process: {path inside Lib/: bytes}, in sorted order."""
    if not ARCHIVE.is_file():
        raise CorpusError(f"the course's text snapshot {ARCHIVE} is missing; it ships with the repository: restore it "
                          f"with 'git checkout -- data/{ARCHIVE.name}' (or rebuild it: python -m utils.corpus build)")
    packed = ARCHIVE.read_bytes()
    if (actual := _sha256(packed)) != SHA256:
        raise CorpusError(f"{ARCHIVE} has sha256 {actual}, expected {SHA256}: the snapshot was changed or damaged; "
                          f"restore it with 'git checkout -- data/{ARCHIVE.name}'")
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:xz") as tar:
        return {m.name: tar.extractfile(m).read() for m in sorted(tar.getmembers(), key=lambda m: m.name)
                if m.isfile()}


@functools.cache
def _decoded() -> dict[str, str]:
    """The .py members decoded once per process (10 MB of text: not again for every module_source call)."""
    return {name: data.decode("utf-8") for name, data in _members().items() if name.endswith(".py")}


def stdlib_files() -> dict[str, str]:
    """Python 3.11.7's standard-library source files: {path relative to ``Lib/`` with "/" separators: text},
    sorted by path. Test suites, IDLE and the ``encodings`` tables are not in the snapshot. A fresh dict each call,
    so a caller that edits it changes nobody else's copy."""
    return dict(_decoded())


def module_source(name: str) -> str:
    """The source text of a standard-library module in the snapshot, e.g. ``"argparse"`` or ``"json"`` (a package
    gives its ``__init__.py``); what ``inspect.getsource`` returns for it on Python 3.11.7."""
    files = _decoded()
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a module name (a non-empty str such as 'argparse'), got {name!r}")
    base = name.replace(".", "/")
    for path in (f"{base}.py", f"{base}/__init__.py"):
        if path in files:
            return files[path]
    raise ValueError(f"name must be a standard-library module in the Python {VERSION} snapshot (e.g. 'argparse', "
                     f"'json', 'collections.abc'; test suites, idlelib and encodings are left out), got {name!r}")


def module_docstring(name: str) -> str:
    """The module docstring of a standard-library module in the snapshot (``json.__doc__`` on Python 3.11.7)."""
    return ast.get_docstring(ast.parse(module_source(name)), clean=False) or ""


def pydoc_topics() -> dict[str, str]:
    """Python 3.11.7's help topics, ``pydoc_data.topics.topics``: {topic: reStructuredText-like help text}.

    Read by parsing the snapshot's ``pydoc_data/topics.py`` as a literal, never by running it."""
    tree = ast.parse(_decoded()["pydoc_data/topics.py"])
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["topics"]:
            return ast.literal_eval(node.value)
    raise CorpusError("pydoc_data/topics.py in the snapshot has no 'topics = {...}' assignment")


def build(lib: pathlib.Path, out: pathlib.Path = ARCHIVE) -> str:
    """Write the snapshot from a Python 3.11.7 ``Lib/`` folder, byte for byte reproducible (sorted members, zero
    times and owners, xz preset 9), written to a temporary file and renamed over ``out``; returns its sha256 (pin it
    in ``SHA256`` and ``data/README.md``). Refuses a folder without ``os.py`` and any Python but 3.11.7."""
    lib = pathlib.Path(lib)
    if not (lib / "os.py").is_file():
        raise ValueError(f"lib must be a Python standard-library folder (holding os.py), got {lib}")
    if sys.version.split()[0] != VERSION or pathlib.Path(sys.executable).resolve().parents[1] not in lib.parents:
        raise ValueError(f"build from Python {VERSION}'s own Lib/ folder (this is Python {sys.version.split()[0]} "
                         f"at {sys.executable}); accepted: {VERSION} only, so that the pinned text never changes")
    files = sorted(p for p in lib.rglob("*.py") if not set(SKIPPED) & set(p.relative_to(lib).parts))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz", preset=9, format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted([(LICENSE, lib / LICENSE)] + [(p.relative_to(lib).as_posix(), p) for p in files]):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    packed = buffer.getvalue()
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(packed)
    tmp.replace(out)  # atomic: a half-written snapshot never takes the real one's name
    return _sha256(packed)


if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python -m utils.corpus build   (run with Python 3.11.7; prints the sha256 to pin in SHA256)")
    import sysconfig

    print(build(pathlib.Path(sysconfig.get_paths()["stdlib"])))
