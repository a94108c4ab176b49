"""A damaged or hostile `config.json` is refused by `Nes2NetConfig` itself, at once and in one line (through
`load_model`), instead of allocating gigabytes (`sampling_rate: 1e8`), building for minutes (Whisper
`encoder_layers: 100000`) or scoring with an absurd calibration."""

from __future__ import annotations

import json
import time

import pytest
from tests.tiny_models import tiny_config

from modeling_nes2net import Nes2NetConfig
from modeling_nes2net.model_loading import load_model
from modeling_nes2net.weight_checks import ModelLoadError


@pytest.mark.parametrize("key, value, message", [
    ("sampling_rate", 1e8, "sampling_rate must be a speech model's rate, 8000-48000 Hz, got 100000000"),
    ("sampling_rate", 100, "sampling_rate must be a speech model's rate, 8000-48000 Hz, got 100"),
    ("calibration_scale", 1e300, "calibration_scale must be between"),
    ("calibration_offset", 1e30, "calibration_offset must be within"),
    ("stretch_margin", -0.5, "stretch_margin must be between 0 and 10000 log-odds, got -0.5"),
    ("stretch_margin", float("nan"), "stretch_margin must be between 0 and 10000 log-odds, got nan"),
    ("stretch_edge", 0.5, "stretch_edge must be between 0 and the stretch_margin, 0 log-odds, got 0.5"),
    ("attention_channels", 10**9, "attention_channels = 1000000000 is over 8192"),
])
def test_an_implausible_config_value_is_refused_in_one_line(model_dir, tmp_path, key, value, message):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for file in model_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, key: value}))
    with pytest.raises(Exception, match=message):  # huggingface_hub's StrictDataclassClassValidationError
        Nes2NetConfig.from_pretrained(folder)
    with pytest.raises(ModelLoadError) as refused:
        load_model(folder)
    assert "\n" not in str(refused.value) and message.split(" got")[0] in str(refused.value)


@pytest.mark.parametrize("frontend, key", [("whisper", "encoder_layers"), ("whisper", "d_model"),
                                           ("wav2vec2", "num_hidden_layers"), ("wav2vec2", "intermediate_size"),
                                           ("wav2vec2", "conv_dim")])
def test_a_huge_frontend_size_is_refused_before_building(frontend, key):
    value = (100_000, 100_000) if key == "conv_dim" else 100_000
    started = time.monotonic()
    with pytest.raises(Exception, match=r"frontend_config\.\w+ = 100000 is over \d+, the most any speech model uses"):
        tiny_config(frontend, frontend_overrides={key: value})
    assert time.monotonic() - started < 5
