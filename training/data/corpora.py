"""The registry of corpus builders, by the name the CLI uses."""

from __future__ import annotations

from .asvspoof import ASVspoof5Builder, ASVspoof2019LABuilder, ASVspoof2021DFBuilder, ASVspoof2021LABuilder
from .ctrsvdd import CtrSVDDBuilder
from .generic import GenericBuilder
from .in_the_wild import InTheWildBuilder
from .layout import CorpusBuilder
from .partialspoof import PartialSpoofBuilder
from .splices import SplicesBuilder

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
        SplicesBuilder,
    )
}


def get_builder(corpus: str | CorpusBuilder, metadata: str | None = None) -> CorpusBuilder:
    """The builder of `corpus` (a name from BUILDERS, or a builder, returned as is); `metadata` names the
    table of the generic builder (and of the generic corpus the splices builder reads)."""
    if isinstance(corpus, CorpusBuilder):
        return corpus
    if corpus not in BUILDERS:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of: {', '.join(BUILDERS)}")
    if corpus in (GenericBuilder.name, SplicesBuilder.name):
        return BUILDERS[corpus](metadata=metadata)
    if metadata is not None:
        raise ValueError(f"--metadata only applies to the generic builder, not {corpus}")
    return BUILDERS[corpus]()
