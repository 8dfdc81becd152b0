"""OpenAIEngine vs a bare asyncio loop over the `openai` SDK, against the same local server.

The server is the test suite's fault server in a separate process, in "ok" mode
with a fixed latency per answer (default 20 ms), so both clients wait on the
same, cheap server and what differs is client overhead: retries, failover and
bookkeeping in ours, pydantic models in the SDK's. Both run at the same
concurrency on the same prompts, alternating, several rounds each; reported
are requests/s (best round), client CPU ms per request (from process CPU time;
the server's CPU is in its own process) and the ratio ours/SDK (goal >= 0.95).

    .venv/bin/python benchmarks/openai_engine.py --requests 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from openai import AsyncOpenAI  # imported here so its ~1 s import is not timed

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # tests.synth.fault_server is the server
sys.path.insert(0, str(REPO / "src"))

from instructpt.synth.config import OpenAIEngineConfig  # noqa: E402
from instructpt.synth.engines.base import DecodingParams, Prompt  # noqa: E402
from instructpt.synth.engines.openai import OpenAIEngine  # noqa: E402

MODEL = "tiny"
PARAMS = DecodingParams(max_new_tokens=64)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "tests.synth.fault_server", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--latency", str(latency_s), "--model", MODEL],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/models", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fault server did not start")


def make_prompts(n: int) -> list[Prompt]:
    # One-token "words" so the server's usage count matches the token ids.
    return [Prompt(text=f"document-{i}", token_ids=(1000 + i,)) for i in range(n)]


def run_engine(url: str, prompts: list[Prompt], concurrency: int, batched: bool) -> list[str]:
    options = OpenAIEngineConfig(base_urls=[url], concurrency=concurrency, send_token_ids=False)
    engine = OpenAIEngine(MODEL, None, options)
    step = engine.preferred_batch if batched else len(prompts)
    out: list[str] = []
    for start in range(0, len(prompts), step):
        out += [c.text for c in engine.generate(prompts[start : start + step], PARAMS)]
    engine.close()
    return out


def run_sdk(url: str, prompts: list[Prompt], concurrency: int) -> list[str]:
    """What a user would write by hand: AsyncOpenAI + a semaphore + gather."""

    async def main() -> list[str]:
        client = AsyncOpenAI(base_url=url, api_key="unused", max_retries=8, timeout=300)
        slots = asyncio.Semaphore(concurrency)

        async def one(p: Prompt) -> str:
            async with slots:
                r = await client.completions.create(
                    model=MODEL,
                    prompt=p.text,
                    max_tokens=PARAMS.max_new_tokens,
                    temperature=PARAMS.temperature,
                    top_p=PARAMS.top_p,
                    seed=PARAMS.seed,
                    n=1,
                )
                return r.choices[0].text

        try:
            return list(await asyncio.gather(*(one(p) for p in prompts)))
        finally:
            await client.close()

    return asyncio.run(main())


def timed(fn, *args) -> tuple[float, float, list[str]]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02, help="server seconds per answer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    proc, url = start_server(args.latency)
    prompts = make_prompts(args.requests)
    runs = {
        "openai SDK (AsyncOpenAI + semaphore)": lambda: run_sdk(url, prompts, args.concurrency),
        "OpenAIEngine, one generate call": lambda: run_engine(
            url, prompts, args.concurrency, batched=False
        ),
        "OpenAIEngine, preferred_batch calls": lambda: run_engine(
            url, prompts, args.concurrency, batched=True
        ),
    }
    best: dict[str, tuple[float, float]] = {}
    try:
        reference = None
        for _ in range(args.rounds):
            for name, fn in runs.items():
                wall, cpu, out = timed(fn)
                reference = reference or out
                assert out == reference, f"{name} returned different completions"
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
    finally:
        proc.terminate()
        proc.wait()

    ceiling = args.concurrency / args.latency
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, server latency "
        f"{args.latency * 1000:g} ms (ceiling {ceiling:.0f} req/s); best of {args.rounds}; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    sdk_rate = args.requests / best["openai SDK (AsyncOpenAI + semaphore)"][0]
    print("| client | wall s | requests/s | client CPU ms/request | vs SDK |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in best.items():
        rate = args.requests / wall
        print(
            f"| {name} | {wall:.2f} | {rate:.0f} | {cpu / args.requests * 1000:.2f} | "
            f"{rate / sdk_rate:.2f}x |"
        )


if __name__ == "__main__":
    main()
