"""Generator families: every spoofing `system` of the project's real-audio sets (mini-antispoof, antispoof-plus,
antispoof-modern) and of the copy-synthesis builder, grouped by what leaves its traces in the waveform.

Leave-one-family-out cross-validation (`training.cross_validation`) holds out one family at a time, so a detector is
judged on kinds of generators it never trained on, not on new samples of generators it knows. Systems are placed by
their waveform generator first (a Tacotron 2 with a Griffin-Lim back end sounds like Griffin-Lim, not like Tacotron 2
with HiFi-GAN), then by their architecture as their papers describe it.
"""

from __future__ import annotations

FAMILIES: dict[str, tuple[str, ...]] = {
    "classic": (  # rule-based formant, diphone / unit concatenation, HMM and DNN statistical parametric synthesis
        "espeak-ng(formant)", "espeak-ng", "festival(HTS)", "festival(diphone)", "festival_HTS", "festival_clunits",
        "festival_diphone", "flite(clustergen)", "flite(diphone)", "flite", "Merlin", "nnmnkwii_DNN-SPSS",
    ),
    "signal vocoder": (  # phase reconstruction or source-filter synthesis, no neural waveform model
        "Centaur(GriffinLim)", "ForwardTacotron+GriffinLim", "Tacotron2(GriffinLim)", "griffin-lim", "world",
    ),
    "neural vocoder": (  # GAN, flow, diffusion or autoregressive vocoders resynthesising real speech
        "HiFiGAN_V1", "HiFiGAN_V2", "HiFiGAN_V3", "HiFi-GAN", "MelGAN", "WaveGlow", "WaveNet_MoL", "WaveNet",
        "wavefake_vocoder", "BigVGAN", "DiffWave", "FastDiff", "ParallelWaveGAN", "PriorGrad", "UnivNet", "Vocos",
        "WaveFlow", "WaveRNN", "iSTFTNet", "hifigan",
    ),
    "acoustic model + vocoder": (  # Tacotron- and FastSpeech-style two-stage TTS with a neural vocoder
        "Tacotron2+HiFiGAN_V1", "Tacotron2+HiFiGAN_V1_ft", "Tacotron2+HiFiGAN_V2", "Tacotron2+HiFiGAN_V2_ft",
        "Tacotron2+HiFiGAN_V3", "Tacotron2+HiFiGAN_V3_ft", "Tacotron2+WaveGlow", "Tacotron2+WaveGlow_ft",
        "ForwardTacotron+WaveRNN", "Tacotron2", "DeepVoice3", "TransformerTTS", "MultiSpeech", "ClariNet",
        "FastSpeech", "FastSpeech2", "FastSpeech2s", "AdaSpeech", "AdaSpeech4", "DenoiSpeech", "Glow-TTS",
        "SC-GlowTTS", "StyleTTS", "PromptTTS++", "NANSY-TTS",
    ),
    "end-to-end TTS": (  # VITS-style variational models and other single-stage text-to-waveform systems
        "VITS", "Piper_VITS", "YourTTS", "JETS", "NaturalSpeech", "HierSpeech", "HierSpeech++", "StyleTTS2",
        "Kokoro-82M",
    ),
    "codec language model": (  # autoregressive or masked language models over codec tokens, GPT-style cloning
        "VALL-E", "UniAudio", "Bark", "MegaTTS", "XTTS", "CLaM-TTS", "FishSpeech", "IndexTTS", "Spark-TTS",
        "VALL-E_X", "VALL-E_codec-baselines", "X-Codec_VALL-E", "MaskGCT", "MARS5", "MetaVoice-1B", "ElevenLabs",
    ),
    "flow matching / diffusion TTS": (  # zero-shot TTS whose last stage is a flow-matching or diffusion decoder
        "VoiceBox", "NaturalSpeech2", "NaturalSpeech3", "Grad-TTS", "PromptTTS2", "F5-TTS", "E1-TTS", "E3-TTS",
        "ARDiT", "DiTTo-TTS", "Simple-TTS", "FlashSpeech", "P-Flow", "ZipVoice", "CosyVoice", "CosyVoice2",
        "FireRedTTS",
    ),
    "codec resynthesis": (  # real speech through a neural audio codec
        "DAC", "EnCodec", "HiFi-Codec", "SoundStream", "AudioDec", "BigCodec", "FunCodec", "LLM-Codec", "TF-Codec",
    ),
    "voice conversion": (
        "IAFF-VC", "AutoVC", "BNE-PPG-VC", "DDDM-VC", "Diff-HierVC", "DiffVC", "FreeVC", "HierVST", "VQMIVC",
        "VoiceMixer", "YourTTS_VC", "nnmnkwii_DNN-VC", "ConsistencyVC", "MaskGCT-VC", "Mulli-VC", "Seed-TTS_VC",
        "Seed-VC",
    ),
}

_FAMILY_OF_SYSTEM = {system: family for family, systems in FAMILIES.items() for system in systems}


def family_of(system: str) -> str:
    """The family of a spoofing `system`; raises `KeyError` (one line) for a system the table does not know."""
    try:
        return _FAMILY_OF_SYSTEM[system]
    except KeyError:
        raise KeyError(f"no generator family for system {system!r}: add it to training.data.families.FAMILIES"
                       ) from None
