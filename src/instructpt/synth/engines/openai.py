"""Any OpenAI-compatible `/v1/completions` server (vLLM, SGLang, TGI, `transformers serve`).

The synthesizer is a completion model, so this engine sends raw completions,
never chat: the prompt is the synthesizer format verbatim. With
`send_token_ids` (the default) the prompt goes as the list of token ids that
`synth/format.py` built, so the server cannot add a second BOS in front of the
literal `<s>`; servers that only accept strings (`transformers serve` answers
400 "prompt must be a string") need `send_token_ids: false`, and then the
server's tokenizer decides about BOS.

A long synthesis run talks to remote servers for hours, so every failure mode
has one answer here:
  - 429, 408, 409, 5xx, timeouts, refused or dropped connections, truncated or
    non-JSON bodies: retried with exponential backoff and full jitter
    (`Retry-After`, capped at backoff_max_s, wins when the server sends it),
    on another endpoint when there is one; every wait is bounded by a timeout.
  - Other 4xx (context overflow, bad parameters): the request can never
    succeed, so it comes back as finish_reason "skipped" with the server's
    message, and the stage counts it.
  - 401/403/404, a request that exhausts its retries, the first requests all
    rejected, or a text prompt that the server tokenizes differently (a second
    BOS): `EngineError`, after every finished completion went to `on_result`.

Only fields that every server accepts are sent: `transformers serve` rejects
unknown fields (422), so there is no `skip_special_tokens`; the format's tags
are non-special tokens and survive the servers' default decoding anyway.
`stop` goes only when the params have stop strings, and the answer is cut
before the first of them here too: OpenAI and vLLM leave the stop string out,
`transformers serve` keeps it, and a server may ignore the field altogether.
Each request carries its own `seed` (`Prompt.seed`, else the params' seed).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import re
import time
from collections.abc import Sequence
from typing import Any

from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import (
    Completion,
    DecodingParams,
    EngineError,
    OnResult,
    Prompt,
    cut_at_stop,
)
from instructpt.synth.engines.options import OpenAIEngineConfig

#: Statuses worth another try: rate limits, timeouts, conflicts and server errors.
RETRY_STATUSES = frozenset({408, 409, 429})
#: Statuses that say the whole setup is wrong (key, URL, model name), not one request.
FATAL_STATUSES = {
    401: "rejected the API key; check the environment variable {key_env}",
    403: "refused access; check the API key in {key_env} and its permissions",
    404: "has no such route or model; check that the URL ends in /v1 and that it serves {model!r}",
}
#: A server message that means this prompt is too long for the model (vLLM, OpenAI, TGI wording).
CONTEXT_OVERFLOW = re.compile(
    r"context|maximum.{0,20}length|max_tokens|too long|too many tokens|token limit", re.I
)
#: When this many requests in a row were rejected for a reason other than their
#: length before any succeeded, the setup is wrong (e.g. token ids sent to a
#: server that only takes strings): stop instead of skipping the whole corpus.
REJECTED_BEFORE_ANY_SUCCESS = 8
#: Stop strings sent per request: OpenAI's documented limit (vLLM takes any number).
#: Further stops are not sent but still cut on this side, so only tokens are lost.
MAX_SENT_STOPS = 4


class _Retry(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, wait_s: float | None = None, endpoint_failed: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s  # from Retry-After; None means exponential backoff
        self.endpoint_failed = endpoint_failed  # False for 429: busy, not broken


class OpenAIEngine:
    """Raw completions against one or more OpenAI-compatible endpoints, with bounded concurrency."""

    name = "openai"

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig, options: OpenAIEngineConfig) -> OpenAIEngine:
        """The engine, checked against its endpoints before any work (fail at the edge)."""
        engine = cls(cfg.model, cfg.revision, options)
        engine.check()
        return engine

    def __init__(
        self,
        model: str,
        revision: str | None,
        options: OpenAIEngineConfig,
        tokenizer: Any = None,
    ) -> None:
        try:
            import httpx  # noqa: F401  (checked here so a missing extra fails before the run)
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise EngineError(
                "the openai engine needs httpx: pip install httpx (a dependency of instructpt)"
            ) from e
        self.model = model
        self.revision = revision
        self.options = options
        # The server tokenizes and decodes; the tokenizer is accepted for parity with
        # the other engines and is not needed.
        self.tokenizer = tokenizer
        self.preferred_batch = options.preferred_batch()  # 16 waves of `concurrency`
        self.served_model = options.served_model_name or model
        self._urls = [u.rstrip("/") for u in options.base_urls]
        # Read once; kept only inside the headers, which no repr or message shows.
        key = os.environ.get(options.api_key_env)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._next = 0  # round-robin position
        self._cooldown_until = dict.fromkeys(self._urls, 0.0)  # endpoint -> monotonic time
        self._rejected_in_a_row = 0
        self._any_success = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: list[Any] = []  # httpx.AsyncClient per worker, on the engine's own loop
        self._ssl: Any = None

    def __repr__(self) -> str:
        return (
            f"OpenAIEngine(model={self.served_model!r}, base_urls={self._urls!r}, "
            f"concurrency={self.options.concurrency})"
        )

    # ------------------------------------------------------------------ public

    def check(self) -> list[str]:
        """Fail at the edge: every endpoint answers GET /models and serves our model.

        Returns the model ids the first endpoint serves.
        """
        import httpx

        timeout = httpx.Timeout(
            self.options.request_timeout_s, connect=self.options.connect_timeout_s
        )
        first: list[str] | None = None
        with httpx.Client(headers=self._headers, timeout=timeout) as client:
            for url in self._urls:
                try:
                    resp = client.get(f"{url}/models")
                except httpx.HTTPError as e:
                    raise EngineError(
                        f"cannot reach {url}/models ({type(e).__name__}: {e}); check that the "
                        "server is running and that base_urls points at it (ending in /v1)"
                    ) from None
                if resp.status_code in FATAL_STATUSES:
                    raise EngineError(f"{url} {self._fatal_hint(resp.status_code)}")
                if resp.status_code != 200:
                    raise EngineError(
                        f"{url}/models answered HTTP {resp.status_code}: {_server_message(resp)}"
                    )
                try:
                    served = [m["id"] for m in resp.json()["data"]]
                except (ValueError, KeyError, TypeError):
                    raise EngineError(
                        f"{url}/models did not return an OpenAI model list; is this an "
                        "OpenAI-compatible server?"
                    ) from None
                if self.served_model not in served:
                    raise EngineError(
                        f"{url} does not serve {self.served_model!r}; it serves {served}. Set "
                        "served_model_name to one of these, or start the server with this model."
                    )
                first = served if first is None else first
        return first or []

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: DecodingParams,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order; `on_result` runs on this thread as each is final.

        The engine keeps one event loop and its HTTP clients for its lifetime, so
        repeated calls reuse keep-alive connections.
        """
        if not prompts:
            return []
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._generate(prompts, params, on_result))

    def close(self) -> None:
        """Close the connections and the event loop; generate() may be called again after."""
        if self._loop is not None and not self._loop.is_closed():
            for client in self._clients:
                self._loop.run_until_complete(client.aclose())
            self._loop.close()
        self._clients = []
        self._loop = None

    # ------------------------------------------------------------------ internals

    async def _generate(
        self, prompts: Sequence[Prompt], params: DecodingParams, on_result: OnResult | None
    ) -> list[Completion]:
        """`concurrency` workers pull prompts in order; each owns one HTTP client.

        One client per worker rather than one shared pool: httpcore's pool scans
        all its connections on every request, which cost more client CPU than
        the rest of the request at 16+ connections (benchmarks/openai_engine.py).
        The worker count is also the concurrency bound, with no semaphore.
        """
        n_workers = min(self.options.concurrency, len(prompts))
        while len(self._clients) < n_workers:
            self._clients.append(self._make_client())
        results: list[Completion | None] = [None] * len(prompts)
        todo = iter(range(len(prompts)))  # shared: each index is taken by exactly one worker

        async def worker(client: Any) -> None:
            for i in todo:
                completion = await self._complete(client, prompts[i], params)
                # Delivered at once, before any other await: when a later request
                # fails for good, every finished completion has been handed over.
                results[i] = completion
                if on_result is not None:
                    on_result(i, completion)

        workers = [asyncio.ensure_future(worker(c)) for c in self._clients[:n_workers]]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return results  # type: ignore[return-value]  (every slot is filled)

    def _make_client(self) -> Any:
        import httpx

        if self._ssl is None:  # one TLS context for all clients; each costs ~30 ms to build
            self._ssl = httpx.create_ssl_context()
        n = len(self._urls)  # one keep-alive connection per endpoint
        return httpx.AsyncClient(
            headers=self._headers,
            verify=self._ssl,
            # Pool waits are bounded too; the whole request is bounded in _attempt.
            timeout=httpx.Timeout(
                self.options.request_timeout_s, connect=self.options.connect_timeout_s
            ),
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
        )

    def _body(self, prompt: Prompt, params: DecodingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.served_model,
            "prompt": list(prompt.token_ids) if self.options.send_token_ids else prompt.text,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed_for(prompt),
            "n": 1,
        }
        if params.stop:  # absent otherwise: the body of a request without stops is unchanged
            # OpenAI's API takes at most 4; the rest are still cut here after the answer
            body["stop"] = list(params.stop[:MAX_SENT_STOPS])
        return body

    def _pick(self, avoid: str | None) -> str:
        """Round-robin over endpoints that are not cooling down after a failure.

        When all are cooling down, the one that recovers first is used, so a
        request never waits for an endpoint longer than its own backoff.
        """
        now = time.monotonic()
        n = len(self._urls)
        for k in range(n):
            url = self._urls[(self._next + k) % n]
            if self._cooldown_until[url] <= now and (url != avoid or n == 1):
                self._next = (self._next + k + 1) % n
                return url
        return min(self._urls, key=lambda u: (u == avoid and n > 1, self._cooldown_until[u]))

    def _backoff(self, attempt: int) -> float:
        """Full jitter (AWS architecture blog): spreads retries of many clients apart."""
        cap = min(self.options.backoff_max_s, self.options.backoff_base_s * 2**attempt)
        return random.uniform(0, cap)

    async def _complete(self, client: Any, prompt: Prompt, params: DecodingParams) -> Completion:
        body = self._body(prompt, params)
        failures: dict[str, str] = {}  # endpoint -> last failure, for the error message
        url: str | None = None
        for attempt in range(self.options.max_retries + 1):
            url = self._pick(avoid=url)
            try:
                completion = await self._attempt(client, url, body, prompt, params.stop)
            except _Retry as r:
                failures[url] = r.reason
                wait = self._backoff(attempt) if r.wait_s is None else r.wait_s
                # Retry-After is capped too: one odd header must not park a worker for hours.
                wait = min(wait, self.options.backoff_max_s)
                if r.endpoint_failed:
                    self._cooldown_until[url] = time.monotonic() + wait
                if attempt < self.options.max_retries:
                    await asyncio.sleep(wait)
                continue
            self._cooldown_until[url] = 0.0
            self._note_outcome(completion)
            if completion.finish_reason != "skipped":
                self._check_prompt_tokens(completion, prompt)
            return completion
        tried = "; ".join(f"{u}: {reason}" for u, reason in failures.items())
        raise EngineError(
            f"gave up after {self.options.max_retries + 1} attempts ({tried}). Check that the "
            f"server is up and serving {self.served_model!r} (GET <base_url>/models), or raise "
            "max_retries / request_timeout_s; finished completions were kept."
        )

    async def _attempt(
        self, client: Any, url: str, body: dict[str, Any], prompt: Prompt, stops: Sequence[str]
    ) -> Completion:
        import httpx

        try:
            # wait_for bounds the whole request: httpx's read timeout is per read,
            # so a server that trickles bytes could otherwise hold a slot forever.
            resp = await asyncio.wait_for(
                client.post(f"{url}/completions", json=body),
                self.options.request_timeout_s,
            )
        except (asyncio.TimeoutError, httpx.TimeoutException):
            raise _Retry(f"no answer within {self.options.request_timeout_s:g} s") from None
        except httpx.RequestError as e:  # refused, reset, dropped mid-body, bad encoding
            raise _Retry(f"connection error ({type(e).__name__}: {e})") from None

        status = resp.status_code
        if status == 200:
            return self._parse(resp, prompt, stops)
        message = _server_message(resp)
        if status == 429 or status >= 500 or status in RETRY_STATUSES:
            wait = _retry_after(resp) if status in (429, 503) else None
            raise _Retry(f"HTTP {status}: {message}", wait, endpoint_failed=status != 429)
        if status in FATAL_STATUSES:
            raise EngineError(f"{url} {self._fatal_hint(status)} (HTTP {status}: {message})")
        return Completion(
            "", "skipped", len(prompt.token_ids), 0, detail=f"HTTP {status}: {message}"
        )

    def _parse(self, resp: Any, prompt: Prompt, stops: Sequence[str]) -> Completion:
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            # A proxy that cut the body short, or an HTML error page with status 200.
            raise _Retry(f"malformed response body: {resp.text[:200]!r}") from None
        usage = data.get("usage") or {}
        # A server that keeps the stop string (or ignores `stop`) is cut here, so every
        # server gives the same text; a stop string in the text means the turn ended.
        text, stopped = cut_at_stop(text, stops)
        length = choice.get("finish_reason") == "length" and not stopped
        return Completion(
            text=text,
            finish_reason="length" if length else "stop",
            prompt_tokens=usage.get("prompt_tokens", len(prompt.token_ids)),
            completion_tokens=usage.get("completion_tokens", 0),
        )

    def _check_prompt_tokens(self, completion: Completion, prompt: Prompt) -> None:
        """A text prompt must reach the model as exactly our token ids.

        Servers tokenize text with add_special_tokens=True; with a tokenizer that
        adds a BOS (Llama's does) the literal `<s>` becomes a second BOS and the
        pairs are silently worse. The server's own prompt count gives it away.
        """
        if self.options.send_token_ids or completion.prompt_tokens == len(prompt.token_ids):
            return
        extra = completion.prompt_tokens - len(prompt.token_ids)
        # One extra token is the server's BOS: a second one where `<s>` is the model's BOS
        # (Llama, Mistral), a first one the other engines never send where it is not (Gemma).
        cause = (
            "a second BOS (or a BOS the hf engine does not add)"
            if extra == 1
            else ("a different tokenization")
        )
        raise EngineError(
            f"the server counted {completion.prompt_tokens} prompt tokens where we sent "
            f"{len(prompt.token_ids)}: its tokenizer adds {cause} to the text prompt. Use a "
            "server that takes token ids (send_token_ids: true, e.g. vLLM) for this model."
        )

    def _note_outcome(self, completion: Completion) -> None:
        """Stop early when the server rejects everything for a reason unrelated to length."""
        if completion.finish_reason != "skipped":
            self._any_success = True
            self._rejected_in_a_row = 0
            return
        if CONTEXT_OVERFLOW.search(completion.detail):
            return
        self._rejected_in_a_row += 1
        if not self._any_success and self._rejected_in_a_row >= REJECTED_BEFORE_ANY_SUCCESS:
            hint = " (this server may not take token ids: set send_token_ids: false)"
            raise EngineError(
                f"the server rejected the first {self._rejected_in_a_row} requests: "
                f"{completion.detail}" + (hint if self.options.send_token_ids else "")
            )

    def _fatal_hint(self, status: int) -> str:
        return FATAL_STATUSES[status].format(
            key_env=self.options.api_key_env, model=self.served_model
        )


def _server_message(resp: Any) -> str:
    """The error text in whichever shape the server uses (OpenAI/vLLM, FastAPI, plain)."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300].strip() or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        for key in ("detail", "message", "error"):
            if data.get(key):
                return str(data[key]) if not isinstance(data[key], str) else data[key]
    return json.dumps(data)[:300]


def _retry_after(resp: Any) -> float | None:
    """Seconds from a Retry-After header given as seconds or as an HTTP date."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
