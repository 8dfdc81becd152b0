"""`instructpt plan`: measure a short synthesis run, then estimate a whole conversion.

    measurement = measure(cfg, corpus_dir=Path("runs/web/corpus"))   # real run on a sample
    estimate = estimate_plan(measurement.shape, measurement.speed, cfg, num_documents)

What is measured. The synthesize stage (or the miner) runs unchanged on the
first `num_sample_documents` documents of the corpus, in a temporary run
directory, replay cache off. Two kinds of figures come out of it:

- the *shape* of the work per document: requests, prompt tokens, generated
  tokens, pairs (as the stage parsed them with `synth/format.py`), bytes of
  output on disk. Shape depends on the corpus, the model and the decoding
  config (M-shot rounds lengthen prompts: round r carries the r earlier
  examples of its slot), not on the hardware;
- the *speed* of one replica: documents, prompt tokens and generated tokens per
  second of engine time (model loading excluded; for the miner, the whole stage
  on one core). Speed depends on the hardware.

So a speed measured on a GPU box (`--from-benchmark FILE`: a previous
`plan.json`, or a JSON of figures such as `benchmarks/vllm_engine.py`'s
`prompts`, `prompt_tokens`, `new_tokens`, `wall_s`) combines with a shape
measured here on the user's corpus, on a CPU, with the same model.

The time model. A replica spends on a document the larger of
(prompt tokens / prompt tokens per second) and (generated tokens / generated
tokens per second), both rates as measured together; this is exact when shape
and speed come from the same run (both give seconds / documents) and a
first-order estimate when the token mix differs. Without token rates (the
miner) it is 1 / documents per second. Replicas scale linearly times
`scaling_efficiency`. Requests are one per document (one per chunk of a text
too long for the context), not one per round: M-shot rounds make prompts
longer, which the measured shape already carries, and they run one after
another, which costs little once there are many more shards than replicas.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast

import orjson
import zstandard

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.manifest import Manifest, ShardInfo, read_manifest, write_manifest
from instructpt.core.shards import dumps, read_shard, shard_name, write_shard
from instructpt.corpus.readers import discover_sources, iter_source
from instructpt.corpus.validate import to_document
from instructpt.errors import ConfigError, InputError
from instructpt.mine import MineConfig, mine
from instructpt.mine.stage import mine_shard
from instructpt.synth.config import PlanConfig, SynthesizeConfig
from instructpt.synth.engines.base import Completion, DecodingParams, Engine, OnResult, Prompt
from instructpt.synth.engines.registry import build_engine, engine_options
from instructpt.synth.stage import synthesize

PLAN_VERSION = 1
PLAN_NAME = "plan.json"

DeviceKind = Literal["gpu", "cpu-core"]


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Shape:
    """The work per document; hardware-independent."""

    documents: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    pairs: int
    texts_with_pairs: int
    bytes_out: int
    input_chars: int
    num_rounds: int

    def per_document(self, total: int) -> float:
        return total / self.documents

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        d = self.documents
        out.update(
            requests_per_document=self.requests / d,
            prompt_tokens_per_document=self.prompt_tokens / d,
            completion_tokens_per_document=self.completion_tokens / d,
            pairs_per_document=self.pairs / d,
            bytes_out_per_document=self.bytes_out / d,
            parse_yield=self.texts_with_pairs / d,
        )
        return out


@dataclass(frozen=True)
class Speed:
    """Throughput of one replica."""

    documents_per_s: float | None
    prompt_tokens_per_s: float
    completion_tokens_per_s: float
    device: DeviceKind
    devices_per_replica: int
    seconds: float  # how long the measurement was (engine time)
    source: str  # "measured" or the benchmark file

    def seconds_per_document(self, shape: Shape) -> float:
        """The time model of the module docstring."""
        per_doc = 0.0
        if self.completion_tokens_per_s > 0:
            per_doc = shape.per_document(shape.completion_tokens) / self.completion_tokens_per_s
        if self.prompt_tokens_per_s > 0:
            per_doc = max(
                per_doc, shape.per_document(shape.prompt_tokens) / self.prompt_tokens_per_s
            )
        if per_doc > 0:
            return per_doc
        if self.documents_per_s:
            return 1.0 / self.documents_per_s
        raise InputError(
            f"the speed from {self.source} has no documents/s and no token rates, and the "
            "measured shape has no tokens to convert with: nothing to estimate from"
        )


@dataclass(frozen=True)
class Measurement:
    engine: str
    model: str | None
    shape: Shape
    speed: Speed
    stage_seconds: float  # the whole sample run, model loading included


def _speed_dict(speed: Speed) -> dict[str, Any]:
    return {
        "documents_per_s": speed.documents_per_s,
        "prompt_tokens_per_s": speed.prompt_tokens_per_s,
        "completion_tokens_per_s": speed.completion_tokens_per_s,
        "seconds": speed.seconds,
        "device": speed.device,
        "devices_per_replica": speed.devices_per_replica,
        "speed_source": speed.source,
    }


@dataclass(frozen=True)
class Estimate:
    num_documents: int
    num_replicas: int
    device: DeviceKind
    devices_per_replica: int
    seconds_per_document: float  # one replica
    wall_seconds: float
    device_hours: float
    cost: float | None
    requests: float
    prompt_tokens: float
    completion_tokens: float
    pairs: float
    bytes_out: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_plan(
    shape: Shape,
    speed: Speed,
    num_documents: int,
    num_replicas: int = 1,
    *,
    devices_per_replica: int | None = None,
    scaling_efficiency: float = 1.0,
    price_per_device_hour: float | None = None,
) -> Estimate:
    """Pure arithmetic: N documents on R replicas from a shape and a speed."""
    per_doc = speed.seconds_per_document(shape)
    wall = num_documents * per_doc / (num_replicas * scaling_efficiency)
    devices = devices_per_replica or speed.devices_per_replica
    device_hours = wall / 3600 * num_replicas * devices
    n = num_documents
    return Estimate(
        num_documents=n,
        num_replicas=num_replicas,
        device=speed.device,
        devices_per_replica=devices,
        seconds_per_document=per_doc,
        wall_seconds=wall,
        device_hours=device_hours,
        cost=None if price_per_device_hour is None else device_hours * price_per_device_hour,
        requests=n * shape.per_document(shape.requests),
        prompt_tokens=n * shape.per_document(shape.prompt_tokens),
        completion_tokens=n * shape.per_document(shape.completion_tokens),
        pairs=n * shape.per_document(shape.pairs),
        bytes_out=n * shape.per_document(shape.bytes_out),
    )


# --------------------------------------------------------------------------- sampling


def sample_documents(
    cfg: PlanConfig, corpus_dir: Path | None, limit: int
) -> Iterator[dict[str, Any]]:
    """The first `limit` documents of the input files, or of the ingest stage's shards."""
    if cfg.input:
        taken = 0
        for source in discover_sources(cfg.input, cfg.format):
            for rec in iter_source(source):
                doc, _reason, _detail = to_document(rec, cfg.text_field, cfg.id_field, 1, 5_000_000)
                if doc is None:
                    continue
                yield doc.to_dict()
                taken += 1
                if taken >= limit:
                    return
        return
    manifest = _corpus_manifest(corpus_dir)
    taken = 0
    for shard in manifest.shards:
        for doc in read_shard(corpus_dir / shard.file):  # type: ignore[operator]
            yield doc
            taken += 1
            if taken >= limit:
                return


def _corpus_manifest(corpus_dir: Path | None) -> Manifest:
    manifest = read_manifest(corpus_dir) if corpus_dir is not None else None
    if manifest is None:
        raise InputError(
            f"no corpus to sample: {corpus_dir} has no finished ingest stage (_manifest.json). "
            "Run `instructpt ingest` first, or pass input files to `instructpt plan`"
        )
    return manifest


def corpus_size(cfg: PlanConfig, corpus_dir: Path | None) -> int:
    """Documents to plan for: --num-documents, else the corpus manifest's count."""
    if cfg.num_documents is not None:
        return cfg.num_documents
    manifest = read_manifest(corpus_dir) if corpus_dir is not None and not cfg.input else None
    if manifest is None:
        where = f" in {corpus_dir}" if corpus_dir is not None and not cfg.input else ""
        raise ConfigError(
            "how many documents? give --num-documents (or num_documents in the config): "
            f"there is no ingest manifest to count from{where}"
        )
    return manifest.num_records


def _write_sample_corpus(docs: list[dict[str, Any]], folder: Path) -> None:
    """One ingest-shaped shard + manifest, so the stage reads it like any corpus."""
    target = folder / shard_name(0)
    count, sha = write_shard(target, docs)
    manifest = Manifest(
        stage="ingest",
        config_hash="plan-sample",
        input_fingerprint="plan-sample",
        format="jsonl.zst",
        shards=[ShardInfo(target.name, count, sha, target.stat().st_size)],
        stats={"kept": count},
    )
    write_manifest(folder, manifest)


# --------------------------------------------------------------------------- measuring


class _TimedEngine:
    """Counts the seconds an engine spends generating (model loading stays out).

    Before the first timed call it sends one prompt untimed: lazy start-up work
    (CUDA kernels and graphs, compilation, connections) is paid once per replica,
    not per document, and would make a short measurement look slow.
    """

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.revision = inner.revision
        self.preferred_batch = inner.preferred_batch
        self.seconds = 0.0
        self.warm = False

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: DecodingParams,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        if not self.warm and prompts:
            self.inner.generate(prompts[:1], params)
            self.warm = True
        start = time.perf_counter()
        try:
            return self.inner.generate(prompts, params, on_result)
        finally:
            self.seconds += time.perf_counter() - start

    def close(self) -> None:
        self.inner.close()


def _device(cfg: SynthesizeConfig) -> tuple[DeviceKind, int]:
    """What one replica of this engine holds (its options model says; see `plan_device`)."""
    if cfg.engine == "miner":
        return "cpu-core", 1  # the measurement runs one worker
    kind, count = engine_options(cfg).plan_device()
    if kind not in ("gpu", "cpu-core"):
        raise ValueError(f"engine {cfg.engine}: plan_device() gave {kind!r}, not gpu or cpu-core")
    return cast(DeviceKind, kind), count


def measure(
    cfg: PlanConfig,
    corpus_dir: Path | None,
    engine_factory: Callable[[SynthesizeConfig], Engine] | None = None,
) -> Measurement:
    """Run the configured synthesis on a sample in a temporary run directory."""
    docs = list(sample_documents(cfg, corpus_dir, cfg.num_sample_documents))
    if not docs:
        raise InputError("the corpus to sample holds no documents")
    scfg = cfg.synthesize.model_copy(update={"progress": False, "replay_cache": False})
    miner = scfg.engine == "miner"
    mcfg: Any = None
    factory = engine_factory or build_engine
    timed: list[_TimedEngine] = []

    def timed_factory(c: SynthesizeConfig) -> Engine:
        engine = _TimedEngine(factory(c))
        timed.append(engine)
        return engine

    with tempfile.TemporaryDirectory(prefix="instructpt-plan-") as tmp:
        root = Path(tmp)
        _write_sample_corpus(docs, root / "corpus")
        start = time.perf_counter()
        if miner:
            # as `synthesize` maps it, but one worker: the speed is per core
            mcfg = MineConfig.model_validate(
                {"seed": scfg.seed, **scfg.miner, "progress": False, "num_workers": 1}
            )
            result: Any = mine(mcfg, root / "corpus", root / "synth", overwrite=True)
        else:
            result = synthesize(
                scfg,
                root / "corpus",
                root / "synth",
                cache_path=None,
                overwrite=True,
                engine_factory=timed_factory,
            )
        stage_seconds = time.perf_counter() - start
        manifest = result.manifest
        requests = pairs = texts_with_pairs = 0
        for shard in manifest.shards:
            for rec in read_shard(root / "synth" / shard.file):
                counts = rec["stats"]
                requests += 0 if miner else counts["chunks"] - counts["skipped_requests"]
                pairs += len(rec["pairs"])
                texts_with_pairs += bool(rec["pairs"])
        bytes_out = sum(s.bytes for s in manifest.shards)
    st = manifest.stats
    shape = Shape(
        documents=len(docs),
        requests=requests,
        prompt_tokens=st["prompt_tokens"],
        completion_tokens=st["completion_tokens"],
        pairs=pairs,
        texts_with_pairs=texts_with_pairs,
        bytes_out=bytes_out,
        input_chars=sum(len(d["text"]) for d in docs),
        num_rounds=1 if miner else scfg.num_rounds,
    )
    seconds = _miner_seconds(docs, mcfg) if miner else sum(t.seconds for t in timed)
    # An engine that spreads requests over endpoints (openai): one endpoint is one replica.
    replicas = 1 if miner else engine_options(scfg).endpoints()
    seconds = max(seconds, 1e-9) * replicas
    device, devices = _device(scfg)
    speed = Speed(
        documents_per_s=len(docs) / seconds,
        prompt_tokens_per_s=shape.prompt_tokens / seconds,
        completion_tokens_per_s=shape.completion_tokens / seconds,
        device=device,
        devices_per_replica=devices,
        seconds=seconds,
        source="measured",
    )
    return Measurement(scfg.engine, scfg.model, shape, speed, stage_seconds)


def _miner_seconds(docs: list[dict[str, Any]], cfg: Any, min_seconds: float = 0.3) -> float:
    """Steady-state seconds to mine and write `docs` once on one core (after a warm-up).

    Not the stage's wall time: on a small sample its fixed costs (stage folder,
    fsyncs, manifest) dwarf the per-document work that a long run is made of.
    Passes repeat until `min_seconds` have gone by, so a small sample still
    gives a stable figure.
    """
    compressor = zstandard.ZstdCompressor(level=cfg.compression_level)
    passes = 0
    start = time.perf_counter()
    while True:
        lines = b"".join(dumps(r) for r in mine_shard(iter(docs), Counter(), cfg))
        compressor.compress(lines)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or passes >= 1000:
            return elapsed / passes


# --------------------------------------------------------------------------- benchmark files

#: Names other tools use for our fields (benchmarks/vllm_engine.py: prompts, new_tokens, wall_s).
ALIASES = {"new_tokens": "completion_tokens", "wall_s": "seconds", "prompts": "requests"}


def read_benchmark(path: Path) -> tuple[Speed, Shape | None, dict[str, Any]]:
    """(speed, shape if the file has one, the figures read) from a JSON of measured figures.

    Accepts a `plan.json` (its `measurement`) or one object of raw counts
    (`seconds`/`wall_s` with `prompt_tokens`, `completion_tokens`/`new_tokens`,
    `documents` or `requests`/`prompts`) or of rates (`documents_per_s`,
    `prompt_tokens_per_s`, `completion_tokens_per_s`). `replicas` (default 1)
    divides the rates; `device` and `devices_per_replica` default to one GPU.
    A shape (per-document work) is read when the file has `documents`, `pairs`
    and `bytes_out`; otherwise it must be measured on the corpus.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"benchmark file not found: {path}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"benchmark file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("measurement"), dict):
        data = data["measurement"]
    if not isinstance(data, dict):
        raise InputError(
            f"benchmark file {path} must hold one JSON object of figures, got {type(data).__name__}"
        )
    figures = {ALIASES.get(k, k): v for k, v in data.items() if v is not None}
    for key, value in figures.items():
        if key in _NUMBER_KEYS and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise InputError(f"benchmark file {path}: '{key}' must be a number >= 0, got {value!r}")
    replicas = figures.get("replicas", 1) or 1
    seconds = figures.get("seconds")
    if seconds is not None and seconds <= 0:
        raise InputError(f"benchmark file {path}: 'seconds' must be > 0")
    documents = figures.get("documents") or figures.get("requests")

    def rate(count_key: str, rate_key: str) -> float | None:
        if rate_key in figures:
            return figures[rate_key] / replicas
        if seconds and count_key in figures:
            return figures[count_key] / seconds / replicas
        return None

    docs_rate = rate("documents", "documents_per_s")
    if docs_rate is None and seconds and documents:
        docs_rate = documents / seconds / replicas
    prompt_rate = rate("prompt_tokens", "prompt_tokens_per_s") or 0.0
    completion_rate = rate("completion_tokens", "completion_tokens_per_s") or 0.0
    if not docs_rate and not completion_rate and not prompt_rate:
        raise InputError(
            f"benchmark file {path} gives no speed: it needs 'seconds' (or 'wall_s') with "
            "'completion_tokens' (or 'new_tokens') or 'documents', or the rates "
            "'documents_per_s' / 'completion_tokens_per_s'"
        )
    device = figures.get("device", "gpu")
    if device not in ("gpu", "cpu-core"):
        raise InputError(f"benchmark file {path}: 'device' must be gpu or cpu-core, got {device!r}")
    speed = Speed(
        documents_per_s=docs_rate,
        prompt_tokens_per_s=prompt_rate,
        completion_tokens_per_s=completion_rate,
        device=device,
        devices_per_replica=int(figures.get("devices_per_replica", 1)),
        seconds=float(seconds or 0.0),
        source=str(path),
    )
    shape = None
    if all(k in figures for k in ("documents", "pairs", "bytes_out")) and figures["documents"]:
        d = int(figures["documents"])
        shape = Shape(
            documents=d,
            requests=int(figures.get("requests", d)),
            prompt_tokens=int(figures.get("prompt_tokens", 0)),
            completion_tokens=int(figures.get("completion_tokens", 0)),
            pairs=int(figures["pairs"]),
            texts_with_pairs=int(figures.get("texts_with_pairs", 0)),
            bytes_out=int(figures["bytes_out"]),
            input_chars=int(figures.get("input_chars", 0)),
            num_rounds=int(figures.get("num_rounds", 1)),
        )
    return speed, shape, figures


_NUMBER_KEYS = frozenset(
    {
        "seconds", "documents", "requests", "prompt_tokens", "completion_tokens", "pairs",
        "bytes_out", "replicas", "devices_per_replica", "documents_per_s",
        "prompt_tokens_per_s", "completion_tokens_per_s",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- the stage


@dataclass
class PlanResult:
    shape: Shape
    speed: Speed
    estimate: Estimate
    measurement: Measurement | None  # None: everything came from the benchmark file
    engine: str
    model: str | None
    path: Path

    def to_json(self, cfg: PlanConfig) -> bytes:
        measurement = {"engine": self.engine, "model": self.model, **self.shape.as_dict()}
        measurement.update(_speed_dict(self.speed))  # the speed the estimate used
        if self.measurement is not None:
            measurement["stage_seconds"] = round(self.measurement.stage_seconds, 3)
            if self.measurement.speed is not self.speed:  # measured here, not used
                measurement["measured_here"] = _speed_dict(self.measurement.speed)
        data = {
            "plan_version": PLAN_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": cfg.model_dump(mode="json"),
            "measurement": measurement,
            "estimate": self.estimate.as_dict(),
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"

    def table(self) -> list[str]:
        return format_table(self)


def plan(
    cfg: PlanConfig,
    corpus_dir: Path | None,
    out_path: Path,
    engine_factory: Callable[[SynthesizeConfig], Engine] | None = None,
) -> PlanResult:
    """Measure (or read) the figures, estimate, write `out_path` atomically."""
    num_documents = corpus_size(cfg, corpus_dir)  # fail before the slow part
    measurement: Measurement | None = None
    engine, model = cfg.synthesize.engine, cfg.synthesize.model
    if cfg.from_benchmark is not None:
        speed, shape, figures = read_benchmark(Path(cfg.from_benchmark))
        engine = figures.get("engine", engine)
        model = figures.get("model", model)
        if shape is None:
            if not cfg.input and (corpus_dir is None or read_manifest(corpus_dir) is None):
                raise InputError(
                    f"{cfg.from_benchmark} has speeds but no per-document figures (documents, "
                    "pairs, bytes_out): give a corpus (--run-dir with an ingested corpus, or "
                    "input files) to measure them on, with the same model"
                )
            measurement = measure(cfg, corpus_dir, engine_factory)
            shape = measurement.shape
            engine, model = cfg.synthesize.engine, cfg.synthesize.model
    else:
        measurement = measure(cfg, corpus_dir, engine_factory)
        shape, speed = measurement.shape, measurement.speed
    estimate = estimate_plan(
        shape,
        speed,
        num_documents,
        cfg.num_replicas,
        devices_per_replica=cfg.devices_per_replica,
        scaling_efficiency=cfg.scaling_efficiency,
        price_per_device_hour=cfg.price_per_device_hour,
    )
    result = PlanResult(shape, speed, estimate, measurement, engine, model, out_path)
    atomic_write_bytes(out_path, result.to_json(cfg))
    return result


# --------------------------------------------------------------------------- the table


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.1f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} h {int(minutes % 60):02d} min"
    return f"{hours / 24:.1f} days"


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_count(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:,.2f}"


def format_table(result: PlanResult) -> list[str]:
    sh, sp, est = result.shape, result.speed, result.estimate
    hours = "GPU-hours" if est.device == "gpu" else "CPU core-hours"
    unit = "GPU" if est.device == "gpu" else "CPU core"
    plural = "s" if est.devices_per_replica != 1 else ""
    d = sh.documents
    rows: list[tuple[str, str, str]] = [
        ("", "per replica", f"{est.num_documents:,} docs x {est.num_replicas} replicas"),
        (
            "time",
            f"{1 / est.seconds_per_document:,.2f} docs/s",
            format_duration(est.wall_seconds),
        ),
        (hours, f"{est.devices_per_replica} {unit}{plural} each", format_count(est.device_hours)),
    ]
    if est.cost is not None:
        rows.append(("cost", "", f"{est.cost:,.2f}"))
    if sh.requests:  # the miner sends none and counts no tokens
        rows += [
            ("requests", f"{sh.requests / d:.2f} per doc", format_count(est.requests)),
            (
                "prompt tokens",
                f"{sp.prompt_tokens_per_s:,.0f}/s, {sh.prompt_tokens / d:,.0f} per doc",
                format_count(est.prompt_tokens),
            ),
            (
                "generated tokens",
                f"{sp.completion_tokens_per_s:,.0f}/s, {sh.completion_tokens / d:,.0f} per doc",
                format_count(est.completion_tokens),
            ),
        ]
    rows += [
        ("pairs", f"{sh.pairs / d:.2f} per doc", format_count(est.pairs)),
        ("output size", f"{format_bytes(sh.bytes_out / d)} per doc", format_bytes(est.bytes_out)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    shape_from = "measured here" if result.measurement is not None else f"from {sp.source}"
    speed_from = "measured here" if sp.source == "measured" else f"from {sp.source}"
    head = (
        f"plan: {result.engine}{f' ({result.model})' if result.model else ''}, "
        f"M={sh.num_rounds}; work per document {shape_from} ({d} documents), "
        f"speed {speed_from}"
    )
    lines = [head]
    for i, row in enumerate(rows):
        lines.append(
            f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}".rstrip()
        )
        if i == 0:
            lines.append("  " + "-" * (sum(widths) + 4))
    if est.num_replicas > 1 and not math.isclose(est.wall_seconds, 0):
        lines.append("  (replicas assumed to scale linearly times scaling_efficiency)")
    lines.append(f"written: {result.path}")
    return lines
