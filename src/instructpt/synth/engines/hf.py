"""In-process transformers `generate`: the engine for CPUs, small jobs and tests.

Prompts are fed as token ids with left padding (a causal LM continues from the
right end), greedy by default. The whole batch given to `generate` is one
`model.generate` call per `batch_size` prompts, in the given order, so the
same prompts in the same order give the same batches and so the same bytes
(padding changes matmul shapes, which can change a greedy argmax in the last
bit; a stable batch composition keeps resume exact).

Sampling draws a whole batch from torch's generator seeded with
`DecodingParams.seed` per batch (transformers has one RNG per `generate`), so
a prompt's own `Prompt.seed` is not honoured here: rows of a batch differ
because they draw one after another. Sampling uses the full distribution
(`top_k=0`): transformers otherwise applies its default top-k of 50, or the
model's `generation_config` value, behind the caller's back.

Stop strings end a row as soon as its *generated* tokens spell one (matched
by transformers' `StopStringCriteria` on the token strings, so a stop split
over two tokens is found); the text is then decoded and cut before the first
stop string, as every engine returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from instructpt.core.devices import resolve_device, resolve_dtype
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import (
    Completion,
    DecodingParams,
    EngineError,
    OnResult,
    Prompt,
    cut_at_stop,
)
from instructpt.synth.engines.options import HFEngineConfig

if TYPE_CHECKING:
    import torch


class HFEngine:
    name = "hf"

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig, options: HFEngineConfig) -> HFEngine:
        return cls(cfg.model, cfg.revision, options, cfg.tokenizer, cfg.trust_remote_code)

    def __init__(
        self,
        model: str,
        revision: str | None,
        options: HFEngineConfig,
        tokenizer: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model
        self.revision = revision
        self.options = options
        self.preferred_batch = options.preferred_batch()
        self.device = resolve_device(options.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                tokenizer or model, revision=revision, trust_remote_code=trust_remote_code
            )
            self.lm = AutoModelForCausalLM.from_pretrained(
                model,
                revision=revision,
                dtype=resolve_dtype(options.dtype, self.device),
                trust_remote_code=trust_remote_code,
                use_safetensors=True,  # never unpickle weights
            ).to(self.device)
        except OSError as exc:
            raise EngineError(f"cannot load model '{model}' for the hf engine: {exc}") from None
        self.lm.eval()
        self.eos_id = self.tokenizer.eos_token_id
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id
        )
        self._stop_criteria: dict[tuple[str, ...], Any] = {}

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: DecodingParams,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        out: list[Completion] = []
        size = self.options.batch_size
        for start in range(0, len(prompts), size):
            batch = prompts[start : start + size]
            results = self._generate_batch(batch, params)
            for i, completion in enumerate(results):
                if on_result is not None:
                    on_result(start + i, completion)
            out.extend(results)
        return out

    def _generate_batch(self, batch: Sequence[Prompt], params: DecodingParams) -> list[Completion]:
        import torch
        from transformers import StoppingCriteriaList

        ids, mask = self._left_padded(batch)
        width = ids.shape[1]
        if params.temperature > 0:
            torch.manual_seed(params.seed)
        stopper = (
            _StopAfterPrompt(self._stop_criterion(params.stop), width) if params.stop else None
        )
        with torch.inference_mode():
            generated = self.lm.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=params.max_new_tokens,
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_id,
                stopping_criteria=StoppingCriteriaList([stopper] if stopper else []),
                **_sampling(params),
            )
        ended_at = stopper.ended_at if stopper else {}
        return [
            self._completion(generated[row, width:].tolist(), prompt, ended_at.get(row), params)
            for row, prompt in enumerate(batch)
        ]

    def _left_padded(self, batch: Sequence[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, padded on the left: a causal LM continues at the right."""
        import torch

        width = max(len(p.token_ids) for p in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, prompt in enumerate(batch):
            n = len(prompt.token_ids)
            ids[row, width - n :] = torch.tensor(prompt.token_ids, dtype=torch.long)
            mask[row, width - n :] = 1
        return ids, mask

    def _stop_criterion(self, stops: tuple[str, ...]) -> Any:
        """transformers' criterion for `stops`, built once: it indexes the whole vocabulary."""
        from transformers import StopStringCriteria

        if stops not in self._stop_criteria:
            self._stop_criteria[stops] = StopStringCriteria(self.tokenizer, list(stops))
        return self._stop_criteria[stops]

    def _completion(
        self, new: list[int], prompt: Prompt, ended_at: int | None, params: DecodingParams
    ) -> Completion:
        """One row's generated ids as a completion, ended by EOS, a stop string or the length."""
        stopped = ended_at is not None
        if ended_at is not None:
            new = new[:ended_at]  # what follows is padding
        if self.eos_id in new:
            new = new[: new.index(self.eos_id)]
            stopped = True
        text, found = cut_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), params.stop)
        finish = "stop" if stopped or found else "length"
        return Completion(text, finish, len(prompt.token_ids), len(new))

    def close(self) -> None:
        del self.lm


def _sampling(params: DecodingParams) -> dict[str, Any]:
    """transformers' sampling arguments: greedy, or the full distribution at the temperature.

    top_k=0 switches transformers' top-k off (None would too, in 5.x, but 0 is the
    value its check has always read as "off"): its default of 50, or a model's own
    `generation_config` top_k, would silently truncate a distribution that the
    caller asked to sample in full (Magpie samples queries at temperature 1).
    """
    if params.temperature <= 0:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}


class _StopAfterPrompt:
    """transformers' `StopStringCriteria` over the generated tokens only, remembering when
    each row ended.

    The plain criterion looks at the end of the whole sequence, so a stop string
    could be completed by the prompt's last tokens plus the first generated one;
    no other engine stops there (they match the generated text). `ended_at[row]`
    is the number of generated tokens, the stop's last one included, when the
    row ended: transformers pads a finished row, and the engine cuts it there.
    """

    def __init__(self, criterion: Any, prompt_width: int) -> None:
        self.criterion = criterion
        self.prompt_width = prompt_width
        self.ended_at: dict[int, int] = {}

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        generated = input_ids[:, self.prompt_width :]
        done = self.criterion(generated, scores)
        for row in done.nonzero().flatten().tolist():
            self.ended_at.setdefault(row, generated.shape[1])
        return done
