"""`nes2net export onnx MODEL OUT`: the whole model as one ONNX graph, checked against PyTorch on real audio
(a thin layer over `modeling_nes2net.onnx_export.export_onnx`, with the README.md of
`hub_cards.folder_cards.render_onnx_card`).

Parity audio: `--audio` files or folders, else three sentences spoken by espeak-ng. Exit status 0 on success, 1
when the export is further from PyTorch than `--tolerance` or an input cannot be read (nothing is written then), 2
when OUT is an input or a non-empty folder without `--overwrite` (checked before anything is loaded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hub_cards.folder_cards import render_onnx_card

from ..atomic import OutputClashError, refuse_foreign_folder, refuse_overwriting_inputs
from ..audio import AudioInputError, find_audio_files, load_audio
from ..onnx_export import FP32_TOLERANCE, VARIANTS

FORMATS = ("onnx",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="onnx: one graph, dynamic batch and length axes")
    parser.add_argument("model", metavar="MODEL", help="model folder or Hub id ('default': the embedded model)")
    parser.add_argument("output_dir", metavar="OUT", help="folder to write: new or empty, or replaced whole with "
                                                          "--overwrite (never the model folder or an --audio input)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it is a non-empty folder")
    parser.add_argument("--audio", nargs="+", default=None, metavar="PATH",
                        help="audio files / folders to check the export on (default: espeak-ng sentences)")
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS),
                        help="extra files besides fp32, their drift reported (default: int8 fp16; none: fp32 only)")
    parser.add_argument("--tolerance", type=float, default=FP32_TOLERANCE,
                        help=f"max |log-odds difference| of the fp32 graph from PyTorch (default {FP32_TOLERANCE})")


def parity_waveforms(paths: list[str] | None, sampling_rate: int) -> list:
    """16 kHz waveforms of the `--audio` paths, or of three espeak-ng sentences (different lengths)."""
    if paths:
        files = [file for path in paths for file in find_audio_files(path)]
        return [load_audio(file, target_rate=sampling_rate) for file in files]
    from ..examples import SENTENCES, VOICES, synthesize_speech

    with tempfile.TemporaryDirectory() as folder:
        spoken = [synthesize_speech(text, Path(folder) / f"{index}.wav", voice, sampling_rate)
                  for index, (text, voice) in enumerate(zip(SENTENCES, VOICES))]
        return [load_audio(path, target_rate=sampling_rate) for path in spoken]


def run(args: argparse.Namespace) -> int:
    from ..model_loading import load_model, resolve_model_path
    from ..modeling_nes2net import Nes2NetForAudioClassification
    from ..onnx_export import export_onnx
    from ..weight_checks import ModelLoadError

    model_path = resolve_model_path(None if args.model == "default" else args.model)
    try:
        refuse_overwriting_inputs(args.output_dir, [path for path in [model_path, *(args.audio or [])]
                                                    if Path(path).exists()])
        refuse_foreign_folder(args.output_dir, args.overwrite, "export folder")
        model = load_model(model_path, Nes2NetForAudioClassification)  # one line for a config out of bounds too
    except (OutputClashError, ModelLoadError) as error:
        print(f"nes2net export: error: {error}", file=sys.stderr)
        return 2
    try:
        waveforms = parity_waveforms(args.audio, model.config.sampling_rate)
        report = export_onnx(model, args.output_dir, parity_audio=waveforms, variants=args.variants,
                             tolerance=args.tolerance, model_card=render_onnx_card)
    except (AudioInputError, RuntimeError, ValueError) as error:
        print(f"nes2net export: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output_dir}: max |log-odds difference| from PyTorch over {len(waveforms)} waveforms")
    for variant, difference in report.max_log_odds_difference.items():
        print(f"  {report.files[variant]:<18} {variant:<5} {difference:.2e}")
    return 0
