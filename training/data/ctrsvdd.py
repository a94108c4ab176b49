"""Builder for CtrSVDD, the controlled singing voice deepfake detection corpus (SVDD Challenge 2024)."""

from __future__ import annotations

from .layout import ProtocolCorpusBuilder, SplitSource


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
    columns = ("source", "speaker", "utt_id", None, "attack", "key")  # the speaker is the singer
    keys = {"bonafide": 1, "deepfake": 0}
    sources = {split: SplitSource((f"{split}.txt",), (f"{split}_set",)) for split in ("train", "dev", "test")}
