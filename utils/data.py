"""Safe downloads of public datasets and checkpoints for the full profile.

Only the ``full`` profile downloads; the ``quick`` profile reads data that installs offline. A chapter
calls, inside its full-profile branch::

    path = utils.data.download("CIFAR-10 (python)", [primary_url, fallback_url], sha256="...")
    folder = utils.data.extract(path)

``download`` keeps one copy per user in a cache folder (``cache_dir()``: the ``cache_dir`` argument,
else ``$COURSE_CACHE``, else ``~/.cache/regression-to-bert``) and guarantees that a file at its cache
path is complete and carries the pinned sha256:

- a cached file whose sha256 matches is returned without touching the network;
- each URL is tried in order; the bytes stream into a hidden temporary file in the cache folder (hashed
  on the way), are checked against the expected length and sha256, and only then renamed into place
  (``os.replace`` is atomic), so an interrupted, truncated or corrupted download leaves nothing that
  looks valid: the temporary file is always removed;
- a cached file whose sha256 does NOT match is never deleted or overwritten: it is moved aside to
  ``<filename>.corrupt-<timestamp>`` (a warning names both paths), then a fresh copy is fetched. Nothing
  a user placed there is lost, and a stale or damaged copy cannot be mistaken for the real one;
- when every URL fails, :class:`DownloadError` says what was being fetched, from where, what went wrong
  with each URL, and how to proceed (quick profile, or place the file by hand at the printed path).

Only the standard library is used for the network (``urllib``), with a timeout of ``TIMEOUT`` seconds
per connection attempt and per read.
"""
import hashlib
import http.client
import os
import pathlib
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile

from tqdm.auto import tqdm

# Seconds between progress-bar refreshes. A notebook bar sends a few messages per refresh; thousands of them queued
# during one long cell overflow the kernel's output channel, which then drops the cell's final "idle" message (nbval
# fails with "Timeout ... waiting for output"). One refresh a second keeps a ten-minute cell under a thousand.
BAR_SECONDS = 1.0

TIMEOUT = 30.0  # seconds: for connecting and for each read; a stalled server fails instead of hanging
CHUNK = 1 << 20  # bytes read and hashed at a time
URL_SCHEMES = ("http", "https", "file")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class DownloadError(RuntimeError):
    """Every URL of a download failed. ``failures`` lists ``(url, what went wrong)``; ``path`` is where
    the verified file belongs and ``sha256`` what it must hash to (for placing it there by hand)."""

    def __init__(self, message: str, name: str, path: pathlib.Path, sha256: str, failures: list):
        super().__init__(message)
        self.name, self.path, self.sha256, self.failures = name, path, sha256, failures


def cache_dir(path=None) -> pathlib.Path:
    """The download cache folder: ``path`` if given, else ``$COURSE_CACHE``, else ``~/.cache/regression-to-bert``."""
    chosen = path if path is not None else (os.environ.get("COURSE_CACHE") or "~/.cache/regression-to-bert")
    if not isinstance(chosen, str | os.PathLike):
        raise TypeError(f"cache_dir must be a folder path (str or pathlib.Path), got {type(chosen).__name__}")
    return pathlib.Path(chosen).expanduser().resolve()


def _where(folder: pathlib.Path, argument: str) -> str:
    """Where a cache/destination folder came from, for messages."""
    if argument == "cache_dir" and os.environ.get("COURSE_CACHE"):
        return "cache_dir (or $COURSE_CACHE)"
    return argument


def _check_writable_folder(folder: pathlib.Path, argument: str, writes: str) -> None:
    """Refuse, before creating anything, a folder that is a file, or that cannot be created or written to."""
    what = _where(folder, argument)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} must be a folder, but {folder} is a file; accepted: a folder path that is writable "
                         "(or does not exist yet and can be created); set COURSE_CACHE or pass cache_dir=...")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {folder} cannot be created: {existing} is a file, not a folder; "
                         "accepted: a writable folder path (set COURSE_CACHE or pass cache_dir=...)")
    if not os.access(existing, os.W_OK | os.X_OK):
        blocker = "is" if existing == folder else f"cannot be created: {existing} is"
        raise PermissionError(f"{what} {folder} {blocker} read-only for this user, so {writes} cannot be stored "
                              "there; accepted: a writable folder: set COURSE_CACHE=/a/writable/folder or pass "
                              "cache_dir=...")


_resolve_cache_dir = cache_dir  # ``download`` has an argument called ``cache_dir``


def sha256sum(path) -> str:
    """Hex sha256 of a file, read in chunks (large checkpoints never sit in memory whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_arguments(name, urls, sha256, filename) -> tuple[list, str, str]:
    """Validate ``download``'s arguments; return (urls as a list, sha256 in lower case, filename)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string describing what is fetched, got {name!r}")
    if isinstance(urls, str) or not isinstance(urls, list | tuple) or not urls:
        raise ValueError(f"urls must be a non-empty list of URL strings (primary first, then fallbacks), got {urls!r}")
    for url in urls:
        scheme = urllib.parse.urlsplit(url).scheme if isinstance(url, str) else None
        if scheme not in URL_SCHEMES:
            raise ValueError(f"bad URL {url!r} in urls: accepted schemes are {', '.join(URL_SCHEMES)}")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.strip()):
        raise ValueError(f"sha256 must be 64 hexadecimal characters (the file's pinned SHA-256), got {sha256!r}")
    if filename is None:
        filename = urllib.parse.unquote(urllib.parse.urlsplit(urls[0]).path.rsplit("/", 1)[-1])
        if not filename:
            raise ValueError(f"cannot take a file name from the first URL {urls[0]!r}: pass filename=...")
    if not isinstance(filename, str) or filename in ("", ".", "..") or any(s in filename for s in "/\\\0"):
        raise ValueError(f"filename must be a plain file name (no folders, no '..'), got {filename!r}")
    return list(urls), sha256.strip().lower(), filename


def _move_aside(path: pathlib.Path, expected: str, actual: str) -> pathlib.Path:
    """Rename a cached file that fails its checksum to ``<name>.corrupt-<timestamp>`` (never delete it)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    os.replace(path, aside)
    warnings.warn(f"{path} has sha256 {actual}, expected {expected}: moved it aside to {aside} (not deleted) "
                  "and fetching a fresh copy", stacklevel=3)
    return aside


class _BadDownload(Exception):
    """The server answered, but the bytes are not the pinned file (truncated or wrong checksum)."""


def _fetch(url: str, dest: pathlib.Path, sha256: str, desc: str, progress: bool) -> None:
    """Stream ``url`` into a temporary file next to ``dest``, verify it, then rename it to ``dest``."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "regression-to-bert-course"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            expected_size = int(length) if length and length.isdigit() else None
            digest, received = hashlib.sha256(), 0
            with tqdm(total=expected_size, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                      disable=not progress, mininterval=BAR_SECONDS) as bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected_size is not None and received != expected_size:
                raise _BadDownload(f"truncated: received {received} of {expected_size} bytes")
            if digest.hexdigest() != sha256:
                raise _BadDownload(f"checksum mismatch: got sha256 {digest.hexdigest()} ({received} bytes), "
                                   f"expected {sha256}")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared lab cache must be readable by all
        os.replace(tmp, dest)  # atomic: dest is either absent or the complete, verified file
    except BaseException:  # including KeyboardInterrupt: never leave a partial file behind
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _reason(err: BaseException) -> str:
    """A short description of why one URL failed."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP error {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):  # urllib wraps the socket error: describe that one
        return _reason(err.reason) if isinstance(err.reason, BaseException) else f"cannot reach it ({err.reason})"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the host name (no internet, or a DNS problem): {err}"
    if isinstance(err, TimeoutError):
        return f"timed out (no answer within {TIMEOUT:g} s)"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (server down, or no internet)"
    return f"{type(err).__name__}: {err}"


def download(name: str, urls: list[str], sha256: str, filename: str | None = None, cache_dir=None,
             progress: bool = True) -> pathlib.Path:
    """Return the path of the verified cached copy of a public file, downloading it if needed.

    name: what is fetched, for messages (e.g. ``"CIFAR-10 (python)"``). urls: primary first, then
    fallbacks (http, https or file). sha256: the pinned checksum (64 hex characters). filename: the
    name in the cache (default: the last path component of the first URL). cache_dir: see
    :func:`cache_dir`. Raises :class:`DownloadError` when every URL fails, ``ValueError`` on bad
    arguments. A cached file with the wrong checksum is moved aside, never deleted (see the module doc).
    """
    urls, sha256, filename = _check_arguments(name, urls, sha256, filename)
    folder = _resolve_cache_dir(cache_dir)
    path = folder / filename
    moved = None
    if folder.exists() and not folder.is_dir():
        _check_writable_folder(folder, "cache_dir", name)  # raises: the cache path is a file
    actual = sha256sum(path) if path.is_file() else None
    if actual == sha256:
        return path  # a verified copy: read-only caches (a shared lab folder) work too
    if path.exists() and actual is None:
        raise FileExistsError(f"{path} exists but is not a file; move it away so {name} can be cached there")
    _check_writable_folder(folder, "cache_dir", name)  # before moving, creating or fetching anything
    if actual is not None:
        moved = _move_aside(path, sha256, actual)
    folder.mkdir(parents=True, exist_ok=True)

    failures = []
    for i, url in enumerate(urls):
        try:
            _fetch(url, path, sha256, desc=name, progress=progress)
            return path
        except (OSError, http.client.HTTPException, _BadDownload) as err:
            failures.append((url, str(err) if isinstance(err, _BadDownload) else _reason(err)))
            if progress and i + 1 < len(urls):
                print(f"{name}: {url} failed ({failures[-1][1]}); trying {urls[i + 1]}", file=sys.stderr)

    tried = "\n".join(f"  {i}. {url}\n     -> {why}" for i, (url, why) in enumerate(failures, 1))
    note = f"\n(The cached file that failed its checksum was kept at {moved}.)" if moved else ""
    raise DownloadError(
        f"could not download {name} ({filename}): every source failed.\n{tried}{note}\n"
        "How to proceed:\n"
        "  - run the quick profile, which needs no download: set COURSE_PROFILE=quick and restart;\n"
        "  - or fetch the file by hand (from one of the URLs above, on any machine), check that its sha256 is\n"
        f"      {sha256}\n"
        "    and place it exactly at\n"
        f"      {path}\n"
        "    (set COURSE_CACHE to use another cache folder); the next run will use it without the network.",
        name=name, path=path, sha256=sha256, failures=failures)


def _archive_stem(path: pathlib.Path) -> str | None:
    """The archive's name without its suffix, or None if it is not an archive ``extract`` knows."""
    lower = path.name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def _check_member(archive: pathlib.Path, member: str, link_target: str | None = None) -> None:
    """Refuse members that could write outside the destination (absolute paths, '..', drive letters)."""
    for value in (member, link_target):
        if value is None:
            continue
        parts = pathlib.PurePosixPath(value.replace("\\", "/")).parts
        if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value) or ".." in parts:
            what = f"member {member!r}" + (f" (a link to {link_target!r})" if value is link_target else "")
            raise ValueError(f"refusing to extract {archive}: {what} would write outside the destination; "
                             "accepted: relative paths without '..'")


def extract(archive_path, dest=None) -> pathlib.Path:
    """Extract a .tar.gz/.tgz/.tar.bz2/.tar.xz/.tar/.zip archive once; return the folder.

    dest defaults to a sibling folder named like the archive without its suffix. If dest already exists
    the archive is not extracted again. Extraction goes into a hidden temporary folder that is renamed
    to dest only when complete. Members with absolute paths or '..' (or links pointing there) are refused.
    """
    archive = pathlib.Path(archive_path)
    stem = _archive_stem(archive)
    if stem is None:
        raise ValueError(f"cannot extract {archive}: accepted archive types are {', '.join(ARCHIVE_SUFFIXES)}")
    dest = archive.with_name(stem) if dest is None else pathlib.Path(dest)
    if dest.exists():  # complete: it only appears by the rename below (the archive may even be gone)
        return dest
    if not archive.is_file():
        raise FileNotFoundError(f"no archive at {archive}")
    _check_writable_folder(dest.parent, "dest", f"the contents of {archive.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"))
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    _check_member(archive, info.filename)
                z.extractall(tmp)
        else:
            with tarfile.open(archive, "r:*") as t:
                members = t.getmembers()
                for m in members:
                    _check_member(archive, m.name, m.linkname if (m.issym() or m.islnk()) else None)
                    if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                        raise ValueError(f"refusing to extract {archive}: member {m.name!r} is a device or fifo; "
                                         "accepted: files, folders and links inside the archive")
                # The "data" filter (Python >= 3.11.4/3.10.12) re-checks all of this inside tarfile itself.
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                t.extractall(tmp, members=members, **kwargs)
        try:
            os.rename(tmp, dest)  # atomic; fails if dest appeared meanwhile (another process extracted it)
        except OSError:
            if not dest.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
