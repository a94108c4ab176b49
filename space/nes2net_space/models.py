"""The models the Space offers: an allow-list of the embedded default and the folders and Hub ids the operator names
at launch, each known to visitors by a name that reveals no server path; any folder or Hub id typed in the page only
when the operator allows it. Loaded on first use, a few kept in memory; what the page says about one (`ModelInfo`) is
read from its config, the sections of its card and its cross-validation record."""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download

from hub_cards.generalisation import generalisation_summary, load_generalisation_record
from hub_cards.published_files import CARD_FILE, GENERALISATION_FILE
from modeling_nes2net.decision import is_calibrated
from modeling_nes2net.description import describe_architecture
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.model_loading import ModelNotFoundError, resolve_model_path
from modeling_nes2net.scorer import Aggregation
from modeling_nes2net.weight_checks import ModelLoadError

logger = logging.getLogger(__name__)

DEFAULT_CHOICE = "embedded default model"


@dataclass(frozen=True)
class ModelInfo:
    """What the page says about a model.

    Attributes:
        name: the model as the page names it (see `display_name`).
        architecture: the model in words (`description.describe_architecture`).
        training_data: `config.training_data`, None when the config does not say.
        threshold: the decision threshold on the log-odds scale.
        calibrated: whether the model carries a fitted score calibration (`decision.is_calibrated`).
        limitations: markdown bullet texts from the model card's limitations section (empty without a card).
        evaluation: the model card's evaluation section (markdown), None without one.
        generalisation: the compact tables of the model's cross-validation record (`evaluation/generalisation.json`,
            `hub_cards.generalisation`) in markdown, None without one.
    """

    name: str
    architecture: str
    training_data: str | None
    threshold: float
    calibrated: bool
    limitations: tuple[str, ...]
    evaluation: str | None
    generalisation: str | None


def default_model_problem() -> str | None:
    """Why the embedded default model cannot be used (one line), or None when it is installed."""
    try:
        resolve_model_path(None)
    except ModelNotFoundError as error:
        return str(error)
    return None


class ModelRegistry:
    """Loads and caches detectors by menu name; safe to call from several request threads.

    Args:
        models: folders or Hub ids offered besides the embedded default, in menu order; the first one (which may be
            `DEFAULT_CHOICE`) is preselected, else the embedded default.
        allow_any: also accept a folder or Hub id typed by a visitor (an explicit operator choice; off by default).
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
        self.locations: dict[str, str | None] = {DEFAULT_CHOICE: None}  # menu name -> folder or Hub id
        for model in models:
            if model != DEFAULT_CHOICE and model not in self.locations.values():
                self.locations[_unique_name(display_name(model), self.locations)] = model
        self.choices = list(self.locations)
        self.initial_choice = self.name_of(models[0]) if models else DEFAULT_CHOICE
        self.allow_any = allow_any
        self.device = device
        self.quantize = quantize
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, tuple[Nes2NetDetector, ModelInfo]] = OrderedDict()
        self._lock = threading.Lock()

    def name_of(self, model: str) -> str:
        """The menu name of a configured folder or Hub id (or of `DEFAULT_CHOICE`)."""
        return next(name for name, location in self.locations.items() if model in (name, location))

    def menu(self) -> list[str]:
        """The names of the model menu: a local folder is named by its folder name, never its full path."""
        return list(self.choices)

    def get(self, choice: str | None, aggregation: Aggregation = "mean") -> tuple[Nes2NetDetector, ModelInfo]:
        """The detector for the menu name `choice` (None: the initial choice; a typed folder or Hub id only with
        `allow_any`) aggregating windows with `aggregation`, and what the page says about it. Raises
        `ModelLoadError` with a message that does not tell whether a server folder exists."""
        choice = (choice or self.initial_choice).strip()
        if choice not in self.locations and not self.allow_any:
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
        location = self.locations.get(choice, choice)
        try:
            detector = Nes2NetDetector.from_pretrained(location, device=self.device, quantize=self.quantize)
        except (OSError, ValueError, ModelLoadError) as error:
            logger.warning("cannot load model %s: %s", location or DEFAULT_CHOICE, error)
            if choice not in self.locations:  # typed by a visitor: the same words whatever exists on the server
                raise ModelLoadError(
                    f"cannot load model {choice!r}: no Nes2Net model folder or Hub repository of that name can be "
                    "loaded here"
                ) from None
            if location is None:  # the embedded default is not installed: the message says how to get a model
                raise ModelLoadError(str(error)) from None
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ModelLoadError(f"cannot load model {choice!r}: {first_line.replace(location, choice)}") from None
        logger.info("loaded model %s on %s", location or DEFAULT_CHOICE, detector.device)
        name = choice if choice in self.locations else display_name(choice)
        return detector, _model_info(name, detector, _published_files(resolve_model_path(location)))


def display_name(model: str) -> str:
    """How the page names a model: a local folder by its name (server paths stay private), else the id itself."""
    return Path(model).name if model != DEFAULT_CHOICE and Path(model).is_dir() else model


def _unique_name(name: str, taken: dict[str, object]) -> str:
    """`name`, or `name (2)`, `name (3)`, ... when two configured folders share a folder name."""
    candidates = (name if count == 1 else f"{name} ({count})" for count in range(1, len(taken) + 2))
    return next(candidate for candidate in candidates if candidate not in taken)


def _published_files(location: str) -> Path | None:
    """A local folder with the model card and cross-validation record of a folder or Hub repository (those it has),
    None when the Hub cannot be reached."""
    folder = Path(location)
    if folder.is_dir():
        return folder
    try:
        return Path(snapshot_download(location, allow_patterns=[CARD_FILE, GENERALISATION_FILE]))
    except Exception as error:  # no network: the page falls back to generic limitations
        logger.info("no model card for %s (%s)", location, type(error).__name__)
        return None


def _model_card(folder: Path | None) -> str | None:
    """The README.md model card in `folder`, None when there is none."""
    card = folder / CARD_FILE if folder is not None else None
    return card.read_text(encoding="utf-8") if card is not None and card.is_file() else None


def _generalisation(folder: Path | None) -> str | None:
    """The compact tables of the cross-validation record in `folder`, None when there is none or it is invalid."""
    try:
        record = load_generalisation_record(folder) if folder is not None else None
    except ValueError as error:
        logger.warning("%s", error)
        return None
    return generalisation_summary(record) if record is not None else None


def card_section(card: str, title: str) -> str | None:
    """The body of the card's first `## <title>...` section (up to the next `## ` heading), without `<details>`
    blocks; None when there is no such section or it is empty."""
    match = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", card, flags=re.MULTILINE | re.DOTALL)
    if match is None:
        return None
    body = re.sub(r"<details>.*?</details>", "", match.group(1), flags=re.DOTALL).strip()
    return body or None


def card_limitations(card: str) -> tuple[str, ...]:
    """The bullets of the card's limitations section, each joined onto one line."""
    section = card_section(card, "Limitations") or ""
    bullets: list[str] = []
    for line in section.splitlines():
        if line.startswith(("- ", "* ")):
            bullets.append(line[2:].strip())
        elif bullets and line.strip():
            bullets[-1] += " " + line.strip()
    return tuple(bullets)


def _model_info(name: str, detector: Nes2NetDetector, published: Path | None) -> ModelInfo:
    config = detector.config
    card = _model_card(published)
    return ModelInfo(
        name=name,
        architecture=str(describe_architecture(config)),
        training_data=config.training_data,
        threshold=detector.threshold,
        calibrated=is_calibrated(config),
        limitations=card_limitations(card) if card else (),
        evaluation=card_section(card, "Evaluation") if card else None,
        generalisation=_generalisation(published),
    )
