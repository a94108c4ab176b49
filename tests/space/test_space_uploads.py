"""Uploads on a public host: Gradio's upload route of a running app refuses too many files or bytes in one request
and more than a visitor (or all visitors) may hold at once, while the body streams in, so parallel uploads keep the
app's temporary disk bounded; uploads no request uses are deleted after `--upload-max-age`, and then the visitor may
upload again."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pathlib import Path

from nes2net_space.uploads import UploadLedger, UploadLimits
from nes2net_space.harness import start_space

MAX_BATCH_FILES = 3
MAX_FILE_MB = 1
MAX_CLIENT_FILES = 4
MAX_CLIENT_MB = 2
MAX_TOTAL_MB = 3
UPLOAD_MAX_AGE = 3
STREAM_CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory, space_model_dir):
    server = start_space(tmp_path_factory.mktemp("guarded-app"), [
        "--model", space_model_dir, "--max-batch-files", str(MAX_BATCH_FILES), "--max-file-mb", str(MAX_FILE_MB),
        "--max-client-files", str(MAX_CLIENT_FILES), "--upload-max-age", str(UPLOAD_MAX_AGE), "--threads", "1",
        "--max-client-mb", str(MAX_CLIENT_MB), "--max-total-mb", str(MAX_TOTAL_MB), "--trust-proxy",
    ])
    yield server
    server.stop()


def upload(server, files: list[tuple[str, bytes]]) -> httpx.Response:
    return httpx.post(f"{server.url}gradio_api/upload", files=[("files", item) for item in files], timeout=60)


def held_uploads(server) -> list[str]:
    """Names of the uploads on the app's disk (Gradio keeps each in a folder named by its SHA-256)."""
    return sorted(path.name for path in server.tmpdir.rglob("upload-*.bin"))


def wait_until_expired(server) -> None:
    deadline = time.monotonic() + UPLOAD_MAX_AGE + 10
    while held_uploads(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert held_uploads(server) == []


def streamed_upload(server, name: str, size: int, visitor: str, fill: bytes) -> httpx.Response:
    """Upload one file of `size` bytes of `fill` as `visitor` (its X-Forwarded-For), sent in chunks at about
    3 MiB/s without a Content-Length, as a slow connection streams it."""
    boundary = "nes2net-test-boundary"

    def body():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for start in range(0, size, STREAM_CHUNK):
            time.sleep(0.02)
            yield fill * min(STREAM_CHUNK, size - start)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}", "x-forwarded-for": visitor}
    return httpx.post(f"{server.url}gradio_api/upload", content=body(), headers=headers, timeout=120)


def temp_bytes(server) -> int:
    """Bytes of the files in the app's TMPDIR: named ones, and the unlinked ones it holds open (a spooled body)."""
    total = 0
    for path in server.tmpdir.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # deleted meanwhile
            pass
    for descriptor in Path(f"/proc/{server.process.pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
            if target.startswith(str(server.tmpdir)) and target.endswith(" (deleted)"):
                total += descriptor.stat().st_size
        except OSError:  # closed meanwhile
            pass
    return total


def parallel_uploads(server, uploads: list[tuple[str, int, str]]) -> tuple[list[httpx.Response], int]:
    """Send `(name, size, visitor)` uploads at once; their responses and the most bytes the app's TMPDIR held
    meanwhile besides what it held before (the example clips)."""
    before = temp_bytes(server)
    peak, done = [before], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], temp_bytes(server))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(len(uploads)) as pool:
            responses = list(pool.map(lambda item: streamed_upload(server, *item[1], bytes([97 + item[0]])),
                                      enumerate(uploads)))
    finally:
        done.set()
        watcher.join()
    return responses, peak[0] - before


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


def test_parallel_uploads_over_a_visitors_limit_are_refused_while_they_stream(guarded_app):
    wait_until_expired(guarded_app)
    size = int(3.5 * 2**20)  # under the request's 4 MiB, over the visitor's 2 MiB
    responses, peak = parallel_uploads(guarded_app, [(f"upload-big-{i}.bin", size, "198.51.100.7") for i in range(3)])
    assert [response.status_code for response in responses] == [429] * 3
    assert all(response.text.startswith(f"too much uploaded audio waiting: at most {MAX_CLIENT_MB} MiB")
               for response in responses)
    assert peak <= MAX_CLIENT_MB * 2**20 + 3 * STREAM_CHUNK  # never the three whole bodies spooled to disk
    assert held_uploads(guarded_app) == []


def test_parallel_uploads_of_one_visitor_together_stay_within_its_limit(guarded_app):
    wait_until_expired(guarded_app)
    size = int(0.9 * 2**20)  # under the file limit (1 MiB); two fit the visitor's 2 MiB, three do not
    responses, _ = parallel_uploads(guarded_app, [(f"upload-part-{i}.bin", size, "198.51.100.8") for i in range(3)])
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 429], statuses
    assert len(held_uploads(guarded_app)) == 2


def test_uploads_of_all_visitors_together_stay_within_the_servers_limit(guarded_app):
    wait_until_expired(guarded_app)
    size = int(0.9 * 2**20)  # within each visitor's 2 MiB; three fit the server's 3 MiB, four do not
    visitors = [(f"upload-visitor-{i}.bin", size, f"198.51.100.{20 + i}") for i in range(4)]
    responses, _ = parallel_uploads(guarded_app, visitors)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 200, 503], statuses
    assert next(response for response in responses if response.status_code == 503).text.startswith(
        "the server holds too many uploads right now")
    assert len(held_uploads(guarded_app)) == 3


def test_a_declared_length_over_the_visitors_limit_is_refused_before_the_body(guarded_app):
    host, port = guarded_app.url.split("//")[1].strip("/").split(":")
    declared = int(3.5 * 2**20)  # under the request's 4 MiB, over the visitor's 2 MiB; no byte of it is sent
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
                           "Content-Type: multipart/form-data; boundary=x\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n"
                           .encode())
        answer = read_http_response(connection)
    assert answer.startswith("HTTP/1.1 429") and "too much uploaded audio waiting" in answer


def read_http_response(connection: socket.socket) -> str:
    """The whole response on `connection`: its head, then as many body bytes as its Content-Length says (one
    `recv` may return the head alone)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()
