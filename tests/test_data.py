"""Downloads against a local HTTP server on 127.0.0.1 (no internet needed), and safe extraction."""
import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile

import pytest

from utils import data

PAYLOAD = bytes(range(256)) * 200  # 51,200 bytes: several chunks of 8 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
STALL = 10.0  # seconds the /slow/ server stalls at most: far beyond the client's TIMEOUT (0.5 s), even under load
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of no bytes


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder under /ok/; /error/ answers 500, /truncate/ sends half the body with the full
    Content-Length, /nolength/ sends half the body without a length, /slow/ answers only when the test is over
    (``server.release``, at most STALL seconds later), so a client that gets no answer sooner timed out itself."""

    def do_GET(self):
        mode, _, rest = self.path.lstrip("/").partition("/")
        if mode == "ok":
            self.path = "/" + rest
            return super().do_GET()
        if mode == "error":
            return self.send_error(500, "boom")
        if mode == "slow":
            self.server.release.wait(STALL)
            return self.send_error(500, "too late")
        body = (self.server.root / rest).read_bytes()
        self.send_response(200)
        if mode == "truncate":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "weights.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.root = root
    httpd.release = threading.Event()
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_address[1]}/{path}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def stop():
        httpd.release.set()
        if thread.is_alive():
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)

    httpd.stop = stop
    yield httpd
    stop()


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch):
    monkeypatch.setattr(data, "TIMEOUT", 0.5)
    monkeypatch.setattr(data, "CHUNK", 8192)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def dead_url():
    """A loopback URL on a port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/weights.bin"


def files_in(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success(server, cache):
    path = data.download("test weights", [server.url("ok/weights.bin")], PAYLOAD_SHA, cache_dir=cache, progress=True)
    assert path == cache.resolve() / "weights.bin"
    assert path.read_bytes() == PAYLOAD
    assert files_in(cache) == ["weights.bin"]  # no temporary file left
    assert data.sha256sum(path) == PAYLOAD_SHA


def test_cache_hit_needs_no_network(server, cache):
    first = data.download("test weights", [server.url("ok/weights.bin")], PAYLOAD_SHA, cache_dir=cache, progress=False)
    server.stop()
    again = data.download("test weights", [dead_url()], PAYLOAD_SHA.upper(), filename="weights.bin", cache_dir=cache)
    assert again == first and again.read_bytes() == PAYLOAD


def test_cache_dir_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "from-env"))
    assert data.cache_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert data.cache_dir() == (tmp_path / "from-env").resolve()
    monkeypatch.delenv("COURSE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == (tmp_path / "home" / ".cache" / "regression-to-bert").resolve()


def test_filename_defaults_to_url_and_environment_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "env-cache"))
    path = data.download("test weights", [server.url("ok/weights.bin?download=1")], PAYLOAD_SHA, progress=False)
    assert path == (tmp_path / "env-cache" / "weights.bin").resolve() and path.read_bytes() == PAYLOAD


@pytest.mark.parametrize("primary", ["error/weights.bin", "ok/missing.bin", "truncate/weights.bin", None])
def test_fallback_used_when_primary_fails(server, cache, primary, capsys):
    first = server.url(primary) if primary else dead_url()
    path = data.download("test weights", [first, server.url("ok/weights.bin")], PAYLOAD_SHA, filename="w.bin",
                         cache_dir=cache)
    assert path.read_bytes() == PAYLOAD and files_in(cache) == ["w.bin"]
    assert f"{first} failed" in capsys.readouterr().err  # the learner sees that the fallback was used


def test_truncated_download_leaves_nothing(server, cache):
    urls = [server.url("truncate/weights.bin"), server.url("nolength/weights.bin")]
    with pytest.raises(data.DownloadError) as info:
        data.download("test weights", urls, PAYLOAD_SHA, cache_dir=cache, progress=False)
    message = str(info.value)
    assert f"truncated: received {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes" in message
    assert "checksum mismatch" in message  # no Content-Length: only the checksum can tell
    assert files_in(cache) == []


def test_wrong_checksum_message_says_how_to_proceed(server, cache):
    wrong = "0" * 64
    with pytest.raises(data.DownloadError) as info:
        data.download("test weights", [server.url("ok/weights.bin")], wrong, cache_dir=cache, progress=False)
    err, message = info.value, str(info.value)
    assert isinstance(err, RuntimeError)
    assert f"got sha256 {PAYLOAD_SHA}" in message and message.count(wrong) >= 2
    assert "COURSE_PROFILE=quick" in message and str(cache.resolve() / "weights.bin") in message
    assert err.path == cache.resolve() / "weights.bin" and err.sha256 == wrong and len(err.failures) == 1
    assert files_in(cache) == []


def test_server_down_and_timeout(server, cache, monkeypatch):
    """No wall-clock bound (it flaked under load): the stalled server answers only after the test, so "timed out"
    can only be the client's own timeout, and every connection is opened with exactly data.TIMEOUT."""
    refused, slow = dead_url(), server.url("slow/weights.bin")
    timeouts, urlopen = [], data.urllib.request.urlopen

    def recording_urlopen(request, *args, **kwargs):
        timeouts.append(kwargs.get("timeout", args[1] if len(args) > 1 else None))
        return urlopen(request, *args, **kwargs)

    monkeypatch.setattr(data.urllib.request, "urlopen", recording_urlopen)
    with pytest.raises(data.DownloadError) as info:
        data.download("test weights", [refused, slow], PAYLOAD_SHA, cache_dir=cache, progress=False)
    assert timeouts == [data.TIMEOUT, data.TIMEOUT]
    message = str(info.value)
    assert message.startswith("could not download test weights (weights.bin)")
    assert f"{refused}\n     -> connection refused" in message
    assert f"{slow}\n     -> timed out (no answer within 0.5 s)" in message
    assert "place it exactly at" in message and PAYLOAD_SHA in message
    assert files_in(cache) == []


class InterruptingBar(data.tqdm):
    def update(self, n=1):
        super().update(n)
        raise KeyboardInterrupt  # as if the learner pressed Ctrl-C after the first chunk


def test_interrupted_download_removes_temp_file(server, cache, monkeypatch):
    monkeypatch.setattr(data, "tqdm", InterruptingBar)
    with pytest.raises(KeyboardInterrupt):
        data.download("test weights", [server.url("ok/weights.bin")], PAYLOAD_SHA, cache_dir=cache, progress=False)
    assert files_in(cache) == []


def test_corrupt_cached_file_is_kept_aside_not_lost(server, cache):
    cache.mkdir()
    (cache / "weights.bin").write_bytes(b"my own edited copy")
    with pytest.warns(UserWarning, match="moved it aside"):
        path = data.download("test weights", [server.url("ok/weights.bin")], PAYLOAD_SHA, cache_dir=cache,
                             progress=False)
    assert path.read_bytes() == PAYLOAD
    [aside] = cache.glob("weights.bin.corrupt-*")
    assert aside.read_bytes() == b"my own edited copy"


def test_corrupt_cached_file_offline_is_kept_and_named(cache):
    cache.mkdir()
    (cache / "weights.bin").write_bytes(b"half a file")
    with pytest.warns(UserWarning), pytest.raises(data.DownloadError, match="was kept at .*corrupt-"):
        data.download("test weights", [dead_url()], PAYLOAD_SHA, cache_dir=cache, progress=False)
    [aside] = cache.glob("weights.bin.corrupt-*")
    assert aside.read_bytes() == b"half a file" and not (cache / "weights.bin").exists()


@pytest.mark.parametrize("kwargs, shown", [
    (dict(urls=[]), "[]"),
    (dict(urls="http://127.0.0.1/w.bin"), "'http://127.0.0.1/w.bin'"),
    (dict(urls=["ftp://example.org/w.bin"]), "'ftp://example.org/w.bin'"),
    (dict(urls=[None]), "None"),
    (dict(sha256="abc123"), "'abc123'"),
    (dict(sha256="g" * 64), "'" + "g" * 64 + "'"),
    (dict(name=""), "''"),
    (dict(filename="../w.bin"), "'../w.bin'"),
    (dict(urls=["http://127.0.0.1/folder/"]), "'http://127.0.0.1/folder/'"),
])
def test_bad_arguments_show_value_and_what_is_accepted(kwargs, shown, cache):
    args = dict(name="test weights", urls=["http://127.0.0.1/w.bin"], sha256=PAYLOAD_SHA, cache_dir=cache)
    with pytest.raises(ValueError) as info:
        data.download(**{**args, **kwargs})
    assert shown in str(info.value)
    assert not cache.exists()  # nothing created, nothing fetched


def test_sha256sum_of_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert data.sha256sum(tmp_path / "empty") == EMPTY_SHA


def make_tar(path, members):
    """members: {name: bytes, or ("link", target)}."""
    with tarfile.open(path, "w:gz") as t:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                t.addfile(info)
            else:
                info.size = len(content)
                t.addfile(info, io.BytesIO(content))


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)


@pytest.mark.parametrize("suffix, make", [(".tar.gz", make_tar), (".zip", make_zip)])
def test_extract_once_into_sibling_folder(tmp_path, suffix, make):
    archive = tmp_path / f"pack{suffix}"
    make(archive, {"pack/a.txt": b"alpha", "pack/sub/b.txt": b"beta"})
    folder = data.extract(archive)
    assert folder == tmp_path / "pack"
    assert (folder / "pack" / "sub" / "b.txt").read_bytes() == b"beta"
    (folder / "pack" / "a.txt").write_bytes(b"changed")
    assert data.extract(archive) == folder and (folder / "pack" / "a.txt").read_bytes() == b"changed"  # once
    assert files_in(tmp_path) == sorted([archive.name, "pack"])  # no temporary folder left


@pytest.mark.parametrize("suffix, members", [
    (".tar.gz", {"ok.txt": b"1", "../evil.txt": b"2"}),
    (".tar.gz", {"/tmp/evil-absolute.txt": b"2"}),
    (".tar.gz", {"link": ("link", "../../outside")}),
    (".zip", {"ok.txt": b"1", "../evil.txt": b"2"}),
    (".zip", {"/evil-absolute.txt": b"2"}),
])
def test_extract_refuses_unsafe_members(tmp_path, suffix, members):
    archive = tmp_path / "inner" / f"bad{suffix}"
    archive.parent.mkdir()
    (make_tar if suffix == ".tar.gz" else make_zip)(archive, members)
    with pytest.raises(ValueError, match="refusing to extract"):
        data.extract(archive)
    assert files_in(archive.parent) == [archive.name] and files_in(tmp_path) == ["inner"]


def test_extract_rejects_unknown_type(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes.txt.*accepted archive types are .tar.gz"):
        data.extract(tmp_path / "notes.txt")


@pytest.mark.parametrize("err, says", [
    (data.urllib.error.URLError(socket.gaierror(-2, "Name or service not known")), "cannot resolve the host name"),
    (data.urllib.error.URLError("unknown url type"), "cannot reach it (unknown url type)"),
    (data.urllib.error.URLError(TimeoutError("timed out")), "timed out (no answer within 0.5 s)"),
])
def test_network_failures_are_described_plainly(err, says):
    assert data._reason(err) == says or data._reason(err).startswith(says)
