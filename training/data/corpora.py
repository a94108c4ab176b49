"""The registry of corpus builders, by the name the CLI uses."""

from __future__ import annotations

from .asvspoof import ASVspoof5Builder, ASVspoof2019LABuilder, ASVspoof2021DFBuilder, ASVspoof2021LABuilder
from .ctrsvdd import CtrSVDDBuilder
from .generic import GenericBuilder
from .in_the_wild import InTheWildBuilder
from .layout import CorpusBuilder
from .partialspoof import PartialSpoofBuilder

BUILDERS: dict[str, type[CorpusBuilder]] = {
    builder.name: builder
    for builder in (
        ASVspoof2019LABuilder,
        ASVspoof2021LABuilder,
        ASVspoof2021DFBuilder,
        ASVspoof5Builder,
        CtrSVDDBuilder,
        InTheWildBuilder,
        PartialSpoofBuilder,
        GenericBuilder,
    )
}


def get_builder(
    corpus: str | CorpusBuilder, metadata: str | None = None, allow_outside_root: bool = False
) -> CorpusBuilder:
    """The builder of `corpus` (a name from BUILDERS, or a builder, returned as is); `metadata` names the
    table of the generic builder, `allow_outside_root` lets it read audio files outside the corpus folder."""
    if isinstance(corpus, CorpusBuilder):
        return corpus
    if corpus not in BUILDERS:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of: {', '.join(BUILDERS)}")
    if corpus == GenericBuilder.name:
        return GenericBuilder(metadata=metadata, allow_outside_root=allow_outside_root)
    for option, value in (("--metadata", metadata is not None), ("--allow-outside-root", allow_outside_root)):
        if value:
            raise ValueError(f"{option} only applies to the generic builder, not {corpus}")
    return BUILDERS[corpus]()
