"""Builders for the ASVspoof challenge corpora: 2019 LA, 2021 LA and DF evaluation, and ASVspoof 5."""

from __future__ import annotations

from .layout import ProtocolCorpusBuilder, SplitSource

ASVSPOOF_KEYS = {"bonafide": 1, "spoof": 0}


class ASVspoof2019LABuilder(ProtocolCorpusBuilder):
    name = "asvspoof2019-la"
    title = "ASVspoof 2019 Logical Access"
    description = (
        "Bona fide VCTK speech and TTS/VC spoofs (A01-A19) of the ASVspoof 2019 logical access task: "
        "train and dev share attacks A01-A06, eval uses A07-A19."
    )
    layout = (
        "ROOT = the extracted LA/ folder: ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm."
        "{train.trn,dev.trl,eval.trl}.txt (SPEAKER FILE - SYSTEM KEY) and "
        "ASVspoof2019_LA_{train,dev,eval}/flac/FILE.flac"
    )
    license = "odc-by"
    num_fields = (5,)
    columns = ("speaker", "utt_id", None, "attack", "key")
    keys = ASVSPOOF_KEYS
    sources = {
        split: SplitSource(
            (f"ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.{kind}.txt",),
            (f"ASVspoof2019_LA_{split}/flac",),
        )
        for split, kind in (("train", "trn"), ("dev", "trl"), ("eval", "trl"))
    }


class ASVspoof2021LABuilder(ProtocolCorpusBuilder):
    name = "asvspoof2021-la"
    title = "ASVspoof 2021 Logical Access (evaluation)"
    description = (
        "The ASVspoof 2021 LA evaluation set: ASVspoof 2019 eval attacks sent through telephony codecs and "
        "channels; the `subset` column marks the eval / progress / hidden trials."
    )
    layout = (
        "ROOT holds ASVspoof2021_LA_eval/flac/TRIAL.flac and the keys keys/LA/CM/trial_metadata.txt "
        "(SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET)"
    )
    license = "odc-by"
    num_fields = (8,)
    columns = ("speaker", "utt_id", "codec", "transmission", "attack", "key", "trim", "subset")
    keys = ASVSPOOF_KEYS
    sources = {"eval": SplitSource(("keys/LA/CM/trial_metadata.txt",), ("ASVspoof2021_LA_eval/flac",))}


class ASVspoof2021DFBuilder(ProtocolCorpusBuilder):
    name = "asvspoof2021-df"
    title = "ASVspoof 2021 DeepFake (evaluation)"
    description = (
        "The ASVspoof 2021 DF evaluation set: bona fide and spoofed speech from ASVspoof 2019 LA, VCC 2018 and "
        "VCC 2020 through media codecs; `vocoder` names the vocoder family, `subset` the eval / progress / "
        "hidden trials."
    )
    layout = (
        "ROOT holds ASVspoof2021_DF_eval/flac/TRIAL.flac and the keys keys/DF/CM/trial_metadata.txt "
        "(SPEAKER TRIAL CODEC SOURCE ATTACK KEY TRIM SUBSET VOCODER, then - - - -)"
    )
    num_fields = (9, 13)
    columns = ("speaker", "utt_id", "codec", "source", "attack", "key", "trim", "subset", "vocoder")  # then - - - -
    keys = ASVSPOOF_KEYS
    sources = {"eval": SplitSource(("keys/DF/CM/trial_metadata.txt",), ("ASVspoof2021_DF_eval/flac",))}


class ASVspoof5Builder(ProtocolCorpusBuilder):
    name = "asvspoof5"
    title = "ASVspoof 5"
    description = (
        "ASVspoof 5 (track 1, stand-alone spoofing detection): crowdsourced MLS English speech and spoofs from "
        "TTS, VC and adversarial attacks, with codec and codec-quality conditions in dev and eval."
    )
    layout = (
        "ROOT holds the protocols ASVspoof5.train.tsv, ASVspoof5.dev.track_1.tsv, ASVspoof5.eval.track_1.tsv "
        "(here or in ASVspoof5_protocols/; space-separated: SPEAKER FILE GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG "
        "ATTACK_LABEL KEY TMP) and the audio flac_T/, flac_D/, flac_E_eval/ (or flac_E/) of FILE.flac"
    )
    num_fields = (10,)
    columns = (
        "speaker", "utt_id", "gender", "codec", "codec_quality", "codec_seed", "attack_tag", "attack", "key", None
    )
    keys = ASVSPOOF_KEYS
    sources = {
        split: SplitSource(
            tuple(
                f"{folder}ASVspoof5.{split}.{suffix}" for folder in ("", "ASVspoof5_protocols/") for suffix in suffixes
            ),
            audio_dirs,
        )
        for split, suffixes, audio_dirs in (
            ("train", ("tsv", "track_1.tsv"), ("flac_T",)),
            ("dev", ("track_1.tsv", "tsv"), ("flac_D",)),
            ("eval", ("track_1.tsv", "tsv"), ("flac_E_eval", "flac_E")),
        )
    }
