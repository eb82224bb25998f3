"""A minimal HTTP service for a saved classifier (FastAPI + uvicorn), the process that runs it, and a load test.

``build_app(folder)`` loads the model folder once and answers

    GET  /health   -> {"status": "ok", "labels": [...], "batching": true|false}
    POST /predict  {"texts": ["...", ...]} -> {"predictions": [{"label", "score", "probabilities"}, ...]}

Bad requests get a 4xx answer with a JSON ``{"error": "..."}`` that says what is accepted: 400 for a body that is
not JSON, 422 for a wrong shape, type or an empty text, 413 for too many or too long texts.

Batching. A single worker runs the model, one forward pass at a time (two passes at once would only fight for
the same CPU cores). **Off**: each request is its own forward pass. **On**: the worker takes the first waiting
request, then keeps collecting requests for up to ``max_wait_ms`` (or until ``max_batch`` texts), and runs them all
as one padded batch; each request gets its own rows back.

Run it with ``python -m utils.serve FOLDER --port 8000`` or, from a notebook, ``with running_service(folder) as url``,
which always stops the process, also when the block fails.
"""
import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import _validate as check
from .deploy import TextClassifier, check_texts

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_request(body: bytes, max_texts: int, max_chars: int) -> list[str]:
    """The texts of a ``/predict`` body, or ``_BadRequest(status, message)``."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _BadRequest(400, 'the body must be JSON such as {"texts": ["a text"]}') from None
    if not isinstance(payload, dict) or "texts" not in payload:
        raise _BadRequest(422, 'the body must be a JSON object with a "texts" list, such as {"texts": ["a text"]}')
    texts = payload["texts"]
    if isinstance(texts, list) and len(texts) > max_texts:
        raise _BadRequest(413, f"texts holds {len(texts)} texts; accepted: at most {max_texts} per request")
    if isinstance(texts, list):
        for i, text in enumerate(texts):
            if isinstance(text, str) and len(text) > max_chars:
                raise _BadRequest(413, f"texts[{i}] has {len(text)} characters; accepted: at most {max_chars}")
    try:
        return check_texts(texts)
    except (TypeError, ValueError) as err:
        raise _BadRequest(422, str(err)) from None


class Batcher:
    """Queue of requests served by one worker; with ``batching`` it merges those that wait (see module doc)."""

    def __init__(self, classifier: TextClassifier, batching: bool, max_batch: int, max_wait_ms: float):
        self.classifier, self.batching = classifier, batching
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batch_sizes: list[int] = []  # texts per forward pass, for /health

    async def submit(self, texts: list[str]) -> list[dict]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _collect(self) -> list:
        items = [await self.queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while self.batching and sum(len(t) for t, _ in items) < self.max_batch:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return items

    async def run(self) -> None:
        while True:
            items = await self._collect()
            texts = [t for request, _ in items for t in request]
            self.batch_sizes.append(len(texts))
            try:  # in a thread, so the server keeps accepting requests while the model runs
                results = await asyncio.to_thread(self.classifier.predict, texts, len(texts))
            except Exception as err:  # noqa: BLE001 - handed to every waiting request, never lost
                for _, future in items:
                    future.set_exception(err)
                continue
            start = 0
            for request, future in items:
                future.set_result(results[start:start + len(request)])
                start += len(request)


def build_app(folder, batching: bool = True, max_batch: int = 64, max_wait_ms: float = 5.0, max_texts: int = 32,
              max_chars: int = 1000, max_len: int = 64):
    """A FastAPI app serving the model folder ``folder`` (see the module doc); the model is loaded once, here."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    if not isinstance(batching, bool):
        raise TypeError(f"batching must be True or False, got {batching!r}")
    for name, value in (("max_batch", max_batch), ("max_texts", max_texts), ("max_chars", max_chars)):
        check.positive_int(name, value)
    check.number("max_wait_ms", max_wait_ms, 0.0)
    classifier = TextClassifier.from_folder(folder, max_len=max_len)
    batcher = Batcher(classifier, batching, max_batch, max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()

    app = FastAPI(title="sentiment classifier", lifespan=lifespan)

    @app.get("/health")
    async def health():
        sizes = batcher.batch_sizes
        return {"status": "ok", "labels": classifier.labels, "batching": batching, "forward_passes": len(sizes),
                "texts_per_pass": float(np.mean(sizes)) if sizes else 0.0}

    @app.post("/predict")
    async def predict(request: Request):
        try:
            texts = parse_request(await request.body(), max_texts, max_chars)
        except _BadRequest as bad:
            return JSONResponse({"error": str(bad)}, status_code=bad.status)
        return {"predictions": await batcher.submit(texts)}

    return app


# ------------------------------------------------------------------------------------------- the process
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_service(folder, batching: bool = True, timeout: float = 120.0, threads: int = 2, **options):
    """Start ``python -m utils.serve folder`` on 127.0.0.1 and a free port, wait until ``/health`` answers
    (at most ``timeout`` s), yield its base URL, and **always** stop it (SIGTERM, then SIGKILL after 10 s) and
    check that its port is closed, also when the ``with`` block raises. ``options`` go to :func:`build_app`."""
    import httpx

    folder = pathlib.Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no model folder at {folder} (config.json missing): write one with save_model_folder")
    check.number("timeout", timeout, 0.0, low_open=True)
    port = free_port()
    command = [sys.executable, "-m", "utils.serve", str(folder), "--port", str(port), "--threads", str(threads),
               "--batching", "on" if batching else "off"]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TOKENIZERS_PARALLELISM": "false"}
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        began = time.monotonic()
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the service exited with code {process.returncode} before it was ready:\n"
                                   + log.read()[-2000:])
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"the service did not answer /health within timeout={timeout} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if port_is_open(port):
            raise RuntimeError(f"port {port} still accepts connections after the service was stopped")


def load_test(url: str, texts: list[str], requests: int = 64, concurrency: int = 8, texts_per_request: int = 1) -> dict:
    """Send ``requests`` POST /predict requests of ``texts_per_request`` texts each (taken in turn from
    ``texts``) from ``concurrency`` client threads at once. Returns latencies (s, per request), the wall time,
    requests per second, p50 and p95 latency, and the status codes (all must be 200)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    for name, value in (("requests", requests), ("concurrency", concurrency), ("texts_per_request", texts_per_request)):
        check.positive_int(name, value)
    texts = check_texts(texts)
    bodies = [[texts[(i * texts_per_request + j) % len(texts)] for j in range(texts_per_request)]
              for i in range(requests)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=url, timeout=60.0, limits=limits) as client:
        def one(body):
            began = time.perf_counter()
            response = client.post("/predict", json={"texts": body})
            return time.perf_counter() - began, response.status_code

        client.get("/health")  # opens a connection before the clock starts
        began = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(one, bodies))
        seconds = time.perf_counter() - began
    latencies = np.array([a[0] for a in answers])
    return {"latencies": latencies, "seconds": seconds, "requests_per_s": requests / seconds,
            "p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
            "status": sorted({a[1] for a in answers})}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m utils.serve", description="Serve a saved classifier over HTTP.")
    parser.add_argument("folder", help="a model folder written by utils.deploy.save_model_folder")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the model")
    parser.add_argument("--batching", choices=["on", "off"], default="on")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-texts", type=int, default=32)
    parser.add_argument("--max-chars", type=int, default=1000)
    parser.add_argument("--max-len", type=int, default=64)
    args = parser.parse_args(argv)
    import torch
    import uvicorn

    torch.set_num_threads(args.threads)
    app = build_app(args.folder, batching=args.batching == "on", max_batch=args.max_batch,
                    max_wait_ms=args.max_wait_ms, max_texts=args.max_texts, max_chars=args.max_chars,
                    max_len=args.max_len)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
