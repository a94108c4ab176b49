"""HF Datasets versions of the anti-spoofing corpora: one builder per corpus over one shared schema, and
the fast loader training reads them with."""

from .build import build_dataset, scan_corpus, stream_corpus
from .corpora import BUILDERS, get_builder
from .layout import CorpusBuilder, CorpusLayoutError, CorpusScan, LayoutProblem
from .loading import (
    DEFAULT_NUM_SAMPLES,
    WaveformTransform,
    collate_waveforms,
    crop_waveform,
    decode_waveform,
    load_built_dataset,
    load_training_dataset,
    read_build_info,
)
from .schema import ATTACK_BONAFIDE, ATTACK_UNKNOWN, LABEL_NAMES, SAMPLING_RATE, Utterance, corpus_features

__all__ = [
    "ATTACK_BONAFIDE",
    "ATTACK_UNKNOWN",
    "BUILDERS",
    "DEFAULT_NUM_SAMPLES",
    "LABEL_NAMES",
    "SAMPLING_RATE",
    "CorpusBuilder",
    "CorpusLayoutError",
    "CorpusScan",
    "LayoutProblem",
    "Utterance",
    "WaveformTransform",
    "build_dataset",
    "collate_waveforms",
    "corpus_features",
    "crop_waveform",
    "decode_waveform",
    "get_builder",
    "load_built_dataset",
    "load_training_dataset",
    "read_build_info",
    "scan_corpus",
    "stream_corpus",
]
