"""Untrusted audio cannot make the decoders open anything but itself: an HLS playlist or a concat script (whatever
its name) is refused without reading, or probing, the files it names, and the ffmpeg subprocess runs under a
memory and CPU limit and is killed (SIGKILL, which a spinning process cannot ignore) when it stalls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.modeling.detection_audio import ffmpeg_encode, needs_ffmpeg, write_audio

from modeling_nes2net import audio
from modeling_nes2net.audio import AudioInputError, load_audio

WATCHDOG_SECONDS = 180  # a decode still running then is a hang (the import alone takes a while on a busy machine)


@pytest.fixture
def server_file(tmp_path) -> Path:
    """A private MP3 on the server that no upload should be able to read."""
    private = tmp_path / "server" / "private.mp3"
    private.parent.mkdir()
    return ffmpeg_encode(write_audio(tmp_path / "server" / "source.wav", 2.0), private)


def hls_playlist(path: Path, target: Path, live: bool = False) -> Path:
    """An HLS playlist of one segment, `target`; a `live` one (no end tag) is reloaded for new segments forever."""
    end = "" if live else "#EXT-X-ENDLIST\n"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{target}\n{end}")
    return path


def one_line_error(source, decoders) -> str:
    with pytest.raises(AudioInputError) as caught:
        load_audio(source, decoders=decoders)
    message = str(caught.value)
    assert "\n" not in message
    return message


@needs_ffmpeg
@pytest.mark.parametrize("decoders", [["ffmpeg"], ["torchcodec"], ["soundfile", "ffmpeg"]])
def test_an_hls_playlist_named_wav_does_not_read_the_server_file_it_names(tmp_path, server_file, decoders):
    upload = hls_playlist(tmp_path / "upload.wav", server_file)
    assert len(upload.read_bytes()) < 200  # the 141-byte attack of issue 28
    message = one_line_error(upload, decoders)
    assert message.startswith(f"{upload}: ") and "playlist" in message
    assert one_line_error(upload.read_bytes(), decoders).startswith("<bytes>: ")


@needs_ffmpeg
@pytest.mark.parametrize("decoders", [["ffmpeg"], ["torchcodec"]])
def test_a_playlist_gives_the_same_error_whether_its_target_exists_or_not(tmp_path, server_file, decoders):
    existing = hls_playlist(tmp_path / "a.wav", server_file)
    missing = hls_playlist(tmp_path / "b.wav", server_file.with_name("no-such-file.mp3"))
    first, second = one_line_error(existing, decoders), one_line_error(missing, decoders)
    assert first.removeprefix(f"{existing}: ") == second.removeprefix(f"{missing}: ")  # nothing to probe paths with


@needs_ffmpeg
@pytest.mark.parametrize("decoders", [["ffmpeg"], ["torchcodec"]])
def test_a_concat_script_does_not_read_the_files_it_lists(server_file, decoders):
    script = server_file.with_name("upload.wav")  # beside its target: the concat demuxer's "safe" mode allows that
    script.write_text(f"ffconcat version 1.0\nfile {server_file.name}\n")
    assert "concat script" in one_line_error(script, decoders)


def decode_in_subprocess(path: Path, setup: str = "", path_prefix: str | None = None) -> tuple[int, str, float]:
    """`load_audio(path, decoders=["ffmpeg"])` in a fresh interpreter (after the statements `setup`, with
    `path_prefix` first on PATH), killed after `WATCHDOG_SECONDS`: `(exit status, stderr, seconds load_audio took)`."""
    code = textwrap.dedent(f"""
        import sys, time
        from modeling_nes2net import audio
        {setup}
        started = time.monotonic()
        try:
            audio.load_audio(sys.argv[1], decoders=["ffmpeg"])
        except audio.AudioInputError as error:
            sys.exit(str(error))
        finally:
            print(time.monotonic() - started)
        """)
    environment = None
    if path_prefix is not None:
        environment = {**os.environ, "PATH": f"{path_prefix}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment, start_new_session=True)
    try:
        seconds, error = process.communicate(timeout=WATCHDOG_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the interpreter and the ffmpeg it started
        process.communicate()
        pytest.fail(f"decoding {path} still ran after {WATCHDOG_SECONDS} s")
    return process.returncode, error.strip(), float(seconds)


@needs_ffmpeg
def test_a_self_referencing_playlist_ends_promptly_with_one_line(tmp_path):
    playlist = tmp_path / "loop.wav"
    hls_playlist(playlist, playlist, live=True)
    status, error, _ = decode_in_subprocess(playlist)
    assert status == 1 and error.startswith(f"{playlist}: ") and "\n" not in error


def fake_ffmpeg(folder: Path, body: str) -> Path:
    """An `ffmpeg` executable in `folder` that records its pid next to itself, then runs the shell `body`."""
    folder.mkdir()
    executable = folder / "ffmpeg"
    executable.write_text(f"#!/bin/sh\necho $$ > {folder / 'pid'}\n{body}\n")
    executable.chmod(0o755)
    return folder


def test_an_ffmpeg_that_stalls_and_ignores_sigterm_is_killed(tmp_path):
    spinning = fake_ffmpeg(tmp_path / "bin", "trap '' TERM\nwhile :; do :; done")
    clip = write_audio(tmp_path / "clip.wav", 0.5)
    status, error, seconds = decode_in_subprocess(clip, "audio.FFMPEG_STALL_SECONDS = 2", str(spinning))
    assert status == 1 and error.startswith(f"{clip}: ") and "killed" in error, error
    assert seconds < 20
    pid = int((spinning / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped, not left spinning


def test_ffmpeg_runs_under_a_memory_and_cpu_limit(tmp_path):
    recording = fake_ffmpeg(tmp_path / "bin", "head -c 1 > /dev/null\n"  # once the input flows
                                              f"ulimit -v > {tmp_path / 'memory'}\nulimit -t > {tmp_path / 'cpu'}\n"
                                              "exit 1")
    status, _, _ = decode_in_subprocess(write_audio(tmp_path / "clip.wav", 0.5), path_prefix=str(recording))
    assert status == 1
    assert int((tmp_path / "memory").read_text()) * 1024 == audio.FFMPEG_MEMORY_BYTES  # ulimit -v is in KiB
    assert 0 < int((tmp_path / "cpu").read_text()) <= audio.ffmpeg_cpu_seconds(audio.MAX_DURATION_SECONDS)


@needs_ffmpeg
def test_an_m4a_with_its_index_at_the_end_still_decodes_through_the_pipe(tmp_path):
    source = write_audio(tmp_path / "source.wav", 20.0)  # over the 64 KiB ffmpeg's cache reads ahead by default
    clip = tmp_path / "moov_at_end.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(source), "-c:a", "aac", str(clip)], check=True)
    data = clip.read_bytes()
    assert data.index(b"mdat") < data.index(b"moov")  # ffmpeg's default layout: not "faststart"
    assert abs(len(load_audio(clip, decoders=["ffmpeg"])) - 320_000) < 0.06 * 16_000
