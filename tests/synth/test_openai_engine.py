"""The OpenAI-compatible engine against a fault-injecting stand-in, and once against
the real `transformers serve` with a tiny model."""

from __future__ import annotations

import random
import time

import pytest

from instructpt.synth.config import OpenAIEngineConfig
from instructpt.synth.engines.base import Completion, DecodingParams, Engine, EngineError, Prompt
from instructpt.synth.engines.openai import OpenAIEngine
from tests.serve import free_port, transformers_serve
from tests.synth.fault_server import FaultServer, echo_text

pytestmark = pytest.mark.timeout(60)

PARAMS = DecodingParams(max_new_tokens=16)


def prompts(n: int, start: int = 0) -> list[Prompt]:
    """One-word prompts of one token each, as the fault server counts them."""
    return [Prompt(text=f"p{i}", token_ids=(100 + i,)) for i in range(start, start + n)]


def engine(*urls: str, **options: object) -> OpenAIEngine:
    """An engine with test-sized waits: retries take milliseconds, not minutes."""
    defaults = {
        "base_urls": list(urls),
        "concurrency": 1,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "request_timeout_s": 2.0,
        "connect_timeout_s": 1.0,
        "max_retries": 4,
        "send_token_ids": False,
    }
    return OpenAIEngine("tiny", None, OpenAIEngineConfig(**{**defaults, **options}))


def texts(completions: list[Completion]) -> list[str]:
    return [c.text for c in completions]


# --------------------------------------------------------------------------- happy path


def test_completions_come_back_in_order_and_each_goes_to_on_result_once():
    seen: list[tuple[int, Completion]] = []
    with FaultServer(latency_s=0.01) as server:
        eng = engine(server.url, concurrency=4)
        out = eng.generate(prompts(12), PARAMS, on_result=lambda i, c: seen.append((i, c)))
    assert isinstance(eng, Engine)
    assert texts(out) == [echo_text(f"p{i}") for i in range(12)]
    assert all(c.finish_reason == "stop" and c.completion_tokens == 7 for c in out)
    assert sorted(i for i, _ in seen) == list(range(12))
    assert all(out[i] is c for i, c in seen)


def test_generate_works_when_called_repeatedly_and_after_close():
    with FaultServer() as server:
        eng = engine(server.url, concurrency=2)
        first = eng.generate(prompts(3), PARAMS)
        second = eng.generate(prompts(3, start=3), PARAMS)
        eng.close()
        third = eng.generate(prompts(1, start=6), PARAMS)
        eng.close()
    assert texts(first + second + third) == [echo_text(f"p{i}") for i in range(7)]


def test_request_body_is_a_raw_completion_with_the_decoding_params():
    with FaultServer(models=["served-name"]) as server:
        eng = engine(server.url, served_model_name="served-name")
        eng.generate(prompts(1), DecodingParams(max_new_tokens=400, temperature=0.0, seed=3))
    body = server.bodies[0]
    assert body == {
        "model": "served-name",
        "prompt": "p0",
        "max_tokens": 400,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 3,
        "n": 1,
    }


def test_each_request_carries_its_own_seed_and_results_come_back_in_order():
    seeded = [Prompt(p.text, p.token_ids, seed=1000 + i) for i, p in enumerate(prompts(12))]
    seeded[5] = Prompt("p5", (105,))  # no seed of its own: the call's
    with FaultServer(latency_s=0.02) as server:
        out = engine(server.url, concurrency=4).generate(seeded, DecodingParams(seed=7))
    assert texts(out) == [echo_text(f"p{i}") for i in range(12)]
    seeds = {b["prompt"]: b["seed"] for b in server.bodies}
    assert seeds == {f"p{i}": 7 if i == 5 else 1000 + i for i in range(12)}
    assert server.max_in_flight == 4  # one call, sent concurrently


def test_stop_strings_are_sent_and_the_answer_is_cut_before_the_first_one():
    # The stand-in ignores `stop`, like a server that keeps the stop string in its
    # text (`transformers serve`): the engine cuts it, as OpenAI and vLLM would.
    params = DecodingParams(max_new_tokens=16, stop=("</END>", "<ANS>"))
    with FaultServer() as server:
        out = engine(server.url).generate(prompts(2), params)
    assert [b["stop"] for b in server.bodies] == [["</END>", "<ANS>"]] * 2
    assert texts(out) == ["<QUE> q p0 ", "<QUE> q p1 "]
    assert all(c.finish_reason == "stop" for c in out)


def test_at_most_four_stops_are_sent_and_the_rest_still_cut_here():
    # OpenAI's API refuses more than 4 stop strings; the llama3 Magpie preset has 5.
    params = DecodingParams(max_new_tokens=16, stop=("<x1>", "<x2>", "<x3>", "<x4>", "</END>"))
    with FaultServer() as server:
        out = engine(server.url).generate(prompts(1), params)
    assert server.bodies[0]["stop"] == ["<x1>", "<x2>", "<x3>", "<x4>"]
    assert texts(out) == ["<QUE> q p0 <ANS> a "] and out[0].finish_reason == "stop"


def test_token_id_prompts_are_sent_as_lists_of_ints():
    with FaultServer() as server:
        out = engine(server.url, send_token_ids=True).generate(prompts(2), PARAMS)
    assert [b["prompt"] for b in server.bodies] == [[100], [101]]
    assert all(type(t) is int for b in server.bodies for t in b["prompt"])
    assert texts(out) == [echo_text([100]), echo_text([101])]


def test_text_prompt_that_gains_a_second_bos_on_the_server_stops_the_run():
    with (
        FaultServer(adds_bos=True) as server,
        pytest.raises(EngineError, match=r"second BOS.*send_token_ids: true"),
    ):
        engine(server.url).generate(prompts(2), PARAMS)


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "fault", ["429", "500", "503", "drop", "truncated", "nonjson", "slow:0.05"]
)
def test_transient_fault_is_retried_and_every_prompt_is_answered_once(fault):
    with FaultServer([fault, fault]) as server:
        out = engine(server.url).generate(prompts(3), PARAMS)
    assert texts(out) == [echo_text(f"p{i}") for i in range(3)]
    expected_first = 1 if fault.startswith("slow") else 3
    assert server.requests["p0"] == expected_first
    assert max(server.answered.values()) == 1


def test_context_length_error_is_skipped_with_the_server_message_and_not_retried():
    long_prompt = Prompt(text="x" * 50, token_ids=(1,) * 50)
    with FaultServer(max_prompt_len=20) as server:
        out = engine(server.url).generate([*prompts(1), long_prompt, *prompts(1, 1)], PARAMS)
    assert texts(out) == [echo_text("p0"), "", echo_text("p1")]
    assert out[1].finish_reason == "skipped"
    assert "maximum context length is 20 tokens" in out[1].detail
    assert server.requests["x" * 50] == 1


def test_retry_after_in_seconds_is_waited_for():
    with FaultServer(["429:0.6"]) as server:
        start = time.monotonic()
        out = engine(server.url, backoff_max_s=5).generate(prompts(1), PARAMS)
        waited = time.monotonic() - start
    assert texts(out) == [echo_text("p0")]
    assert 0.55 <= waited < 3


def test_retry_after_as_an_http_date_is_waited_for():
    # The date has whole-second resolution, so "2 s ahead" means a wait of 1 to 2 s.
    with FaultServer(["429date:2"]) as server:
        start = time.monotonic()
        out = engine(server.url, backoff_max_s=5).generate(prompts(1), PARAMS)
        waited = time.monotonic() - start
    assert texts(out) == [echo_text("p0")]
    assert 0.8 <= waited < 4


def test_hung_request_hits_the_timeout_and_is_retried():
    with FaultServer(["hang"]) as server:
        start = time.monotonic()
        out = engine(server.url, request_timeout_s=0.3).generate(prompts(2), PARAMS)
        waited = time.monotonic() - start
    assert texts(out) == [echo_text("p0"), echo_text("p1")]
    assert server.requests["p0"] == 2
    assert 0.3 <= waited < 3


def test_endpoint_down_for_good_raises_naming_the_url_after_delivering_finished_ones():
    delivered: dict[int, Completion] = {}
    with FaultServer(["ok", "ok", "ok"], default="500") as server:
        eng = engine(server.url, max_retries=2)
        with pytest.raises(EngineError) as err:
            eng.generate(prompts(6), PARAMS, on_result=delivered.__setitem__)
    message = str(err.value)
    assert server.url in message and "HTTP 500" in message and "gave up after 3 attempts" in message
    assert sorted(delivered) == [0, 1, 2]
    assert [delivered[i].text for i in range(3)] == [echo_text(f"p{i}") for i in range(3)]


def test_unreachable_endpoint_raises_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EngineError, match="connection error") as err:
        engine(url, max_retries=1).generate(prompts(1), PARAMS)
    assert url in str(err.value)


def test_server_rejecting_every_request_stops_the_run_instead_of_skipping_everything():
    with FaultServer(default="reject") as server:
        eng = engine(server.url, send_token_ids=True, concurrency=2)
        with pytest.raises(EngineError, match="send_token_ids: false"):
            eng.generate(prompts(30), PARAMS)
    assert server.total_requests < 30


def test_wrong_api_key_is_an_engine_error_not_a_skip():
    # 401 from a real server means every request will fail the same way.
    with FaultServer() as server:
        eng = engine(server.url.replace("/v1", "/nope"))
        with pytest.raises(EngineError, match="no such route or model"):
            eng.generate(prompts(1), PARAMS)


# --------------------------------------------------------------------------- load


def test_requests_in_flight_never_exceed_the_concurrency_bound():
    with FaultServer(latency_s=0.05) as server:
        out = engine(server.url, concurrency=3).generate(prompts(20), PARAMS)
    assert len(out) == 20
    assert server.max_in_flight == 3


def test_load_is_spread_round_robin_over_two_endpoints():
    with FaultServer(latency_s=0.01) as a, FaultServer(latency_s=0.01) as b:
        out = engine(a.url, b.url, concurrency=4).generate(prompts(40), PARAMS)
    assert texts(out) == [echo_text(f"p{i}") for i in range(40)]
    assert a.total_requests == b.total_requests == 20


def test_failing_endpoint_is_skipped_and_requests_fail_over_to_the_healthy_one():
    with FaultServer(default="503") as down, FaultServer() as up:
        out = engine(down.url, up.url, concurrency=2).generate(prompts(20), PARAMS)
    assert texts(out) == [echo_text(f"p{i}") for i in range(20)]
    # Once it failed, the down endpoint cools off instead of taking every other request.
    assert down.total_requests < 20


# --------------------------------------------------------------------------- key and checks


def test_api_key_is_sent_as_bearer_and_never_shown(monkeypatch):
    secret = "sk-test-do-not-print-4242"
    monkeypatch.setenv("TEST_OPENAI_KEY", secret)
    with FaultServer(["ok"], default="500") as server:
        eng = engine(server.url, api_key_env="TEST_OPENAI_KEY", max_retries=1)
        with pytest.raises(EngineError) as err:
            eng.generate(prompts(2), PARAMS)
    assert set(server.auth_headers) == {f"Bearer {secret}"}
    for shown in (repr(eng), str(eng), str(err.value), repr(err.value), repr(eng.options)):
        assert secret not in shown


def test_no_authorization_header_without_a_key(monkeypatch):
    monkeypatch.delenv("TEST_OPENAI_KEY", raising=False)
    with FaultServer() as server:
        engine(server.url, api_key_env="TEST_OPENAI_KEY").generate(prompts(1), PARAMS)
    assert server.auth_headers == [None]


def test_check_passes_when_the_model_is_served_and_lists_models_when_not():
    with FaultServer(models=["tiny", "other"]) as server:
        assert engine(server.url).check() == ["tiny", "other"]
        with pytest.raises(EngineError, match=r"does not serve 'missing'.*\['tiny', 'other'\]"):
            engine(server.url, served_model_name="missing").check()


def test_check_names_an_unreachable_endpoint():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EngineError, match="cannot reach") as err:
        engine(url).check()
    assert url in str(err.value)


# --------------------------------------------------------------------------- real server

SUBJECTS = ["The cat", "A river", "My friend", "The old man", "This city", "Our team"]
VERBS = ["sees", "likes", "visits", "paints", "finds", "remembers", "builds"]
OBJECTS = ["the bridge", "a red house", "the market", "an island", "the library", "a garden"]


@pytest.fixture(scope="module")
def tiny_served(tmp_path_factory):
    """The real `transformers serve`, pinned to a freshly built tiny model."""
    from instructpt.synth.tiny import build_tiny_model

    rng = random.Random(0)
    sentences = [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(300)
    ]
    model_dir = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", sentences)
    # The positional model argument preloads the model and pins the server to it;
    # requests name it by the same path string.
    with transformers_serve(model_dir, start_timeout=60) as url:
        yield model_dir, url


@pytest.mark.slow
@pytest.mark.ci
def test_transformers_serve_greedy_matches_hf_generate_on_the_same_token_ids(tiny_served):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, url = tiny_served
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    docs = ["The cat sees the bridge.", "Our team builds a garden.", "A river finds the market."]
    batch = []
    for doc in docs:
        text = f"<s> <CON> {doc} </CON>\n\n"
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        batch.append(Prompt(text=text, token_ids=tuple(ids)))

    # `transformers serve` answers 400 "prompt must be a string." to token ids, so text
    # it is; it tokenizes with add_special_tokens=True, which adds nothing for this
    # tokenizer (no BOS template), so the server sees exactly our token ids.
    eng = engine(url, concurrency=2, request_timeout_s=60, send_token_ids=False)
    eng.served_model = str(model_dir)
    assert eng.check() == [str(model_dir)]
    params = DecodingParams(max_new_tokens=24)
    out = eng.generate(batch, params)
    eng.close()

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    for prompt, got in zip(batch, out, strict=True):
        assert got.prompt_tokens == len(prompt.token_ids)  # no second BOS
        ids = torch.tensor([prompt.token_ids])
        with torch.no_grad():
            seq = model.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :]
        assert got.completion_tokens == len(seq)
        assert got.text == tokenizer.decode(seq, skip_special_tokens=True)
        assert got.finish_reason == ("length" if len(seq) == 24 else "stop")

    token_ids_engine = engine(url, send_token_ids=True)
    token_ids_engine.served_model = str(model_dir)
    rejected = token_ids_engine.generate(batch[:1], params)[0]
    assert rejected.finish_reason == "skipped" and "prompt must be a string" in rejected.detail


@pytest.mark.slow
def test_transformers_serve_keeps_the_stop_string_and_the_engine_cuts_it(tiny_served):
    # `transformers serve` decodes every generated token, the one that completed a
    # stop string included, so its text holds the stop; the engine cuts before it.
    from transformers import AutoTokenizer

    model_dir, url = tiny_served
    ids = AutoTokenizer.from_pretrained(model_dir)("The cat", add_special_tokens=False)
    prompt = Prompt("The cat", tuple(ids["input_ids"]))
    eng = engine(url, request_timeout_s=60)  # text prompts: all `transformers serve` takes
    eng.served_model = str(model_dir)
    full = eng.generate([prompt], DecodingParams(max_new_tokens=12))[0]
    assert "at" in full.text, full  # the random tiny model repeats " cat"
    cut = eng.generate([prompt], DecodingParams(max_new_tokens=12, stop=("at",)))[0]
    eng.close()
    assert (cut.text, cut.finish_reason) == (full.text[: full.text.index("at")], "stop")
