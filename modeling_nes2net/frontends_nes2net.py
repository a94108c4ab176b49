"""The front-ends of Nes2Net: a raw waveform `(batch, samples)` -> hidden states, each `(batch, frames, D)`, which the
layer merge and the back-end read (Liu et al., Nes2Net, IEEE T-IFS 2025, Section III-A: a speech foundation model's
features; the spectrogram and Whisper front-ends are this package's additions).

Every front-end answers the same questions itself (`Nes2NetFrontend`), so no other module asks which kind it is:

- `forward(input_values, attention_mask, output_hidden_states, output_attentions)` -> `BaseModelOutput`
  (`last_hidden_state`, every `hidden_states`, the `attentions` of a transformer that returns them);
- `output_lengths(input_lengths)`: frames for waveforms of `input_lengths` samples;
- `frame_geometry()`: each frame's stride, receptive field and offset in samples (`FrameGeometry`);
- `activation_bytes(samples, all_layers)`: the activation memory one float32 pass over `samples` samples holds at
  least;
- `state_chunking()`: how its hidden states over a long recording are computed chunk by chunk, so that the `windows`
  protocol encodes each second once and windows the states (`StateChunking`), or None where they cannot be (the one
  place that says why, per front-end);
- `describe(config)`: the front-end in a few words (model cards, the Space);
- `for_export()`: the module to put in its place in an ONNX graph;
- `freeze_feature_encoder()` and `load_pretrained_weights(source)`.

`build_frontend(config)` builds the one a `Nes2NetConfig` names (`config.frontend_type`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import MODEL_MAPPING, AutoModel, PreTrainedModel
from transformers.audio_utils import mel_filter_bank
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .configuration_nes2net import Nes2NetConfig

FLOAT32_BYTES = 4
# How the package names the speech foundation models it reads (`describe`), by transformers `model_type`.
FRONTEND_NAMES = {
    "wav2vec2": "wav2vec 2.0",
    "wavlm": "WavLM",
    "hubert": "HuBERT",
    "data2vec-audio": "data2vec-audio",
    "whisper": "the Whisper encoder",
}


@dataclass(frozen=True)
class FrameGeometry:
    """Where a front-end's frames lie in its input, in samples: frame `i` reads samples
    `[offset + i * stride, offset + i * stride + receptive_field)` (positions outside the input are padding)."""

    stride: int
    receptive_field: int
    offset: int = 0

    def centres(self, num_frames: int) -> torch.Tensor:
        """The centre of each of `num_frames` frames, in samples from the start of the input: `(num_frames,)`."""
        return torch.arange(num_frames) * self.stride + self.offset + self.receptive_field / 2


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """`(batch,)` real lengths -> `(batch, size)` bool, True on each row's first `lengths[row]` positions (the real
    samples or frames of a padded batch)."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


CHUNK_FRAMES = 1500
"""Frames per chunk when a long recording is encoded once: 30 s at 20 ms, Whisper's context, and a cost of attention
the SSL front-ends can afford."""


@dataclass(frozen=True)
class StateChunking:
    """How a front-end encodes a long recording once (`state_windows`): chunks of `samples` samples starting every
    `step` samples (a multiple of the frame stride, so every chunk's frames fall on one grid); of each chunk's frames,
    the first and last `context_frames` only give context to the others and are dropped, but at the recording's start
    and end (the chunks overlap by `samples - step`)."""

    samples: int
    step: int
    context_frames: int

    @classmethod
    def overlapping(cls, geometry: FrameGeometry, context_frames: int, frames: int = CHUNK_FRAMES) -> StateChunking:
        """Chunks of `frames` frames of `geometry`, each overlapping the next by `2 * context_frames` frames."""
        samples = (frames - 1) * geometry.stride + geometry.receptive_field
        return cls(samples, (frames - 2 * context_frames) * geometry.stride, context_frames)


def convolution_geometry(layers: list[tuple[int, int, int]]) -> FrameGeometry:
    """The geometry of a stack of 1-D convolutions, each `(kernel, stride, padding)`, first layer first."""
    stride, receptive_field, offset = 1, 1, 0
    for kernel, layer_stride, padding in layers:
        offset -= padding * stride
        receptive_field += (kernel - 1) * stride
        stride *= layer_stride
    return FrameGeometry(stride, receptive_field, offset)


class Nes2NetFrontend(Protocol):
    """What every front-end answers (see the module docstring); a typing protocol, not a base class, so that the SSL
    front-end keeps the methods of the transformers model it extends."""

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput: ...

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor: ...

    def frame_geometry(self) -> FrameGeometry: ...

    def activation_bytes(self, samples: int, all_layers: bool) -> int: ...

    def state_chunking(self) -> StateChunking | None: ...

    @classmethod
    def describe(cls, config: Nes2NetConfig) -> str: ...

    def for_export(self) -> nn.Module: ...

    def freeze_feature_encoder(self) -> None: ...

    def load_pretrained_weights(self, source: str) -> None: ...


def _no_attentions(name: str, output_attentions: bool) -> None:
    if output_attentions:
        raise ValueError(f"output_attentions: the {name} front-end returns no attention")


def _load_matching(module: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load `weights` into `module` when their names and shapes are exactly the module's; one line naming `source`
    and the first differences otherwise."""
    expected = module.state_dict()
    missing, unexpected = sorted(expected.keys() - weights.keys()), sorted(weights.keys() - expected.keys())
    resized = sorted(key for key in expected.keys() & weights.keys() if expected[key].shape != weights[key].shape)
    if missing or unexpected or resized:
        raise ValueError(
            f"{source} does not match the front-end of this config: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, other shapes {resized[:3]}"
        )
    module.load_state_dict(weights)


class Nes2NetSslFrontend:
    """A speech foundation model of transformers (wav2vec 2.0 / XLS-R, WavLM, HuBERT, data2vec-audio: the paper's
    front-ends) as a Nes2Net front-end: `(batch, samples)` -> its hidden states, the convolutional feature encoder's
    projection and every transformer layer's, each `(batch, frames, hidden_size)`.

    Built by `from_nes2net_config` as a subclass of the transformers model class (`Nes2NetSslWav2Vec2Model`, ...),
    so its weights keep that model's names (`nes2net.frontend.encoder.layers.0...`) and it keeps every method of the
    model; this class adds the front-end interface.
    """

    @classmethod
    def from_nes2net_config(cls, config: Nes2NetConfig) -> PreTrainedModel:
        return _ssl_frontend_class(MODEL_MAPPING[type(config.frontend_config)])._from_config(config.frontend_config)

    @classmethod
    def is_custom_code(cls) -> bool:
        """False: every module is the transformers model's own (this class only adds the interface), so it is
        initialised, and its checkpoints converted, as transformers does for that model. (As "custom code", a module
        whose own parameters are all inside children, such as wav2vec2's feature projection, was skipped by the init
        and kept its children's generic initialisation.)"""
        return False

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput:
        """The transformers model on the waveform in the model's dtype."""
        return super().forward(
            input_values.to(self.dtype),
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        return self._get_feat_extract_output_lengths(input_lengths).to(torch.long)

    def frame_geometry(self) -> FrameGeometry:
        return convolution_geometry([(kernel, stride, 0) for kernel, stride in
                                     zip(self.config.conv_kernel, self.config.conv_stride)])

    def activation_bytes(self, samples: int, all_layers: bool) -> int:
        """The first convolution's output, the hidden states (all of them, or the last two) and one layer's attention
        scores."""
        config = self.config
        frames = int(self.output_lengths(torch.tensor([samples]))[0])
        kept_layers = config.num_hidden_layers + 1 if all_layers else 2
        floats = samples // config.conv_stride[0] * config.conv_dim[0]
        floats += frames * config.hidden_size * kept_layers + frames * frames * config.num_attention_heads
        return FLOAT32_BYTES * floats

    def state_chunking(self) -> StateChunking | None:
        """30 s chunks overlapping by the positional convolution's reach on each side, so that every kept frame's
        convolutions see real audio; None for a group-norm feature encoder (wav2vec 2.0 Base), whose statistics span
        the whole input. The transformer attends over the whole chunk, so a window's states carry up to 30 s of
        context where the window alone has 4 s: how much that moves scores and verdicts is measured by
        `benchmarks/state_windows.py` (README, "Long recordings")."""
        config = self.config
        if config.feat_extract_norm == "group":
            return None
        kernel = getattr(config, "conv_pos_kernel_size", None)  # data2vec-audio: a stack of positional convolutions
        reach = config.num_conv_pos_embeddings * (kernel // 2) if kernel else config.num_conv_pos_embeddings // 2
        return StateChunking.overlapping(self.frame_geometry(), reach)

    @classmethod
    def describe(cls, config: Nes2NetConfig) -> str:
        frontend = config.frontend_config
        name = FRONTEND_NAMES.get(frontend.model_type, frontend.model_type)
        return f"{name} ({config.num_frontend_layers - 1} layers, {frontend.hidden_size} dimensions)"

    def for_export(self) -> nn.Module:
        return self

    def load_pretrained_weights(self, source: str) -> None:
        """Initialise from a transformers speech model (folder or Hub id) of the same architecture."""
        _load_matching(self, AutoModel.from_pretrained(source).state_dict(), source)


@cache
def _ssl_frontend_class(model_class: type[PreTrainedModel]) -> type[PreTrainedModel]:
    """`Nes2NetSslFrontend` on top of the transformers model class `model_class` (one class per model class)."""
    name = f"Nes2NetSsl{model_class.__name__}"
    return type(name, (Nes2NetSslFrontend, model_class), {"__module__": __name__, "__qualname__": name})


class Nes2NetSpectrogramFrontend(nn.Module):
    """Log-magnitude STFT (Hann window, no centring): `(batch, samples)` -> `(batch, frames, n_fft // 2 + 1)`,
    `frames = (samples - n_fft) // hop_length + 1`. Every frame lies inside the signal, so padding never leaks in."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        self.n_fft = config.spectrogram_n_fft
        self.hop_length = config.spectrogram_hop_length

    @classmethod
    def from_nes2net_config(cls, config: Nes2NetConfig) -> Nes2NetSpectrogramFrontend:
        return cls(config)

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(input_lengths - self.n_fft, self.hop_length, rounding_mode="floor") + 1

    def frame_geometry(self) -> FrameGeometry:
        return FrameGeometry(self.hop_length, self.n_fft)

    def activation_bytes(self, samples: int, all_layers: bool) -> int:
        """The complex spectrogram and its magnitude (a single layer: `all_layers` changes nothing)."""
        frames = int(self.output_lengths(torch.tensor([samples]))[0])
        return FLOAT32_BYTES * 3 * frames * (self.n_fft // 2 + 1)

    def state_chunking(self) -> StateChunking | None:
        """Back-to-back 30 s chunks overlapping by one frame's reach: every frame is a function of its own samples
        only, so the states are those of the whole recording exactly (a window's frames fall on the recording's
        frame grid, up to half a hop from where the window alone would put them)."""
        return StateChunking.overlapping(self.frame_geometry(), context_frames=0)

    @classmethod
    def describe(cls, config: Nes2NetConfig) -> str:
        return (f"a log-magnitude spectrogram ({config.spectrogram_n_fft // 2 + 1} bins, "
                f"hop {config.spectrogram_hop_length})")

    def for_export(self) -> nn.Module:
        """The DFT-product twin (`Nes2NetDftSpectrogramFrontend`): three times faster in ONNX Runtime."""
        return Nes2NetDftSpectrogramFrontend(self)

    def freeze_feature_encoder(self) -> None:
        """Nothing to freeze: the spectrogram has no weights."""

    def load_pretrained_weights(self, source: str) -> None:
        raise ValueError(f"cannot load {source} into the spectrogram front-end: it has no weights")

    def log_magnitude(self, input_values: torch.Tensor) -> torch.Tensor:
        """The transform runs in float64: a float32 one (any FFT size or algorithm) rounds to about 2e-7 of a frame's
        loudest bin, which is 1-2 % of its quietest bins (0.01 nats of their log, up to 2e-4 on the log-odds).
        Returns float32 (float64 for float64 input)."""
        window = torch.hann_window(self.n_fft, device=input_values.device, dtype=torch.float64)
        spectrum = torch.stft(
            input_values.double(), self.n_fft, self.hop_length, window=window, center=False, return_complex=True
        )
        log_magnitude = torch.log(spectrum.abs().clamp(min=1e-5)).transpose(1, 2)
        return log_magnitude.to(torch.promote_types(input_values.dtype, torch.float32))

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput:
        """The log-magnitudes as the single hidden state (the mask is not needed: no frame reads padding)."""
        _no_attentions("spectrogram", output_attentions)
        if not torch.compiler.is_exporting() and input_values.shape[-1] < self.n_fft:  # (a graph cannot raise)
            raise ValueError(
                f"input of {input_values.shape[-1]} samples is shorter than one spectrogram frame ({self.n_fft})"
            )
        log_magnitude = self.log_magnitude(input_values)
        return BaseModelOutput(last_hidden_state=log_magnitude, hidden_states=(log_magnitude,))


class Nes2NetDftSpectrogramFrontend(Nes2NetSpectrogramFrontend):
    """The spectrogram front-end with its float64 STFT as frames times a Hann-windowed DFT basis: the same
    log-magnitudes to float32 rounding. Used for export only: in ONNX Runtime the float64 matrix product is three
    times faster than the float64 STFT kernel."""

    def __init__(self, frontend: Nes2NetSpectrogramFrontend):
        nn.Module.__init__(self)
        self.n_fft, self.hop_length = frontend.n_fft, frontend.hop_length
        self.register_buffer("dft_basis", hann_dft_basis(self.n_fft, torch.float64), persistent=False)

    def for_export(self) -> nn.Module:
        return self

    def log_magnitude(self, input_values: torch.Tensor) -> torch.Tensor:
        frames = input_values.double().unfold(-1, self.n_fft, self.hop_length)  # (batch, frames, n_fft)
        real, imaginary = (frames @ self.dft_basis).chunk(2, dim=-1)
        magnitude = torch.sqrt(real**2 + imaginary**2)
        return torch.log(magnitude.clamp(min=1e-5)).float()


def hann_dft_basis(n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    """The Hann-windowed real DFT as one matrix `(n_fft, 2 * (n_fft // 2 + 1))`, cosines then sines: a frame
    `(..., n_fft)` times it gives the real and imaginary parts of its spectrum (the imaginary part's sign flipped,
    which no magnitude sees). Built in float64, where `(k * t) mod n_fft` keeps the angles exact, then cast."""
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    times = torch.arange(n_fft, dtype=torch.float64)
    angles = 2 * math.pi * torch.remainder(torch.outer(times, bins), n_fft) / n_fft
    window = torch.hann_window(n_fft, dtype=torch.float64)[:, None]
    return torch.cat([torch.cos(angles) * window, torch.sin(angles) * window], dim=1).to(dtype)


@cache
def _whisper_bases(n_fft: int, num_mel_bins: int, sampling_rate: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Whisper's analysis as two matrices: the Hann-windowed real DFT (`hann_dft_basis`, float32) and the Slaney mel
    filter bank `(n_fft // 2 + 1, num_mel_bins)` of `WhisperFeatureExtractor`."""
    with torch.inference_mode(False):  # ordinary tensors even when first built under inference mode
        return _whisper_basis_tensors(n_fft, num_mel_bins, sampling_rate, device)


def _whisper_basis_tensors(n_fft: int, num_mel_bins: int, sampling_rate: int, device: str):
    filters = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1, num_mel_filters=num_mel_bins, min_frequency=0.0,
        max_frequency=sampling_rate / 2, sampling_rate=sampling_rate, norm="slaney", mel_scale="slaney",
    )
    return hann_dft_basis(n_fft, torch.float32).to(device), torch.from_numpy(filters).float().to(device)


class Nes2NetWhisperFrontend(nn.Module):
    """The encoder of a Whisper model on the waveform's own length: `(batch, samples)` -> hidden states, each
    `(batch, frames, d_model)`, at 50 frames per second (`frames = ceil(samples // 160 / 2)`).

    Whisper's log-mel (25 ms Hann, 10 ms hop, reflect-padded, log10 floored 8 below the maximum, scaled `(x + 4) / 4`)
    is computed per utterance over its real samples, then `WhisperEncoder`'s convolutions, positions
    and layers run on real frames only (attention masked, padding zeroed between the convolutions), so a padded
    utterance gives what it gives alone. Audio longer than Whisper's 30 s context is encoded in consecutive 30 s
    chunks, each from position 0 and with its own log-mel floor, as Whisper itself reads long audio. Computed in float32
    up to the encoder."""

    n_fft = 400
    hop_length = 160

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        self.sampling_rate = config.sampling_rate
        self.encoder = WhisperEncoder(config.frontend_config)
        self.chunk_frames = self.encoder.max_source_positions  # encoder frames per 30 s chunk
        self.chunk_mel_frames = 2 * self.chunk_frames  # log-mel frames per chunk (conv2 has stride 2)

    @classmethod
    def from_nes2net_config(cls, config: Nes2NetConfig) -> Nes2NetWhisperFrontend:
        return cls(config)

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        mel_lengths = torch.div(input_lengths, self.hop_length, rounding_mode="floor")
        full_chunks = torch.div(mel_lengths, self.chunk_mel_frames, rounding_mode="floor")
        rest = mel_lengths % self.chunk_mel_frames
        return full_chunks * self.chunk_frames + torch.div(rest + 1, 2, rounding_mode="floor")

    def frame_geometry(self) -> FrameGeometry:
        """The two convolutions over log-mel frames, each frame centred on its hop (`n_fft` wide): frame `i` is
        centred on sample `2 * hop_length * i`."""
        convolutions = [(conv.kernel_size[0], conv.stride[0], conv.padding[0])
                        for conv in (self.encoder.conv1, self.encoder.conv2)]
        in_mel_frames = convolution_geometry(convolutions)
        return FrameGeometry(
            stride=in_mel_frames.stride * self.hop_length,
            receptive_field=(in_mel_frames.receptive_field - 1) * self.hop_length + self.n_fft,
            offset=in_mel_frames.offset * self.hop_length - self.n_fft // 2,
        )

    def activation_bytes(self, samples: int, all_layers: bool) -> int:
        """The framed signal's spectrum, the first convolution's output, every layer's hidden states (the encoder
        keeps them all, so `all_layers` changes nothing) and one layer's attention scores over the 30 s chunks."""
        config = self.encoder.config
        mel_frames = samples // self.hop_length
        frames = int(self.output_lengths(torch.tensor([samples]))[0])
        chunks = -(-mel_frames // self.chunk_mel_frames)
        attended = frames if chunks <= 1 else self.chunk_frames
        floats = mel_frames * (self.n_fft + 2) + mel_frames * config.d_model
        floats += frames * config.d_model * (len(self.encoder.layers) + 1)
        floats += max(chunks, 1) * config.encoder_attention_heads * attended * attended
        return FLOAT32_BYTES * floats

    def state_chunking(self) -> StateChunking | None:
        """Consecutive 30 s chunks, each from position 0: how `forward` encodes long audio, as Whisper reads it. A
        window's states inside a chunk are not those of the window alone (Whisper's positions count from the chunk's
        start and attention spans it), but they are those a back-end trained on cached whole-clip states learnt from;
        `benchmarks/state_windows.py` measures both paths on the test splits and a long recording."""
        chunk = self.chunk_mel_frames * self.hop_length
        return StateChunking(chunk, chunk, context_frames=0)

    @classmethod
    def describe(cls, config: Nes2NetConfig) -> str:
        frontend = config.frontend_config
        return f"{FRONTEND_NAMES['whisper']} ({config.num_frontend_layers - 1} layers, {frontend.d_model} dimensions)"

    def for_export(self) -> nn.Module:
        return self

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the encoder's two convolutions over the log-mel."""
        for conv in (self.encoder.conv1, self.encoder.conv2):
            conv.requires_grad_(False)

    def load_pretrained_weights(self, source: str) -> None:
        """Initialise the encoder from a transformers Whisper model (folder or Hub id) of the same size."""
        _load_matching(self.encoder, AutoModel.from_pretrained(source).get_encoder().state_dict(), source)

    def log_mel(self, input_values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(batch, samples)` float32 and real `lengths` -> `(batch, num_mel_bins, samples // hop_length)`, zero past
        each utterance's `lengths // hop_length` frames. Computed in float32 under autocast too (mixed precision), as
        Whisper's feature extractor computes it."""
        if torch.is_autocast_enabled(input_values.device.type):
            with torch.autocast(input_values.device.type, enabled=False):
                return self.log_mel(input_values.float(), lengths)
        pad = self.n_fft // 2
        if not torch.compiler.is_exporting() and int(lengths.min()) <= pad:  # (an exported graph cannot raise)
            raise ValueError(f"input of {int(lengths.min())} samples is too short for Whisper's log-mel "
                             f"(more than {pad} needed)")
        # Reflect-pad every row at its own real end, as an unpadded `torch.stft(center=True)` would.
        positions = torch.arange(input_values.shape[-1] + 2 * pad, device=input_values.device)[None, :] - pad
        positions = positions.abs()
        last = lengths[:, None] - 1
        positions = torch.where(positions > last, 2 * last - positions, positions).clamp(0, input_values.shape[-1] - 1)
        frames = input_values.gather(1, positions).unfold(-1, self.n_fft, self.hop_length)[:, :-1]
        bases = _whisper_basis_tensors if torch.compiler.is_exporting() else _whisper_bases  # no traced tensor cached
        dft, filters = bases(self.n_fft, self.encoder.num_mel_bins, self.sampling_rate, str(input_values.device))
        real, imaginary = (frames @ dft).chunk(2, dim=-1)
        log_spec = ((real**2 + imaginary**2) @ filters).clamp(min=1e-10).log10()  # (batch, mel frames, mels)
        mel_frames = torch.div(lengths, self.hop_length, rounding_mode="floor")
        mel_mask = length_mask(mel_frames, log_spec.shape[1])[..., None]
        # The floor follows the maximum of each 30 s chunk, as the feature extractor's is per 30 s input.
        frame_peaks = log_spec.masked_fill(~mel_mask, -torch.inf).amax(dim=2)  # (batch, mel frames)
        chunk_index = (torch.arange(log_spec.shape[1], device=lengths.device) // self.chunk_mel_frames).expand_as(
            frame_peaks)
        peaks = torch.full((log_spec.shape[0], log_spec.shape[1] // self.chunk_mel_frames + 1), -torch.inf,
                           device=log_spec.device).scatter_reduce(1, chunk_index, frame_peaks, "amax")
        peak = peaks.gather(1, chunk_index)[..., None]
        log_spec = (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0
        return (log_spec * mel_mask).transpose(1, 2)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput:
        """The embedded positions and the output of every encoder layer (the last one layer-normed), as
        `WhisperEncoder`'s `hidden_states`; `last_hidden_state` is the last of them."""
        _no_attentions("whisper", output_attentions)
        input_values = input_values.float()
        batch_size = input_values.shape[0]
        lengths = (attention_mask.sum(dim=-1) if attention_mask is not None
                   else torch.full((batch_size,), input_values.shape[-1], device=input_values.device))
        mel = self.log_mel(input_values, lengths)
        mel_lengths = torch.div(lengths, self.hop_length, rounding_mode="floor")
        chunk = self.chunk_mel_frames
        num_chunks = -(-mel.shape[-1] // chunk)
        if num_chunks > 1:  # (batch, mels, chunks * chunk) -> (batch * chunks, mels, chunk)
            mel = F.pad(mel, (0, num_chunks * chunk - mel.shape[-1]))
            mel = mel.unflatten(-1, (num_chunks, chunk)).transpose(1, 2).flatten(0, 1)
            starts = torch.arange(num_chunks, device=lengths.device) * chunk
            chunk_lengths = (mel_lengths[:, None] - starts[None, :]).clamp(0, chunk).flatten()
            chunk_lengths = torch.where(chunk_lengths == 0, chunk, chunk_lengths)  # empty chunks: unused, not NaN
        else:
            chunk_lengths = mel_lengths
        encoder = self.encoder
        mel = mel.to(encoder.conv1.weight.dtype)
        mel_mask = length_mask(chunk_lengths, mel.shape[-1])[:, None, :]
        hidden = F.gelu(encoder.conv1(mel)) * mel_mask
        hidden = F.gelu(encoder.conv2(hidden)).transpose(1, 2)
        frames = hidden.shape[1]
        hidden = hidden + encoder.embed_positions.weight[:frames]
        frame_mask = length_mask(torch.div(chunk_lengths + 1, 2, rounding_mode="floor"), frames)
        additive_mask = torch.zeros(frame_mask.shape, dtype=hidden.dtype, device=hidden.device)
        additive_mask = additive_mask.masked_fill(~frame_mask, torch.finfo(hidden.dtype).min)[:, None, None, :]
        hidden_states = [hidden]
        for layer in encoder.layers:
            hidden = layer(hidden, additive_mask)
            hidden_states.append(hidden)
        hidden_states[-1] = encoder.layer_norm(hidden)
        if num_chunks > 1:  # back to (batch, frames, d_model), cropped to the longest utterance's frames
            frames = int(self.output_lengths(lengths).max())
            hidden_states = [state.unflatten(0, (batch_size, num_chunks)).flatten(1, 2)[:, :frames]
                             for state in hidden_states]
        return BaseModelOutput(last_hidden_state=hidden_states[-1], hidden_states=tuple(hidden_states))


FRONTEND_CLASSES: dict[str, type] = {
    "ssl": Nes2NetSslFrontend,
    "spectrogram": Nes2NetSpectrogramFrontend,
    "whisper": Nes2NetWhisperFrontend,
}


def frontend_class(config: Nes2NetConfig) -> type:
    """The front-end class `config.frontend_type` names (its `describe` needs no weights)."""
    return FRONTEND_CLASSES[config.frontend_type]


def build_frontend(config: Nes2NetConfig) -> nn.Module:
    """The front-end of `config`; an SSL or Whisper encoder truncated to `config.frontend_num_layers` layers when set
    (the checkpoint's deeper layers then go unused)."""
    if config.frontend_num_layers is not None:
        config = copy.deepcopy(config)
        config.frontend_config.num_hidden_layers = config.frontend_num_layers
    return frontend_class(config).from_nes2net_config(config)


def describe_frontend(config: Nes2NetConfig) -> str:
    """The front-end of `config` in a few words, e.g. `wav2vec 2.0 (24 layers, 1024 dimensions)`."""
    return frontend_class(config).describe(config)


__all__ = [
    "CHUNK_FRAMES",
    "FrameGeometry",
    "Nes2NetFrontend",
    "Nes2NetSslFrontend",
    "Nes2NetSpectrogramFrontend",
    "Nes2NetDftSpectrogramFrontend",
    "Nes2NetWhisperFrontend",
    "StateChunking",
    "build_frontend",
    "describe_frontend",
    "frontend_class",
    "length_mask",
]
