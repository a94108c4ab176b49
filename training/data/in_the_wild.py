"""Builder for In-the-Wild (Müller et al., 2022): real and deepfaked recordings of public figures."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from .layout import LayoutProblem, ProtocolCorpusBuilder, ProtocolEntry, SplitSource, parse_key, read_text
from .schema import ATTACK_UNKNOWN, attack_name

IN_THE_WILD_KEYS = {"bona-fide": 1, "spoof": 0}
META_HEADER = ["file", "speaker", "label"]


class InTheWildBuilder(ProtocolCorpusBuilder):
    name = "in-the-wild"
    title = "In-the-Wild"
    description = (
        "31,779 recordings of celebrities and politicians collected from the internet, bona fide and "
        "deepfaked; an evaluation-only corpus (the spoofing systems are not named)."
    )
    layout = (
        "ROOT = release_in_the_wild/: meta.csv (header file,speaker,label; label bona-fide|spoof) and the N.wav files"
    )
    num_fields = (3,)
    sources = {"test": SplitSource(("meta.csv",), (".",), suffix=".wav")}

    def protocol_fields(self, protocol: Path, problems: list[LayoutProblem]) -> Iterator[tuple[int, list[str]]]:
        """The comma-separated rows of meta.csv after its header, with their line numbers."""
        text = read_text(protocol, problems)
        if text is not None:
            reader = csv.reader(io.StringIO(text, newline=""))
            header = next(reader, None)
            if header != META_HEADER:
                problems.append(LayoutProblem("malformed", protocol, f"header must be {','.join(META_HEADER)}", 1))
                return
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(META_HEADER):
                    problems.append(
                        LayoutProblem("malformed", protocol, f"expected 3 fields, found {len(fields)}", reader.line_num)
                    )
                    continue
                yield reader.line_num, fields

    def parse_fields(self, fields: list[str], line: int) -> ProtocolEntry:
        file_name, speaker, key = fields
        label = parse_key(key, IN_THE_WILD_KEYS)
        utt_id = Path(file_name).stem
        return ProtocolEntry(line, utt_id, label, speaker, attack_name(ATTACK_UNKNOWN, label), file_name=file_name)
