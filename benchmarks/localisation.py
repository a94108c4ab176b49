"""Benchmark: where is it fake? A frame head against the sliding windows of `nes2net detect --segments`, same run.

Data: `nes2net data build splices` of `../shared/data/antispoof-plus` (built here when `--splices` does not exist):
genuine speech with 1-3 machine-made pieces (0.2-1.6 s) spliced in per file. Its test split (`eval`) only uses clips
flagged `unseen_in_train` (hosts from DAPS / Expresso, pieces from the generators held out of training: NaturalSpeech
3, Kokoro-82M, Bark, EnCodec, ...), so speakers and generators are unseen by every model here.

Systems, all starting from `--model` (the embedded default model unless told):
- `windows`: the model as shipped, `Nes2NetDetector` defaults (4.04 s windows, 50 % hop, mean aggregation): what
  `nes2net detect --segments` reports today; each 10 ms cell scores the mean of the windows covering it.
- `windows (tuned)`: the same windows on the fine-tuned model below (its utterance head): same weights as the head.
- `frame head`: `Nes2NetForAudioFrameClassification` fine-tuned jointly (utterance + frame losses) on the train
  splices; its utterance score is the aggregation that gives the lowest dev utterance EER (head / min / mean).

Printed: segment EER at each PartialSpoof resolution, the range-based EER and the utterance EER (95 % bootstrap
intervals over utterances for 160 ms and utterance), and the ratio windows / head. Written to `--output-dir`: the
numbers as JSON, a localisation plot of one eval splice, and the trained localiser folder.

Run: `nice -n 19 python benchmarks/localisation.py [--epochs 3] [--splices runs/splices]`; on the shared 2-core machine
the README's figures came from `--epochs 2 --train-utterances 480 --dev-utterances 120`, then three runs of
`--epochs 1 --continue-from <the previous localiser>` on every train splice (3 s crops).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification  # noqa: E402
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR  # noqa: E402
from training.data import build_dataset  # noqa: E402
from training.localisation import (  # noqa: E402
    UTTERANCE_AGGREGATIONS,
    LocaliserTraining,
    aggregate_utterances,
    score_localiser,
    score_windows,
    train_localiser,
)
from training.plots import plot_localisation  # noqa: E402
from training.segment_metrics import (  # noqa: E402
    PARTIALSPOOF_RESOLUTIONS_MS,
    bootstrap_interval,
    localisation_metrics,
    segment_eer,
    utterance_eer,
)

SOURCE = REPO_ROOT.parent / "shared" / "data" / "antispoof-plus"


def _table(results: dict[str, dict[str, float]], intervals: dict[str, dict[str, tuple[float, float]]]) -> str:
    systems = list(results)
    lines = ["| metric (EER %) | " + " | ".join(systems) + " | windows / head |", "|---" * (len(systems) + 2) + "|"]
    for metric in results[systems[0]]:
        cells = []
        for system in systems:
            cell = f"{100 * results[system][metric]:.2f}"
            if metric in intervals[system]:
                low, high = intervals[system][metric]
                cell += f" [{100 * low:.1f}, {100 * high:.1f}]"
            cells.append(cell)
        head = results["frame head"][metric]
        ratio = results["windows"][metric] / head if head > 0 else float("inf")
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--splices", type=Path, default=REPO_ROOT / "runs" / "splices")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "runs" / "localisation")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--crop-seconds", type=float, default=3.0)
    parser.add_argument("--train-utterances", type=int, default=None, help="train on a random subset of this size")
    parser.add_argument("--dev-utterances", type=int, default=None, help="choose the aggregation on a random subset")
    parser.add_argument("--localiser", type=Path, help="a localiser trained before (skips the training)")
    parser.add_argument("--continue-from", type=Path, help="train on from this localiser instead of from --model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    if not args.splices.exists():
        build_dataset("splices", SOURCE, args.splices, progress=False)
    args.output_dir.mkdir(parents=True, exist_ok=True)

    shipped = Nes2NetForAudioClassification.from_pretrained(args.model)
    scored = {"windows": score_windows(shipped, args.splices, "eval")}
    logging.info("windows baseline scored")
    if args.localiser is None:
        localiser = Nes2NetForAudioFrameClassification.from_pretrained(args.continue_from or args.model,
                                                                       allow_new_weights=True)  # the head
        training = LocaliserTraining(args.epochs, crop_seconds=args.crop_seconds, max_utterances=args.train_utterances)
        train_localiser(localiser, args.splices, training)
        args.localiser = args.output_dir / "localiser"
        localiser.save_pretrained(args.localiser)
    localiser = Nes2NetForAudioFrameClassification.from_pretrained(args.localiser)
    dev_scored = score_localiser(localiser, args.splices, "dev", args.dev_utterances)
    dev = {name: utterance_eer(aggregate_utterances(dev_scored, name)) for name in UTTERANCE_AGGREGATIONS}
    aggregation = min(dev, key=dev.get)
    tuned = Nes2NetForAudioClassification.from_pretrained(args.localiser)
    scored["windows (tuned)"] = score_windows(tuned, args.splices, "eval")
    scored["frame head"] = aggregate_utterances(score_localiser(localiser, args.splices, "eval"), aggregation)

    results = {name: localisation_metrics(utterances) for name, utterances in scored.items()}
    intervals = {
        name: {
            "segment_eer_160ms": bootstrap_interval(lambda u: segment_eer(u, 160), utterances),
            "utterance_eer": bootstrap_interval(utterance_eer, utterances),
        }
        for name, utterances in scored.items()
    }
    eval_utterances = scored["frame head"]
    example = next(index for index, u in enumerate(eval_utterances) if u.label == 0)
    plot_localisation(
        {name: utterances[example].cell_scores for name, utterances in scored.items()},
        eval_utterances[example].cell_labels,
        args.output_dir / "localisation.png",
        title="eval splice: score over time (unseen speakers and generators)",
    )
    dev_text = ", ".join(f"{name} {100 * value:.2f}%" for name, value in dev.items())
    spliced = sum(u.label == 0 for u in eval_utterances)
    print(f"eval: {len(eval_utterances)} utterances ({spliced} spliced); "
          f"frame head utterance score: {aggregation} (dev utterance EER {dev_text})")
    print(_table(results, intervals))
    by_aggregation = {
        f"{name}, {rule}": utterance_eer(aggregate_utterances(utterances, rule))
        for name, utterances in scored.items()
        for rule in (("head", "min", "mean") if name == "frame head" else ("head", "min"))
    }
    print("eval utterance EER by aggregation ('head': the utterance score as reported; 'min': flagged when any 10 ms "
          "of the timeline is, the rule behind 'partly spoofed'): "
          + ", ".join(f"{name} {100 * value:.2f}%" for name, value in by_aggregation.items()))
    beaten = [f"segment_eer_{r}ms" for r in PARTIALSPOOF_RESOLUTIONS_MS]
    wins = all(results["frame head"][m] < results["windows"][m] for m in beaten)
    print(f"frame head beats the windows at every resolution: {wins}")
    report = {
        "aggregation": aggregation,
        "dev_utterance_eer": dev,
        "eval_utterance_eer_by_aggregation": by_aggregation,
        "results": results,
        "intervals": intervals,
    }
    (args.output_dir / "localisation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
