"""Both ways a person meets the course, checked in a real browser (headless Chromium driven by Playwright):

- the HTML book (``./course book``): every page loads with no console error, no failed request and no request
  leaving 127.0.0.1; every formula is typeset; every figure has loaded; a crawl finds no broken internal link
  or anchor; searching for a term from each chapter finds that chapter. Screenshots go to the test's temp folder.
- JupyterLab (README command 1, ``./course lab``): started as the README says, on a free port with a token and no
  browser; a chapter opened in Chromium shows its title heading and a saved figure; the server is always stopped.

Chromium is Debian's package (``apt-get install chromium``); Playwright drives it (its own browser download is
not needed). Without Chromium these tests skip on a developer's machine, and fail under CI (``CI=true``).
"""
import functools
import http.server
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

from utils.course import CHAPTERS, ROOT, book, glossary

INSTALL_HINT = ("headless Chromium is needed for the browser tests: apt-get install chromium "
                "(or set COURSE_CHROMIUM=/path/to/chromium); Playwright comes with requirements.txt")


def chromium_path() -> str | None:
    return os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests, but: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser):
    """The book, built once into a temp folder and served on 127.0.0.1 (a free port). Yields (base_url, folder)."""
    out = tmp_path_factory.mktemp("book") / "html"
    result = book.build(out)
    print(f"book: {result['pages']} pages built in {result['seconds']:.0f} s")
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", out
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def chapters_built(out: pathlib.Path) -> list[str]:
    return [path.stem for path in book.chapter_paths() if (out / "chapters" / f"{path.stem}.html").exists()]


class Watched:
    """A page whose console errors, failed requests and requests to other hosts are recorded. Requests that
    would leave 127.0.0.1 are aborted (the test must not depend on the network) and counted as failures."""

    def __init__(self, browser, **context_options):
        self.context = browser.new_context(**context_options)
        self.context.set_default_timeout(180_000)  # generous: CI machines can be busy; a hang still fails
        self.page = self.context.new_page()
        self.errors, self.failed, self.remote = [], [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} (HTTP {r.status})"))
        self.context.route("**/*", self._route)

    def _route(self, route):
        host = urllib.parse.urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.remote.append(route.request.url)
            route.abort()

    def problems(self) -> list[str]:
        return ([f"console: {e}" for e in self.errors] + [f"failed: {f}" for f in self.failed]
                + [f"left 127.0.0.1: {r}" for r in self.remote])

    def close(self):
        self.context.close()


# Runs in the page: waits for MathJax's first typesetting, makes every image load, then reports.
INSPECT_PAGE = """async () => {
  if (window.MathJax && MathJax.Hub) await new Promise(done => MathJax.Hub.Register.StartupHook("End", done));
  const images = [...document.querySelectorAll("article img")];
  for (const img of images) { img.loading = "eager"; }
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const skip = "pre, code, script, style, .MathJax, .MathJax_Display, .MathJax_Preview, .cell_output, "
             + "script[type^='math/tex']";
  const walker = document.createTreeWalker(document.querySelector("article"), NodeFilter.SHOW_TEXT);
  const rawDollars = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.textContent.includes("$") && !node.parentElement.closest(skip)) rawDollars.push(node.textContent);
  }
  const formulas = [...document.querySelectorAll("article span.math.notranslate, article div.math.notranslate")];
  return {
    title: document.querySelector("article h1")?.textContent.replace("#", "").trim(),
    formulas: formulas.length,
    untypeset: formulas.filter(f => !f.querySelector(".MathJax, .MathJax_Display")).map(f => f.textContent),
    texErrors: [...document.querySelectorAll("article .noError, article merror")].map(e => e.textContent),
    rawDollars,
    images: images.length,
    brokenImages: images.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src),
    colab: [...document.querySelectorAll("a[href^='https://colab.research.google.com/']")].length,
    notebookDownloads: [...document.querySelectorAll("a[href$='.ipynb']")].map(a => a.href),
    prevNext: document.querySelectorAll(".prev-next-area a").length,
    tocLinks: document.querySelectorAll(".bd-toc-nav a, #pst-page-navigation-heading-2 ~ * a").length,
  };
}"""


def test_book_pages_render_offline(browser, site, tmp_path):
    base, out = site
    chapters = chapters_built(out)
    assert chapters, f"no chapter pages in {out}"
    totals = {"formulas": 0, "images": 0}
    pages = ["index.html", *(f"chapters/{c}.html" for c in chapters), "glossary.html", "running.html"]
    for page_name in pages:
        watched = Watched(browser, viewport={"width": 1280, "height": 900})
        try:
            watched.page.goto(base + page_name, wait_until="load")
            report = watched.page.evaluate(INSPECT_PAGE)
            watched.page.wait_for_load_state("networkidle")  # late requests (fonts, MathJax's extras) count too
            if page_name == "index.html":
                watched.page.screenshot(path=str(tmp_path / "landing.png"))
            if page_name == f"chapters/{chapters[0]}.html":
                watched.page.screenshot(path=str(tmp_path / "chapter.png"))
            problems = watched.problems()
        finally:
            watched.close()
        assert not problems, f"{page_name}: {problems}"
        assert not report["untypeset"] and not report["texErrors"], f"{page_name}: maths not typeset: {report}"
        assert not report["rawDollars"], f"{page_name}: raw $ left in the text: {report['rawDollars'][:5]}"
        assert not report["brokenImages"], f"{page_name}: images that did not load: {report['brokenImages']}"
        if page_name.startswith("chapters/"):
            chapter = pathlib.Path(page_name).stem
            nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
            assert report["title"] == book.notebook_title(nb), f"{page_name}: title {report['title']!r}"
            assert report["formulas"] > 0 and report["images"] > 0, f"{page_name}: no maths or figures: {report}"
            assert report["colab"] >= 1, f"{page_name}: no Open-in-Colab link"
            assert any(h.endswith(f"{chapter}.ipynb") for h in report["notebookDownloads"]), \
                f"{page_name}: no link to download {chapter}.ipynb: {report['notebookDownloads']}"
            assert report["prevNext"] >= 1 and report["tocLinks"] >= 3, f"{page_name}: navigation missing: {report}"
        totals["formulas"] += report["formulas"]
        totals["images"] += report["images"]
    print(f"book: {len(pages)} pages, {totals['formulas']} formulas typeset, {totals['images']} images loaded; "
          f"screenshots in {tmp_path}")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in ("a", "link") and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])


def test_book_internal_links_resolve(site):
    base, _ = site
    todo, seen, ids, anchors, broken = [base + "index.html"], set(), {}, [], []
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read()
                kind = response.headers.get_content_type()
        except urllib.error.HTTPError as error:
            broken.append(f"{url} (HTTP {error.code})")
            continue
        if kind != "text/html":
            continue
        parser = Links()
        parser.feed(body.decode("utf-8"))
        ids[url] = parser.ids
        for href in parser.links:
            target = urllib.parse.urljoin(url, href)
            if not target.startswith(base):
                continue
            page, _, fragment = target.partition("#")
            page = page.split("?")[0]
            if fragment:
                anchors.append((url, page, urllib.parse.unquote(fragment)))
            todo.append(page)
    missing = [f"{src} -> {page}#{frag}" for src, page, frag in anchors if page in ids and frag not in ids[page]]
    assert not broken, f"broken internal links: {broken}"
    assert not missing, f"links to anchors that do not exist: {missing[:10]}"
    pages = [u for u in ids if u.endswith(".html")]
    assert len(pages) >= 4, pages
    print(f"book crawl: {len(seen)} URLs fetched ({len(pages)} pages), {len(anchors)} links with anchors checked")


def search_term(chapter: str) -> str:
    """The first term the chapter's glossary defines, without its parenthesised abbreviation."""
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    english = glossary.glossary_rows(nb)[0][0]
    return re.sub(r"\(.*?\)", "", english).strip()


def test_book_search_finds_each_chapter(browser, site):
    base, out = site
    watched = Watched(browser)
    try:
        for chapter in chapters_built(out):
            term = search_term(chapter)
            watched.page.goto(base + "search.html?q=" + urllib.parse.quote(term))
            hit = watched.page.locator(f"#search-results a[href*='chapters/{chapter}.html']").first
            hit.wait_for(timeout=30_000)
            watched.page.locator("#search-results .search-summary", has_text="found").wait_for(timeout=30_000)
            watched.page.wait_for_load_state("networkidle")  # the result list fetches each page for a snippet
        problems = watched.problems()
    finally:
        watched.close()
    assert not problems, problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_lab(process: subprocess.Popen, url: str, token: str) -> None:
    """Ask the server to shut down (it stops its kernels too); terminate, then kill, if it does not."""
    if process.poll() is None:
        request = urllib.request.Request(f"{url}api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def test_jupyterlab_shows_a_chapter(browser, tmp_path):
    chapter = next(c for c in CHAPTERS if (ROOT / "chapters" / f"{c}.ipynb").exists())
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = tmp_path / "lab.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [str(ROOT / "course"), "lab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    watched = None
    try:
        started = time.monotonic()
        deadline = started + 300  # the first run may install requirements.txt
        while f"127.0.0.1:{port}/lab?token=" not in log.read_text():  # Jupyter prints a given token masked
            assert process.poll() is None, f"./course lab exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"./course lab printed no URL in 300 s:\n{log.read_text()}"
            time.sleep(0.5)
        watched = Watched(browser, viewport={"width": 1280, "height": 900})
        page = watched.page
        print(f"lab: server up after {time.monotonic() - started:.0f} s")
        page.goto(f"{base}lab/tree/chapters/{chapter}.ipynb?token={token}")
        title = page.locator(".jp-Notebook .jp-RenderedMarkdown h1").first
        title.wait_for(timeout=120_000)
        print(f"lab: notebook shown after {time.monotonic() - started:.0f} s")
        assert book.notebook_title(nb) in title.inner_text()
        figure = page.locator(".jp-Notebook .jp-RenderedImage img").first
        page.locator(".jp-Notebook").first.hover()
        for _ in range(100):  # a notebook may render its cells only as they scroll into view
            if figure.count():
                break
            page.mouse.wheel(0, 2000)
            page.wait_for_timeout(100)
        figure.scroll_into_view_if_needed()
        size = figure.evaluate("async img => { await img.decode(); return [img.naturalWidth, img.naturalHeight]; }")
        assert size[0] > 0 and size[1] > 0, f"saved figure not shown: natural size {size}"
        page.screenshot(path=str(tmp_path / "lab.png"))
        # The notebook's own Colab badge is an image on Colab's server (the book serves a copy); nothing else.
        remote = [url for url in watched.remote if url != book.COLAB_BADGE]
    finally:
        if watched is not None:
            watched.close()
        stop_lab(process, base, token)
        print(f"lab: stopped after {time.monotonic() - started:.0f} s")
    assert process.poll() is not None, "the JupyterLab server is still running"
    assert not remote, f"JupyterLab asked for remote resources: {remote}"
    print(f"JupyterLab showed {chapter}: title and a {size[0]}x{size[1]} figure; screenshot {tmp_path / 'lab.png'}")
