"""Waveform augmentation for anti-spoofing training, one module per job:

- `waveform`: the `Augmentation` signature, the input check, and mixing noise at a chosen SNR;
- `rawboost`: RawBoost (Tak et al., ICASSP 2022) and the Nes2Net authors' algorithms 9-11;
- `noise_and_reverb`: noise, music, babble and room impulse responses read from folders of audio (MUSAN / RIR);
- `composition`: `Compose`, `RandomApply` and `OneOf`.

Every augmentation is a callable `(waveform, sample_rate, rng) -> waveform` taking a 1-D float array of shape
`(samples,)` and returning a float32 array of the same shape. All randomness comes from the `numpy.random.Generator`
passed in, so a seeded generator reproduces an augmentation exactly, and data-loader workers stay independent when
each owns a generator.
"""
