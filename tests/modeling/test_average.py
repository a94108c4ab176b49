"""Checkpoint averaging: original state dicts (-> .pth) and converted folders (-> folder), and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.averaging import AveragingError, average_checkpoints
from modeling_nes2net.convert import convert_checkpoint
from nes2net.cli import main as cli_main
from tests.modeling.original_checkpoints import TINY_OVERRIDES, OriginalModel, waveforms

torch.set_num_threads(1)


def save_originals(tmp_path: Path, seeds=(0, 1, 2), release: str = "nes2net-x-xlsr") -> tuple[list[Path], list[dict]]:
    """Original checkpoints of one architecture, with different BatchNorm step counts; the second carries
    DataParallel's `module.` prefix and the third a `model_state_dict` wrapper, as some exports do."""
    paths, states = [], []
    for index, seed in enumerate(seeds):
        state = OriginalModel(release, seed=seed).state_dict()
        for key in state:
            if key.endswith("num_batches_tracked"):
                state[key] = torch.tensor(100 * (index + 1) + seed, dtype=torch.long)
        states.append(state)
        saved = state
        if index == 1:
            saved = {"module." + key: value for key, value in state.items()}
        if index == 2:
            saved = {"model_state_dict": state, "epoch": 59}
        paths.append(tmp_path / f"epoch_{index}.pth")
        torch.save(saved, paths[-1])
    return paths, states


def test_original_checkpoints_average_element_wise_and_counters_take_the_maximum(tmp_path):
    paths, states = save_originals(tmp_path)
    output = average_checkpoints(paths, tmp_path / "average.pth")
    averaged = torch.load(output, weights_only=True)
    assert set(averaged) == set(states[0])
    for key, tensor in averaged.items():
        stacked = torch.stack([state[key] for state in states])
        assert tensor.dtype == states[0][key].dtype
        if key.endswith("num_batches_tracked"):
            assert tensor.item() == 302
        else:
            torch.testing.assert_close(tensor, stacked.to(torch.float64).mean(0).to(tensor.dtype), rtol=0, atol=1e-7)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["average.pth", "epoch_0.pth", "epoch_1.pth",
                                                               "epoch_2.pth"]


def test_averaging_originals_then_converting_equals_converting_then_averaging_folders(tmp_path):
    paths, _ = save_originals(tmp_path, seeds=(0, 1))
    folders = []
    for path in paths:
        folders.append(convert_checkpoint(path, tmp_path / f"{path.stem}-converted", "nes2net-x-xlsr",
                                          **TINY_OVERRIDES["wav2vec2"]).output_dir)
    averaged_folder = tmp_path / "average-folder"
    assert cli_main(["average", *map(str, folders), str(averaged_folder)]) == 0  # the command writes the card
    averaged_original = average_checkpoints(paths, tmp_path / "average.pth")
    converted_average = convert_checkpoint(averaged_original, tmp_path / "average-converted", "nes2net-x-xlsr",
                                           **TINY_OVERRIDES["wav2vec2"]).output_dir
    from_folders = Nes2NetForAudioClassification.from_pretrained(averaged_folder).eval()
    from_originals = Nes2NetForAudioClassification.from_pretrained(converted_average).eval()
    for key, tensor in from_folders.state_dict().items():
        torch.testing.assert_close(tensor, from_originals.state_dict()[key], rtol=0, atol=1e-7)
    audio = waveforms()
    with torch.no_grad():
        logits = from_folders(audio).logits
        single = Nes2NetForAudioClassification.from_pretrained(folders[0]).eval()(audio).logits
    torch.testing.assert_close(logits, from_originals(audio).logits, rtol=0, atol=1e-6)
    assert (logits - single).abs().max() > 1e-3  # the average is not one of its inputs
    assert "average of 2 checkpoints" in (averaged_folder / "README.md").read_text()


def test_checkpoints_of_different_architectures_are_refused(tmp_path):
    xlsr = tmp_path / "xlsr.pth"
    sea = tmp_path / "sea.pth"
    torch.save(OriginalModel("nes2net-x-xlsr").state_dict(), xlsr)
    torch.save(OriginalModel("nes2net-x-wavlm-sea").state_dict(), sea)
    with pytest.raises(AveragingError, match=r"sea\.pth does not have the architecture of .*xlsr\.pth: it lacks"):
        average_checkpoints([xlsr, sea], tmp_path / "average.pth")
    assert not (tmp_path / "average.pth").exists()


def test_folders_with_different_configs_are_refused(tmp_path):
    paths, _ = save_originals(tmp_path, seeds=(0, 1))
    folders = [
        convert_checkpoint(path, tmp_path / f"converted-{dilation}", "nes2net-x-xlsr", dilation=dilation,
                           **TINY_OVERRIDES["wav2vec2"]).output_dir
        for path, dilation in zip(paths, (2, 3))
    ]
    with pytest.raises(AveragingError, match=r"has another config than .*: dilation"):
        average_checkpoints(folders, tmp_path / "average")
    assert not (tmp_path / "average").exists()


@pytest.mark.parametrize("case", ["one input", "mixed", "not a checkpoint", "missing"])
def test_bad_inputs_are_refused(case, tmp_path):
    paths, _ = save_originals(tmp_path, seeds=(0, 1))
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    inputs, message = {
        "one input": ([paths[0]], "at least two checkpoints, got 1"),
        "mixed": ([paths[0], tmp_path / "folder"], "not both"),
        "not a checkpoint": ([paths[0], tmp_path / "notes.pth"], "notes.pth is not a weights-only PyTorch checkpoint"),
        "missing": ([paths[0], tmp_path / "absent.pth"], "not found: .*absent.pth"),
    }[case]
    with pytest.raises(AveragingError, match=message):
        average_checkpoints(inputs, tmp_path / "average.pth")
    assert not (tmp_path / "average.pth").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".average")]


def test_command_line(tmp_path, caplog):
    paths, states = save_originals(tmp_path, seeds=(0, 1))
    output = tmp_path / "average.pth"
    assert cli_main(["average", *map(str, paths), str(output)]) == 0
    averaged = torch.load(output, weights_only=True)
    key = "Nested_Res2Net_TDNN.fc.weight"
    torch.testing.assert_close(averaged[key], (states[0][key] + states[1][key]) / 2, rtol=0, atol=1e-7)
    assert cli_main(["average", *map(str, paths), str(output)]) == 1
    assert "exists" in caplog.text
