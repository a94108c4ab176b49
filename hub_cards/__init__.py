"""Hub cards and publishing for nes2net models and datasets.

- `results`: the evaluation-output JSON schema every number on a card comes from.
- `model_card` / `dataset_card`: render README.md cards (templates in `templates/`).
- `checks`, `metadata`, `layout`: what a publishable folder and its card metadata must satisfy.
- `push`: the `nes2net push` command; `render`: `python -m hub_cards.render`.
"""
