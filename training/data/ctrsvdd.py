"""Builder for CtrSVDD, the controlled singing voice deepfake detection corpus (SVDD Challenge 2024)."""

from __future__ import annotations

from datasets import Value

from .layout import ProtocolCorpusBuilder, ProtocolEntry, SplitSource, parse_key
from .schema import attack_name

CTRSVDD_KEYS = {"bonafide": 1, "deepfake": 0}


class CtrSVDDBuilder(ProtocolCorpusBuilder):
    name = "ctrsvdd"
    title = "CtrSVDD"
    description = (
        "Controlled singing voice deepfake detection (SVDD Challenge 2024): bona fide Mandarin and Japanese "
        "singing and singing voice synthesis / conversion deepfakes (A01-A14); `source` is the singing corpus."
    )
    layout = (
        "ROOT holds train.txt, dev.txt and test.txt (SOURCE SINGER FILE - ATTACK LABEL, LABEL bonafide|deepfake) "
        "and train_set/, dev_set/, test_set/ of FILE.flac"
    )
    license = "cc-by-nc-4.0"
    num_fields = (6,)
    metadata_features = {"source": Value("string")}
    sources = {split: SplitSource((f"{split}.txt",), (f"{split}_set",)) for split in ("train", "dev", "test")}

    def parse_fields(self, fields: list[str], line: int) -> ProtocolEntry:
        source, singer, utt_id, _, attack, key = fields
        label = parse_key(key, CTRSVDD_KEYS)
        return ProtocolEntry(line, utt_id, label, singer, attack_name(attack, label), {"source": source})
