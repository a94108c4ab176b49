"""What the detector accepts as speech-like input: one rule, checked on every surface that scores audio.

A spoofing detector answers "bona fide or spoofed speech?"; for input that holds no speech (silence, a test tone, a
constant, noise, a click) any answer is wrong, and the model gives one anyway, often with confidence. So the decoded
waveform (mono float32 at the model's rate) is refused, with one line naming it and the reason, when it is:

- shorter than `MIN_SECONDS` (0.2 s, about one syllable);
- digital silence: no sample above one 16-bit step (`SILENCE_PEAK`);
- scaled far outside [-1, 1]: a peak over `MAX_PEAK` (100). Float audio may exceed 1 a little (a float WAV keeps
  the headroom of processing, so up to 100 is accepted), but a peak of hundreds or more is integer samples passed as
  float (int16 values: divide by 32768) or a broken gain, and the released models take the raw waveform;
- steady in level: the levels of its 32 ms frames (`FRAME_SAMPLES` at 16 kHz) spread over less than
  `MIN_LEVEL_SPREAD_DB` (1.5 dB) between their 10th and 90th percentile. Speech rises and falls by tens of dB
  (syllables, pauses); a constant, a steady tone (sine or square) or steady noise does not;
- a pure tone: over `MAX_TONAL_FRACTION` (99 %) of its power in `TONAL_BINS` (5) bins of its mean spectrum
  (beeps with pauses between them);
- white noise: a mean spectrum flatter than `MAX_SPECTRAL_FLATNESS` (0.9, the geometric over the arithmetic mean
  of its power; speech has formants and a falling spectrum, well under 0.5).

On the 2,777 real clips of the project's three evaluation sets (bona fide and spoofed, FLAC and Opus, 0.9-30 s), the
rule refused none; their lowest level spread was 3.3 dB, highest 5-bin power fraction 96 %, highest flatness 0.75.
The features are computed block by block (`SpeechLikeCheck.update`), so a long recording is checked while it
streams, at an FFT per frame: about 1 ms for a 5 s clip.

`SpeechLikeCheck` is fed by the scorer (`nes2net detect`, the detection API, the Space's upload and live endpoints,
`nes2net demo`) and `check_speech_like` by the `pipeline("audio-classification")` preprocess.
"""

from __future__ import annotations

import numpy as np

from .audio import AudioInputError

MIN_SECONDS = 0.2
SILENCE_PEAK = 1.0 / 32768  # at most one 16-bit step
MAX_PEAK = 100.0
FRAME_SAMPLES = 512
MIN_LEVEL_SPREAD_DB = 1.5
TONAL_BINS = 5
MAX_TONAL_FRACTION = 0.99
MAX_SPECTRAL_FLATNESS = 0.9
_LEVEL_FLOOR = 1e-20  # frame mean power of exact zeros, so their level is finite (-200 dB)
_WINDOW = np.hanning(FRAME_SAMPLES)
_FRAMES_PER_STEP = 32


class SpeechLikeCheck:
    """Accumulates the features of one input's blocks; `finish` refuses it when it is not speech-like.

    Args:
        name: the input, as errors name it.
        sampling_rate: the rate of the blocks.
    """

    def __init__(self, name: str, sampling_rate: int) -> None:
        self.name, self.sampling_rate = name, sampling_rate
        self.samples, self.peak = 0, 0.0
        self._levels: list[np.ndarray] = []
        self._power = np.zeros(FRAME_SAMPLES // 2 + 1, np.float64)
        self._remainder = np.zeros(0, np.float32)

    def update(self, block: np.ndarray) -> None:
        """Add the next `(samples,)` float32 block."""
        if not len(block):
            return
        self.samples += len(block)
        self.peak = max(self.peak, float(np.abs(block).max()))
        pending = np.concatenate([self._remainder, block])
        whole = len(pending) // FRAME_SAMPLES * FRAME_SAMPLES
        self._add_frames(pending[:whole].reshape(-1, FRAME_SAMPLES))
        self._remainder = pending[whole:]

    def _add_frames(self, frames: np.ndarray) -> None:
        """Add `(frames, FRAME_SAMPLES)` float32 frames, a few at a time (little memory)."""
        if not len(frames) or self.peak > MAX_PEAK:  # over MAX_PEAK squares could overflow; it is refused anyway
            return
        levels = []
        for start in range(0, len(frames), _FRAMES_PER_STEP):
            step = frames[start : start + _FRAMES_PER_STEP].astype(np.float64)
            levels.append(10 * np.log10(np.mean(step**2, axis=1) + _LEVEL_FLOOR))
            self._power += (np.abs(np.fft.rfft(step * _WINDOW, axis=1)) ** 2).sum(axis=0)
        self._levels.append(np.concatenate(levels).astype(np.float32))

    def finish(self) -> None:
        """Raise `AudioInputError` (one line: the input, "not speech-like" and why) unless the blocks seen were
        speech-like."""
        reason = self.reason()
        if reason is not None:
            raise AudioInputError(self.name, f"not speech-like, nothing to score: {reason}")

    def reason(self) -> str | None:
        """Why the blocks seen are not speech-like, or None when they are (the rule of the module docstring)."""
        seconds = self.samples / self.sampling_rate
        if seconds < MIN_SECONDS:
            return f"{seconds:.3f} s long, under the {MIN_SECONDS:g} s of one syllable"
        if self.peak <= SILENCE_PEAK:
            return "digital silence (no sample above one 16-bit step)"
        if self.peak > MAX_PEAK:
            return (f"samples reach {self.peak:.3g}, audio lies in [-1, 1] (integer samples passed as float? "
                    "divide 16-bit ones by 32768)")
        levels = np.concatenate(self._levels) if self._levels else np.zeros(1, np.float32)  # under a frame: steady
        low, high = np.percentile(levels, [10, 90])
        if high - low < MIN_LEVEL_SPREAD_DB:
            return (f"a steady level (its frames vary by {high - low:.2f} dB, speech by more than "
                    f"{MIN_LEVEL_SPREAD_DB:g} dB): a constant, a steady tone or noise")
        tonal_fraction = np.sort(self._power)[-TONAL_BINS:].sum() / self._power.sum()
        if tonal_fraction > MAX_TONAL_FRACTION:
            return f"a pure tone ({tonal_fraction:.1%} of its power in {TONAL_BINS} frequency bins)"
        power = self._power + self._power.max() * 1e-12
        flatness = np.exp(np.mean(np.log(power))) / np.mean(power)
        if flatness > MAX_SPECTRAL_FLATNESS:
            return f"white noise (spectral flatness {flatness:.2f}, speech stays under {MAX_SPECTRAL_FLATNESS:g})"
        return None


def check_speech_like(waveform: np.ndarray, sampling_rate: int, name: str) -> None:
    """Refuse a whole `(samples,)` float32 waveform that is not speech-like (see `SpeechLikeCheck`)."""
    check = SpeechLikeCheck(name, sampling_rate)
    check.update(waveform)
    check.finish()
