"""The models the Space offers: the embedded default, folders and Hub ids named at launch, and (when allowed)
any folder or Hub id typed in the page. Loaded on first use, a few kept in memory."""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download

from modeling_nes2net.detection import ModelNotFoundError, Nes2NetDetector, resolve_model_path
from modeling_nes2net.scoring import is_calibrated

from .explain import card_limitations, card_section

logger = logging.getLogger(__name__)

DEFAULT_CHOICE = "embedded default model"


class ModelLoadError(ValueError):
    """A model that cannot be offered or loaded; the message is one line for the user."""


@dataclass(frozen=True)
class ModelInfo:
    """What the page says about a model.

    Attributes:
        name: the model as the page names it (see `display_name`).
        architecture: the back-end and front-end in words.
        training_data: `config.training_data`, None when the config does not say.
        threshold: the decision threshold on the log-odds scale.
        calibrated: whether the model carries a fitted score calibration (`scoring.is_calibrated`).
        limitations: markdown bullet texts from the model card's limitations section (empty without a card).
        evaluation: the model card's evaluation section (markdown), None without one.
    """

    name: str
    architecture: str
    training_data: str | None
    threshold: float
    calibrated: bool
    limitations: tuple[str, ...]
    evaluation: str | None


def default_model_problem() -> str | None:
    """Why the embedded default model cannot be used (one line), or None when it is installed."""
    try:
        resolve_model_path(None)
    except ModelNotFoundError as error:
        return str(error)
    return None


class ModelRegistry:
    """Loads and caches detectors by choice; safe to call from several request threads.

    Args:
        models: folders or Hub ids offered besides the embedded default, in menu order; the first one (which may be
            `DEFAULT_CHOICE`) is preselected, else the embedded default.
        allow_any: also accept a folder or Hub id that is not in the menu.
        device: where models run (`"auto"`, `"cpu"`, `"cuda"`).
        quantize: None, `"int8"` or `"bf16"`: the detection API's opt-in fast path.
        max_loaded: models kept in memory at once (least recently used ones are dropped).
    """

    def __init__(
        self,
        models: list[str],
        allow_any: bool = False,
        device: str = "auto",
        quantize: str | None = None,
        max_loaded: int = 2,
    ) -> None:
        self.choices = [DEFAULT_CHOICE] + [model for model in models if model != DEFAULT_CHOICE]
        self.initial_choice = models[0] if models else DEFAULT_CHOICE
        self.allow_any = allow_any
        self.device = device
        self.quantize = quantize
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, tuple[Nes2NetDetector, ModelInfo]] = OrderedDict()
        self._lock = threading.Lock()

    def menu(self) -> list[tuple[str, str]]:
        """`(label, choice)` pairs for the model menu: a local folder is labelled by its name, not its full path."""
        return [(display_name(choice), choice) for choice in self.choices]

    def get(self, choice: str | None, aggregation: str = "mean") -> tuple[Nes2NetDetector, ModelInfo]:
        """The detector for `choice` (None: the initial choice) aggregating windows with `aggregation`, and what
        the page says about it. Raises `ModelLoadError`."""
        choice = (choice or self.initial_choice).strip()
        if choice not in self.choices and not self.allow_any:
            raise ModelLoadError(f"model {choice!r} is not offered here; choose one of: {', '.join(self.choices)}")
        with self._lock:
            if choice not in self._loaded:
                self._loaded[choice] = self._load(choice)
                while len(self._loaded) > self.max_loaded:
                    dropped, _ = self._loaded.popitem(last=False)
                    logger.info("unloaded model %s", dropped)
            self._loaded.move_to_end(choice)
            detector, info = self._loaded[choice]
        if aggregation != detector.aggregation:
            detector = copy.copy(detector)  # shares the model; only the aggregation rule differs
            detector.aggregation = aggregation
        return detector, info

    def _load(self, choice: str) -> tuple[Nes2NetDetector, ModelInfo]:
        location = None if choice == DEFAULT_CHOICE else choice
        try:
            detector = Nes2NetDetector.from_pretrained(location, device=self.device, quantize=self.quantize)
        except (OSError, ValueError) as error:
            if location is None:  # the embedded default is not installed: the message says how to get a model
                raise ModelLoadError(str(error)) from None
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ModelLoadError(f"cannot load model {choice!r}: {first_line}") from None
        logger.info("loaded model %s on %s", choice, detector.device)
        return detector, _model_info(choice, detector, _model_card(resolve_model_path(location)))


def display_name(choice: str) -> str:
    """How the page names a model: a local folder by its name (server paths stay private), else the choice itself."""
    return Path(choice).name if choice != DEFAULT_CHOICE and Path(choice).is_dir() else choice


def _model_card(location: str) -> str | None:
    """The README.md model card of a folder or Hub repository, None when there is none or it cannot be read."""
    folder = Path(location)
    if folder.is_dir():
        card = folder / "README.md"
        return card.read_text(encoding="utf-8") if card.is_file() else None
    try:
        return Path(hf_hub_download(location, "README.md")).read_text(encoding="utf-8")
    except Exception as error:  # no card, no network: the page falls back to generic limitations
        logger.info("no model card for %s (%s)", location, type(error).__name__)
        return None


def _model_info(choice: str, detector: Nes2NetDetector, card: str | None) -> ModelInfo:
    config = detector.config
    backend = {"nes2net": "Nes2Net", "nes2net-x": "Nes2Net-X"}.get(config.backend_variant, config.backend_variant)
    if config.frontend_type == "spectrogram":
        frontend = f"a log-spectrogram front-end ({config.feature_size} bins)"
    else:
        kind = getattr(config.frontend_config, "model_type", None) or config.frontend_type
        frontend = f"a {kind} front-end ({config.feature_size}-dim features)"
    return ModelInfo(
        name=display_name(choice),
        architecture=f"{backend} back-end on {frontend}",
        training_data=config.training_data,
        threshold=detector.threshold,
        calibrated=is_calibrated(config),
        limitations=card_limitations(card) if card else (),
        evaluation=card_section(card, "Evaluation") if card else None,
    )
