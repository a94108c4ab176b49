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


def get_builder(
    corpus: str | CorpusBuilder, metadata: str | None = None, allow_outside_root: bool = False
) -> CorpusBuilder:
    """The builder of `corpus` (a name from BUILDERS, or a builder, returned as is); `metadata` names the
    table of the generic builder (and of the generic corpus the splices builder reads), `allow_outside_root` lets
    the generic builder read audio files outside the corpus folder."""
    if isinstance(corpus, CorpusBuilder):
        return corpus
    if corpus not in BUILDERS:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of: {', '.join(BUILDERS)}")
    if corpus == GenericBuilder.name:
        return GenericBuilder(metadata=metadata, allow_outside_root=allow_outside_root)
    generic_options = (("--metadata", metadata is not None and corpus != SplicesBuilder.name),
                       ("--allow-outside-root", allow_outside_root))
    for option, value in generic_options:
        if value:
            raise ValueError(f"{option} only applies to the generic builder, not {corpus}")
    if corpus == SplicesBuilder.name:
        return SplicesBuilder(metadata=metadata)
    return BUILDERS[corpus]()
