"""A real localhost OpenAI-compatible server process that serves a tiny model through our code.

Why not `transformers serve`: the kill-resume harness must count, at the
server, every request it receives, keyed by prompt, and a random tiny model
behind `transformers serve` writes no parseable pairs, so cook and mix would
have nothing to do. This server runs in its own process, loads the tiny
model with our `HFEngine` (safetensors, `trust_remote_code` off), answers
`POST /v1/completions` (token-id prompts, as vLLM takes them) with the
model's greedy continuation, and wraps it into one synthesizer-shaped pair so
that every later stage has real work:

    <QUE> What follows text {n}? <ANS> {the model's continuation} </END>

Every request is appended to `--log` as one JSON line (event "received" or
"answered", and the prompt's token ids) and flushed at once, so the log survives the
clients that are killed around it.

    python -m tests.reliability.model_server --model DIR --port 0 --log requests.jsonl

It prints `serving on http://127.0.0.1:PORT/v1` when ready.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from instructpt.synth.config import HFEngineConfig
from instructpt.synth.engines.base import DecodingParams, Prompt
from instructpt.synth.engines.hf import HFEngine

TAGS = ("<s>", "</s>", "<CON>", "</CON>", "<QUE>", "<ANS>", "</END>")


def prompt_hash(prompt: list[int] | str) -> str:
    return hashlib.sha256(json.dumps(prompt).encode()).hexdigest()[:16]


def wrap(n: int, continuation: str) -> str:
    """One parseable pair around the model's own words (tags removed, never empty)."""
    for tag in TAGS:
        continuation = continuation.replace(tag, " ")
    answer = " ".join(continuation.split())[:200] or "nothing"
    return f"<QUE> What follows text {n}? <ANS> {answer} </END>"


def serve(model: Path, port: int, log: Path, model_name: str) -> None:
    engine = HFEngine(str(model), None, HFEngineConfig(device="cpu", batch_size=1))
    generate_lock = threading.Lock()  # one generate at a time: batch 1, so greedy is exact
    log_lock = threading.Lock()
    log_fh = open(log, "a", encoding="utf-8")  # noqa: SIM115  (open for the server's life)

    def note(event: str, prompt: list[int]) -> None:
        with log_lock:
            log_fh.write(json.dumps({"event": event, "prompt": prompt}) + "\n")
            log_fh.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def send_json(self, status: int, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": model_name}]})
            else:
                self.send_json(200 if self.path == "/health" else 404, {})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            prompt = body["prompt"]
            if self.path != "/v1/completions" or not isinstance(prompt, list):
                self.send_json(400, {"error": {"message": "token-id prompts only"}})
                return
            key = prompt_hash(prompt)
            note("received", prompt)
            params = DecodingParams(max_new_tokens=int(body.get("max_tokens", 16)))
            with generate_lock:
                out = engine.generate([Prompt(text="", token_ids=tuple(prompt))], params)[0]
            n = int(hashlib.sha256(key.encode()).hexdigest()[:6], 16) % 1000
            text = wrap(n, out.text)
            self.send_json(
                200,
                {
                    "object": "text_completion",
                    "model": body.get("model"),
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": {
                        "prompt_tokens": len(prompt),
                        "completion_tokens": out.completion_tokens,
                        "total_tokens": len(prompt) + out.completion_tokens,
                    },
                },
            )
            note("answered", prompt)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    httpd = Server(("127.0.0.1", port), Handler)
    print(f"serving on http://127.0.0.1:{httpd.server_address[1]}/v1", flush=True)
    httpd.serve_forever(poll_interval=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--model-name", default="tiny")
    args = parser.parse_args()
    serve(args.model, args.port, args.log, args.model_name)


if __name__ == "__main__":
    main()
