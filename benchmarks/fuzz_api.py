"""A bounded fuzz run of `diffmatte serve`'s HTTP API: seeded malformed and valid requests.

Starts the server as a subprocess on 127.0.0.1 (a tiny random-weight model unless --model; the
run tests the HTTP layer, not mattes), sends --requests requests from --workers threads
(each drawn from a seeded generator: valid mattes, streams, refines and cutouts; truncated
PNG/JPEG/WebP; headers declaring huge images; wrong field types and values; malformed multipart;
bodies over the upload limit; wrong methods and paths) and stops by itself after the count or
--time-limit seconds. Prints a table and writes JSON: status codes per kind, every 500 (there
should be none), 503s (by design: a full queue), connection failures, and the server's RSS over
time (is it flat after warm-up?).

    python benchmarks/fuzz_api.py --requests 10000 --probe 3000 --json benchmarks/results/fuzz_api.json

tests/test_serve.py runs `run_fuzz` itself on a short count.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import io
import json
import os
import platform
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

H, W = 48, 64


@dataclass
class Case:
    kind: str
    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    expect: tuple[int, ...] = ()  # the statuses this kind may answer with; empty: any 4xx


@dataclass
class Tally:
    by_kind: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    errors_500: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    connection_failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, case: Case, status: int | None, detail: str) -> None:
        with self.lock:
            self.by_kind[case.kind][str(status)] += 1
            if status is None:
                self.connection_failures.append(f"{case.kind}: {detail}")
            elif status >= 500 and status != 503:
                self.errors_500.append(f"{case.kind} -> {status}: {detail[:200]}")
            elif case.expect and status not in case.expect:
                self.unexpected.append(f"{case.kind} -> {status} (expected {case.expect}): {detail[:200]}")
            elif not case.expect and not 400 <= status < 500:
                self.unexpected.append(f"{case.kind} -> {status} (expected a 4xx): {detail[:200]}")


# -- inputs ------------------------------------------------------------------------------------------
def _encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x00" * 8) + chunk(b"IEND", b"")


class Assets:
    def __init__(self, rng: random.Random) -> None:
        g = np.random.default_rng(rng.randrange(2**32))
        image = g.integers(0, 256, (H, W, 3), dtype=np.uint8)
        trimap = np.full((H, W), 128, np.uint8)
        trimap[:, : W // 3], trimap[:, -W // 3 :] = 0, 255
        alpha = np.clip(np.linspace(0, 255, W)[None].repeat(H, 0), 0, 255).astype(np.uint8)
        self.image, self.trimap, self.alpha = _encode(image, "PNG"), _encode(trimap, "PNG"), _encode(alpha, "PNG")
        self.formats = {f: _encode(image, f) for f in ("PNG", "JPEG", "WEBP")}
        self.small_alpha = _encode(alpha[: H // 2, : W // 2], "PNG")


def _multipart(fields: dict[str, object], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for name, data in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _post(kind: str, path: str, fields: dict[str, object], files: dict[str, bytes], expect: tuple[int, ...] = ()) -> Case:
    body, ctype = _multipart(fields, files)
    return Case(kind, "POST", path, body, ctype, expect)


# -- the generator ------------------------------------------------------------------------------------
def _valid(rng: random.Random, a: Assets) -> Case:
    steps = rng.randint(1, 2)
    which = rng.choice(("matte", "stream", "cutout", "refine", "uncertainty"))
    if which == "matte":
        return _post("valid matte", "/api/matte", {"steps": steps, "seed": rng.randrange(1000)},
                     {"image": a.image, "trimap": a.trimap}, (200,))
    if which == "stream":
        return _post("valid stream", "/api/matte/stream", {"steps": steps}, {"image": a.image, "trimap": a.trimap}, (200,))
    if which == "uncertainty":
        return _post("valid uncertainty", "/api/matte", {"steps": 1, "seeds": 2, "output": "uncertainty"},
                     {"image": a.image, "trimap": a.trimap}, (200,))
    if which == "cutout":
        return _post("valid cutout", "/api/cutout", {"background": rng.choice(["#00ff00", "white", ""])},
                     {"image": a.image, "alpha": a.alpha}, (200,))
    x, y = rng.randrange(W - 8), rng.randrange(H - 8)
    return _post("valid refine", "/api/refine", {"box": f"{x},{y},{x + 8},{y + 8}", "steps": 1},
                 {"image": a.image, "trimap": a.trimap, "alpha": a.alpha}, (200,))


def _truncated(rng: random.Random, a: Assets) -> Case:
    fmt = rng.choice(tuple(a.formats))
    data = a.formats[fmt]
    cut = data[: rng.randrange(1, len(data))]
    field_name = rng.choice(("image", "trimap"))
    files = {"image": a.image, "trimap": a.trimap, field_name: cut}
    # a file cut after its last pixel data (a PNG without IEND, a JPEG near its end: PIL fills
    # the rest) still decodes: 200 is a fair answer there
    return _post(f"truncated {fmt}", "/api/matte", {"steps": 1}, files, (200, 400))


def _huge(rng: random.Random, a: Assets) -> Case:
    w, h = rng.choice(((12000, 12000), (60000, 3), (4, 100000), (20000, 20000)))
    field_name = rng.choice(("image", "trimap"))
    files = {"image": a.image, "trimap": a.trimap, field_name: _png_declaring(w, h)}
    # a side of 3 or 4 px is under the 32 px minimum, not over the pixel limit: 400 then
    return _post("huge declared size", "/api/matte", {}, files, (413,) if min(w, h) >= 32 else (400, 413))


def _bad_values(rng: random.Random, a: Assets) -> Case:
    bad = rng.choice([
        {"steps": "abc"}, {"steps": -1}, {"steps": 10**9}, {"seed": -5}, {"seed": "1e3"}, {"seeds": 999},
        {"band": 0}, {"output": "bogus"}, {"seed": "💥"}, {"steps": "3" * 500},
    ])
    return _post("bad field value", "/api/matte", bad, {"image": a.image, "trimap": a.trimap})


def _wrong_types(rng: random.Random, a: Assets) -> Case:
    choice = rng.randrange(5)
    if choice == 0:
        return _post("file as text field", "/api/matte", {"image": "photo.png"}, {"trimap": a.trimap})
    if choice == 1:
        return _post("missing file", "/api/refine", {"box": "0,0,8,8"}, {"image": a.image})
    if choice == 2:
        return _post("unknown file field", "/api/matte", {}, {"image": a.image, "trimap": a.trimap, "extra": a.image})
    if choice == 3:
        return _post("refine bad box", "/api/refine", {"box": rng.choice(["x", "1,2,3", "5,5,1,1", "-4,0,9,9", "0,0,99999,9"])},
                     {"image": a.image, "trimap": a.trimap, "alpha": a.alpha})
    return _post("alpha of another size", "/api/cutout", {}, {"image": a.image, "alpha": a.small_alpha})


def _malformed(rng: random.Random, a: Assets) -> Case:
    body, ctype = _multipart({"steps": 1}, {"image": a.image, "trimap": a.trimap})
    choice = rng.randrange(6)
    if choice == 0:
        return Case("multipart wrong boundary", "POST", "/api/matte", body, "multipart/form-data; boundary=nothere")
    if choice == 1:
        return Case("multipart cut short", "POST", "/api/matte", body[: rng.randrange(1, len(body) - 10)], ctype)
    if choice == 2:
        return Case("multipart no boundary", "POST", "/api/matte", body, "multipart/form-data")
    if choice == 3:
        return Case("random bytes", "POST", "/api/matte", os.urandom(rng.randrange(1, 4000)), ctype)
    if choice == 4:
        return Case("wrong content type", "POST", rng.choice(("/api/matte", "/api/refine", "/api/cutout")),
                    b'{"image": "x"}', rng.choice(("application/json", "text/plain", None)))
    return Case("empty body", "POST", "/api/matte", b"", ctype)


def _elsewhere(rng: random.Random, a: Assets) -> Case:
    choice = rng.randrange(4)
    if choice == 0:
        return Case("GET on a POST route", "GET", rng.choice(("/api/matte", "/api/refine", "/api/cutout")), expect=(405,))
    if choice == 1:
        return Case("unknown path", rng.choice(("GET", "POST")), "/api/" + uuid.uuid4().hex[:6], expect=(404, 405))
    if choice == 2:
        return Case("health", "GET", "/api/health", expect=(200,))
    return Case("page", "GET", "/", expect=(200,))


def _too_big(rng: random.Random, a: Assets) -> Case:
    blob = os.urandom(1536 * 1024)  # the fuzz server's upload limit is 1 MiB
    return _post("body over the upload limit", "/api/matte", {}, {"image": blob, "trimap": a.trimap}, (413,))


GENERATORS: list[tuple[float, Callable[[random.Random, Assets], Case]]] = [
    (0.25, _valid), (0.12, _truncated), (0.08, _huge), (0.15, _bad_values), (0.12, _wrong_types),
    (0.14, _malformed), (0.10, _elsewhere), (0.04, _too_big),
]


def draw(rng: random.Random, assets: Assets) -> Case:
    r, total = rng.random(), 0.0
    for weight, make in GENERATORS:
        total += weight
        if r < total:
            return make(rng, assets)
    return GENERATORS[-1][1](rng, assets)


# -- running ---------------------------------------------------------------------------------------------
def send(base: str, case: Case, timeout: float = 60.0) -> tuple[int | None, str]:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        conn.request(case.method, case.path, body=case.body if case.method == "POST" else None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, data[:300].decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_fuzz(base: str, count: int, seed: int = 0, workers: int = 4, time_limit: float = 600.0,
             pid: int | None = None, rss_every: int = 250) -> dict:
    """Send ``count`` drawn requests to the server at ``base`` (stops early at ``time_limit`` s)."""
    rng = random.Random(seed)
    assets = Assets(rng)
    cases = [draw(rng, assets) for _ in range(count)]
    tally = Tally()
    rss: list[tuple[int, float, float]] = []
    start = time.monotonic()
    done = 0

    def one(case: Case) -> None:
        nonlocal done
        if time.monotonic() - start > time_limit:
            return
        status, detail = send(base, case)
        tally.add(case, status, detail)
        with tally.lock:
            done += 1
            if pid is not None and done % rss_every == 0:
                rss.append((done, round(time.monotonic() - start, 1), round(_rss_mib(pid), 1)))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, cases))
    health, _ = send(base, Case("health", "GET", "/api/health"))
    return {
        "requests": done, "planned": count, "seed": seed, "workers": workers, "seconds": round(time.monotonic() - start, 1),
        "status_by_kind": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "errors_500": tally.errors_500, "unexpected": tally.unexpected,
        "connection_failures": tally.connection_failures, "health_after": health, "rss_mib": rss,
    }


PROBES: dict[str, Callable[[random.Random, Assets], Case]] = {
    "health": lambda rng, a: Case("health", "GET", "/api/health", expect=(200,)),
    "valid matte": lambda rng, a: _post("valid matte", "/api/matte", {"steps": 1}, {"image": a.image, "trimap": a.trimap}, (200,)),
    "bad field value": _bad_values,
    "malformed": _malformed,
}


def probe(base: str, pid: int, count: int, seed: int = 0) -> dict[str, list[float]]:
    """RSS (MiB, every 500 requests) while one kind of request is sent ``count`` times, one at a time."""
    out = {}
    for kind, make in PROBES.items():
        rng = random.Random(seed)
        assets = Assets(rng)
        rss = []
        for i in range(count + 1):
            send(base, make(rng, assets))
            if i % 500 == 0:
                rss.append(round(_rss_mib(pid), 1))
        out[kind] = rss
    return out


def _start_server(model: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "diffmatte", "serve", "--model", str(model), "--port", "0", "--max-upload-mb", "1",
           "--queue", "16", "--max-pixels", "200000", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "http://" in line:
            url = line[line.index("http://"):].split()[0].rstrip("/")
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining the log
            return proc, url
    proc.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=1800.0)
    p.add_argument("--model", type=Path, help="checkpoint to serve (default: a tiny random-weight tiny_vit)")
    p.add_argument("--probe", type=int, default=0, metavar="N",
                   help="afterwards, N requests of each of a few kinds one at a time, RSS every 500 (a fresh server)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            import torch

            from diffmatte import DiffMatte

            torch.manual_seed(0)
            model = Path(tmp) / "tiny.safetensors"
            DiffMatte.from_config("tiny_vit").save(model)
        proc, url = _start_server(model, Path(tmp))
        try:
            result = run_fuzz(url, args.requests, args.seed, args.workers, args.time_limit, pid=proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
        if args.probe:
            proc, url = _start_server(model, Path(tmp))
            try:
                result["probe_rss_mib_every_500"] = probe(url, proc.pid, args.probe, args.seed)
            finally:
                proc.terminate()
                proc.wait(30)
    result.update(command=" ".join(["python", *sys.argv]), machine=platform.processor() or platform.machine(),
                  model=str(args.model or "tiny_vit, random weights (seed 0)"))
    print(f"{result['requests']} requests in {result['seconds']} s, {args.workers} workers, seed {args.seed}\n")
    print("| kind | answers |\n|---|---|")
    for kind, counts in result["status_by_kind"].items():
        print(f"| {kind} | {', '.join(f'{s}: {n}' for s, n in sorted(counts.items()))} |")
    print(f"\n500s: {len(result['errors_500'])}; unexpected statuses: {len(result['unexpected'])}; "
          f"connection failures: {len(result['connection_failures'])}; health after: {result['health_after']}")
    print("RSS MiB (after n requests):", ", ".join(f"{n}: {m}" for n, _, m in result["rss_mib"]))
    for kind, rss in result.get("probe_rss_mib_every_500", {}).items():
        print(f"one kind at a time, {kind}: RSS MiB every 500 requests {rss}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
