"""Export a Nes2Net model to ONNX: its whole forward pass as one graph, checked against PyTorch on real audio.

```python
from modeling_nes2net.onnx_export import export_onnx
report = export_onnx(model, "model-onnx", parity_audio=[waveform_a, waveform_b], variants=("int8", "fp16"))
report.max_log_odds_difference  # {"fp32": ..., "int8": ..., "fp16": ...}
```

The graph is `(input_values (batch, samples) float32, attention_mask (batch, samples) int64) -> logits
(batch, num_labels)`, both axes dynamic: front-end (SSL model, spectrogram or Whisper encoder), layer merge, back-end
and whatever else the model's `forward` does (the score calibration). Each front-end exports the module its
`for_export` gives: the spectrogram's float64 STFT becomes a float64 product of frames and a windowed DFT basis
(`frontends_nes2net.Nes2NetDftSpectrogramFrontend`), three times faster in ONNX Runtime than its float64 STFT kernel
(its float32 one is off by up to 2 nats in quiet bins). Variants, each with its drift from PyTorch: `int8` (ONNX
Runtime dynamic quantisation of the MatMul / Gemm weights, what `--quantize int8` does in PyTorch) and `fp16` (float16
weights and activations, float32 inputs and outputs).

The output folder holds `model.onnx` (and `model.int8.onnx`, `model.fp16.onnx`), the model's `config.json` and
feature extractor, `export_report.json` (the parity figures) and the README.md it is given (`nes2net export` renders
it with `hub_cards.folder_cards.render_onnx_card`: how to run the file with onnxruntime, numpy and soundfile alone).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .folder import feature_extractor_for
from .configuration_nes2net import Nes2NetConfig
from .modeling_nes2net import Nes2NetForAudioClassification
from .scorer import min_samples_of, pad_waveforms
from .decision import log_odds

logger = logging.getLogger(__name__)

OPSET = 18
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
VARIANTS = ("int8", "fp16")
PRECISIONS = {
    "fp32": "float32",
    "int8": "int8 MatMul / Gemm weights, activations quantised on the fly",
    "fp16": "float16 weights and activations, float32 inputs and outputs",
}
REPORT_FILE = "export_report.json"
FP32_TOLERANCE = 1e-4  # max |log-odds difference| from PyTorch an fp32 export must stay within


class _LogitsGraph(nn.Module):
    """The exported signature: `(input_values, attention_mask) -> logits`, on a copy of the model whose front-end is
    the one it exports in its place (`for_export`: the spectrogram's DFT product)."""

    def __init__(self, model: Nes2NetForAudioClassification):
        super().__init__()
        self.model = copy.deepcopy(model).eval().float()
        self.model.nes2net.frontend = self.model.nes2net.frontend.for_export()

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values, attention_mask=attention_mask, return_dict=True).logits


@dataclass
class ExportReport:
    """What `export_onnx` wrote and how close each file is to PyTorch float32.

    `max_log_odds_difference` and `max_logit_difference` map a variant (`fp32`, `int8`, `fp16`) to the max absolute
    difference over every parity waveform, each scored alone and all of them in one padded batch."""

    files: dict[str, str]
    parity_lengths: list[int]
    max_log_odds_difference: dict[str, float] = field(default_factory=dict)
    max_logit_difference: dict[str, float] = field(default_factory=dict)
    opset: int = OPSET
    min_samples: int = 1


def parity_batches(waveforms: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each waveform alone, then all of them in one padded batch (which exercises the attention mask)."""
    batches = [pad_waveforms([waveform], always_mask=True) for waveform in waveforms]
    if len(waveforms) > 1:
        batches.append(pad_waveforms(waveforms, always_mask=True))
    return batches


@torch.inference_mode()
def torch_logits(model: Nes2NetForAudioClassification, input_values: np.ndarray, attention_mask: np.ndarray):
    """PyTorch logits `(batch, num_labels)` of a padded batch, in the model's precision."""
    dtype = next(model.parameters()).dtype
    outputs = model(input_values=torch.from_numpy(input_values).to(dtype),
                    attention_mask=torch.from_numpy(attention_mask))
    return outputs.logits.numpy()


def compare_with_torch(model: Nes2NetForAudioClassification, session, waveforms: Sequence[np.ndarray]):
    """Max |logit| and |log-odds| differences between an onnxruntime `session` and `model` over `parity_batches`."""
    logit_difference = odds_difference = 0.0
    for input_values, attention_mask in parity_batches(waveforms):
        expected = torch_logits(model, input_values, attention_mask)
        (actual,) = session.run(["logits"], {"input_values": input_values, "attention_mask": attention_mask})
        logit_difference = max(logit_difference, float(np.abs(actual - expected).max()))
        odds = log_odds(torch.from_numpy(actual)) - log_odds(torch.from_numpy(expected))
        odds_difference = max(odds_difference, float(odds.abs().max()))
    return logit_difference, odds_difference


def export_module(
    module: nn.Module, example: tuple[torch.Tensor, ...], names: Sequence[str], path: str | os.PathLike,
    opset: int = OPSET,
) -> Path:
    """Write `module(*example)` to `path` as a graph with inputs `names`, each with dynamic axes 0 and 1, and one
    output `logits`."""
    dynamic = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}
    with warnings.catch_warnings():  # the exporter's deprecation and torchvision notices
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module.eval(),
            example,
            dynamo=True,
            opset_version=opset,
            input_names=list(names),
            output_names=["logits"],
            dynamic_shapes=dict.fromkeys(names, dynamic),
            verbose=False,
        )
    program.save(str(path))
    return Path(path)


def export_graph(model: Nes2NetForAudioClassification, path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write the fp32 graph of `model` to `path` (dynamic batch and samples axes) with its metadata."""
    import onnx

    example = torch.randn(2, max(3 * min_samples_of(model), 16_000)) * 0.1
    mask = torch.ones_like(example, dtype=torch.long)
    export_module(_LogitsGraph(model), (example, mask), ("input_values", "attention_mask"), path, opset)
    graph = onnx.load(str(path), load_external_data=False)
    graph.graph.ClearField("value_info")  # the exporter's intermediate shapes; some contradict shape inference
    properties = {
        "nes2net_labels": json.dumps(model.config.id2label),
        "nes2net_sampling_rate": str(model.config.sampling_rate),
        "nes2net_min_samples": str(min_samples_of(model)),
    }
    onnx.helper.set_model_props(graph, properties)
    onnx.save(graph, str(path))
    return Path(path)


def quantize_int8(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Dynamic int8 quantisation of the MatMul / Gemm weights (activations quantised on the fly); convolutions,
    among them the spectrogram's DFT, stay float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
    return Path(target)


def convert_fp16(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """float16 weights and activations with float32 inputs and outputs (onnxruntime's converter, its default list
    of ops kept in float32); the spectrogram's float64 DFT and log stay float64."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))
    return Path(target)


def inference_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session for `path`; `threads`: intra-op threads (None: onnxruntime's default).

    Its worker threads sleep between runs instead of spinning: a spinning pool keeps the cores busy after each run
    and slows whatever runs next on them (the audio decoding, a PyTorch model, the next request); on 2 cores it
    slowed a PyTorch back-end run right after it by more than the speed-ups `benchmarks/backend.py` measures."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_onnx(
    model: Nes2NetForAudioClassification,
    output_dir: str | os.PathLike,
    *,
    parity_audio: Sequence[np.ndarray],
    variants: Sequence[str] = (),
    tolerance: float = FP32_TOLERANCE,
    opset: int = OPSET,
    model_card: Callable[[Nes2NetConfig, ExportReport], str] | None = None,
) -> ExportReport:
    """Export `model` to `output_dir/model.onnx` (plus the `variants`: `"int8"`, `"fp16"`), check every file
    against PyTorch float32 on `parity_audio` (16 kHz float32 waveforms of several lengths) and write the folder
    atomically, with `model_card(config, report)` as its README.md when given (`nes2net export` passes
    `hub_cards.folder_cards.render_onnx_card`).

    Raises `ValueError` when the fp32 graph's log-odds differ from PyTorch's by more than `tolerance`; nothing is
    written then. The variants' drift is reported, not bounded.
    """
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown ONNX variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not parity_audio:
        raise ValueError("export_onnx needs parity_audio: at least one waveform to check the export against PyTorch")
    model = model.eval()
    shortest = min_samples_of(model)
    waveforms = [np.asarray(waveform, np.float32) for waveform in parity_audio]
    too_short = [len(waveform) for waveform in waveforms if len(waveform) < shortest]
    if too_short:
        raise ValueError(f"parity audio of {too_short[0]} samples is too short (the model needs {shortest})")
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        report = ExportReport(files={}, parity_lengths=[len(waveform) for waveform in waveforms], opset=opset,
                              min_samples=shortest)
        builders = {"int8": quantize_int8, "fp16": convert_fp16}
        fp32_path = export_graph(model, staging / ONNX_FILES["fp32"], opset)
        for variant in ("fp32", *variants):
            path = fp32_path if variant == "fp32" else builders[variant](fp32_path, staging / ONNX_FILES[variant])
            logits, odds = compare_with_torch(model, inference_session(path), waveforms)
            report.files[variant] = path.name
            report.max_logit_difference[variant], report.max_log_odds_difference[variant] = logits, odds
            logger.info("%s: max |log-odds - PyTorch| %.2e over %d waveforms", path.name, odds, len(waveforms))
        if report.max_log_odds_difference["fp32"] > tolerance:
            raise ValueError(
                f"the ONNX export's log-odds differ from PyTorch's by {report.max_log_odds_difference['fp32']:.2e} "
                f"(more than {tolerance:.0e}); nothing written to {output_dir}"
            )
        model.config.save_pretrained(staging)
        feature_extractor_for(model).save_pretrained(staging)
        (staging / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
        if model_card is not None:
            (staging / "README.md").write_text(model_card(model.config, report), encoding="utf-8")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report
