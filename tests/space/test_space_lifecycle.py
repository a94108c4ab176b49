"""An app configured by environment variables only: it honours them, deletes each upload when the request that used it
ends, and once stopped with SIGTERM (as a Space is) no file it or Gradio wrote is left in its TMPDIR."""

from __future__ import annotations

import signal
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from nes2net_space.harness import free_port, start_space


def test_environment_configuration_and_no_temporary_files_left(tmp_path, space_model_dir, space_model_name,
                                                                space_audio):
    port = free_port()
    server = start_space(tmp_path / "app", env={
        "NES2NET_MODEL": space_model_dir, "NES2NET_HOST": "127.0.0.1", "NES2NET_PORT": str(port),
        "NES2NET_MAX_SECONDS": "10", "NES2NET_THREADS": "1", "NES2NET_UPLOAD_MAX_AGE": "2",
    })
    try:
        assert server.url == f"http://127.0.0.1:{port}/"
        client = Client(server.url, verbose=False, download_files=str(tmp_path / "downloads"))
        _, _, details = client.predict(handle_file(space_audio["short"]), space_model_name, "mean",
                                    api_name="/detect")
        assert details["file"] == "speech_short.wav"
        _, _, csv_path = client.predict([handle_file(space_audio["stereo"])], space_model_name, "mean",
                                        api_name="/detect_batch")
        assert csv_path.endswith(".csv")
        with pytest.raises(AppError, match="longer than the 10 s limit"):
            client.predict(handle_file(space_audio["long"]), space_model_name, "mean", api_name="/detect")
        written = [path for path in server.tmpdir.rglob("*") if path.is_file()]
        assert not {"speech_short.wav", "stereo_44k.flac", "speech_long.wav"} & {path.name for path in written}
        assert any(path.name.startswith("nes2net-scores-") for path in written)  # the CSV waits to be downloaded
        with pytest.raises(AppError, match="is not in the list of choices"):  # a visitor cannot load other models
            client.predict(handle_file(space_audio["short"]), space_model_dir, "mean", api_name="/detect")
        deadline = time.monotonic() + 10  # that upload was never used: it goes after NES2NET_UPLOAD_MAX_AGE
        while any(server.tmpdir.rglob("speech_short.wav")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(server.tmpdir.rglob("speech_short.wav"))
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, server.log.read_text()[-2000:]
    leftovers = [path for path in server.tmpdir.rglob("*") if path.is_file() or path.name.startswith("nes2net")]
    assert leftovers == []
