"""The converter against the authors' released checkpoint layouts, as their own model code writes them.

`original_checkpoint_layouts.json` lists every tensor name and shape of each released checkpoint (its `note` says how
it was made and from which upstream commits). A state dict built from it (random back-end and layer-merge tensors;
the front-end's 300M tensors on the meta device, since only names and shapes are converted) must convert through
`modeling_nes2net.convert` into the model of that release's preset with no tensor missing, unexpected or misshapen.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.convert import ConversionError, build_config, convert_state_dict, pick_preset, split_layout

MANIFEST = json.loads((Path(__file__).with_name("original_checkpoint_layouts.json")).read_text(encoding="utf-8"))
RELEASES = MANIFEST["releases"]
# fairseq's pre-training heads: in the released XLS-R files, used by no classifier.
PRETRAINING_HEADS = re.compile(r"^(quantizer\.|project_q\.|final_proj\.)")
MASK_EMBEDDING = "mask_emb"  # kept where the preset's config enables time masking, else left out


def released_state_dict(release: str) -> dict[str, torch.Tensor]:
    """The release's tensors by the manifest: random back-end and merge tensors, empty meta tensors for the
    front-end."""
    layout, generator = RELEASES[release], torch.Generator().manual_seed(0)
    state = {layout["frontend_prefix"] + key: torch.empty(shape, device="meta")
             for key, shape in MANIFEST["frontends"][layout["frontend"]].items()}
    for key, shape in layout["tensors"].items():
        state[key] = (torch.tensor(100) if key.endswith("num_batches_tracked")
                      else torch.randn(shape, generator=generator))
    return state


@pytest.mark.parametrize("release", list(RELEASES))
def test_each_released_layout_converts_into_its_preset_with_every_tensor_placed(release):
    state = released_state_dict(release)
    original = split_layout(state)
    with torch.device("meta"):
        model = Nes2NetForAudioClassification(build_config(original, release))
    converted, ignored = convert_state_dict(original, model.state_dict())
    loaded = model.load_state_dict(converted, strict=True, assign=True)
    assert loaded.missing_keys == [] and loaded.unexpected_keys == []
    layout = RELEASES[release]
    prefix = layout["frontend_prefix"]
    heads = [prefix + key for key in MANIFEST["frontends"][layout["frontend"]] if PRETRAINING_HEADS.match(key)]
    assert sorted(set(ignored) - {prefix + MASK_EMBEDDING}) == sorted(heads)
    kept = sum(math.prod(state[key].shape) for key in state if key not in ignored)
    assert sum(tensor.numel() for tensor in model.state_dict().values()) == kept


# The two SeLU / ReLU Nes2Net-X CtrSVDD releases differ only in what no tensor stores (activation, SE floor).
STORED_ALIKE = {"nes2net-x-wavlm-sea", "nes2net-x-selu-wavlm-sea"}


@pytest.mark.parametrize("release", list(RELEASES))
def test_the_preset_is_read_from_each_released_layout_or_the_tie_is_named(release):
    original = split_layout(released_state_dict(release))
    if release in STORED_ALIKE:
        with pytest.raises(ConversionError, match="fit presets nes2net-x-wavlm-sea, nes2net-x-selu-wavlm-sea"):
            pick_preset(original)
    else:
        assert pick_preset(original) == release
