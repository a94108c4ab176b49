"""Leaderboard files from `nes2net evaluate --arena` and the Arena's own data sets: a copy of the tiny corpus's eval
split in the exact layout of the Speech Anti-Spoofing Arena (Parquet shards of `path`, `audio` bytes,
`label` ClassLabel([bonafide, spoof]) where 0 is bona fide, `notes` JSON), in a Hub cache snapshot folder, is scored
like the same audio in our layout; the submission it yields passes the Arena's checks, and breaking any field fails
them."""

from __future__ import annotations

import copy
import hashlib
import json
import re

import datasets
import numpy as np
import pytest
import yaml
from datasets import Audio, ClassLabel, Dataset, Features, Value

from modeling_nes2net import save_model_folder
from nes2net.cli import main as nes2net
from tests.oracles.arena_eer import reference_eer_percent
from tests.tiny_models import tiny_model
from tests.training.train_helpers import build_tiny_corpus
from training.arena import (
    ArenaError,
    arena_eer_percent,
    arena_request,
    local_copy_revision,
    submission_problems,
    write_leaderboard_files,
)
from training.data import load_built_dataset, load_training_dataset
from training.data.external import conform_to_shared_schema
from training.evaluate import evaluate_model
from training.metrics import compute_eer
from hub_cards.results import load_result
from training.score_files import ScoreTable, read_scores

ARENA_ID = "SpeechAntiSpoofingBenchmarks/TinyArena"
DATASET_COMMIT = "0123456789abcdef0123456789abcdef01234567"
SCORES_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
ARENA_FEATURES = Features({"path": Value("string"), "audio": Audio(sampling_rate=16000),
                           "label": ClassLabel(names=["bonafide", "spoof"]), "notes": Value("string")})
SYSTEM = {
    "system": {"name": "Nes2Net-X tiny", "slug": "nes2net-x-tiny", "description": "A tiny random Nes2Net-X.",
               "code": "https://github.com/example/nes2net", "checkpoint": "https://huggingface.co/example/tiny"},
    "submitter": {"hf_username": "example", "contact": "example@example.org"},
    "scores_repo": "example/tiny",
}


def write_arena_copy(built, folder) -> dict[str, int]:
    """The eval split of `built` as the Arena publishes a data set, in two shards; returns utt_id -> our label id
    (1 = bona fide), from the Arena's own label ids."""
    rows = load_built_dataset(built, "eval").cast_column("audio", Audio(decode=False))
    arena_labels = [0 if label == 1 else 1 for label in rows["label"]]  # ClassLabel([bonafide, spoof])
    columns = {"path": [f"eval/{utt_id}.flac" for utt_id in rows["utt_id"]],
               "audio": [{"bytes": audio["bytes"], "path": None} for audio in rows["audio"]],
               "label": arena_labels,
               "notes": [json.dumps({"utterance_id": utt_id, "speaker": "s"}) for utt_id in rows["utt_id"]]}
    table = Dataset.from_dict(columns, features=ARENA_FEATURES)
    half = len(table) // 2
    (folder / "data").mkdir(parents=True)
    for index, shard in enumerate([table.select(range(half)), table.select(range(half, len(table)))]):
        shard.to_parquet(folder / "data" / f"test-{index:05d}-of-00002.parquet")
    (folder / "eval.yaml").write_text("name: TinyArena\ntasks:\n  - split: test\n    metrics: [eer_percent]\n")
    return {utt_id: 1 - label for utt_id, label in zip(rows["utt_id"], arena_labels)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("arena")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "hf-cache"))
        built = build_tiny_corpus(root)
        arena = root / "hub" / f"datasets--{ARENA_ID.replace('/', '--')}" / "snapshots" / DATASET_COMMIT
        labels = write_arena_copy(built, arena)
        model = save_model_folder(tiny_model(seed=3), root / "model")
        (root / "system.yaml").write_text(yaml.safe_dump(SYSTEM))
        yield {"root": root, "built": built, "arena": arena, "labels": labels, "model": model}


def command(setup, output, *options):
    return nes2net(["evaluate", str(setup["model"]), str(setup["arena"]), "--protocol", "full", "--output-dir",
                    str(setup["root"] / output), "--dataset-name", "TinyArena", "--batch-size", "4", "--num-workers", "0", "--bootstrap", "0",
                    *options])


@pytest.fixture(scope="module")
def submitted(setup):
    """Two runs: the first writes scores.txt only, the second (after its upload) the YAML files."""
    arena = ["--arena", "sasa", "--arena", "dfarena", "--arena-system", str(setup["root"] / "system.yaml")]
    assert command(setup, "sasa", *arena) == 0
    out = setup["root"] / "sasa"
    scores_path = out / ".eval_results" / ARENA_ID / "scores.txt"
    first_run = {"scores": scores_path.read_bytes(), "yaml": sorted(out.rglob("*.yaml"))}
    assert command(setup, "sasa", *arena, "--arena-scores-commit", SCORES_COMMIT) == 0
    return {"out": out, "scores_path": scores_path, "first_run": first_run,
            "submission": yaml.safe_load((out / "submissions" / "nes2net-x-tiny.yaml").read_text()),
            "badge": yaml.safe_load((scores_path.parent / "result.yaml").read_text())}


def test_labels_are_mapped_by_name_whatever_their_order():
    names = ["real", "fake"]  # 0 = real here, the opposite of ours
    split = Dataset.from_dict({"label": [0, 1, 1, 0]}, features=Features({"label": ClassLabel(names=names)}))
    for rows in (split, split.to_iterable_dataset()):
        conformed = conform_to_shared_schema(rows, "real-fake")
        assert [row["label"] for row in conformed] == [1, 0, 0, 1]
        assert conformed.features["label"].names == ["spoof", "bonafide"]
    ours = Dataset.from_dict({"label": [0, 1]}, features=Features({"label": ClassLabel(names=["spoof", "bonafide"])}))
    assert conform_to_shared_schema(ours, "ours") is ours


@pytest.mark.parametrize("feature, message", [
    (ClassLabel(names=["cat", "dog"]), r"cannot map the label names \['cat', 'dog'\]"),
    (ClassLabel(names=["bonafide", "real"]), "cannot map the label names"),  # two bona fide names, no spoof
    (Value("int64"), "not a ClassLabel"),
])
def test_a_label_set_that_cannot_be_mapped_is_refused_in_one_line(feature, message):
    split = Dataset.from_dict({"label": [0, 1]}, features=Features({"label": feature}))
    with pytest.raises(ValueError, match=message) as error:
        conform_to_shared_schema(split, "their-set")
    assert "their-set" in str(error.value) and "\n" not in str(error.value)


def test_arena_notes_without_an_utterance_id_are_refused():
    features = Features({**{name: ARENA_FEATURES[name] for name in ("path", "label", "notes")}, "audio": Value("binary")})
    split = Dataset.from_dict({"path": ["a"], "audio": [b""], "label": [0], "notes": ['{"speaker": "s"}']},
                              features=features)
    with pytest.raises(ValueError, match="utterance_id"):
        conform_to_shared_schema(split, "arena-copy")


def test_a_zero_is_bona_fide_arena_set_is_scored_like_our_layout(setup):
    loaded = load_built_dataset(setup["arena"], "test")
    assert dict(zip(loaded["utt_id"], loaded["label"])) == setup["labels"]
    training_items = load_training_dataset(setup["arena"], "test", crop="full", columns=("label", "utt_id"))
    assert {item["utt_id"]: item["label"] for item in training_items} == setup["labels"]

    options = dict(protocol="full", batch_size=4, num_workers=0, progress=False, bootstrap=0)
    ours = evaluate_model(setup["model"], str(setup["built"]), setup["root"] / "ours", split="eval", **options)
    theirs = evaluate_model(setup["model"], str(setup["arena"]), setup["root"] / "theirs", **options)
    ours_table, their_table = (read_scores(setup["root"] / name / "scores.csv") for name in ("ours", "theirs"))
    assert their_table.utt_ids == ours_table.utt_ids
    np.testing.assert_array_equal(their_table.labels, ours_table.labels)
    np.testing.assert_allclose(their_table.scores, ours_table.scores, atol=1e-6)
    assert theirs["dataset"]["split"] == "test" and theirs["n_bonafide"] == ours["n_bonafide"] == 6
    assert theirs["metrics"]["eer"] == pytest.approx(ours["metrics"]["eer"], abs=1e-9)


def test_the_first_run_writes_the_scores_file_in_the_arena_format_and_no_yaml(setup, submitted):
    lines = submitted["first_run"]["scores"].decode().splitlines()
    assert [line.split()[0] for line in lines] == list(setup["labels"])
    assert all(re.fullmatch(r"\S+ -?\d+\.\d{6}", line) for line in lines)
    assert [path.name for path in submitted["first_run"]["yaml"]] == ["model-index.yaml"]
    assert submitted["scores_path"].read_bytes() == submitted["first_run"]["scores"]  # the rerun rescored nothing


def test_the_written_submission_and_badge_pass_the_arenas_checks(setup, submitted):
    submission, badge = submitted["submission"], submitted["badge"]
    assert submission_problems(submission, badge, submitted["scores_path"], setup["labels"]) == []
    assert submission["dataset"] == badge["dataset"] == {"id": ARENA_ID, "revision": DATASET_COMMIT, "split": "test"}
    assert submission["scores"]["n_trials"] == 12 and submission["scores"]["n_skipped"] == 0
    assert submission["artifact"]["scores_sha256"] == hashlib.sha256(submitted["scores_path"].read_bytes()).hexdigest()
    assert submission["artifact"]["scores_url"] == (f"https://huggingface.co/example/tiny/resolve/{SCORES_COMMIT}/"
                                                   f".eval_results/{ARENA_ID}/scores.txt")
    model = tiny_model(seed=3)
    assert submission["system"]["params_millions"] == round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    assert badge["system"] == {"name": "Nes2Net-X tiny", "slug": "nes2net-x-tiny", "paper": {"arxiv_id": "2504.05657"}}
    # 6 + 6 tie-free trials: the Arena's interpolated EER is the ASVspoof curve point results.json holds
    results = json.loads((submitted["out"] / "results.json").read_text())
    assert abs(submission["scores"]["eer_percent"] - 100 * results["metrics"]["eer"]) < 1e-6
    index = yaml.safe_load((submitted["out"] / "model-index.yaml").read_text())["model-index"][0]["results"]
    assert index[0]["dataset"]["type"] == results["dataset"]["id"]


def _rename(block: str, old: str, new: str):
    def change(document):
        document[block][new] = document[block].pop(old)
    return change


def _set(path: tuple[str, ...], value):
    def change(document):
        *parents, key = path
        for parent in parents:
            document = document[parent]
        document[key] = value(document[key])
    return change


BRANCH = lambda url: url.replace(f"/resolve/{SCORES_COMMIT}/", "/resolve/main/")  # noqa: E731


@pytest.mark.parametrize("submission_change, badge_change, message", [
    (_rename("system", "name", "title"), None, "title"),
    (None, _rename("scores", "eer_percent", "eer"), "eer"),
    (_set(("artifact", "scores_url"), BRANCH), _set(("artifact", "scores_url"), BRANCH), "scores_url"),
    (_set(("artifact", "scores_sha256"), lambda _: "0" * 64), None, "SHA-256"),
    (_set(("scores", "n_trials"), lambda n: n + 1), _set(("scores", "n_trials"), lambda n: n + 1), "n_trials"),
    (_set(("scores", "n_skipped"), lambda n: n + 1), _set(("scores", "n_skipped"), lambda n: n + 1), "n_skipped"),
    (_set(("scores", "eer_percent"), lambda e: e + 1e-5), _set(("scores", "eer_percent"), lambda e: e + 1e-5),
     "recomputed"),
    (_set(("dataset", "revision"), lambda _: "main"), _set(("dataset", "revision"), lambda _: "main"), "revision"),
])
def test_breaking_one_field_fails_the_checks(setup, submitted, submission_change, badge_change, message):
    submission, badge = copy.deepcopy(submitted["submission"]), copy.deepcopy(submitted["badge"])
    for change, document in ((submission_change, submission), (badge_change, badge)):
        if change is not None:
            change(document)
    problems = submission_problems(submission, badge, submitted["scores_path"], setup["labels"])
    assert problems and any(message in problem for problem in problems), problems


def test_the_df_arena_files_hold_the_same_trials_labels_and_scores(setup, submitted):
    protocol = (submitted["out"] / "dfarena" / "tinyarena.csv").read_text().splitlines()
    assert protocol[0] == "file_name,label"
    labels = dict(line.split(",") for line in protocol[1:])
    assert labels == {utt_id: ("bonafide" if label == 1 else "spoof") for utt_id, label in setup["labels"].items()}
    scores = read_scores(submitted["out"] / "dfarena" / "tinyarena.txt", "cm")
    results = read_scores(submitted["out"] / "scores.csv")
    assert scores.utt_ids == results.utt_ids and scores.scores.tolist() == results.scores.tolist()


def test_more_than_five_percent_unscored_writes_nothing(setup, submitted, tmp_path):
    request = arena_request(["sasa"], str(setup["arena"]), system_file=setup["root"] / "system.yaml",
                            scores_commit=SCORES_COMMIT)
    kept = list(setup["labels"])[:11]  # one trial of 12 unscored is over 5 %
    table = ScoreTable(kept, np.linspace(0.0, 1.0, 11), np.array([setup["labels"][utt_id] for utt_id in kept]))
    result = load_result(submitted["out"] / "results.json")
    with pytest.raises(ArenaError, match=r"11 of the 12 trials .* more than 5% skipped"):
        write_leaderboard_files(request, table, result, tiny_model(seed=3), str(setup["arena"]), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("options, message", [
    (["--arena", "sasa"], "--arena sasa needs --arena-system FILE"),
    (["--arena", "sasa", "--arena-system", "missing.yaml"], "--arena-system: cannot read missing.yaml"),
    (["--arena", "dfarena", "--arena-scores-commit", "main"], "--arena-scores-commit: expected a commit"),
])
def test_bad_arena_options_are_refused_before_scoring(setup, capsys, options, message):
    assert command(setup, "refused", *options) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars of loading
    assert error.startswith("nes2net evaluate: error: ") and message in error
    assert not (setup["root"] / "refused").exists()


def test_a_system_file_with_an_unknown_key_or_a_set_without_hub_id_is_refused(setup, tmp_path):
    system = tmp_path / "system.yaml"
    system.write_text(yaml.safe_dump({**SYSTEM, "team": "x"}))
    with pytest.raises(ArenaError, match="team"):
        arena_request(["sasa"], str(setup["arena"]), system_file=system)
    with pytest.raises(ArenaError, match="--dataset-id"):
        arena_request(["sasa"], str(setup["built"]), system_file=setup["root"] / "system.yaml")
    request = arena_request(["sasa"], str(setup["arena"]), system_file=setup["root"] / "system.yaml")
    assert (request.dataset_id, request.dataset_revision) == (ARENA_ID, DATASET_COMMIT)  # from the snapshot folder


def test_the_commit_of_a_local_dir_download_is_read_from_its_metadata(tmp_path):
    from huggingface_hub._local_folder import write_download_metadata

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test-00000-of-00001.parquet").write_bytes(b"shard")
    assert local_copy_revision(tmp_path) is None
    write_download_metadata(tmp_path, "data/test-00000-of-00001.parquet", DATASET_COMMIT, "etag")  # as `hf download`
    assert local_copy_revision(tmp_path) == DATASET_COMMIT


@pytest.mark.parametrize("seed", range(6))
def test_arena_eer_follows_the_arenas_rule(seed):
    rng = np.random.default_rng(seed)
    bonafide = np.round(rng.normal(1.0, 1.0, 40 + 7 * seed), 1)  # ties within and across classes
    spoof = np.round(rng.normal(-0.5, 1.0, 25 + 3 * seed), 1)
    assert arena_eer_percent(bonafide, spoof) == pytest.approx(reference_eer_percent(bonafide, spoof), abs=1e-9)
    assert arena_eer_percent(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == reference_eer_percent(
        np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    distinct = rng.permutation(200) / 7.0  # equal class sizes, no tie: the ASVspoof curve point
    assert arena_eer_percent(distinct[:100] + 5, distinct[100:]) == pytest.approx(
        100 * compute_eer(distinct[:100] + 5, distinct[100:]).eer, abs=1e-9)
