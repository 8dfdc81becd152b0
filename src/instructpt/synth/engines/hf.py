"""In-process transformers `generate`: the engine for CPUs, small jobs and tests.

Prompts are fed as token ids with left padding (a causal LM continues from the
right end), greedy by default. The whole batch given to `generate` is one
`model.generate` call per `batch_size` prompts, in the given order, so the
same prompts in the same order give the same batches and so the same bytes
(padding changes matmul shapes, which can change a greedy argmax in the last
bit; a stable batch composition keeps resume exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from instructpt.config import HFEngineConfig
from instructpt.synth.engines.base import Completion, DecodingParams, EngineError, OnResult, Prompt


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from instructpt.errors import InputError

        raise InputError(f"device {device!r} asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32  # bf16 matmuls are slower than fp32 on most CPUs (MACHINE.md)
    return getattr(torch, dtype)


class HFEngine:
    name = "hf"

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
        self.preferred_batch = options.batch_size
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

        width = max(len(p.token_ids) for p in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, prompt in enumerate(batch):
            n = len(prompt.token_ids)
            ids[row, width - n :] = torch.tensor(prompt.token_ids, dtype=torch.long)
            mask[row, width - n :] = 1
        sampling: dict[str, Any] = {"do_sample": False}
        if params.temperature > 0:
            torch.manual_seed(params.seed)
            sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        with torch.inference_mode():
            generated = self.lm.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=params.max_new_tokens,
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_id,
                **sampling,
            )
        results = []
        for row, prompt in enumerate(batch):
            new = generated[row, width:].tolist()
            finish = "length"
            if self.eos_id in new:
                new = new[: new.index(self.eos_id)]
                finish = "stop"
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            results.append(Completion(text, finish, len(prompt.token_ids), len(new)))
        return results

    def close(self) -> None:
        del self.lm
