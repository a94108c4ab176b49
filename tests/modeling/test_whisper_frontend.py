"""The Whisper front-end: Whisper's own log-mel and encoder (transformers' implementations as oracles), on the
waveform's real length, padded batches equal to single utterances, 30 s chunks beyond Whisper's context."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.examples import speech_like
from modeling_nes2net.scorer import pad_waveforms
from tests.tiny_models import tiny_config, tiny_model

RATE = 16_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """40 s of synthetic speech (`examples.speech_like`): these parity tests guard the re-driven encoder, so they run
    without the shared corpora."""
    return speech_like(40.0, RATE, seed=0).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> Nes2NetForAudioClassification:
    return tiny_model("whisper", layer_merge="weighted_sum")


def test_the_log_mel_is_whispers_own_on_the_real_length(model, speech):
    for seconds in (0.5, 3.7, 12.0):
        waveform = speech[: int(seconds * RATE)]
        expected = WhisperFeatureExtractor()._torch_extract_fbank_features(waveform[None])[0]
        ours = model.nes2net.frontend.log_mel(torch.from_numpy(waveform)[None], torch.tensor([waveform.size]))[0]
        assert ours.shape == expected.shape == (80, waveform.size // 160)
        np.testing.assert_allclose(ours.numpy(), expected, atol=1e-4)  # a float32 DFT, not an FFT


@torch.inference_mode()
def test_under_bf16_autocast_the_log_mel_stays_float32_and_the_model_scores(model, speech):
    """Accelerate's mixed precision (`evaluate --mixed-precision bf16`) runs the model inside autocast: the log-mel is
    still Whisper's float32 one, and the encoder and back-end run in bfloat16."""
    waveform = torch.from_numpy(speech[: 4 * RATE])[None]
    lengths = torch.tensor([waveform.shape[1]])
    expected = model.nes2net.frontend.log_mel(waveform, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mel = model.nes2net.frontend.log_mel(waveform, lengths)
        logits = model(input_values=waveform).logits
    assert mel.dtype == torch.float32 and torch.equal(mel, expected)
    assert torch.isfinite(logits.float()).all()
    np.testing.assert_allclose(logits.float().numpy(), model(input_values=waveform).logits.numpy(), atol=0.1)


@torch.inference_mode()
def test_thirty_seconds_give_the_hidden_states_of_whisper_encoder(model, speech):
    waveform = speech[: 30 * RATE]
    features = WhisperFeatureExtractor()(waveform, sampling_rate=RATE, return_tensors="pt").input_features
    encoder: WhisperEncoder = model.nes2net.frontend.encoder
    expected = encoder(features, output_hidden_states=True)
    ours = model.nes2net.frontend(torch.from_numpy(waveform)[None]).hidden_states
    assert len(ours) == model.config.num_frontend_layers == len(expected.hidden_states)
    for state, reference in zip(ours[:-1], expected.hidden_states[:-1]):
        torch.testing.assert_close(state, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[-1], expected.last_hidden_state, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_a_padded_batch_scores_each_utterance_as_alone_across_thirty_second_chunks(model, speech):
    waveforms = [speech[: int(2.3 * RATE)], speech[RATE: 9 * RATE], speech[: 37 * RATE + 123]]
    input_values, attention_mask = map(torch.from_numpy, pad_waveforms(waveforms))
    batch = model(input_values, attention_mask=attention_mask).logits
    alone = torch.cat([model(torch.from_numpy(waveform)[None]).logits for waveform in waveforms])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-5)
    states = model.nes2net.frontend(torch.from_numpy(waveforms[2])[None]).hidden_states
    lengths = model.frame_lengths(torch.tensor([waveform.size for waveform in waveforms]))
    assert states[-1].shape[1] == lengths[2] == 1500 + (7 * 100 + 1) // 2  # a full chunk, then 7 s of frames
    assert lengths.tolist() == [(2.3 * 100 + 1) // 2, 400, lengths[2]]


@torch.inference_mode()
def test_a_chunk_beyond_thirty_seconds_is_encoded_from_position_zero(model, speech):
    """Whisper reads long audio in 30 s windows: the second chunk's frames are those of its audio alone, except the
    first two, whose STFT frames straddle the boundary (real audio before it, not a reflection)."""
    frontend = model.nes2net.frontend
    whole = frontend(torch.from_numpy(speech[: 40 * RATE])[None]).last_hidden_state
    second = frontend(torch.from_numpy(speech[30 * RATE: 40 * RATE])[None]).last_hidden_state
    assert whole.shape[1] == 1500 + second.shape[1]
    torch.testing.assert_close(whole[:, 1502:], second[:, 2:], atol=1e-5, rtol=1e-5)


def test_the_whisper_front_end_round_trips_through_save_and_from_pretrained(model, tmp_path, speech):
    model.save_pretrained(tmp_path)
    loaded = Nes2NetForAudioClassification.from_pretrained(tmp_path).eval()
    assert (loaded.config.frontend_type, loaded.config.frontend_config.model_type) == ("whisper", "whisper")
    waveform = torch.from_numpy(speech[: 3 * RATE])[None]
    with torch.inference_mode():
        torch.testing.assert_close(loaded(waveform).logits, model(waveform).logits, atol=0, rtol=0)


def test_a_whisper_front_end_needs_a_whisper_config():
    with pytest.raises(Exception, match="needs a Whisper frontend_config"):  # @strict wraps the ValueError
        tiny_config("wav2vec2", frontend_type="whisper")


def test_too_short_a_waveform_is_refused_in_one_line(model):
    with pytest.raises(ValueError, match="too short for Whisper's log-mel"):
        model(torch.zeros(1, 150))


def test_float16_front_end_weights_halve_the_file_and_load_back_in_float32(model, tmp_path, speech):
    model.save_pretrained(tmp_path / "float32")
    model.config.frontend_weights_dtype = "float16"
    try:
        model.save_pretrained(tmp_path / "float16")
    finally:
        model.config.frontend_weights_dtype = "float32"
    sizes = {name: (tmp_path / name / "model.safetensors").stat().st_size for name in ("float32", "float16")}
    frontend_bytes = 4 * sum(parameter.numel() for parameter in model.nes2net.frontend.parameters())
    assert sizes["float32"] - sizes["float16"] >= frontend_bytes // 2 - 4096
    loaded = Nes2NetForAudioClassification.from_pretrained(tmp_path / "float16").eval()
    assert {parameter.dtype for parameter in loaded.parameters()} == {torch.float32}
    assert loaded.config.frontend_weights_dtype == "float16"
    rounded = Nes2NetForAudioClassification.from_pretrained(tmp_path / "float32").eval()
    with torch.no_grad():
        for parameter in rounded.nes2net.frontend.parameters():
            parameter.copy_(parameter.half().float())
    waveform = torch.from_numpy(speech[: 3 * RATE])[None]
    with torch.inference_mode():
        torch.testing.assert_close(loaded(waveform).logits, rounded(waveform).logits, atol=0, rtol=0)
        torch.testing.assert_close(model(waveform).logits, rounded(waveform).logits, atol=1e-2, rtol=0)
