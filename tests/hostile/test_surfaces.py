"""The hostile-input corpus (`make_corpus.py`) through the surfaces `test_corpus.py` does not run: the pipeline, the
Space (uploads and the live `/listen` endpoint, on the real app), `evaluate`, `train` resume, `calibrate`, `fuse`,
`export onnx`, `space` and `push --dry-run`. Each bad input ends in one line naming it, a run with a bad input fails,
the good inputs of the same run are still processed, and nothing outside the command's own output changes (the
inputs are fingerprinted before and after, `snapshot`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from transformers import pipeline

from modeling_nes2net.audio import AudioInputError, printable
from tests.hostile.make_corpus import HostileCase, snapshot, speech_like, wav_bytes, write_corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "space"))  # the app's own package, nes2net_space
from nes2net_space.harness import start_space  # noqa: E402
from nes2net_space.models import display_name  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the corpus is encoded by the ffmpeg executable")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[HostileCase]]:
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    return folder, write_corpus(folder)


def _uploadable(cases: list[HostileCase]) -> list[HostileCase]:
    """The cases a visitor can upload: regular files (a FIFO or a link loop exists only on the server's disk)."""
    return [case for case in cases if case.path.is_file()]


def test_the_pipeline_refuses_each_hostile_file_with_the_line_of_detect_and_scores_the_rest(corpus, model_dir):
    folder, cases = corpus
    before = snapshot(folder)
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    for case in cases:
        if case.detect is None:
            assert {entry["label"] for entry in classify(str(case.path))} == {"bonafide", "spoof"}, case.kind
            continue
        with pytest.raises(AudioInputError) as refused:
            classify(str(case.path))
        line = str(refused.value)
        assert "\n" not in line and line.startswith(f"{printable(case.path)}: ") and case.detect in line, case.kind
    assert snapshot(folder) == before


@pytest.fixture(scope="module")
def space(tmp_path_factory, model_dir, corpus):
    """The app on 127.0.0.1 offering the tiny model, with room for the whole corpus in one batch: `(server, client,
    model choice)`."""
    batch = str(len(corpus[1]) + 1)
    server = start_space(tmp_path_factory.mktemp("space"), ["--model", str(model_dir), "--max-batch-files", batch,
                                                             "--max-client-files", batch, "--threads", "1"])
    yield server, Client(server.url, verbose=False, download_files=False), display_name(str(model_dir))
    server.stop()


def test_a_space_batch_names_each_hostile_upload_in_its_row_and_scores_the_rest(space, corpus):
    folder, cases = corpus
    server, client, model = space
    uploads = _uploadable(cases)
    before = snapshot(folder)
    summary, table, _ = client.predict([handle_file(case.path) for case in uploads], model, "mean",
                                       api_name="/detect_batch")
    assert snapshot(folder) == before
    rows = {row[0]: row for row in table["data"]}
    assert list(rows) == [case.path.name for case in uploads]
    refused = [case for case in uploads if case.detect is not None]
    assert refused and summary.startswith(f"**{len(uploads) - len(refused)} of {len(uploads)} files scored**")
    for case in uploads:
        label, error = rows[case.path.name][1], rows[case.path.name][-1]
        if case.detect is None:
            assert label in ("bonafide", "spoof") and error == "", (case.kind, error)
        else:
            assert label == "" and error.startswith(f"{case.path.name}: ") and case.detect in error, (case.kind, error)
            assert "\n" not in error


@pytest.fixture(scope="module")
def listen(model_dir):
    """The app's `/listen` handler (gradio_client cannot drive a streaming event): `listen(chunk, session)`."""
    import app  # space/app.py, on the path with its package
    from nes2net_space.inputs import Limits
    from nes2net_space.models import ModelRegistry
    from nes2net_space.uploads import UploadLedger, UploadLimits

    demo = app.build_demo(ModelRegistry([str(model_dir)], device="cpu"), Limits(), [], UploadLedger(UploadLimits()))
    handler = next(event.fn for event in demo.fns.values() if event.api_name == "listen")
    return lambda chunk, session: handler(str(chunk), session, display_name(str(model_dir)), "mean")


def test_the_live_endpoint_refuses_each_chunk_that_is_not_a_microphone_wav_in_one_line(listen, corpus, tmp_path):
    import gradio as gr

    folder, cases = corpus
    speech = tmp_path / "chunk.wav"
    speech.write_bytes(wav_bytes(speech_like(0.5)))
    refusals = {
        "empty": "not a WAV recording", "corrupt": "not a WAV recording", "png as flac": "not a WAV recording",
        "text as wav": "not a WAV recording", "hls playlist": "not a WAV recording",
        "truncated mp3": "not a WAV recording", "streamed flac": "not a WAV recording",
        "wrong rate": "implausible sampling rate in its header (1 Hz", "nan": "not 16-bit PCM",
        "broken scale": "not 16-bit PCM",
    }
    chosen = {case.kind: case for case in cases if case.kind in refusals}
    assert chosen.keys() == refusals.keys()
    before = snapshot(folder)
    session, _, _ = listen(speech, None)
    for kind, case in chosen.items():
        with pytest.raises(gr.Error) as refused:
            listen(case.path, session)
        line = refused.value.message
        assert "\n" not in line and line.startswith("live microphone chunk: ") and refusals[kind] in line, (kind, line)
    session, verdict, _ = listen(speech, session)  # the session goes on with the next good chunk
    assert session.seconds == pytest.approx(1.0) and "1.0 s" in verdict
    assert snapshot(folder) == before
