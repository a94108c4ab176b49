"""The authors' state-dict layout of the Nes2Net back-end, layer merges and SSL front-ends, and its mapping onto
this package's.

Original keys (under `Nested_Res2Net_TDNN.` for the back-end, `ssl_model.` for the merges, `ssl_model.model.` or
s3prl's `ssl_model.model.model.` for the front-end) are renamed by ordered regular-expression rules; Nes2Net-X tensors
change shape where the layouts differ: the `(w, w, k, 1)` Conv2d kernels become `(w, w, k)` Conv1d kernels and the
`(1, 1, 1, n)` slice weights become `(n,)`. Front-end keys use the fairseq wav2vec 2.0 / unilm WavLM names and become
the names of transformers' `Wav2Vec2Model` / `WavLMModel`.
"""

from __future__ import annotations

import re

import torch

BACKEND_PREFIX = "Nested_Res2Net_TDNN."
MERGE_PREFIX = "ssl_model."
FRONTEND_PREFIX = "ssl_model.model."  # fairseq wav2vec 2.0 (XLS-R) or unilm WavLM
S3PRL_FRONTEND_PREFIX = "ssl_model.model.model."  # unilm WavLM inside s3prl's UpstreamExpert

_BLOCK = r"Build_in_Res2Nets\.(\d+)\."
BACKEND_RULES: list[tuple[str, str]] = [
    (_BLOCK + r"conv1\.", r"blocks.\1.conv_in."),
    (_BLOCK + r"bn1\.", r"blocks.\1.norm_in."),
    (_BLOCK + r"convs\.(\d+)\.", r"blocks.\1.convs.\2."),
    (_BLOCK + r"bns\.(\d+)\.", r"blocks.\1.norms.\2."),
    (_BLOCK + r"weighted_sum\.(\d+)$", r"blocks.\1.slice_sums.\2.weight"),
    (_BLOCK + r"conv3\.", r"blocks.\1.conv_out."),
    (_BLOCK + r"bn3\.", r"blocks.\1.norm_out."),
    (_BLOCK + r"se\.se\.1\.", r"blocks.\1.se.squeeze."),
    (_BLOCK + r"se\.se\.3\.", r"blocks.\1.se.excite."),
    (r"^bns\.(\d+)\.", r"block_norms.\1."),
    (r"^bn\.", r"norm."),
    (r"^pooling\.linear1\.", r"pooling.attention_in."),
    (r"^pooling\.linear2\.", r"pooling.attention_out."),
    (r"^fc\.", r"classifier."),
]

MERGE_RULES: list[tuple[str, str]] = [
    (r"^fc_att_merge\.0\.weight$", "squeeze.weight"),
    (r"^fc_att_merge\.2\.weight$", "excite.weight"),
    (r"^weight_hidd$", "layer_weights"),
    (r"^W$", "channel_weight"),
    (r"^W1$", "layer_squeeze"),
    (r"^W2$", "layer_excite"),
    (r"^linear_proj\.", "projection."),
]

_LAYER = r"^encoder\.layers\.(\d+)\."
_CONV = r"^feature_extractor\.conv_layers\."
_ORIGINAL_POS_CONV = r"^encoder\.pos_conv\.0\."
_POS_CONV = "encoder.pos_conv_embed.conv."
_POS_CONV_WEIGHT = _POS_CONV + "parametrizations.weight."
FRONTEND_RULES: list[tuple[str, str]] = [
    (_CONV + r"(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (_CONV + r"(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.layer_norm."),  # layer norm in every block
    (_CONV + r"0\.2\.", "feature_extractor.conv_layers.0.layer_norm."),  # group norm in the first block only
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^mask_emb$", "masked_spec_embed"),
    (_ORIGINAL_POS_CONV + r"(weight_g|parametrizations\.weight\.original0)$", _POS_CONV_WEIGHT + "original0"),
    (_ORIGINAL_POS_CONV + r"(weight_v|parametrizations\.weight\.original1)$", _POS_CONV_WEIGHT + "original1"),
    (_ORIGINAL_POS_CONV + r"bias$", _POS_CONV + "bias"),
    (r"^encoder\.layer_norm\.", "encoder.layer_norm."),
    (_LAYER + r"self_attn\.(k|q|v|out)_proj\.", r"encoder.layers.\1.attention.\2_proj."),
    (_LAYER + r"self_attn\.grep_linear\.", r"encoder.layers.\1.attention.gru_rel_pos_linear."),
    (_LAYER + r"self_attn\.grep_a$", r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (_LAYER + r"self_attn\.relative_attention_bias\.", r"encoder.layers.\1.attention.rel_attn_embed."),
    (_LAYER + r"self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (_LAYER + r"fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (_LAYER + r"fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    (_LAYER + r"final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
]

# Pre-training heads of fairseq's wav2vec 2.0 (quantised targets and their projections): unused by a classifier.
TRAINING_ONLY_FRONTEND_KEYS = re.compile(r"^(quantizer\.|project_q\.|final_proj\.)")


def _rename(key: str, rules: list[tuple[str, str]]) -> str | None:
    for pattern, replacement in rules:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return None


def rename_backend_key(key: str) -> str | None:
    """`Build_in_Res2Nets.0.conv1.weight` -> `blocks.0.conv_in.weight` (keys relative to the back-end), None if unknown."""
    return _rename(key, BACKEND_RULES)


def rename_merge_key(key: str) -> str | None:
    """`fc_att_merge.0.weight` -> `squeeze.weight` (keys relative to `ssl_model.` / the layer merge), None if unknown."""
    return _rename(key, MERGE_RULES)


def rename_frontend_key(key: str) -> str | None:
    """`encoder.layers.0.self_attn.k_proj.weight` -> `encoder.layers.0.attention.k_proj.weight` (fairseq / unilm
    names relative to the SSL model -> transformers names relative to `Wav2Vec2Model` / `WavLMModel`), None if unknown.

    The positional convolution's weight norm becomes `parametrizations.weight.original0/1` (g, v), the naming of
    `torch.nn.utils.parametrizations.weight_norm` that transformers uses.
    """
    return _rename(key, FRONTEND_RULES)


def reshape_backend_tensor(new_key: str, tensor: torch.Tensor) -> torch.Tensor:
    """Drop the trailing unit axis of Nes2Net-X Conv2d kernels and flatten slice weights."""
    if new_key.endswith("slice_sums") or ".slice_sums." in new_key:
        return tensor.reshape(-1)
    if ".convs." in new_key and new_key.endswith("weight") and tensor.dim() == 4:
        return tensor.squeeze(-1)
    return tensor


def convert_backend_state_dict(original: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Original back-end keys (without `Nested_Res2Net_TDNN.`) -> ours (without `backend.`), plus unmapped keys."""
    converted, unmapped = {}, []
    for key, tensor in original.items():
        new_key = rename_backend_key(key)
        if new_key is None:
            unmapped.append(key)
        else:
            converted[new_key] = reshape_backend_tensor(new_key, tensor)
    return converted, unmapped
