"""Load test of the HTTP service on loopback: latency and throughput with micro-batching on and off.

Starts `python -m Step_7.serve --no-review` on a free port (the deployed model of `make run`), once with
batching (serve.max_batch_size 16, max_wait_ms 10) and once without (max_batch_size 1), and drives it with an
asyncio client at each concurrency for --seconds (at most --requests per level): memes/s, p50/p99 latency,
failed requests. Then a soak: --soak seconds at the highest concurrency with batching on, where 0 requests may
fail. Images are the default data's memes, sent without text, so OCR runs as for real traffic (--text sends the
caption and skips OCR). Prints a table and the batching/no-batching throughput ratio; writes
bench/results/serve_load.json.

    python -m bench.serve_load                      # ~4 minutes after `make run`
    python -m bench.serve_load --seconds 5 --soak 0 --concurrency 1 8
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

RESULTS = Path("bench/results/serve_load.json")
MODES = {"batching": {"max_batch_size": 16, "max_wait_ms": 10}, "no batching": {"max_batch_size": 1, "max_wait_ms": 0}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memes(folder: Path, count: int) -> list[bytes]:
    found = sorted(folder.glob("*.jpg"))[:count]
    if not found:
        sys.exit(f"no memes in {folder}: run `make run` first (prepare writes them)")
    return [p.read_bytes() for p in found]


class Server:
    """The service in a subprocess with a params file whose serve section has the mode's batching."""

    def __init__(self, mode: dict, log: Path):
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["serve"].update(mode)
        self.params = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        yaml.safe_dump(params, self.params)
        self.params.close()
        self.port, self.log = free_port(), log.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "Step_7.serve", "--no-review", "--port", str(self.port),
                                         "--params", self.params.name, "--log-level", "warning"],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the service exited ({self.process.returncode}); see {self.log.name}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        sys.exit(f"the service was not ready in {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        os.unlink(self.params.name)


async def drive(url: str, images: list[bytes], concurrency: int, seconds: float, limit: int, text: bool) -> dict:
    """`concurrency` clients sending memes back to back until `seconds` pass or `limit` requests were sent."""
    latencies, failures, sent = [], {}, 0
    deadline = time.monotonic() + seconds

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < deadline and sent < limit:
            index, sent = sent, sent + 1
            form = {"text": "benchmark caption"} if text else None
            started = time.perf_counter()
            try:
                answer = await http.post("/v1/predict", files={"image": ("m.jpg", images[index % len(images)])},
                                         data=form)
                status = answer.status_code
            except httpx.HTTPError as err:
                status = type(err).__name__
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures[str(status)] = failures.get(str(status), 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(w, http) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    found = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": sent, "ok": len(latencies), "failed": sum(failures.values()),
            "failures": failures, "seconds": round(elapsed, 2), "memes_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(float(np.percentile(found, 50)), 1) if len(found) else None,
            "p99_ms": round(float(np.percentile(found, 99)), 1) if len(found) else None}


def run(args: argparse.Namespace) -> dict:
    images = memes(Path(args.images), 64)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    found = {"levels": [], "soak": None, "text_given": args.text}
    for name, mode in MODES.items():
        server = Server(mode, RESULTS.parent / f"serve_{name.replace(' ', '_')}.log")
        try:
            server.wait_ready()
            asyncio.run(drive(server.url, images, 4, 3, 8, args.text))  # warm-up: tesseract, torch kernels
            for concurrency in args.concurrency:
                row = asyncio.run(drive(server.url, images, concurrency, args.seconds, args.requests, args.text))
                found["levels"].append({"mode": name, **row})
                print_row(found["levels"][-1])
            if name == "batching" and args.soak > 0:
                top = max(args.concurrency)
                found["soak"] = asyncio.run(drive(server.url, images, top, args.soak, 10**9, args.text))
                print(f"soak: {top} clients for {args.soak:.0f} s, batching on: {found['soak']['ok']} ok, "
                      f"{found['soak']['failed']} failed {found['soak']['failures'] or ''}, "
                      f"{found['soak']['memes_per_s']} memes/s, p99 {found['soak']['p99_ms']} ms")
        finally:
            server.stop()
    return found


def print_row(row: dict) -> None:
    print(f"{row['mode']:<12} {row['concurrency']:>4} {row['requests']:>6} {row['failed']:>6} {row['p50_ms']:>9} "
          f"{row['p99_ms']:>9} {row['memes_per_s']:>9}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="clients at once, per level")
    parser.add_argument("--seconds", type=float, default=20, help="time per level")
    parser.add_argument("--requests", type=int, default=2000, help="at most this many requests per level")
    parser.add_argument("--soak", type=float, default=120, help="seconds at the top concurrency (0: none)")
    parser.add_argument("--text", action="store_true", help="send a caption, so OCR does not run")
    parser.add_argument("--images", default="data/prepared/synthetic/images", help="folder of .jpg memes to send")
    args = parser.parse_args()
    print(f"{'mode':<12} {'conc':>4} {'sent':>6} {'failed':>6} {'p50 ms':>9} {'p99 ms':>9} {'memes/s':>9}")
    found = run(args)
    rate = {(r["mode"], r["concurrency"]): r["memes_per_s"] for r in found["levels"]}
    top = max(args.concurrency)
    if rate.get(("no batching", top)):
        found["batching_speedup_at_top"] = round(rate[("batching", top)] / rate[("no batching", top)], 2)
        print(f"throughput at {top} clients, batching / no batching: {found['batching_speedup_at_top']}x")
    RESULTS.write_text(json.dumps(found, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
