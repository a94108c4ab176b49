"""A plain dataset card (README.md) rendered from a build's info.

The full card is rendered by `hub_cards`; this one makes a built folder self-describing and gives the Hub
the `configs` header that maps each split to its shards.
"""

from __future__ import annotations

from typing import Any

import yaml

COLUMN_MEANINGS = {
    "audio": "the original audio file (bytes as distributed), decoded at 16 kHz",
    "label": "1 = bona fide, 0 = spoof",
    "utt_id": "utterance id (from the protocol, else the file path without its suffix)",
    "speaker": "speaker (or singer) id, null when the corpus has none",
    "attack": "spoofing system id; `bonafide` for real speech, `unknown` when the corpus does not say",
}
TAGS = ["audio", "speech", "anti-spoofing", "deepfake-detection", "nes2net"]


def render_card(info: dict[str, Any]) -> str:
    """README.md text for a built dataset, from the dict written to build_info.json."""
    header = {
        "pretty_name": info["title"],
        **({"license": info["license"]} if info.get("license") else {}),
        "task_categories": ["audio-classification"],
        "tags": TAGS,
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in info["splits"]],
            }
        ],
    }
    split_rows = "\n".join(
        f"| {split} | {s['num_rows']:,} | {s['label_counts']['bonafide']:,} | {s['label_counts']['spoof']:,} "
        f"| {', '.join(a for a in s['attack_counts'] if a != 'bonafide') or '-'} | {s['duration_hours']:.2f} |"
        for split, s in info["splits"].items()
    )
    column_rows = "\n".join(
        f"| `{name}` | {_feature_type(feature)} | {COLUMN_MEANINGS.get(name, 'corpus metadata')} |"
        for name, feature in info["features"].items()
    )
    first_split = next(iter(info["splits"]))
    versions = info["built_with"]
    licence = (
        f"The corpus is distributed by its owners under `{info['license']}`; this copy keeps their terms."
        if info.get("license")
        else "Check the corpus owners' terms before redistributing this copy."
    )
    return f"""---
{yaml.safe_dump(header, sort_keys=False).strip()}
---

# {info["title"]}

{info["description"]}

This is the corpus as its owners distribute it, converted by `nes2net data build` into the schema shared by
all nes2net anti-spoofing datasets. `label` is a ClassLabel with names `["spoof", "bonafide"]`, so 1 means
bona fide, as in the Nes2Net paper. The audio is stored as the original encoded files.

## Splits

| split | rows | bona fide | spoof | attacks | hours |
|---|---|---|---|---|---|
{split_rows}

## Columns

| column | type | meaning |
|---|---|---|
{column_rows}

## Use

```python
from datasets import load_dataset

dataset = load_dataset("<this repo or folder>", split="{first_split}")   # audio decoded at 16 kHz
shards = {{"{first_split}": "data/{first_split}-*.parquet"}}
stream = load_dataset("parquet", data_files=shards, split="{first_split}", streaming=True)

from training.data import load_training_dataset   # nes2net: fast decode + random 64,600-sample crops
train = load_training_dataset("<this repo or folder>", "{first_split}")
```

## How it was built

Source layout: {info["source_layout"]}.

```
{info["build_command"]}
```

Built with nes2net {versions["nes2net"] or "(source tree)"} and datasets {versions["datasets"]} on {info["created"]}.

## Licence

{licence}
"""


def _feature_type(feature: dict[str, Any]) -> str:
    kind = feature["_type"]
    if kind == "Value":
        return feature["dtype"]
    if kind == "ClassLabel":
        return f"ClassLabel({', '.join(feature['names'])})"
    if kind == "Audio":
        return f"Audio({feature.get('sampling_rate')} Hz)"
    if kind in ("List", "Sequence", "LargeList"):
        return f"list<{_feature_type(feature['feature'])}>"
    return kind
