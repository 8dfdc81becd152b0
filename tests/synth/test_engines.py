"""Engine selection and the errors a user meets before any generation."""

from __future__ import annotations

import importlib.util

import pytest

from instructpt.synth.config import SynthesizeConfig, VLLMEngineConfig
from instructpt.synth.engines.base import EngineError
from instructpt.synth.runner import build_engine


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_engine_without_vllm_names_the_install_path():
    from instructpt.synth.engines.vllm import VLLMEngine

    with pytest.raises(EngineError, match="vllm-env"):
        VLLMEngine("some/model", None, VLLMEngineConfig(), max_context=4096)


def test_openai_engine_with_nothing_listening_fails_before_any_work():
    cfg = SynthesizeConfig(
        model="m",
        engine="openai",
        openai={"base_urls": ["http://127.0.0.1:9/v1"], "max_retries": 0, "connect_timeout_s": 1},
    )
    with pytest.raises(EngineError, match=r"127\.0\.0\.1:9"):
        build_engine(cfg)


def test_hf_engine_with_a_missing_model_dir_is_a_clear_error(tmp_path):
    cfg = SynthesizeConfig(model=str(tmp_path / "nope"))
    with pytest.raises(EngineError, match="cannot load model"):
        build_engine(cfg)
