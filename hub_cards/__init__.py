"""Hub cards and publishing for nes2net models and datasets.

Every number on a model card comes from the evaluation-output files whose schema is `hub_cards.results` (written by
`nes2net evaluate`). The package imports `modeling_nes2net` and nothing above it (docs/architecture.md, Layers).

- `model_card` / `dataset_card`: render README.md cards (templates in `templates/`).
- `checks`, `metadata`, `published_files`: what a publishable folder and its card metadata must satisfy.
- `push`: the `nes2net push` command; `render`: `python -m hub_cards.render`.
"""
