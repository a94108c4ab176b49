"""Run a saved model folder as remote code in a fresh process that cannot import this repository's packages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

HIDDEN_PACKAGES = ("modeling_nes2net", "training", "hub_cards", "nes2net")


def logits_without_the_package(
    folder: Path, waveform: np.ndarray, work_dir: Path, auto_class: str = "AutoModelForAudioClassification",
    output: str = "logits",
) -> np.ndarray:
    """`output` of the `auto_class` model for `waveform` (e.g. logits `(1, num_labels)`), through the folder's
    remote-code feature extractor (which must refuse NaN samples) and model, computed in a subprocess where
    importing any of `HIDDEN_PACKAGES` fails."""
    np.save(work_dir / "waveform.npy", waveform)
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        HIDDEN = {HIDDEN_PACKAGES!r}
        class HidePackages(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HIDDEN:
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, HidePackages())
        import numpy as np, torch
        from transformers import AutoFeatureExtractor, {auto_class}
        try:
            import modeling_nes2net
            raise SystemExit("the package is importable: the test would prove nothing")
        except ModuleNotFoundError:
            pass
        model = {auto_class}.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        extractor = AutoFeatureExtractor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        assert type(extractor).__name__ == "Nes2NetFeatureExtractor", type(extractor)
        try:
            extractor(np.full(100, np.nan), sampling_rate=model.config.sampling_rate)
            raise SystemExit("NaN samples were accepted")
        except ValueError:
            pass
        waveform = np.load({str(work_dir / "waveform.npy")!r})
        inputs = extractor(waveform, sampling_rate=model.config.sampling_rate, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_values=inputs["input_values"]).{output}
        np.save({str(work_dir / "logits.npy")!r}, logits.numpy())
        """
    )
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(work_dir / "modules")}
    environment.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=work_dir, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(work_dir / "logits.npy")
