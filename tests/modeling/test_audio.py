"""Decoding real files of every common kind to 16 kHz mono, and one-line errors for broken ones."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import soxr
from tests.modeling.detection_audio import dominant_frequency, ffmpeg_encode, needs_ffmpeg, tone_and_noise, write_audio

from modeling_nes2net.audio import AudioInputError, AudioStream, find_audio_files, has_audio_extension, load_audio
from tests.hostile.make_corpus import ffmpeg_encoded, speech_like, wav_bytes


def test_16k_wav_is_read_exactly(tmp_path):
    path = write_audio(tmp_path / "clip.wav", 1.5)
    expected, _ = soundfile.read(path, dtype="float32")
    np.testing.assert_array_equal(load_audio(path), expected)


def test_flac_decodes_to_the_same_samples_as_wav(tmp_path):
    wav = write_audio(tmp_path / "clip.wav", 1.0, rate=22_050)
    flac = write_audio(tmp_path / "clip.flac", 1.0, rate=22_050)
    np.testing.assert_array_equal(load_audio(flac), load_audio(wav))


def test_44k_stereo_is_downmixed_and_resampled_like_one_shot_soxr(tmp_path):
    path = write_audio(tmp_path / "stereo.wav", 2.0, rate=44_100, channels=2)
    stream = AudioStream(path, block_seconds=0.3)  # many blocks: the streaming resampler must be seamless
    waveform = np.concatenate(list(stream))
    stereo, _ = soundfile.read(path, dtype="float32")
    expected = soxr.resample(stereo.mean(axis=1), 44_100, 16_000)
    assert (stream.info.sampling_rate, stream.info.num_channels, stream.info.decoder) == (44_100, 2, "soundfile")
    assert waveform.dtype == np.float32 and waveform.shape == (32_000,)
    np.testing.assert_allclose(waveform, expected, atol=1e-5)


def test_8k_phone_audio_is_upsampled_keeping_its_pitch(tmp_path):
    waveform = load_audio(write_audio(tmp_path / "phone.wav", 2.0, rate=8_000, tone=True))
    assert waveform.shape == (32_000,)
    assert abs(dominant_frequency(waveform, 16_000) - 440.0) < 2.0


@needs_ffmpeg
@pytest.mark.parametrize("suffix, decoder", [(".mp3", "soundfile"), (".ogg", "soundfile"), (".m4a", "ffmpeg")])
def test_compressed_formats(tmp_path, suffix, decoder):
    source = write_audio(tmp_path / "source.wav", 2.0, rate=44_100, channels=2, tone=True)
    stream = AudioStream(ffmpeg_encode(source, tmp_path / f"clip{suffix}"))
    waveform = np.concatenate(list(stream))
    assert stream.info.decoder == decoder
    assert abs(len(waveform) - 32_000) < 0.06 * 16_000  # encoder priming / padding only
    assert abs(dominant_frequency(waveform, 16_000) - 440.0) < 2.0


@needs_ffmpeg
def test_a_flac_streamed_through_a_pipe_decodes_whole(tmp_path):
    """A FLAC written to a pipe declares no length (libsndfile reports 2**63 - 1 frames): an unknown length, not
    5.8e14 s over the limit; it decodes to the samples of the recording, as a FLAC written to a file does."""
    waveform = speech_like(2.0)
    streamed = tmp_path / "streamed.flac"
    streamed.write_bytes(ffmpeg_encoded(waveform, ".flac", piped=True))
    assert soundfile.info(streamed).frames == 2**63 - 1
    np.testing.assert_array_equal(load_audio(streamed), load_audio(wav_bytes(waveform)))


@needs_ffmpeg
def test_ffmpeg_and_torchcodec_fallbacks_agree_with_soundfile(tmp_path):
    path = write_audio(tmp_path / "clip.wav", 1.0, rate=16_000)
    reference = load_audio(path, decoders=["soundfile"])
    np.testing.assert_allclose(load_audio(path, decoders=["ffmpeg"]), reference, atol=1e-6)
    np.testing.assert_allclose(load_audio(path, decoders=["torchcodec"]), reference, atol=1e-6)


def test_bytes_and_arrays_decode_like_the_file(tmp_path):
    path = write_audio(tmp_path / "clip.flac", 1.0, rate=44_100, channels=2)
    from_path = load_audio(path)
    np.testing.assert_array_equal(load_audio(path.read_bytes()), from_path)
    stereo, rate = soundfile.read(path, dtype="float32")
    np.testing.assert_allclose(load_audio(stereo, rate), from_path, atol=1e-6)
    np.testing.assert_allclose(load_audio((stereo.T, rate)), from_path, atol=1e-6)  # (channels, samples)


def test_integer_arrays_are_scaled_to_unit_range():
    pcm = (tone_and_noise(0.5, 16_000)[:, 0] * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm, 16_000), pcm / 32768.0, atol=1e-7)
    unsigned = np.full(800, 192, dtype=np.uint8)
    np.testing.assert_allclose(load_audio(unsigned, 16_000), 0.5)


def _bad_inputs(tmp_path):
    wav = write_audio(tmp_path / "good.wav", 0.5)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "truncated.wav").write_bytes(wav.read_bytes()[:30])
    (tmp_path / "notes.wav").write_text("these are my meeting notes, not audio\n")
    soundfile.write(tmp_path / "nothing.wav", np.zeros((0, 1), np.float32), 16_000)
    nan = tone_and_noise(0.5, 16_000)
    nan[100] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, 16_000, subtype="FLOAT")
    inf = tone_and_noise(0.5, 16_000)
    inf[-1] = np.inf
    soundfile.write(tmp_path / "inf.wav", inf, 16_000, subtype="FLOAT")
    (tmp_path / "folder.wav").mkdir()
    return {
        "empty.wav": "empty file",
        "truncated.wav": "cannot decode audio",
        "notes.wav": "cannot decode audio",
        "nothing.wav": "no audio samples",
        "nan.wav": "NaN or infinite",
        "inf.wav": "NaN or infinite",
        "missing.wav": "no such file",
        "folder.wav": "is a directory",
    }


def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path):
    for name, problem in _bad_inputs(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(AudioInputError) as caught:
            load_audio(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and problem in message and "\n" not in message, message


def test_bad_bytes_and_arrays():
    with pytest.raises(AudioInputError, match=r"^<bytes>: empty input"):
        load_audio(b"")
    with pytest.raises(AudioInputError, match=r"^<bytes>: cannot decode audio"):
        load_audio(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioInputError, match=r"^<array>: a waveform array needs its sampling rate"):
        load_audio(np.zeros(100, np.float32))
    with pytest.raises(AudioInputError, match=r"^<array>: expected a 1-D or 2-D waveform"):
        load_audio(np.zeros((2, 2, 2), np.float32), 16_000)


def test_find_audio_files(tmp_path):
    write_audio(tmp_path / "b.wav", 0.1)
    write_audio(tmp_path / "a.FLAC", 0.1)
    (tmp_path / "readme.txt").write_text("not audio")
    (tmp_path / "nested").mkdir()
    write_audio(tmp_path / "nested" / "c.wav", 0.1)
    assert [p.name for p in find_audio_files(tmp_path)] == ["a.FLAC", "b.wav"]
    assert [p.name for p in find_audio_files(tmp_path, recursive=True)] == ["a.FLAC", "b.wav", "c.wav"]
    assert find_audio_files(tmp_path / "readme.txt") == [tmp_path / "readme.txt"]


def test_audio_extensions_are_recognised_in_any_case_and_a_bare_extension_is_not_one():
    assert has_audio_extension("folder.wav/clip.M4A") and has_audio_extension("take 1.opus")
    assert not has_audio_extension("clip.flac/readme.txt") and not has_audio_extension(".flac")
    assert not has_audio_extension("flac")
