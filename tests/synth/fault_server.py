"""A scriptable, fault-injecting stand-in for an OpenAI-compatible completions server.

A real server (vLLM, `transformers serve`) cannot be made to fail on cue, so the
engine's retry, skip and failover paths are tested against this one: a stdlib
HTTP/1.1 server in a background thread that answers `POST /v1/completions`
with the next behaviour of its script, then with `default` once the script is
used up. Behaviours, written as `name` or `name:argument`:

    ok            200 with a completion derived from the prompt (see `echo_text`)
    429[:s]       rate limited, with `Retry-After: s` when s is given
    429date:s     rate limited, Retry-After as an HTTP date s seconds ahead
    500, 503[:s]  server error (503 with an optional Retry-After)
    slow:s        answer ok after s seconds
    hang          never answer (until the server stops)
    drop          send the headers and half the body, then close the connection
    truncated     a 200 whose JSON body is cut short (Content-Length matches)
    nonjson       a 200 with an HTML body
    400           context-length error in vLLM's wording
    reject        400 "prompt must be a string." (`transformers serve` given token ids)
    401           the API key is refused

Prompts longer than `max_prompt_len` (tokens for id prompts, characters for
text) always get the 400, as a real server would. The server records requests
per prompt, answers per prompt, the peak number of requests in flight and the
Authorization header it saw, so tests can assert on all of them. `usage`
counts one token per word of a text prompt (one more with `adds_bos`).

    python -m tests.synth.fault_server --port 8123 --latency 0.02   # for benchmarks
"""

from __future__ import annotations

import argparse
import email.utils
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # hung handlers must not block shutdown
    request_queue_size = 256  # the default backlog of 5 stalls bursts of connects for 1 s


def echo_text(prompt: str | list[int]) -> str:
    """The deterministic completion for a prompt: a synthesizer-shaped pair naming it."""
    key = prompt if isinstance(prompt, str) else ",".join(map(str, prompt))
    return f"<QUE> q {key} <ANS> a </END>"


def prompt_key(prompt: str | list[int]) -> str:
    return prompt if isinstance(prompt, str) else ",".join(map(str, prompt))


class FaultServer:
    """Start with `with FaultServer(["503", "ok"]) as server:`; `server.url` ends in /v1."""

    def __init__(
        self,
        script: Iterable[str] = (),
        default: str = "ok",
        latency_s: float = 0.0,
        max_prompt_len: int = 10_000,
        models: Iterable[str] = ("tiny",),
        port: int = 0,
        adds_bos: bool = False,
    ) -> None:
        self.script = list(script)
        self.default = default
        self.latency_s = latency_s
        self.max_prompt_len = max_prompt_len
        self.models = list(models)
        self.adds_bos = adds_bos  # count text prompts one token longer, as a BOS-adding tokenizer
        self.requests = Counter()  # prompt key -> requests received
        self.answered = Counter()  # prompt key -> 200 answers with a completion
        self.bodies: list[dict] = []
        self.auth_headers: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", port), self._handler_class())
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        # A short poll interval makes stop() quick; the default 0.5 s adds up over a test file.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases "hang" handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def _next_behaviour(self, prompt: str | list[int]) -> str:
        with self._lock:
            if len(prompt) > self.max_prompt_len:
                return "400"
            return self.script.pop(0) if self.script else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            # Headers and body in one buffered write, sent at once: with the stdlib's
            # unbuffered writes, Nagle + delayed ACK add ~40 ms to every answer.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def send_json(
                self, status: int, payload: object, headers: dict[str, str] | None = None
            ) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    data = [{"id": m, "object": "model"} for m in server.models]
                    self.send_json(200, {"object": "list", "data": data})
                else:
                    self.send_json(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/completions":
                    self.send_json(404, {"detail": "Not Found"})
                    return
                prompt = body["prompt"]
                with server._lock:
                    server.requests[prompt_key(prompt)] += 1
                    server.bodies.append(body)
                    server.auth_headers.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self.respond(server._next_behaviour(prompt), prompt, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def respond(self, behaviour: str, prompt: str | list[int], body: dict) -> None:
                name, _, arg = behaviour.partition(":")
                if server.latency_s:
                    time.sleep(server.latency_s)
                if name == "ok":
                    self.ok(prompt, body)
                elif name == "slow":
                    time.sleep(float(arg))
                    self.ok(prompt, body)
                elif name in ("429", "503"):
                    headers = {"Retry-After": arg} if arg else {}
                    msg = "rate limited" if name == "429" else "overloaded"
                    self.send_json(int(name), {"error": {"message": msg}}, headers)
                elif name == "429date":
                    when = email.utils.formatdate(time.time() + float(arg), usegmt=True)
                    self.send_json(
                        429, {"error": {"message": "rate limited"}}, {"Retry-After": when}
                    )
                elif name == "500":
                    self.send_json(500, {"error": {"message": "internal error"}})
                elif name == "hang":
                    server._stop.wait()
                elif name == "drop":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "400")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"text": "<QUE> q')
                    self.close_connection = True
                elif name == "truncated":
                    raw = b'{"choices": [{"text": "<QUE> q'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                elif name == "nonjson":
                    raw = b"<html><body>502 Bad Gateway</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                elif name == "400":
                    message = (
                        f"This model's maximum context length is {server.max_prompt_len} tokens. "
                        f"However, you requested {len(prompt) + body.get('max_tokens', 0)} tokens."
                    )
                    self.send_json(400, {"error": {"message": message, "code": 400}})
                elif name == "reject":
                    self.send_json(400, {"detail": "prompt must be a string."})
                elif name == "401":
                    self.send_json(401, {"error": {"message": "Incorrect API key provided"}})
                else:
                    raise ValueError(f"unknown behaviour {behaviour!r}")

            def ok(self, prompt: str | list[int], body: dict) -> None:
                # Text prompts count one token per word: tests use one-token words.
                n_prompt = len(prompt) if isinstance(prompt, list) else len(prompt.split())
                n_prompt += server.adds_bos and isinstance(prompt, str)
                with server._lock:
                    server.answered[prompt_key(prompt)] += 1
                self.send_json(
                    200,
                    {
                        "id": "cmpl-test",
                        "object": "text_completion",
                        "model": body.get("model"),
                        "choices": [
                            {"index": 0, "text": echo_text(prompt), "finish_reason": "stop"}
                        ],
                        "usage": {
                            "prompt_tokens": n_prompt,
                            "completion_tokens": 7,
                            "total_tokens": n_prompt + 7,
                        },
                    },
                )

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--model", default="tiny")
    args = parser.parse_args()
    server = FaultServer(latency_s=args.latency, models=[args.model], port=args.port)
    print(f"serving on {server.url}", flush=True)
    server._httpd.serve_forever()


if __name__ == "__main__":
    main()
