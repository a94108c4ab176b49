"""`nes2net detect` options and models that used to crash after (or during) scoring: each is now one line naming the
option or file, exit status 2, before anything is scored."""

from __future__ import annotations

import pytest
from tests.hostile.make_corpus import speech_like
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)

import soundfile
from nes2net.cli import main

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.wav"
    soundfile.write(path, speech_like(2.0), 16_000)
    return path


def _refused(capsys, *args) -> str:
    """Run `nes2net detect ARGS`, assert it exits 2 with one error line and no result, and return that line."""
    code = main(["detect", *map(str, args)])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in captured.err, captured.err
    assert "clip.wav" not in captured.out
    return errors[0]


def test_an_unknown_plot_extension_is_refused_before_scoring(capsys, model_dir, clip, tmp_path):
    pytest.importorskip("matplotlib")
    line = _refused(capsys, clip, "--model", model_dir, "--plot", tmp_path / "timeline.xyz")
    assert "timeline.xyz" in line and ".png" in line
    assert not list(tmp_path.glob("timeline*"))


def test_a_window_shorter_than_the_model_needs_is_refused(capsys, model_dir, clip):
    line = _refused(capsys, clip, "--model", model_dir, "--window", "0.001")
    assert "window of 16 samples" in line and "the model needs" in line


@pytest.mark.parametrize("threshold", ["nan", "inf"])
def test_a_non_finite_threshold_is_refused(capsys, model_dir, clip, threshold):
    line = _refused(capsys, clip, "--model", model_dir, f"--threshold={threshold}")
    assert "threshold must be a finite" in line


@pytest.mark.parametrize("margin", ["nan", "inf", "-0.5"])
def test_a_stretch_margin_that_is_not_a_finite_non_negative_log_odds_is_refused(capsys, model_dir, clip, margin):
    line = _refused(capsys, clip, "--model", model_dir, f"--stretch-margin={margin}")
    assert "stretch margin must be a finite log-odds of at least 0" in line


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_a_damaged_onnx_export_is_one_line(capsys, model_dir, clip, tmp_path, damage):
    onnx = pytest.importorskip("onnx")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input_values"], ["logits"])], "identity",
        [onnx.helper.make_tensor_value_info("input_values", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 2])],
    )
    whole = onnx.helper.make_model(graph).SerializeToString()
    if damage != "missing":
        (folder / "model.onnx").write_bytes(bytes(range(256)) * 8 if damage == "garbage" else whole[: len(whole) // 2])
    line = _refused(capsys, clip, "--model", folder, "--runtime", "onnx")
    assert f"{folder / 'model.onnx'}: " in line
    assert ("no such ONNX file" if damage == "missing" else "not a loadable ONNX model") in line
