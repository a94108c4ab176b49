"""The authors' state-dict layout of the Nes2Net back-end, layer merges and SSL front-ends, and its mapping onto
this package's.

Original keys (under `Nested_Res2Net_TDNN.` for the back-end, `ssl_model.` for the merges, `ssl_model.model.` or
s3prl's `ssl_model.model.model.` for the front-end) are renamed by ordered regular-expression rules; Nes2Net-X tensors
change shape where the layouts differ: the `(w, w, k, 1)` Conv2d kernels become `(w, w, k)` Conv1d kernels and the
`(1, 1, 1, n)` slice weights become `(n,)`. Front-end keys use the fairseq wav2vec 2.0 / unilm WavLM names and become
the names of transformers' `Wav2Vec2Model` / `WavLMModel`. `rename_key` gives the full key of
`Nes2NetForAudioClassification` (`nes2net.frontend.*`, `nes2net.layer_merge.*`, `nes2net.backend.*`, `classifier.*`).
"""

from __future__ import annotations

import re

import torch

BACKEND_PREFIX = "Nested_Res2Net_TDNN."
MERGE_PREFIX = "ssl_model."
FRONTEND_PREFIX = "ssl_model.model."  # fairseq wav2vec 2.0 (XLS-R) or unilm WavLM
S3PRL_FRONTEND_PREFIX = "ssl_model.model.model."  # unilm WavLM inside s3prl's UpstreamExpert

BACKEND = "nes2net.backend."
CLASSIFIER = "classifier."
MERGE = "nes2net.layer_merge."
FRONTEND = "nes2net.frontend."

_BLOCK = r"^Build_in_Res2Nets\.(\d+)\."
_BLOCKS = BACKEND + r"blocks.\1."
BACKEND_RULES: list[tuple[str, str]] = [
    (_BLOCK + r"conv1\.", _BLOCKS + "conv_in."),
    (_BLOCK + r"bn1\.", _BLOCKS + "norm_in."),
    (_BLOCK + r"convs\.(\d+)\.", _BLOCKS + r"convs.\2."),
    (_BLOCK + r"bns\.(\d+)\.", _BLOCKS + r"norms.\2."),
    (_BLOCK + r"weighted_sum\.(\d+)$", _BLOCKS + r"slice_sums.\2.weight"),
    (_BLOCK + r"conv3\.", _BLOCKS + "conv_out."),
    (_BLOCK + r"bn3\.", _BLOCKS + "norm_out."),
    (_BLOCK + r"se\.se\.1\.", _BLOCKS + "se.squeeze."),
    (_BLOCK + r"se\.se\.3\.", _BLOCKS + "se.excite."),
    (r"^bns\.(\d+)\.", BACKEND + r"block_norms.\1."),
    (r"^bn\.", BACKEND + "norm."),
    (r"^pooling\.linear1\.", BACKEND + "pooling.attention_in."),
    (r"^pooling\.linear2\.", BACKEND + "pooling.attention_out."),
    (r"^fc\.", CLASSIFIER),
]

MERGE_RULES: list[tuple[str, str]] = [
    (r"^fc_att_merge\.0\.weight$", MERGE + "squeeze.weight"),
    (r"^fc_att_merge\.2\.weight$", MERGE + "excite.weight"),
    (r"^weight_hidd$", MERGE + "layer_weights"),
    (r"^W$", MERGE + "channel_weight"),
    (r"^W1$", MERGE + "layer_squeeze"),
    (r"^W2$", MERGE + "layer_excite"),
    (r"^linear_proj\.", MERGE + "projection."),
]

_LAYER = r"^encoder\.layers\.(\d+)\."
_CONV = r"^feature_extractor\.conv_layers\."
_ORIGINAL_POS_CONV = r"^encoder\.pos_conv\.0\."
_POS_CONV = "encoder.pos_conv_embed.conv."
_POS_CONV_WEIGHT = _POS_CONV + "parametrizations.weight."
FRONTEND_RULES: list[tuple[str, str]] = [
    (_CONV + r"(\d+)\.0\.", FRONTEND + r"feature_extractor.conv_layers.\1.conv."),
    (_CONV + r"(\d+)\.2\.1\.", FRONTEND + r"feature_extractor.conv_layers.\1.layer_norm."),  # layer norm in every block
    (_CONV + r"0\.2\.", FRONTEND + "feature_extractor.conv_layers.0.layer_norm."),  # group norm in the first block only
    (r"^layer_norm\.", FRONTEND + "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", FRONTEND + "feature_projection.projection."),
    (r"^mask_emb$", FRONTEND + "masked_spec_embed"),
    (_ORIGINAL_POS_CONV + r"(weight_g|parametrizations\.weight\.original0)$",
     FRONTEND + _POS_CONV_WEIGHT + "original0"),
    (_ORIGINAL_POS_CONV + r"(weight_v|parametrizations\.weight\.original1)$",
     FRONTEND + _POS_CONV_WEIGHT + "original1"),
    (_ORIGINAL_POS_CONV + r"bias$", FRONTEND + _POS_CONV + "bias"),
    (r"^encoder\.layer_norm\.", FRONTEND + "encoder.layer_norm."),
    (_LAYER + r"self_attn\.(k|q|v|out)_proj\.", FRONTEND + r"encoder.layers.\1.attention.\2_proj."),
    (_LAYER + r"self_attn\.grep_linear\.", FRONTEND + r"encoder.layers.\1.attention.gru_rel_pos_linear."),
    (_LAYER + r"self_attn\.grep_a$", FRONTEND + r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (_LAYER + r"self_attn\.relative_attention_bias\.", FRONTEND + r"encoder.layers.\1.attention.rel_attn_embed."),
    (_LAYER + r"self_attn_layer_norm\.", FRONTEND + r"encoder.layers.\1.layer_norm."),
    (_LAYER + r"fc1\.", FRONTEND + r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (_LAYER + r"fc2\.", FRONTEND + r"encoder.layers.\1.feed_forward.output_dense."),
    (_LAYER + r"final_layer_norm\.", FRONTEND + r"encoder.layers.\1.final_layer_norm."),
]

# Pre-training heads of fairseq's wav2vec 2.0 (quantised targets and their projections): unused by a classifier.
TRAINING_ONLY_FRONTEND_KEYS = re.compile(r"^(quantizer\.|project_q\.|final_proj\.)")

_RULES = {"frontend": FRONTEND_RULES, "layer_merge": MERGE_RULES, "backend": BACKEND_RULES}


def rename_key(part: str, key: str) -> str | None:
    """The model key of original `key` (relative to its `part`'s prefix), None if unknown. For example
    `backend`, `Build_in_Res2Nets.0.conv1.weight` -> `nes2net.backend.blocks.0.conv_in.weight`; `layer_merge`,
    `fc_att_merge.0.weight` -> `nes2net.layer_merge.squeeze.weight`; `frontend` (fairseq / unilm names relative to
    the SSL model), `encoder.layers.0.self_attn.k_proj.weight` ->
    `nes2net.frontend.encoder.layers.0.attention.k_proj.weight`.

    The positional convolution's weight norm becomes `parametrizations.weight.original0/1` (g, v), the naming of
    `torch.nn.utils.parametrizations.weight_norm` that transformers uses.
    """
    for pattern, replacement in _RULES[part]:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return None


def reshape_tensor(new_key: str, tensor: torch.Tensor) -> torch.Tensor:
    """Drop the trailing unit axis of Nes2Net-X Conv2d kernels and flatten slice weights."""
    if ".slice_sums." in new_key:
        return tensor.reshape(-1)
    if ".convs." in new_key and new_key.endswith("weight") and tensor.dim() == 4:
        return tensor.squeeze(-1)
    return tensor

