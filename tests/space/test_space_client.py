"""The running app called through `gradio_client` with real audio files: verdicts, timelines, batches, bad input."""

from __future__ import annotations

import csv
import json

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from tests.space.space_fixtures import MAX_BATCH_FILES, MAX_FILE_MB, MAX_SECONDS

from hub_cards.published_files import GENERALISATION_FILE
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR
from tests.hub_cards.hub_helpers import eer_cell, errors_cell

DEFAULT_CHOICE = "embedded default model"


@pytest.fixture(scope="module")
def client(space_app, tmp_path_factory):
    return Client(space_app.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def test_verdict_is_the_detection_api_result_in_plain_words(client, space_model_dir, space_model_name, space_audio):
    verdict, timeline, details = client.predict(handle_file(space_audio["long"]), space_model_name, "mean",
                                                api_name="/detect")
    expected = Nes2NetDetector.from_pretrained(space_model_dir, device="cpu").detect(space_audio["long"])
    assert details["file"] == "speech_long.wav" and details["label"] == expected.label
    assert details["bonafide_probability"] == pytest.approx(expected.bonafide_probability, abs=1e-5)
    assert [segment["start"] for segment in details["segments"]] == pytest.approx(
        [segment.start for segment in expected.segments])
    assert len(details["segments"]) > 1 and details["aggregation"] == "mean"
    headline = "Likely genuine speech" if expected.label == "bonafide" else "Likely spoofed speech"
    assert verdict.startswith(f"## {headline}")
    assert f"p(bona fide) = {expected.bonafide_probability:.3f}" in verdict
    assert "raw log-odds, as it has no fitted score calibration" in verdict  # the tiny model has none
    assert "**not recorded**" in verdict and "random weights" in verdict  # nor any training data
    assert "Known to miss" in verdict and "overlapping windows of 4.0 s" in verdict
    assert timeline["visible"] is True and timeline["value"]["type"] == "matplotlib"
    assert timeline["value"]["plot"].startswith("data:image/")


def test_short_stereo_clip_is_scored_whole_without_a_timeline(client, space_model_name, space_audio):
    verdict, timeline, details = client.predict(handle_file(space_audio["stereo"]), space_model_name, "any",
                                                api_name="/detect")
    assert details["file"] == "stereo_44k.flac" and details["duration"] == pytest.approx(2.0, abs=1e-3)
    assert len(details["segments"]) == 1 and details["aggregation"] is None
    assert timeline["visible"] is False and "Timeline" not in verdict


def test_batch_scores_good_files_reports_bad_ones_and_exports_csv(client, space_model_name, space_audio):
    files = [space_audio["short"], space_audio["not_audio"], space_audio["stereo"]]
    summary, table, csv_path = client.predict([handle_file(path) for path in files], space_model_name, "mean",
                                              api_name="/detect_batch")
    rows = table["data"]
    assert [row[0] for row in rows] == ["speech_short.wav", "notes.txt", "stereo_44k.flac"]
    assert rows[1][-1].startswith("notes.txt: cannot decode audio") and rows[1][1] == ""
    assert all(row[1] in ("bonafide", "spoof") and row[-1] == "" for row in (rows[0], rows[2]))
    assert summary.startswith("**2 of 3 files scored**") and "1 could not be scored" in summary
    with open(csv_path, newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert list(exported[0]) == table["headers"] and [row["file"] for row in exported] == [row[0] for row in rows]
    assert float(exported[2]["bonafide_probability"]) == pytest.approx(rows[2][2])


def test_batch_over_the_file_limit_is_refused(client, space_model_name, space_audio):
    files = [handle_file(space_audio["short"])] * (MAX_BATCH_FILES + 1)
    with pytest.raises(AppError, match=f"scores at most {MAX_BATCH_FILES} per batch"):
        client.predict(files, space_model_name, "mean", api_name="/detect_batch")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty", "empty.wav: empty file (0 bytes)"),
        ("twenty_minutes", f"twenty_minutes.ogg: longer than the {MAX_SECONDS} s limit of this demo"),
        ("not_audio", "notes.txt: cannot decode audio"),
    ],
)
def test_bad_input_gets_a_one_line_message(client, space_model_name, space_audio, name, message):
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(space_audio[name]), space_model_name, "mean", api_name="/detect")
    text = str(caught.value)
    assert message in text and "Traceback" not in text and "\n" not in text.strip()


def test_upload_over_the_size_limit_is_refused_by_the_server(space_app, space_audio):
    path = space_audio["too_big"]
    with path.open("rb") as stream:
        response = httpx.post(f"{space_app.url}gradio_api/upload", files={"files": (path.name, stream)}, timeout=60)
    assert response.status_code == 413
    assert f"maximum allowed size of {MAX_FILE_MB * 2**20} bytes" in response.text


def test_missing_recording_is_explained_and_only_offered_models_can_be_chosen(
    space_app, client, space_model_dir, space_model_name, space_audio, tmp_path
):
    with pytest.raises(AppError, match="No recording yet"):
        client.predict(None, space_model_name, "mean", api_name="/detect")
    for typed in (space_model_dir, str(tmp_path), str(tmp_path / "no-such-model")):  # a server path, wherever it is
        with pytest.raises(AppError, match="is not in the list of choices") as caught:
            client.predict(handle_file(space_audio["short"]), typed, "mean", api_name="/detect")
        assert "cannot load" not in str(caught.value)
    config = httpx.get(f"{space_app.url}config", timeout=30).text
    assert space_model_name in config and space_model_dir not in config  # the page names models, never paths


def test_the_default_model_is_described_or_its_absence_explained(client, space_model_name):
    about = client.predict(DEFAULT_CHOICE, api_name="/describe_model")
    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        assert "**Trained on:**" in about and "**not recorded**" not in about
    else:
        assert "No model to score with" in about and "nes2net convert" in about
    if (DEFAULT_MODEL_DIR / GENERALISATION_FILE).is_file():  # the figures of its cross-validation record
        record = json.loads((DEFAULT_MODEL_DIR / GENERALISATION_FILE).read_text(encoding="utf-8"))
        pooled = record["candidates"][record["recipe"]]["pooled"]
        assert f"| this model's recipe, `{record['recipe']}` | {eer_cell(pooled)} | {errors_cell(pooled)} |" in about
    else:
        assert "How it generalises" not in about
    assert "How it generalises" not in client.predict(space_model_name, api_name="/describe_model")  # no record
