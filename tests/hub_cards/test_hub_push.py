"""`nes2net push`: the folder checks on good and broken folders, and the dry-run listing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hub_cards.checks import dataset_folder_problems, model_folder_problems
from hub_cards.dataset_card import DatasetCardSpec, write_dataset_card
from hub_cards.model_card import write_model_card
from hub_cards.push import FolderNotPublishable, plan_upload, push_folder
from nes2net.cli import main
from tests.hub_cards.hub_helpers import build_dataset_folder, make_spec


@pytest.fixture()
def model_folder(tiny_model_dir: Path, result_files: list[Path]) -> Path:
    write_model_card(tiny_model_dir, make_spec("trained", result_files))
    return tiny_model_dir


@pytest.fixture()
def dataset_folder(tmp_path: Path) -> Path:
    folder = build_dataset_folder(tmp_path / "dataset")
    write_dataset_card(folder, DatasetCardSpec(repo_id="nes2net-test/tiny-corpus"))
    return folder


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


MODEL_BREAKAGES = {
    "pickle weights": (lambda d: (d / "pytorch_model.bin").write_bytes(b"\x80\x04"), "pytorch_model.bin: pickle-based"),
    "hidden file": (lambda d: (d / ".env").write_text("HF_TOKEN=x"), ".env: hidden file would be uploaded"),
    "no auto_map": (lambda d: _edit_json(d / "config.json", auto_map=None), "config.json has no auto_map"),
    "auto_map elsewhere": (
        lambda d: _edit_json(d / "config.json", auto_map={"AutoConfig": "someone/repo--configuration_x.XConfig"}),
        "auto_map points at code in another repository",
    ),
    "imported code missing": (
        lambda d: (d / "layer_merge_nes2net.py").unlink(),
        "layer_merge_nes2net.py is named by auto_map or imported by the remote code but is missing",
    ),
    "no feature extractor": (
        lambda d: (d / "preprocessor_config.json").unlink(),
        "preprocessor_config.json (the feature extractor) is missing",
    ),
    "feature extractor rate": (
        lambda d: _edit_json(d / "preprocessor_config.json", sampling_rate=8000),
        "samples at 8000 Hz but the model expects 16000 Hz",
    ),
    "no card": (lambda d: (d / "README.md").unlink(), "README.md (the card) is missing"),
    "wrong pipeline tag": (
        lambda d: _replace_in(d / "README.md", "pipeline_tag: audio-classification", "pipeline_tag: text-clas"),
        "pipeline_tag must be 'audio-classification'",
    ),
    "model-index without EER": (
        lambda d: _replace_in(d / "README.md", "- type: eer\n", "- type: accuracy\n"),
        "model-index reports no EER",
    ),
    "broken yaml": (lambda d: _replace_in(d / "README.md", "license: mit", "license: [mit"), "README.md: metadata"),
    "unexplained file": (
        lambda d: (d / "training_log.txt").write_text("epoch 1"),
        "training_log.txt: the card does not explain this file",
    ),
    "corrupt weights": (
        lambda d: (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00not a header"),
        "model.safetensors is not a readable safetensors file",
    ),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "no weights: model.safetensors"),
    "NaN weights": (
        lambda d: _set_weight(d / "model.safetensors", "classifier.bias", float("nan")),
        "model.safetensors: 1 weight tensor(s) hold NaN or infinite values (classifier.bias)",
    ),
}


def _set_weight(path: Path, name: str, value: float) -> None:
    weights = load_file(path)
    weights[name] = torch.full_like(weights[name], value)
    save_file(weights, path, metadata={"format": "pt"})


def test_good_model_folder_passes_and_dry_run_lists_paths_sizes_and_hashes(model_folder: Path, capsys):
    assert model_folder_problems(model_folder) == []
    plan = plan_upload(model_folder)
    files = sorted(p.relative_to(model_folder).as_posix() for p in model_folder.rglob("*") if p.is_file())
    assert [item.path for item in plan] == files
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json", "modeling_nes2net.py",
            "configuration_nes2net.py", "layer_merge_nes2net.py"} <= set(files)
    for item in plan:
        content = (model_folder / item.path).read_bytes()
        assert item.size == len(content)
        assert item.sha256 == hashlib.sha256(content).hexdigest()

    assert main(["push", str(model_folder), "nes2net-test/tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would upload to model repository nes2net-test/tiny (public)" in out
    for item in plan:
        assert f"{item.size:>12,}  {item.sha256}" in out and item.path in out
    assert f"{len(plan)} file(s), {sum(i.size for i in plan):,} bytes" in out


@pytest.mark.parametrize("breakage", sorted(MODEL_BREAKAGES))
def test_broken_model_folders_are_refused_with_the_reason(model_folder: Path, breakage: str, capsys, caplog):
    break_folder, message = MODEL_BREAKAGES[breakage]
    break_folder(model_folder)
    problems = model_folder_problems(model_folder)
    assert any(message in problem for problem in problems), problems
    with pytest.raises(FolderNotPublishable):
        plan_upload(model_folder)
    assert main(["push", str(model_folder), "nes2net-test/tiny", "--dry-run"]) == 1
    assert "would upload" not in capsys.readouterr().out
    assert message in caplog.text


def test_push_checks_before_touching_the_network(model_folder: Path):
    (model_folder / "optimizer.pt").write_bytes(b"\x80\x04")
    with pytest.raises(FolderNotPublishable, match="optimizer.pt: pickle-based"):
        push_folder(model_folder, "nes2net-test/tiny", endpoint="http://127.0.0.1:9", token="hf_unused")


def test_good_dataset_folder_passes_and_dry_run_lists_the_shards(dataset_folder: Path, capsys):
    assert dataset_folder_problems(dataset_folder) == []
    assert main(["push", str(dataset_folder), "nes2net-test/tiny-corpus", "--dataset", "--dry-run", "--private"]) == 0
    out = capsys.readouterr().out
    assert "would upload to dataset repository nes2net-test/tiny-corpus (private)" in out
    shards = ("data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet")
    for path in ("README.md", "build_info.json", *shards):
        assert path in out
    assert "4 file(s)" in out


def _copy_shard(folder: Path, name: str) -> None:
    shutil.copyfile(folder / "data/train-00000-of-00001.parquet", folder / name)


DATASET_BREAKAGES = {
    "no build info": (lambda d: (d / "build_info.json").unlink(), "build_info.json is missing"),
    "row count": (
        lambda d: _edit_json(d / "build_info.json", splits={
            **json.loads((d / "build_info.json").read_text())["splits"],
            "train": {**json.loads((d / "build_info.json").read_text())["splits"]["train"], "num_rows": 7},
        }),
        "split 'train': the shards hold 6 rows, build_info.json says 7",
    ),
    "shard outside configs": (
        lambda d: _copy_shard(d, "data/validation-00000-of-00001.parquet"),
        "data/validation-00000-of-00001.parquet: Parquet file not listed in any config",
    ),
    "unreadable shard": (
        lambda d: (d / "data/test-00000-of-00001.parquet").write_bytes(b"PAR1 garbage"),
        "data/test-00000-of-00001.parquet is not a readable Parquet file",
    ),
    "no card": (lambda d: (d / "README.md").unlink(), "README.md (the card) is missing"),
    "no task category": (
        lambda d: _replace_in(d / "README.md", "- audio-classification", "- text-classification"),
        "task_categories must include 'audio-classification'",
    ),
    "pickle": (lambda d: (d / "data/cache.pkl").write_bytes(b"\x80"), "data/cache.pkl: pickle-based"),
    "unexplained file": (lambda d: (d / "notes.md").write_text("x"), "notes.md: the card does not explain this file"),
}


@pytest.mark.parametrize("breakage", sorted(DATASET_BREAKAGES))
def test_broken_dataset_folders_are_refused_with_the_reason(dataset_folder: Path, breakage: str):
    break_folder, message = DATASET_BREAKAGES[breakage]
    break_folder(dataset_folder)
    problems = dataset_folder_problems(dataset_folder)
    assert any(message in problem for problem in problems), problems
    assert main(["push", str(dataset_folder), "nes2net-test/tiny-corpus", "--dataset", "--dry-run"]) == 1


def _link_to_outside(folder: Path, path: str) -> Path:
    """Move `folder/path` out of the folder (as a download cache keeps its blobs) and leave a symbolic link to it."""
    outside = folder.parent / "elsewhere" / Path(path).name
    outside.parent.mkdir(exist_ok=True)
    shutil.move(folder / path, outside)
    (folder / path).symlink_to(outside)
    return outside


def _link_problem(path: str, target: Path) -> str:
    return (f"{path}: a symbolic link (to {target}); links are never copied or published: put the file itself in "
            "the folder, or remove the link")


def test_a_symbolic_link_in_a_model_folder_is_refused_naming_it(model_folder: Path, capsys, caplog):
    target = _link_to_outside(model_folder, "model.safetensors")
    assert model_folder_problems(model_folder) == [_link_problem("model.safetensors", target)]
    assert main(["push", str(model_folder), "nes2net-test/tiny", "--dry-run"]) == 1
    assert "would upload" not in capsys.readouterr().out
    assert _link_problem("model.safetensors", target) in caplog.text


def test_a_symbolic_link_in_a_folder_to_export_is_refused_before_the_export(tiny_model_dir: Path, capsys):
    for code in tiny_model_dir.glob("*.py"):  # as the embedded default model: pushed as its export
        code.unlink()
    link = tiny_model_dir / "notes"
    link.symlink_to(tiny_model_dir.parent, target_is_directory=True)  # a link to a folder is never entered
    with pytest.raises(FolderNotPublishable) as caught:
        plan_upload(tiny_model_dir)
    assert caught.value.problems == [_link_problem("notes", tiny_model_dir.parent)]
    assert main(["push", str(tiny_model_dir), "nes2net-test/tiny", "--dry-run"]) == 1


def test_a_folder_to_export_with_non_finite_weights_is_refused_naming_it(tiny_model_dir: Path, caplog):
    for code in tiny_model_dir.glob("*.py"):  # as the embedded default model: pushed as its export
        code.unlink()
    _set_weight(tiny_model_dir / "model.safetensors", "classifier.weight", float("inf"))
    with pytest.raises(FolderNotPublishable, match="1 weight tensor.s. hold NaN or infinite values .classifier.weight"):
        plan_upload(tiny_model_dir)
    assert main(["push", str(tiny_model_dir), "nes2net-test/tiny", "--dry-run"]) == 1
    assert f"{tiny_model_dir}: refusing an incomplete, foreign or damaged checkpoint" in caplog.text


def test_a_symbolic_link_in_a_dataset_folder_is_refused_naming_it(dataset_folder: Path):
    target = _link_to_outside(dataset_folder, "data/test-00000-of-00001.parquet")
    assert dataset_folder_problems(dataset_folder) == [_link_problem("data/test-00000-of-00001.parquet", target)]
    assert main(["push", str(dataset_folder), "nes2net-test/tiny-corpus", "--dataset", "--dry-run"]) == 1
