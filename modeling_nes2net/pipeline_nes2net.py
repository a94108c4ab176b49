"""`pipeline("audio-classification")` for Nes2Net models: inputs are decoded by `modeling_nes2net.audio`, so the
pipeline refuses what `nes2net detect` refuses (a FIFO, a missing or empty file, a truncated WAV, an implausible
header or rate, NaN samples, a non-audio file, input that is not speech-like: see `input_check`) with the same
one-line `AudioInputError` naming the input, and scales and resamples waveform arrays as it does.

Why a pipeline class: transformers' `AudioClassificationPipeline.preprocess` opens a path itself
(`open(path, "rb").read()`, then pipes the bytes to ffmpeg) before the model's feature extractor sees anything, so
`Nes2NetFeatureExtractor` only ever gets the decoded samples: a FIFO blocks that `open` forever, a truncated
WAV is scored on what is left, and an http(s) URL is fetched (`httpx.get`) and scored unchecked (so a URL is
refused: this package reads no network). The one per-model hook `pipeline()` has for a built-in task,
`config.custom_pipelines`, demands `trust_remote_code=True` even for a local folder, which would break the one line. So importing the package
makes this class the task's class (`register_pipeline`); for models of any other type it is transformers'
`AudioClassificationPipeline`, unchanged. Without the package (remote code only) the pipeline is transformers' own.
"""

from __future__ import annotations

import numpy as np
from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline

from .configuration_nes2net import Nes2NetConfig

TASK = "audio-classification"


class Nes2NetAudioClassificationPipeline(AudioClassificationPipeline):
    """[`AudioClassificationPipeline`] that, when the model is a Nes2Net model, decodes its input with
    `modeling_nes2net.audio`, so it refuses what `nes2net detect` refuses with the same one-line `AudioInputError`:

    - a local path (`str`) or encoded `bytes`: decoded by `load_audio` to mono float32 at the model's rate;
    - a waveform (numpy array or torch tensor, at the model's rate) or a `{"raw" | "array": waveform,
      "sampling_rate": rate}` dict: integer samples scaled from their full range to [-1, 1], channels averaged,
      other rates resampled with soxr (the package's own resampler, not torchaudio); a rate outside the plausible
      audio range (0, -1, 1e9 Hz) is refused.

    An http(s) URL is refused (`AudioInputError`): the parent would fetch it itself, past the decoder's checks, and
    this package reads no network. `top_k` must be a positive number of labels. Every input of other models goes to
    the parent as it is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self._is_nes2net:
            return
        model_rate, extractor_rate = self.model.config.sampling_rate, self.feature_extractor.sampling_rate
        if extractor_rate != model_rate:
            raise ValueError(f"{self.model.name_or_path}: its preprocessor_config.json decodes at {extractor_rate} Hz "
                             f"but the model takes {model_rate} Hz (config.json); fix or remove one of them")

    @property
    def _is_nes2net(self) -> bool:
        return self.model.config.model_type == Nes2NetConfig.model_type

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, **kwargs):
        if self._is_nes2net and top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                                       or top_k < 1):
            raise ValueError(f"top_k must be a positive number of labels, got {top_k!r}")
        return super()._sanitize_parameters(top_k=top_k, function_to_apply=function_to_apply, **kwargs)

    def preprocess(self, inputs):
        if not self._is_nes2net:
            return super().preprocess(inputs)
        from .audio import load_audio  # the audio libraries are imported when audio is read, not with the model
        from .input_check import check_speech_like

        rate = self.model.config.sampling_rate
        source = _audio_source(inputs, rate)
        if source is not None:
            inputs = load_audio(source, target_rate=rate)
            check_speech_like(inputs, rate, source.display_name)
        return super().preprocess(inputs)


def _audio_source(inputs, sampling_rate: int):
    """The `AudioSource` of a local path, encoded bytes, a waveform (at `sampling_rate`) or a waveform dict; None
    for anything the parent refuses itself. Raises `AudioInputError` for an http(s) URL."""
    from .audio import AudioInputError, AudioSource

    if isinstance(inputs, str) and inputs.lower().startswith(("http://", "https://")):
        raise AudioInputError(inputs, "a URL; Nes2Net reads no network: download the recording and pass its path, "
                                      "bytes or waveform")
    if isinstance(inputs, (str, bytes)):
        return AudioSource(inputs)
    if isinstance(inputs, dict) and "sampling_rate" in inputs and ("raw" in inputs or "array" in inputs):
        waveform = inputs["raw"] if inputs.get("raw") is not None else inputs["array"]
        return AudioSource.wrap(waveform, inputs["sampling_rate"])
    if isinstance(inputs, np.ndarray) or hasattr(inputs, "numpy"):
        return AudioSource.wrap(inputs, sampling_rate)
    return None


def register_pipeline() -> None:
    """Make `pipeline("audio-classification")` build `Nes2NetAudioClassificationPipeline`: what
    `PIPELINE_REGISTRY.register_pipeline` does, keeping the task's models, default and type, without its warning
    about replacing the built-in class (which this one extends, for Nes2Net models only)."""
    PIPELINE_REGISTRY.supported_tasks[TASK] = {
        **PIPELINE_REGISTRY.supported_tasks[TASK], "impl": Nes2NetAudioClassificationPipeline
    }


__all__ = ["Nes2NetAudioClassificationPipeline", "register_pipeline"]
