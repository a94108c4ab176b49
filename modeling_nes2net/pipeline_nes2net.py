"""`pipeline("audio-classification")` for Nes2Net models: files are decoded by `modeling_nes2net.audio`, so the
pipeline refuses what `nes2net detect` refuses (a FIFO, a missing or empty file, a truncated WAV, an implausible
header, NaN samples, a non-audio file) with the same one-line `AudioInputError` naming the input.

Why a pipeline class: transformers' `AudioClassificationPipeline.preprocess` opens a path itself
(`open(path, "rb").read()`, then pipes the bytes to ffmpeg) before the model's feature extractor sees anything, so
`Nes2NetFeatureExtractor` only ever gets the decoded samples: a FIFO blocks that `open` forever, and a truncated
WAV is scored on what is left. The one per-model hook `pipeline()` has for a built-in task, `config.custom_pipelines`,
demands `trust_remote_code=True` even for a local folder, which would break the one line. So importing the package
makes this class the task's class (`register_pipeline`); for models of any other type it is transformers'
`AudioClassificationPipeline`, unchanged. Without the package (remote code only) the pipeline is transformers' own.
"""

from __future__ import annotations

from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline

from .configuration_nes2net import Nes2NetConfig

TASK = "audio-classification"


class Nes2NetAudioClassificationPipeline(AudioClassificationPipeline):
    """[`AudioClassificationPipeline`] that decodes a local path (`str`) or encoded `bytes` with
    `modeling_nes2net.audio.load_audio` (mono float32 at the model's rate, raising `AudioInputError`) when the model
    is a Nes2Net model; URLs, arrays, dicts and other models' inputs go to the parent as they are."""

    def preprocess(self, inputs):
        if self.model.config.model_type == Nes2NetConfig.model_type and _is_local_file(inputs):
            from .audio import load_audio  # the audio libraries are imported when a file is read, not with the model

            inputs = load_audio(inputs, target_rate=self.feature_extractor.sampling_rate)
        return super().preprocess(inputs)


def _is_local_file(inputs) -> bool:
    """Encoded bytes, or a path string that is not an http(s) URL (which the parent downloads)."""
    return isinstance(inputs, bytes) or (isinstance(inputs, str) and not inputs.startswith(("http://", "https://")))


def register_pipeline() -> None:
    """Make `pipeline("audio-classification")` build `Nes2NetAudioClassificationPipeline`: what
    `PIPELINE_REGISTRY.register_pipeline` does, keeping the task's models, default and type, without its warning
    about replacing the built-in class (which this one extends, for Nes2Net models only)."""
    PIPELINE_REGISTRY.supported_tasks[TASK] = {
        **PIPELINE_REGISTRY.supported_tasks[TASK], "impl": Nes2NetAudioClassificationPipeline
    }


__all__ = ["Nes2NetAudioClassificationPipeline", "register_pipeline"]
