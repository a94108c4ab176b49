"""Builder for PartialSpoof (Zhang et al.): utterances with spoofed segments embedded in bona fide speech.

Besides the utterance label, every row carries the segment labels at each resolution the corpus ships
(`segment_labels_10ms` ... `segment_labels_640ms`): one int8 per segment, 1 = bona fide, 0 = spoof, the
same convention as `label`.
"""

from __future__ import annotations

import codecs
import pickle
import re
from pathlib import Path

import numpy as np
from datasets import List, Value
from numpy.lib import format as npy_format

from .layout import CorpusScan, LayoutProblem, ProtocolCorpusBuilder, SplitSource

SEGMENT_LABEL_FILE = re.compile(r"^(?P<split>\w+)_seglab_(?P<seconds>\d+(\.\d+)?)\.npy$")
_RECONSTRUCT, _SCALAR = np.ndarray(0).__reduce__()[0], np.float64(0).__reduce__()[0]
ARRAY_GLOBALS = {
    **{(module, "_reconstruct"): _RECONSTRUCT for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _SCALAR for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 pickles the bytes of an array
}
"""The only globals a segment label file may name: what NumPy (1.x or 2.x) needs to rebuild arrays."""


def segment_column(seconds: str) -> str:
    """`0.16` -> `segment_labels_160ms`."""
    return f"segment_labels_{round(float(seconds) * 1000)}ms"


class PartialSpoofBuilder(ProtocolCorpusBuilder):
    name = "partialspoof"
    title = "PartialSpoof"
    description = (
        "ASVspoof 2019 LA utterances in which spoofed segments are embedded in bona fide speech, with "
        "utterance labels and segment labels at every shipped resolution for spoof localisation."
    )
    layout = (
        "ROOT = the database/ folder: protocols/PartialSpoof_LA_cm_protocols/"
        "PartialSpoof.LA.cm.{train,dev,eval}.trl.txt (SPEAKER FILE - SYSTEM KEY), {train,dev,eval}/con_wav/FILE.wav "
        "and segment_labels/{split}_seglab_{0.01..0.64}.npy "
        "(pickled dicts: utterance -> '1' bona fide / '0' spoof per segment, read by an unpickler that admits NumPy "
        "arrays and nothing else)"
    )
    num_fields = (5,)
    columns = ("speaker", "utt_id", None, "attack", "key")
    keys = {"bonafide": 1, "spoof": 0}
    sources = {
        split: SplitSource(
            (f"protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{split}.trl.txt",),
            (f"{split}/con_wav",),
            suffix=".wav",
        )
        for split in ("train", "dev", "eval")
    }

    def scan(self, root: Path) -> CorpusScan:
        scan = super().scan(root)
        label_dir = root / "segment_labels"
        if not label_dir.is_dir():
            scan.problems.append(LayoutProblem("missing", label_dir, "segment label folder not found"))
            return scan
        shipped = {
            (match["split"], match["seconds"]): label_dir / name
            for name in sorted(path.name for path in label_dir.iterdir())
            if (match := SEGMENT_LABEL_FILE.match(name))
        }
        resolutions = sorted({seconds for _, seconds in shipped}, key=float)
        for split, utterances in scan.splits.items():
            for seconds in resolutions:
                path = shipped.get((split, seconds), label_dir / f"{split}_seglab_{seconds}.npy")
                if not path.is_file():
                    scan.problems.append(LayoutProblem("missing", path, "segment labels of this resolution not found"))
                    continue
                self._attach_segment_labels(path, segment_column(seconds), utterances, scan.problems)
        scan.metadata_features.update({segment_column(seconds): List(Value("int8")) for seconds in resolutions})
        return scan

    @staticmethod
    def _attach_segment_labels(path: Path, column: str, utterances: list, problems: list[LayoutProblem]) -> None:
        try:
            labels_by_utterance = read_segment_labels(path)
        except ValueError as error:
            problems.append(LayoutProblem("malformed", path, str(error)))
            return
        for utterance in utterances:
            segments = labels_by_utterance.get(utterance.utt_id)
            if segments is None:
                problems.append(LayoutProblem("missing", path, f"no segment labels for {utterance.utt_id}"))
                continue
            values = np.asarray(segments)
            if not np.isin(values.astype(str), ("0", "1")).all():
                problems.append(
                    LayoutProblem("malformed", path, f"segment labels of {utterance.utt_id} are not all 0/1")
                )
                continue
            utterance.metadata[column] = values.astype(np.int8)


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays, dicts, lists and strings; refuses every other global, so a file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return ARRAY_GLOBALS[(module, name)]


def read_segment_labels(path: Path) -> dict[str, np.ndarray]:
    """A PartialSpoof `*_seglab_*.npy` file (`np.save` of a dict: utterance -> `(segments,)` array of '0' / '1'),
    read without executing anything it holds; raises ValueError saying what is wrong with it."""
    with open(path, "rb") as file:
        try:
            version = npy_format.read_magic(file)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(file)
        except ValueError as error:
            raise ValueError(f"not a NumPy .npy file ({error})") from None
        if dtype != np.dtype(object) or shape != ():
            raise ValueError(f"holds a {dtype} array of shape {shape}, not a pickled dict of segment labels")
        try:
            array = _ArrayUnpickler(file).load()
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a pickled dict of NumPy arrays ({error})") from None
    labels = array.item() if isinstance(array, np.ndarray) and array.shape == () else None
    if not isinstance(labels, dict) or not all(isinstance(key, str) for key in labels):
        raise ValueError(f"holds a {type(labels).__name__}, not a dict of utterance id -> segment labels")
    return labels
