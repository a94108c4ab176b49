"""`nes2net evaluate` on what users get wrong: a build without `eval`, a missing split, a raw corpus folder, an
unknown, damaged or foreign model, generators kept in `system`, a truncated trial. One line each, no traceback."""

from __future__ import annotations

import csv
import json
import re

import datasets
import pytest
from safetensors.torch import load_file, save_file

from modeling_nes2net import save_model_folder
from nes2net.cli import main as nes2net
from tests.hostile.make_corpus import speech_like, wav_bytes
from tests.tiny_models import tiny_model
from tests.training.train_helpers import write_unchecked_set
from training.data import build_dataset


def _corpus(root, rows: list[tuple[str, str, str, bytes]]):
    """A generic corpus of (path, label, split, wav bytes) rows with a `system` column, built; the built folder."""
    corpus = root / "corpus"
    with_system = []
    for index, (path, label, split, data) in enumerate(rows):
        (corpus / path).parent.mkdir(parents=True, exist_ok=True)
        (corpus / path).write_bytes(data)
        system = "-" if label == "bonafide" else ("TTS_A", "VC_B")[(index // 2) % 2]
        with_system.append({"file_name": path, "label": label, "split": split, "system": system})
    with open(corpus / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(with_system[0]))
        writer.writeheader()
        writer.writerows(with_system)
    build_dataset("generic", corpus, root / "built", progress=False)
    return corpus, root / "built"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate-inputs")
    rows = [(f"{split}/{index}.wav", ("bonafide", "spoof")[index % 2], split,
             wav_bytes(speech_like(0.5 + 0.1 * index, seed=100 * len(split) + index)))  # no clip in two splits
            for split, count in (("train", 2), ("test", 8)) for index in range(count)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "hf-cache"))
        corpus, built = _corpus(root, rows)
        yield {"root": root, "corpus": corpus, "built": built, "model": save_model_folder(tiny_model(), root / "m")}


def _stderr(capsys) -> str:
    """What was written to stderr, without progress bars (`datasets`, weight loading, scoring: `[mm:ss`)."""
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    return "\n".join(line for line in lines if line.strip() and not re.search(r"\[\d\d:\d\d", line))


def _evaluate(capsys, *arguments) -> tuple[int, str]:
    code = nes2net(["evaluate", "--num-workers", "0", *map(str, arguments)])
    return code, _stderr(capsys)


def test_a_build_without_eval_is_scored_on_test_and_generators_come_from_system(setup, capsys, tmp_path):
    code, err = _evaluate(capsys, setup["model"], setup["built"], "--output-dir", tmp_path, "--protocol", "full")
    assert code == 0, err
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["dataset"]["split"] == "test" and result["n_trials"] == 8
    assert set(result["per_group"]["attack"]) == {"TTS_A", "VC_B"}


@pytest.mark.parametrize("case", ["missing split", "raw corpus", "unknown model", "no model folder"])
def test_wrong_arguments_get_one_line(setup, capsys, tmp_path, case):
    model, dataset, extra = setup["model"], setup["built"], []
    expected = {"missing split": f"{setup['built']} has no split 'dev'; splits: train, test",
                "raw corpus": "Build it first with `nes2net data build`",
                "unknown model": "nobody/no-such-model: cannot load the model: not a model folder",
                "no model folder": "no such model folder"}[case]
    if case == "missing split":
        extra = ["--split", "dev"]
    elif case == "raw corpus":
        dataset = setup["corpus"]
    elif case == "unknown model":
        model = "nobody/no-such-model"
    else:
        model = tmp_path / "nothing-here"
    code, err = _evaluate(capsys, model, dataset, "--output-dir", tmp_path / "out", *extra)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    (line,) = err.strip().splitlines()
    assert line.startswith("nes2net evaluate: error: ") and expected in line


@pytest.fixture(scope="module")
def damaged_models(setup):
    """Model folders that must never score: classifier weights missing, NaN weights, another architecture."""
    root, folders = setup["root"], {}
    weights = load_file(setup["model"] / "model.safetensors")
    for kind in ("missing weights", "nan weights"):
        folder = save_model_folder(tiny_model(), root / kind.replace(" ", "-"))
        broken = dict(weights)
        if kind == "missing weights":
            broken = {name: tensor for name, tensor in broken.items() if "classifier" not in name}
        else:
            first = sorted(name for name in broken if "backend" in name)[0]
            broken[first] = broken[first].clone().fill_(float("nan"))
        save_file(broken, folder / "model.safetensors", metadata={"format": "pt"})
        folders[kind] = (folder, {"missing weights": "2 missing weight(s)",
                                  "nan weights": "hold NaN or infinite values"}[kind])
    foreign = save_model_folder(tiny_model(), root / "foreign")
    config = json.loads((foreign / "config.json").read_text())
    config["loss"] = "focal_bce"
    config["id2label"] = {"0": "bonafide"}
    config["label2id"] = {"bonafide": 0}
    (foreign / "config.json").write_text(json.dumps(config))
    folders["another architecture"] = (foreign, "do not fit its config")
    return folders


@pytest.mark.parametrize("kind", ["missing weights", "nan weights", "another architecture"])
def test_damaged_models_are_refused_by_evaluate_and_detect_naming_the_folder(setup, damaged_models, capsys,
                                                                              tmp_path, kind):
    folder, message = damaged_models[kind]
    code, err = _evaluate(capsys, folder, setup["built"], "--output-dir", tmp_path)
    assert len(err.strip().splitlines()) == 1, err
    (line,) = err.strip().splitlines()
    assert code == 2 and line.startswith(f"nes2net evaluate: error: {folder}: ") and message in line
    clip = setup["corpus"] / "test" / "0.wav"
    code = nes2net(["detect", str(clip), "--model", str(folder)])
    (line,) = _stderr(capsys).splitlines()
    assert code == 2 and line.startswith(f"nes2net detect: error: {folder}: ") and message in line


def test_a_truncated_trial_is_named_with_its_real_duration_and_the_others_are_kept(tmp_path, capsys):
    good = wav_bytes(speech_like(1.0))
    rows = [("test/good.wav", "bonafide", "test", good), ("test/cut.wav", "spoof", "test", good[:8_044]),
            ("test/also_good.wav", "spoof", "test", wav_bytes(speech_like(0.8, seed=1)))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
        built = write_unchecked_set(tmp_path / "built", rows)
        model = save_model_folder(tiny_model(), tmp_path / "m")
        code, err = _evaluate(capsys, model, built, "--output-dir", tmp_path / "out", "--num-workers", "1")
    assert code == 1
    assert len(err.splitlines()) == 1, err
    (line,) = err.splitlines()
    assert line.startswith("nes2net evaluate: error: 1 of 3 trials cannot be scored")
    assert line.endswith("test/cut: truncated: the header promises 1.00 s, the file holds 0.25 s "
                         "(an incomplete copy or download?)")
    kept = [entry.split("\t") for part in (tmp_path / "out" / "parts").glob("part-*.tsv")
            for entry in part.read_text().splitlines()]
    assert sorted(int(fields[0]) for fields in kept if len(fields) == 2) == [0, 2]  # the good trials are scored
