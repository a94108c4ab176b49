"""The generator family of every spoof `system` of the shared sets and of the vocoded copies built here.

A family groups generators by what makes the waveform, so that leave-one-family-out cross-validation holds out a kind
of artefact rather than one model: a detector that only knows HiFi-GAN copies is tested on codecs it has never heard.
The systems are those of mini-antispoof, antispoof-plus, antispoof-modern (whose README names a family per system,
refined here) and `training.data.vocoders`. Where a system mixes two stages (a token language model followed by a
flow-matching decoder), it goes with the stage that makes the audio. Every family but `end-to-end-tts` has systems in
at least two of the sets (the VITS-style systems are all in antispoof-plus).

    family_of("F5-TTS")  # 'flow-matching-diffusion-tts'
"""

from __future__ import annotations

FAMILIES: dict[str, tuple[str, ...]] = {
    "classic-signal-processing": (
        # formant, diphone, unit-selection and HMM engines; statistical parametric speech with the WORLD vocoder;
        # signal-processing copy-synthesis (training.data.vocoders)
        "espeak-ng(formant)", "festival(HTS)", "festival(diphone)", "flite(clustergen)", "flite(diphone)",
        "espeak-ng", "festival_HTS", "festival_clunits", "festival_diphone", "flite", "Merlin", "nnmnkwii_DNN-SPSS",
        "griffin-lim", "world",
    ),
    "autoregressive-acoustic-model": (
        # Tacotron-style: attention-based autoregressive spectrogram model + vocoder
        "Tacotron2(GriffinLim)", "Centaur(GriffinLim)", "Tacotron2+HiFiGAN_V1", "Tacotron2+HiFiGAN_V1_ft",
        "Tacotron2+HiFiGAN_V2", "Tacotron2+HiFiGAN_V2_ft", "Tacotron2+HiFiGAN_V3", "Tacotron2+HiFiGAN_V3_ft",
        "Tacotron2+WaveGlow", "Tacotron2+WaveGlow_ft",
        "Tacotron2", "TransformerTTS", "DeepVoice3", "MultiSpeech",
    ),
    "non-autoregressive-acoustic-model": (
        # FastSpeech-style: duration-based parallel spectrogram model (or flow prior) + vocoder
        "ForwardTacotron+GriffinLim", "ForwardTacotron+WaveRNN",
        "FastSpeech", "FastSpeech2", "AdaSpeech", "AdaSpeech4", "DenoiSpeech", "Glow-TTS", "SC-GlowTTS", "StyleTTS",
        "NANSY-TTS", "PromptTTS++",
    ),
    "end-to-end-tts": (
        # VITS-style: text to waveform in one model trained jointly with its decoder
        "VITS", "Piper_VITS", "YourTTS", "JETS", "NaturalSpeech", "HierSpeech", "HierSpeech++", "FastSpeech2s",
        "StyleTTS2", "Kokoro-82M",
    ),
    "neural-vocoder": (
        # GAN, flow, diffusion and autoregressive vocoders re-synthesising real speech from its features
        "HiFiGAN_V1", "HiFiGAN_V2", "HiFiGAN_V3", "MelGAN", "WaveGlow", "WaveNet_MoL", "wavefake_vocoder",
        "BigVGAN", "HiFi-GAN", "UnivNet", "ParallelWaveGAN", "WaveRNN", "WaveFlow", "WaveNet", "ClariNet", "DiffWave",
        "PriorGrad", "iSTFTNet", "Vocos",
        "hifigan",
    ),
    "neural-codec": (
        # real speech encoded to discrete codes and decoded again
        "EnCodec", "DAC", "HiFi-Codec", "SoundStream",
        "AudioDec", "BigCodec", "FunCodec", "LLM-Codec", "TF-Codec",
    ),
    "voice-conversion": (
        "IAFF-VC",
        "AutoVC", "BNE-PPG-VC", "DDDM-VC", "Diff-HierVC", "DiffVC", "FreeVC", "HierVST", "VQMIVC", "VoiceMixer",
        "YourTTS_VC", "nnmnkwii_DNN-VC",
        "ConsistencyVC", "Mulli-VC", "Seed-TTS_VC", "Seed-VC", "MaskGCT-VC",
    ),
    "codec-language-model": (
        # autoregressive or masked language models over audio tokens, decoded by a codec decoder, a vocoder or a
        # diffusion refiner (Tortoise-style cloning: XTTS, MARS5, MetaVoice; ElevenLabs is undisclosed, grouped with
        # them as antispoof-modern's README does)
        "VALL-E", "UniAudio", "Bark", "MegaTTS", "XTTS",
        "VALL-E_X", "VALL-E_codec-baselines", "X-Codec_VALL-E", "CLaM-TTS", "FishSpeech", "IndexTTS", "Spark-TTS",
        "MaskGCT", "MARS5", "MetaVoice-1B", "ElevenLabs",
    ),
    "flow-matching-diffusion-tts": (
        # diffusion, flow-matching and consistency acoustic models (CosyVoice and FireRedTTS: a token LM whose
        # audio comes from a flow-matching decoder)
        "Grad-TTS", "NaturalSpeech2", "NaturalSpeech3", "VoiceBox", "PromptTTS2", "FastDiff",
        "ARDiT", "DiTTo-TTS", "E1-TTS", "E3-TTS", "F5-TTS", "FlashSpeech", "P-Flow", "Simple-TTS", "ZipVoice",
        "CosyVoice", "CosyVoice2", "FireRedTTS",
    ),
}
"""family -> the spoof systems in it, as the sets' `system` column writes them."""

FAMILY_OF: dict[str, str] = {system: family for family, systems in FAMILIES.items() for system in systems}


class UnknownSystemError(KeyError):
    """A spoof `system` that no family lists."""

    def __str__(self) -> str:
        return str(self.args[0])


def family_of(system: str) -> str:
    """The generator family of a spoof `system`; raises UnknownSystemError (a KeyError) for a system not listed."""
    try:
        return FAMILY_OF[system]
    except KeyError:
        raise UnknownSystemError(
            f"spoof system {system!r} has no generator family: add it to training.data.families.FAMILIES"
        ) from None
