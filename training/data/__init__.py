"""HF Datasets versions of the anti-spoofing corpora: one builder per corpus over one shared schema, and
the fast loader training reads them with.

    nes2net data build asvspoof2019-la /data/LA asvspoof2019-la/      # or: build_dataset(...)
    nes2net data check in-the-wild /data/release_in_the_wild           # every problem, nothing written

    train = load_training_dataset("asvspoof2019-la/", "train")         # {"input_values": (64600,), "label"}
    dev = load_training_dataset("asvspoof2019-la/", "dev", crop="full", columns=("label", "utt_id"))
    DataLoader(dev, batch_size=8, collate_fn=collate_waveforms)        # padded + attention_mask

Streaming: `load_built_dataset(folder_or_hub_id, split, streaming=True)` (or
`load_dataset("parquet", data_files={"train": "OUT/data/train-*.parquet"}, streaming=True)`) reads the
shards lazily; `load_training_dataset(..., streaming=True)` crops them as they stream; `stream_corpus`
reads a corpus folder directly, with no build.
"""

from .build import build_dataset, check_corpus, scan_corpus, stream_corpus
from .corpora import BUILDERS, get_builder
from .layout import CorpusBuilder, CorpusLayoutError, CorpusScan, LayoutProblem
from .loading import (
    WaveformTransform,
    collate_waveforms,
    crop_waveform,
    decode_waveform,
    load_built_dataset,
    load_training_dataset,
    read_build_info,
    stored_bytes,
)
from .schema import ATTACK_BONAFIDE, ATTACK_UNKNOWN, LABEL_NAMES, SAMPLING_RATE, Utterance, corpus_features

__all__ = [
    "ATTACK_BONAFIDE",
    "ATTACK_UNKNOWN",
    "BUILDERS",
    "LABEL_NAMES",
    "SAMPLING_RATE",
    "CorpusBuilder",
    "CorpusLayoutError",
    "CorpusScan",
    "LayoutProblem",
    "Utterance",
    "WaveformTransform",
    "build_dataset",
    "check_corpus",
    "collate_waveforms",
    "corpus_features",
    "crop_waveform",
    "decode_waveform",
    "get_builder",
    "load_built_dataset",
    "load_training_dataset",
    "read_build_info",
    "scan_corpus",
    "stored_bytes",
    "stream_corpus",
]
