"""The authors' state-dict layout of the Nes2Net back-end and layer merges, and its mapping onto this package's.

Original keys (under `Nested_Res2Net_TDNN.` for the back-end, `ssl_model.` for the merges) are renamed by ordered
regular-expression rules; Nes2Net-X tensors change shape where the layouts differ: the `(w, w, k, 1)` Conv2d kernels
become `(w, w, k)` Conv1d kernels and the `(1, 1, 1, n)` slice weights become `(n,)`.
"""

from __future__ import annotations

import re

import torch

BACKEND_PREFIX = "Nested_Res2Net_TDNN."
MERGE_PREFIX = "ssl_model."

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
