"""`pipeline("audio-classification")` on a Nes2Net model with awkward waveforms and options: arrays at another rate
are resampled by the package's own decoder (soxr), integer arrays scaled, implausible rates, a bad `top_k`, a URL
and a feature extractor at another rate than the model's refused in one line."""

from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest
import soxr
from tests.hostile.make_corpus import speech_like, wav_bytes
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from transformers import pipeline

from modeling_nes2net.audio import AudioInputError

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("audio-classification", model=str(model_dir), device="cpu")


def _model_input(classifier, inputs) -> np.ndarray:
    return classifier.preprocess(inputs)["input_values"][0].numpy()


def test_an_array_at_8_khz_is_resampled_with_soxr(classifier):
    waveform = speech_like(2.0, rate=8_000)[:, 0]
    seen = _model_input(classifier, {"raw": waveform, "sampling_rate": 8_000})
    np.testing.assert_allclose(seen, soxr.resample(waveform, 8_000, 16_000), atol=1e-4)
    assert {result["label"] for result in classifier({"array": waveform, "sampling_rate": 8_000})} == \
        {"bonafide", "spoof"}


def test_an_int16_array_is_scaled_to_full_range(classifier):
    waveform = speech_like(2.0)[:, 0]
    as_int16 = np.round(waveform * 32767).astype(np.int16)
    np.testing.assert_allclose(_model_input(classifier, as_int16), as_int16 / 32768, atol=1e-6)


@pytest.mark.parametrize("rate", [0, -1, 10**9])
def test_an_implausible_array_rate_is_one_line(classifier, rate):
    with pytest.raises(AudioInputError, match=rf"^<array>: implausible sampling rate {rate} Hz \(audio has"):
        classifier({"raw": speech_like(1.0)[:, 0], "sampling_rate": rate})


@pytest.mark.parametrize("top_k", [-1, 0, 1.5])
def test_a_top_k_that_is_not_a_positive_count_is_one_line(classifier, top_k):
    with pytest.raises(ValueError, match=rf"^top_k must be a positive number of labels, got {top_k}$"):
        classifier(speech_like(1.0)[:, 0], top_k=top_k)


def test_a_preprocessor_config_at_another_rate_than_the_model_is_refused(model_dir, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for file in model_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**preprocessor, "sampling_rate": 8_000}))
    with pytest.raises(ValueError, match=r"preprocessor_config.json decodes at 8000 Hz but the model takes 16000 Hz"):
        pipeline("audio-classification", model=str(folder), device="cpu")


@pytest.fixture
def served_recording():
    """A speech recording served over HTTP on 127.0.0.1: `(url, requests)`, the requests it received."""
    body, requests = wav_bytes(speech_like(1.0)), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/clip.wav", requests
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("scheme", ["http", "HTTPS"])
def test_a_url_is_refused_in_one_line_and_never_fetched(classifier, served_recording, scheme):
    """transformers' pipeline fetches an http(s) URL itself, past the package's decoder and input checks; a Nes2Net
    pipeline reads no network (the bytes behind a URL are whatever the server sends)."""
    url, requests = served_recording
    url = url.replace("http", scheme, 1)
    with pytest.raises(AudioInputError) as refused:
        classifier(url)
    assert str(refused.value) == (f"{url}: a URL; Nes2Net reads no network: download the recording and pass its "
                                  "path, bytes or waveform")
    assert requests == []
