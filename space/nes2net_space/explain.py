"""Plain words for a verdict and a model: what the score means, how sure the model is, what it was trained on and
what it is known to miss. Pure functions from `DetectionResult` and `ModelInfo` (what `models` read from the model and
its card) to markdown."""

from __future__ import annotations

import math

from modeling_nes2net.configuration_nes2net import BONAFIDE_LABEL, PARTLY_SPOOFED_LABEL, SPOOF_LABEL
from modeling_nes2net.decision import odds_probability
from modeling_nes2net.detection import DetectionResult
from modeling_nes2net.scorer import DetectionFailure

from .models import ModelInfo

# Shown when the model has no card: what every detector of this kind is known to miss.
GENERIC_LIMITATIONS = (
    "Unseen conditions raise the error rate: new synthesis or voice-conversion systems, codecs and telephone "
    "channels, noise and reverberation, music or singing, languages and speakers absent from the training data, "
    "clips shorter than about a second.",
    "One score per recording: a short synthetic part inside genuine speech may pass as bona fide (the timeline and "
    "the 'most spoof-like window' rule help).",
    "A determined attacker can craft audio to fool the model.",
)
NOT_PROOF = (
    "A detector makes mistakes in both directions. Do not treat this result as the only evidence that a recording "
    "is fake or genuine, or that a person said something: keep a human in the loop."
)
HEADLINES = {  # one per `VERDICT_LABELS`
    BONAFIDE_LABEL: "Likely genuine speech (bona fide)",
    SPOOF_LABEL: "Likely spoofed speech (synthetic or manipulated)",
    PARTLY_SPOOFED_LABEL: "Partly spoofed speech (a stretch scores as synthetic or manipulated)",
}
SURE_MARGINS = ((1.0, "not sure"), (3.0, "fairly sure"), (math.inf, "very sure"))


def how_sure(log_odds: float, threshold: float) -> str:
    """'not sure' / 'fairly sure' / 'very sure', by the distance of the log-odds from the threshold."""
    margin = abs(log_odds - threshold)
    return next(words for bound, words in SURE_MARGINS if margin < bound)


def _probability(value: float) -> str:
    if value > 0.999:
        return "> 0.999"
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def _code(text: str) -> str:
    """`text` safe inside a markdown code span (a file name is the visitor's choice)."""
    return text.replace("`", "'")


def threshold_words(info: ModelInfo) -> str:
    where = (
        "the model applies its score calibration, fitted on a dev split (`calibration_scale` / `calibration_offset` "
        "in its config)"
        if info.calibrated
        else "these are the model's raw log-odds, as it has no fitted score calibration"
    )
    return (
        f"A recording is called spoof when its log-odds fall below {info.threshold:+.2f} "
        f"(p(bona fide) {_probability(odds_probability(info.threshold))}): {where}."
    )


def training_words(info: ModelInfo) -> str:
    if info.training_data:
        return info.training_data
    return (
        "**not recorded** (`training_data` is empty in this model's config). It may be a test model with random "
        "weights: do not trust its verdicts."
    )


def limitations_markdown(info: ModelInfo) -> str:
    bullets = info.limitations or GENERIC_LIMITATIONS
    source = "from the model card" if info.limitations else "general to detectors of this kind; this model has no card"
    return f"*({source})*\n" + "\n".join(f"  - {bullet}" for bullet in bullets)


def timeline_words(result: DetectionResult) -> str:
    """What the windows say, or an empty string for a recording scored in one piece."""
    segments = result.segments
    if len(segments) < 2:
        return ""
    window = segments[0].end - segments[0].start
    below = sum(segment.log_odds < result.threshold for segment in segments)
    flagged = f"{below} fall below the threshold" if below else "none falls below the threshold"
    if result.stretches:
        spans = ", ".join(f"{stretch.start:.1f}-{stretch.end:.1f} s" for stretch in result.stretches)
        flagged += f"; the timeline flags {spans} as spoofed (shaded red)"
    rule = (
        "the mean of the windows' log-odds"
        if result.aggregation == "mean"
        else "the most spoof-like window (the rule for partly spoofed recordings)"
    )
    return (
        f"{len(segments)} overlapping windows of {window:.1f} s over {result.duration:.1f} s were scored one by one; "
        f"{flagged}. The verdict uses {rule}."
    )


def verdict_markdown(result: DetectionResult, info: ModelInfo) -> str:
    """The verdict on one recording in plain words."""
    headline = HEADLINES[result.label]
    side = "above" if result.log_odds >= result.threshold else "below"
    margin = abs(result.log_odds - result.threshold)
    lines = [
        f"## {headline}",
        "",
        f"**p(bona fide) = {_probability(result.bonafide_probability)}**: the model's probability that "
        f"`{_code(result.source)}` is genuine human speech (log-odds {result.log_odds:+.2f}, "
        f"{result.duration:.1f} s of audio).",
        "",
        f"- **How sure:** {how_sure(result.log_odds, result.threshold)}: the score is {margin:.1f} log-odds units "
        f"{side} the threshold. This is the model's own confidence, not a measured accuracy.",
        f"- **Threshold:** {threshold_words(info)}",
    ]
    timeline = timeline_words(result)
    if timeline:
        lines.append(f"- **Timeline:** {timeline}")
    lines += [
        f"- **Model:** `{_code(info.name)}`, {info.architecture}.",
        f"- **Trained on:** {training_words(info)}",
        f"- **Known to miss:** {limitations_markdown(info)}",
        "",
        f"> {NOT_PROOF}",
    ]
    return "\n".join(lines)


def live_markdown(result: DetectionResult | None, heard_seconds: float) -> str:
    """The live tab's words while the microphone streams: how much was heard, and the verdict on the windows scored
    so far (`scored up to E s` names the end of the last one)."""
    if result is None:
        return f"Listening: {heard_seconds:.1f} s heard; the first verdict comes after one full window (about 4 s)."
    last = result.segments[-1]
    return (
        f"**{HEADLINES[result.label]}** so far: p(bona fide) = {_probability(result.bonafide_probability)} "
        f"({how_sure(result.log_odds, result.threshold)}), {len(result.segments)} window(s) scored up to "
        f"{last.end:.2f} s; the latest window alone: p(bona fide) = {_probability(last.probability)}. "
        f"Listening: {heard_seconds:.1f} s heard."
    )


def batch_summary(outcomes: list[DetectionResult | DetectionFailure], threshold: float) -> str:
    """One line on a batch: how many files were scored, called genuine or spoofed, or failed."""
    failures = sum(isinstance(outcome, DetectionFailure) for outcome in outcomes)
    spoof = sum(isinstance(outcome, DetectionResult) and outcome.is_spoof for outcome in outcomes)
    scored = len(outcomes) - failures
    text = (f"**{scored} of {len(outcomes)} files scored**: {scored - spoof} likely genuine, {spoof} likely spoofed "
            f"(threshold {threshold:+.2f} on the log-odds).")
    if failures:
        text += f" {failures} could not be scored: see the `error` column."
    return text


def model_markdown(info: ModelInfo) -> str:
    """What the page says about a model before anything is scored."""
    lines = [
        f"**Model:** `{_code(info.name)}`, {info.architecture}.",
        "",
        f"**Trained on:** {training_words(info)}",
        "",
        f"**Threshold:** {threshold_words(info)}",
        "",
        f"**Known to miss:** {limitations_markdown(info)}",
    ]
    if info.evaluation:
        lines += ["", "**Measured performance (from the model card):**", "", info.evaluation]
    if info.generalisation:
        lines += ["", "**How it generalises (its leave-one-family-out cross-validation record):**", "",
                  info.generalisation]
    return "\n".join(lines)


def model_problem_markdown(problem: str) -> str:
    """The page's message when the chosen model cannot be loaded (for instance no default model is installed)."""
    return (
        f"**No model to score with.** {problem}\n\n"
        "Start the app with `--model FOLDER_OR_HUB_ID` (or set `NES2NET_MODEL`), or choose another model in the menu."
    )
