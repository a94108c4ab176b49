"""Uploads on a public host: Gradio's upload route of a running app refuses too many files or bytes in one request
and more than a visitor may hold at once; uploads no request uses are deleted after `--upload-max-age`, and then the
visitor may upload again."""

from __future__ import annotations

import time

import httpx
import pytest
from nes2net_space.uploads import UploadLedger, UploadLimits
from nes2net_space.harness import start_space

MAX_BATCH_FILES = 3
MAX_FILE_MB = 1
MAX_CLIENT_FILES = 4
UPLOAD_MAX_AGE = 3


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory, space_model_dir):
    server = start_space(tmp_path_factory.mktemp("guarded-app"), [
        "--model", space_model_dir, "--max-batch-files", str(MAX_BATCH_FILES), "--max-file-mb", str(MAX_FILE_MB),
        "--max-client-files", str(MAX_CLIENT_FILES), "--upload-max-age", str(UPLOAD_MAX_AGE), "--threads", "1",
    ])
    yield server
    server.stop()


def upload(server, files: list[tuple[str, bytes]]) -> httpx.Response:
    return httpx.post(f"{server.url}gradio_api/upload", files=[("files", item) for item in files], timeout=60)


def held_uploads(server) -> list[str]:
    """Names of the uploads on the app's disk (Gradio keeps each in a folder named by its SHA-256)."""
    return sorted(path.name for path in server.tmpdir.rglob("upload-*.bin"))


def test_too_many_files_or_bytes_in_one_request_are_refused(guarded_app):
    response = upload(guarded_app, [(f"upload-{i}.bin", b"x" * 100) for i in range(MAX_BATCH_FILES + 1)])
    assert response.status_code == 413 and response.text == f"too many files: at most {MAX_BATCH_FILES} per request"
    big = b"y" * (MAX_BATCH_FILES * MAX_FILE_MB * 2**20 + 2**20 + 1)  # over the request's bytes, in several files
    response = upload(guarded_app, [("upload-big-1.bin", big[: len(big) // 2]), ("upload-big-2.bin", big[len(big) // 2 :])])
    assert response.status_code == 413 and "upload too large" in response.text
    assert held_uploads(guarded_app) == []


def test_a_visitor_holds_a_bounded_number_of_uploads_until_they_expire(guarded_app):
    first = upload(guarded_app, [(f"upload-a{i}.bin", f"a{i}".encode()) for i in range(MAX_BATCH_FILES)])
    assert first.status_code == 200 and len(first.json()) == MAX_BATCH_FILES
    second = upload(guarded_app, [(f"upload-b{i}.bin", f"b{i}".encode()) for i in range(2)])
    assert second.status_code == 429 and second.text.startswith(f"too many uploads waiting: at most {MAX_CLIENT_FILES}")
    assert held_uploads(guarded_app) == [f"upload-a{i}.bin" for i in range(MAX_BATCH_FILES)]
    deadline = time.monotonic() + UPLOAD_MAX_AGE + 10
    while held_uploads(guarded_app) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert held_uploads(guarded_app) == []  # never used by a request: deleted after --upload-max-age
    again = upload(guarded_app, [(f"upload-b{i}.bin", f"b{i}".encode()) for i in range(2)])
    assert again.status_code == 200 and held_uploads(guarded_app) == ["upload-b0.bin", "upload-b1.bin"]


def test_a_path_two_visitors_uploaded_is_deleted_with_its_last_request(tmp_path):
    ledger = UploadLedger(UploadLimits(max_client_files=5))
    shared = tmp_path / "0123abcd" / "speech.wav"  # Gradio's <sha256>/<name>: same content, same path
    shared.parent.mkdir()
    shared.write_bytes(b"RIFF....")
    ledger.record("198.51.100.1", [str(shared)])
    ledger.record("198.51.100.2", [str(shared)])
    assert ledger.held_by("198.51.100.1") == (1, 8) and ledger.held_by("198.51.100.2") == (1, 8)
    ledger.release([str(shared)])
    assert shared.is_file()  # the other visitor's request has not run yet
    ledger.release([str(shared), str(tmp_path / "an-example.wav")])  # paths it does not hold are left alone
    assert not shared.exists() and not shared.parent.exists()
    assert ledger.held_by("198.51.100.2") == (0, 0)


def test_a_streamed_chunk_releases_the_chunks_gradio_replaced_by_it(tmp_path):
    ledger = UploadLedger(UploadLimits(max_client_files=50), clock=iter(range(100)).__next__)
    chunks = []
    for index in range(4):  # the browser's chunks: one folder per content, each named audio.wav
        chunk = tmp_path / f"sha{index}" / "audio.wav"
        chunk.parent.mkdir()
        chunk.write_bytes(bytes([index]) * 10)
        ledger.record("198.51.100.1", [str(chunk)])
        chunks.append(chunk)
    other = tmp_path / "sha-other" / "audio.wav"
    other.parent.mkdir()
    other.write_bytes(b"other visitor")
    ledger.record("198.51.100.2", [str(other)])
    ledger.release_stream_chunk(chunks[2])  # chunks 0 and 1 never reached the app: Gradio kept the newest
    assert [chunk.exists() for chunk in chunks] == [False, False, False, True] and other.exists()
    assert ledger.held_by("198.51.100.1") == (1, 10)
