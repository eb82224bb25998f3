"""The shipped text snapshot (utils.corpus): pinned, complete, equal to Python 3.11.7's own files, read-only."""
import hashlib
import io
import sys
import tarfile

import pytest

from utils import corpus

ON_3_11_7 = sys.version.split()[0] == corpus.VERSION


def test_archive_carries_its_pinned_sha256_and_the_readme_names_it():
    assert hashlib.sha256(corpus.ARCHIVE.read_bytes()).hexdigest() == corpus.SHA256
    readme = (corpus.ARCHIVE.parent / "README.md").read_text(encoding="utf-8")
    assert corpus.SHA256 in readme and corpus.ARCHIVE.name in readme


def test_snapshot_holds_the_library_without_tests_idle_or_codecs_and_keeps_the_licence():
    files = corpus.stdlib_files()
    assert len(files) == 552 and list(files) == sorted(files)
    assert {"argparse.py", "json/__init__.py", "pydoc_data/topics.py", "collections/__init__.py"} <= set(files)
    assert not [p for p in files if set(p.split("/")) & set(corpus.SKIPPED)]
    assert "Python Software Foundation" in corpus._members()[corpus.LICENSE].decode()


def test_module_helpers_read_the_snapshot():
    assert corpus.module_source("argparse").startswith("# Author: Steven J. Bethard")
    assert corpus.module_source("json") == corpus.stdlib_files()["json/__init__.py"]
    assert corpus.module_docstring("json").startswith("JSON (JavaScript Object Notation)")
    topics = corpus.pydoc_topics()
    assert len(topics) == 79 and topics["assert"].startswith("The \"assert\" statement")


@pytest.mark.skipif(not ON_3_11_7, reason="compares with the running Python's own files, which only 3.11.7 has")
def test_snapshot_equals_the_running_python_3_11_7():
    import argparse
    import inspect
    import json
    from pydoc_data.topics import topics

    assert corpus.pydoc_topics() == topics
    assert corpus.module_source("argparse") == inspect.getsource(argparse)
    assert corpus.module_docstring("json") == json.__doc__


@pytest.mark.parametrize("name, error", [("no_such_module", ValueError), ("test.support", ValueError),
                                         ("", TypeError), (3, TypeError)])
def test_unknown_module_is_refused_with_the_value_named(name, error):
    with pytest.raises(error, match=repr(name).replace("(", r"\(")):
        corpus.module_source(name)


def test_a_changed_or_missing_archive_is_refused_not_read(tmp_path, monkeypatch):
    changed = tmp_path / corpus.ARCHIVE.name
    changed.write_bytes(corpus.ARCHIVE.read_bytes() + b"\0")
    monkeypatch.setattr(corpus, "ARCHIVE", changed)
    corpus._members.cache_clear()
    corpus._decoded.cache_clear()
    try:
        with pytest.raises(corpus.CorpusError, match="expected " + corpus.SHA256):
            corpus.stdlib_files()
        monkeypatch.setattr(corpus, "ARCHIVE", tmp_path / "missing.tar.xz")
        with pytest.raises(corpus.CorpusError, match="missing"):
            corpus.stdlib_files()
    finally:
        corpus._members.cache_clear()
        corpus._decoded.cache_clear()


@pytest.mark.skipif(not ON_3_11_7, reason="the snapshot is built from Python 3.11.7's Lib/ only")
def test_build_is_reproducible_and_refuses_a_folder_that_is_not_a_library(tmp_path):
    import sysconfig

    out = tmp_path / "again.tar.xz"
    assert corpus.build(sysconfig.get_paths()["stdlib"], out) == corpus.SHA256
    assert out.read_bytes() == corpus.ARCHIVE.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(out.read_bytes()), mode="r:xz") as tar:
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    with pytest.raises(ValueError, match="os.py"):
        corpus.build(tmp_path, tmp_path / "x.tar.xz")
    assert not (tmp_path / "x.tar.xz").exists()
