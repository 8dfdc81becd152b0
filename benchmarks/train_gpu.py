"""GPU pre-training tokens/s and MFU: our `train_loop` vs the Hugging Face `Trainer`, bf16.

For each preset, in this one process and on one device, the same model is trained
by each runner on the same data:
  - `ours`: `instructpt.train.loop.train_loop` with `precision="auto"`, i.e. bf16
    autocast over fp32 master weights on CUDA (fp32 on CPU), fused AdamW;
  - `hf`: `transformers.Trainer` with `bf16=True` (accelerate's bf16 autocast; the
    model stays fp32, never `.to(bfloat16)`, so both runs are the same mixed
    precision) and `optim="adamw_torch_fused"`; `report_to=[]`, no eval, no saves,
    no logging, `disable_tqdm`, `dataloader_num_workers=0`, PrinterCallback removed
    (on CPU: `use_cpu=True`, fp32);
  - `ours-compile` / `hf-compile` (`--compile`): `LoopConfig(compile=True)` and
    `TrainingArguments(torch_compile=True)`;
  - `ours` runs the loop's default `fused_loss="auto"` (the chunked linear
    cross-entropy of `instructpt.train.linear_ce` for these presets);
    `ours-plain-ce` / `ours-compile-plain-ce` the model's own loss (`"off"`).
`--activation-checkpointing` turns it on in both (non-reentrant).
Why random tokens: throughput does not depend on the text, and a GPU box for this
run has no network and none of our data stages; ids are drawn once per preset from
a seeded `torch.Generator` as [warmup + steps, batch, seq_len] on CPU, and both
runners read exactly these batches in this order (labels = input_ids; the model
shifts). The Trainer gets a sequential sampler; its first batch is checked.
Same model: `build_model(resolve_preset(name), vocab, bos=1, eos=2, seed)` built
afresh per runner with one seed (identical initial weights), directly on the device.
Same optimisation, as benchmarks/train.py: AdamW lr 1e-3, betas (0.9, 0.95), eps
1e-8, weight decay 0.1, linear warmup over 5% of the steps then cosine to 0.1 x lr
(`cosine_with_min_lr`), grad clip 1.0, no accumulation. Ours starts warmup at lr/W,
the Trainer at 0: losses differ slightly, speed does not.

Timing (as benchmarks/train.py): each run trains warmup + steps optimizer steps and
times only the last `steps`, from the end of step `warmup` to the end of the last
step, with `time.perf_counter()` after `torch.cuda.synchronize()` in a per-step hook:
ours `on_log` (`log_every=1`: it fires after `optimizer.step()` and `zero_grad`),
the Trainer's `TrainerCallback.on_step_end` (after its optimizer and scheduler steps
and `zero_grad`). The synchronize makes the hook the end of the step's GPU work, not
of its launch; the first steps (allocator, optimizer state, compile, clock ramp-up)
are excluded. Both loops already wait for the GPU once a step (ours: `loss.item()`,
the grad norm; the Trainer: its NaN/inf loss filter), so the extra sync costs little.
"call s" is the whole `train_loop` / `trainer.train()` call.
MFU = tokens/s x `flops_per_token(model, seq_len)` (6N + attention, PaLM) / the
dense bf16 peak of `loop.PEAK_BF16_FLOPS` for `torch.cuda.get_device_name()`
(n/a if unknown or on CPU). Peak memory = `torch.cuda.max_memory_allocated`, reset
per runner; models are freed and the cache emptied between runners. A runner that
fails (e.g. OOM) is recorded with its error and the rest go on. loop.py imports
orjson, absent from the GPU image: a json stand-in is put in its place (no files
are written).

    PYTHONPATH=src python3 benchmarks/train_gpu.py --out bench.jsonl        # both paper presets
    PYTHONPATH=src python3 benchmarks/train_gpu.py --compile --presets mistral-500m
    .venv/bin/python benchmarks/train_gpu.py --device cpu --presets tiny-llama --steps 3 \\
        --warmup 1 --seq-len 64 --batch-size 2                             # CPU smoke, ~10 s
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

try:  # loop.py imports orjson at module level; the GPU image lacks it and we write no files
    import orjson  # noqa: F401
except ImportError:
    _shim = types.ModuleType("orjson")
    _shim.dumps = lambda obj, *a, **k: json.dumps(obj).encode()  # type: ignore[attr-defined]
    _shim.loads = json.loads  # type: ignore[attr-defined]
    sys.modules["orjson"] = _shim

from instructpt.train.loop import PEAK_BF16_FLOPS, LoopConfig, train_loop
from instructpt.train.presets import (
    PRESETS,
    build_model,
    count_parameters,
    flops_per_token,
    resolve_preset,
)

LR, MIN_LR_RATIO, BETAS, EPS, WEIGHT_DECAY, GRAD_CLIP = 1e-3, 0.1, (0.9, 0.95), 1e-8, 0.1, 1.0
MODEL_SEED, BOS, EOS, GIB = 1234, 1, 2, 2**30
MIN_LR = {"min_lr_rate": MIN_LR_RATIO}  # the Trainer's cosine_with_min_lr floor


@dataclass
class Bench:
    preset: str
    vocab: int
    data: torch.Tensor  # [warmup + steps, batch, seq_len] token ids, CPU
    warmup: int
    steps: int
    device: str
    checkpointing: bool

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def total(self) -> int:
        return self.warmup + self.steps

    @property
    def lr_warmup(self) -> int:
        return max(1, round(0.05 * self.total))  # pretrain's warmup_fraction default

    def model(self, device: str | None = None) -> Any:
        with torch.device(device or self.device):  # init on the GPU: seconds, not a minute
            return build_model(resolve_preset(self.preset), self.vocab, BOS, EOS, MODEL_SEED)

    def clock(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def summary(
        self, ends: dict[int, float], call_s: float, final: float, mean: float
    ) -> dict[str, Any]:
        """`ends[k]` = clock at the end of optimizer step k (1-based)."""
        marks = [ends[k] for k in range(self.warmup, self.total + 1)]
        window = marks[-1] - marks[0]
        steps = [b - a for a, b in itertools.pairwise(marks)]
        _, batch, seq = self.data.shape
        return {
            "tokens_per_s": self.steps * batch * seq / window,
            "s_per_step": window / self.steps,
            "median_step_s": statistics.median(steps),
            "call_s": call_s,
            "final_loss": final,
            "mean_loss": mean,
        }


def run_ours(b: Bench, compile: bool, fused_loss: str = "auto") -> dict[str, Any]:
    model = b.model()
    cfg = LoopConfig(
        num_steps=b.total, lr=LR, min_lr_ratio=MIN_LR_RATIO, warmup_steps=b.lr_warmup,
        weight_decay=WEIGHT_DECAY, betas=BETAS, grad_clip=GRAD_CLIP, device=b.device,
        precision="auto", compile=compile, activation_checkpointing=b.checkpointing,
        fused_loss=fused_loss,  # type: ignore[arg-type]
        log_every=1, progress=False,  # on_log is our per-step hook; a log row is a few dict ops
    )  # fmt: skip
    ends: dict[int, float] = {}
    losses: list[float] = []

    def on_log(row: dict[str, float]) -> None:
        ends[int(row["step"])] = b.clock()
        losses.append(row["loss"])

    batches = ({"input_ids": x, "labels": x} for x in b.data)
    start = time.perf_counter()
    result = train_loop(model, batches, cfg, on_log=on_log)
    out = b.summary(ends, time.perf_counter() - start, losses[-1], statistics.fmean(losses))
    return {**out, "loss_path": result.loss_path}


def run_hf(b: Bench, compile: bool) -> dict[str, Any]:
    from torch.utils.data import Dataset, SequentialSampler
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    ends: dict[int, float] = {}
    seqs = b.data.reshape(-1, b.data.shape[-1])

    class Sequences(Dataset):
        def __len__(self) -> int:
            return len(seqs)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": seqs[i], "labels": seqs[i]}

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ends[state.global_step] = b.clock()

    class SameOrderTrainer(Trainer):
        last_loss: torch.Tensor | None = None

        def _get_train_sampler(self, train_dataset: Any = None, *a: Any, **k: Any) -> Any:
            return SequentialSampler(self.train_dataset if train_dataset is None else train_dataset)

        def training_step(self, model: Any, inputs: Any, *a: Any, **k: Any) -> torch.Tensor:
            if self.state.global_step == 0:  # untimed: the Trainer reads our batches
                assert torch.equal(inputs["input_ids"].cpu(), b.data[0]), "batch order differs"
            self.last_loss = super().training_step(model, inputs, *a, **k)  # no sync
            return self.last_loss

    with tempfile.TemporaryDirectory(prefix="bench-train-gpu-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=b.data.shape[1], max_steps=b.total,
            gradient_accumulation_steps=1, learning_rate=LR, warmup_steps=b.lr_warmup,
            lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs=MIN_LR,
            weight_decay=WEIGHT_DECAY, adam_beta1=BETAS[0], adam_beta2=BETAS[1], adam_epsilon=EPS,
            max_grad_norm=GRAD_CLIP,
            optim="adamw_torch_fused", use_cpu=not b.cuda, bf16=b.cuda, report_to=[],
            eval_strategy="no", save_strategy="no", logging_strategy="no", disable_tqdm=True,
            dataloader_num_workers=0, dataloader_pin_memory=b.cuda, remove_unused_columns=False,
            torch_compile=compile, **checkpointing_args(TrainingArguments, b.checkpointing),
        )  # fmt: skip
        trainer = SameOrderTrainer(
            model=b.model(), args=args, train_dataset=Sequences(), callbacks=[StepClock()]
        )
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        result = trainer.train()
        call_s = time.perf_counter() - start
    assert trainer.state.global_step == b.total, trainer.state.global_step
    assert trainer.last_loss is not None
    return b.summary(ends, call_s, float(trainer.last_loss), result.training_loss)


def checkpointing_args(cls: Any, on: bool) -> dict[str, Any]:
    """Activation checkpointing, non-reentrant as ours; transformers >= 5.2x renamed it."""
    if not on:
        return {}
    new = "activation_checkpointing" in cls.__dataclass_fields__
    name = "activation_checkpointing" if new else "gradient_checkpointing"
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


RUNNERS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "ours": lambda b: run_ours(b, False),
    "hf": lambda b: run_hf(b, False),
    "ours-compile": lambda b: run_ours(b, True),
    "hf-compile": lambda b: run_hf(b, True),
    "ours-plain-ce": lambda b: run_ours(b, False, fused_loss="off"),
    "ours-compile-plain-ce": lambda b: run_ours(b, True, fused_loss="off"),
}


def peak_bf16(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)  # loop's order


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="mistral-500m,mistral-1.3b", help=f"of {list(PRESETS)}")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=8, help="micro-batch (sequences)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed first steps (>= 1)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runners", default="ours,hf", help=f"of {list(RUNNERS)}")
    ap.add_argument("--compile", action="store_true", help="add ours-compile and hf-compile")
    ap.add_argument("--activation-checkpointing", action="store_true")
    ap.add_argument("--out", default=None, help="append one JSON line per run to this file")
    ap.add_argument("--seed", type=int, default=0, help="data")
    args = ap.parse_args()
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    if args.compile:
        runners += [r for r in ("ours-compile", "hf-compile") if r not in runners]
    if bad := [r for r in runners if r not in RUNNERS]:
        raise SystemExit(f"--runners: unknown {bad}; choose of {list(RUNNERS)}")
    if args.warmup < 1 or args.steps < 1:
        raise SystemExit("--warmup and --steps must be >= 1")
    import transformers

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available; use --device cpu for a smoke run")
    device_name = torch.cuda.get_device_name(args.device) if cuda else "cpu"
    peak = peak_bf16(args.device)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table: list[dict[str, Any]] = []
    for preset in [p.strip() for p in args.presets.split(",")]:
        g = torch.Generator().manual_seed(args.seed)
        shape = (args.warmup + args.steps, args.batch_size, args.seq_len)
        data = torch.randint(0, args.vocab, shape, generator=g)
        b = Bench(
            preset, args.vocab, data, args.warmup, args.steps, args.device,
            args.activation_checkpointing,
        )  # fmt: skip
        shell = b.model("meta")  # shapes only, no memory: parameter count and FLOPs/token
        params, fpt = count_parameters(shell)["total"], flops_per_token(shell, args.seq_len)
        del shell
        print(f"{preset}: {params / 1e6:.1f}M parameters, {fpt / 1e9:.2f} GFLOP/token", flush=True)
        for name in runners:
            free(args.device)
            row: dict[str, Any] = {
                "preset": preset, "params": params, "runner": name, "device": device_name,
                "batch": args.batch_size, "seq_len": args.seq_len, "steps": args.steps,
                "warmup": args.warmup, "vocab": args.vocab,
                "activation_checkpointing": args.activation_checkpointing,
                "torch": torch.__version__, "transformers": transformers.__version__, "date": date,
            }  # fmt: skip
            error = None
            try:
                row.update(RUNNERS[name](b))
            except Exception as exc:  # OOM or a broken runner: record it, go on
                error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
                if not isinstance(exc, torch.OutOfMemoryError):
                    traceback.print_exc()
            row["error"] = error
            row["mfu"] = row["tokens_per_s"] * fpt / peak if peak and not error else None
            row["peak_mem_gib"] = (
                torch.cuda.max_memory_allocated(args.device) / GIB if cuda else None
            )
            if "compile" in name:
                torch._dynamo.reset()
            free(args.device)
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")
            table.append(row)
    print_table(table)
    print(
        f"\ndevice: {device_name}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}; {date}; batch {args.batch_size} x seq {args.seq_len} = "
        f"{args.batch_size * args.seq_len} tokens/step, vocab {args.vocab}, {args.warmup} "
        f"untimed + {args.steps} timed steps, {'bf16 autocast' if cuda else 'fp32'}, "
        f"activation checkpointing {'on' if args.activation_checkpointing else 'off'}; "
        f"MFU vs {f'{peak / 1e12:.0f} TFLOP/s' if peak else 'n/a (unknown peak)'}"
    )


def print_table(table: list[dict[str, Any]]) -> None:
    def fmt(v: float | None, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    ok = {(r["preset"], r["runner"]): r for r in table if not r["error"]}
    cols = "preset|params|runner|tokens/s|s/step|MFU|peak mem GiB|final loss|vs hf"
    print(f"\n| {cols.replace('|', ' | ')} |\n|" + "---|" * 9)
    for r in table:
        if r["error"]:
            err = r["error"].replace("|", "/")
            print(f"| {r['preset']} | {r['params'] / 1e6:.1f}M | {r['runner']} | {err} |")
            continue
        base = ok.get((r["preset"], "hf"))
        rel = r["tokens_per_s"] / base["tokens_per_s"] if base else None
        print(
            f"| {r['preset']} | {r['params'] / 1e6:.1f}M | {r['runner']} "
            f"| {r['tokens_per_s']:,.0f} | {r['s_per_step']:.4f} | {fmt(r['mfu'], '.1%')} "
            f"| {fmt(r['peak_mem_gib'], '.2f')} | {r['final_loss']:.4f} | {fmt(rel, '.2f')} |"
        )
    for p in dict.fromkeys(r["preset"] for r in table):
        a, h = ok.get((p, "ours-compile")), ok.get((p, "hf-compile"))
        if a and h:
            print(f"{p}: ours-compile / hf-compile = {a['tokens_per_s'] / h['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
