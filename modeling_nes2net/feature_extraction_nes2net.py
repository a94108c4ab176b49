"""Feature extractor of Nes2Net: the raw waveform (unnormalised, padded with an attention mask), checked first.

What a model must never score is refused here, with the one-line messages `nes2net detect` gives, so
`pipeline("audio-classification")` and `Trainer` users get them too: NaN / infinite samples, an empty waveform, a
waveform at another sampling rate than the model's.
"""

from __future__ import annotations

import numpy as np
from transformers import Wav2Vec2FeatureExtractor

# The wording of `modeling_nes2net.audio` (which this file cannot import: it travels alone as remote code); the tests
# check that both surfaces give the same line.
ARRAY_NAME = "<array>"
NON_FINITE = "contains NaN or infinite samples"
NO_SAMPLES = "no audio samples (zero duration)"


class Nes2NetFeatureExtractor(Wav2Vec2FeatureExtractor):
    r"""
    [`Wav2Vec2FeatureExtractor`] with the defaults of every Nes2Net model (16 kHz mono, `do_normalize=False`: the
    released models were trained on the raw waveform, and `config.normalize_waveform` normalises inside the model
    where one was not; `return_attention_mask=True`) that validates each waveform before padding it.

    Raises `ValueError` `"<array>: <problem>"` for a waveform with NaN or infinite samples, one without samples, and
    a `sampling_rate` other than the model's (resample first: `nes2net detect` and `Nes2NetDetector` do).
    """

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        do_normalize: bool = False,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            do_normalize=do_normalize,
            **kwargs,
        )

    def __call__(self, raw_speech, sampling_rate: int | None = None, **kwargs):
        """`raw_speech`: one waveform `(samples,)` or a batch of them (arrays or lists of floats)."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"{ARRAY_NAME}: sampled at {sampling_rate} Hz, but this model takes {self.sampling_rate} Hz "
                "(resample it first)"
            )
        for waveform in _waveforms(raw_speech):
            if waveform.size == 0:
                raise ValueError(f"{ARRAY_NAME}: {NO_SAMPLES}")
            if not np.isfinite(waveform).all():
                raise ValueError(f"{ARRAY_NAME}: {NON_FINITE}")
        return super().__call__(raw_speech, sampling_rate=sampling_rate, **kwargs)


def _waveforms(raw_speech) -> list[np.ndarray]:
    """The waveforms of one input or a batch, as float arrays."""
    if isinstance(raw_speech, np.ndarray) and raw_speech.ndim <= 1:
        return [np.asarray(raw_speech, dtype=np.float64)]
    is_sequence = isinstance(raw_speech, (list, tuple))
    if is_sequence and raw_speech and not isinstance(raw_speech[0], (list, tuple, np.ndarray)):
        return [np.asarray(raw_speech, dtype=np.float64)]
    if isinstance(raw_speech, (list, tuple)) and not raw_speech:
        return [np.zeros(0)]
    return [np.asarray(waveform, dtype=np.float64) for waveform in raw_speech]


__all__ = ["Nes2NetFeatureExtractor"]
