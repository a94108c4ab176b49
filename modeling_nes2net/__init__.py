"""Nes2Net speech anti-spoofing models for transformers.

Importing this package registers `Nes2NetConfig` with `AutoConfig`, `Nes2NetModel` with `AutoModel`,
`Nes2NetForAudioClassification` with `AutoModelForAudioClassification`, `Nes2NetFeatureExtractor` (which refuses
NaN / infinite, empty and wrong-rate waveforms) with `AutoFeatureExtractor`, and `Nes2NetAudioClassificationPipeline`
(which decodes files as `nes2net detect` does, refusing a FIFO or a truncated file with its one-line errors) as the
audio-classification pipeline of Nes2Net models, so `pipeline("audio-classification", model=<saved folder>)` works
without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from .configuration_nes2net import Nes2NetConfig
from .feature_extraction_nes2net import Nes2NetFeatureExtractor
from .folder import feature_extractor_for, save_model_folder
from .modeling_nes2net import Nes2NetBackend, Nes2NetForAudioClassification, Nes2NetModel, Nes2NetPreTrainedModel
from .modeling_nes2net import Nes2NetForAudioFrameClassification
from .pipeline_nes2net import Nes2NetAudioClassificationPipeline, register_pipeline
from .presets import PRESETS, config_from_preset
from .weight_checks import ModelLoadError

AutoConfig.register(Nes2NetConfig.model_type, Nes2NetConfig, exist_ok=True)
AutoModel.register(Nes2NetConfig, Nes2NetModel, exist_ok=True)
AutoModelForAudioClassification.register(Nes2NetConfig, Nes2NetForAudioClassification, exist_ok=True)
AutoModelForAudioFrameClassification.register(Nes2NetConfig, Nes2NetForAudioFrameClassification, exist_ok=True)
AutoFeatureExtractor.register(Nes2NetConfig, Nes2NetFeatureExtractor, exist_ok=True)
Nes2NetConfig.register_for_auto_class()
Nes2NetFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
Nes2NetModel.register_for_auto_class("AutoModel")
Nes2NetForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
Nes2NetForAudioFrameClassification.register_for_auto_class("AutoModelForAudioFrameClassification")
register_pipeline()

__all__ = [
    "PRESETS",
    "ModelLoadError",
    "Nes2NetAudioClassificationPipeline",
    "Nes2NetBackend",
    "Nes2NetConfig",
    "Nes2NetFeatureExtractor",
    "Nes2NetForAudioClassification",
    "Nes2NetForAudioFrameClassification",
    "Nes2NetModel",
    "Nes2NetPreTrainedModel",
    "config_from_preset",
    "feature_extractor_for",
    "save_model_folder",
]
