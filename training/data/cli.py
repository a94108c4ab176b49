"""`nes2net data`: build HF Datasets versions of anti-spoofing corpora.

nes2net data build CORPUS ROOT OUT [--push-to-hub REPO]   check the layout, then write Parquet shards
                                                          (then check OUT and upload it, as `nes2net push`)
nes2net data check CORPUS ROOT                            only check the layout, reporting every problem
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex

from hub_cards.layout import public_path

from .build import DEFAULT_MAX_SHARD_BYTES, build_dataset, scan_corpus
from .corpora import BUILDERS
from .layout import CorpusLayoutError

logger = logging.getLogger(__name__)
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?B)?\s*$", re.IGNORECASE)
UNITS = {None: 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


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


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", choices=list(BUILDERS), metavar="CORPUS", help=f"one of: {', '.join(BUILDERS)}")
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    build = commands.add_parser("build", help="check a corpus and write it as Parquet shards (a Hub-ready folder)")
    _add_corpus_arguments(build)
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
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    check = commands.add_parser("check", help="only check a corpus layout and report every problem")
    _add_corpus_arguments(check)


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


def run(args: argparse.Namespace) -> int:
    options = dict(metadata=args.metadata, strict=args.strict, skip_missing_audio=args.skip_missing_audio,
                   allow_outside_root=args.allow_outside_root)
    try:
        if args.data_command == "check":
            _, scan = scan_corpus(args.corpus, args.root, **options)
            for problem in scan.problems:
                logger.warning("%s", problem)
            for split, utterances in scan.splits.items():
                logger.info("%s %s: %d utterances", args.corpus, split, len(utterances))
            return 0
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
