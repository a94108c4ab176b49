"""`nes2net push FOLDER REPO_ID`: check a model (or, with `--dataset`, a dataset; with `--space`, a Space folder
assembled by `nes2net space`) folder, then upload it to the Hub as one commit.

The folder is checked first (`hub_cards.checks`) and nothing is uploaded while any problem remains; a Nes2Net folder
without code (the embedded default model) is uploaded as its export, with the package's model code. The commit
adds exactly the checked files and deletes files left in the repository by earlier uploads, so the repository
ends up holding the folder and nothing else. `--dry-run` prints what would be uploaded (path, size, SHA-256).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .checks import dataset_folder_problems, model_folder_problems
from .published_files import link_problems, list_files, read_config
from .space import space_folder_problems

logger = logging.getLogger(__name__)

# Created by the Hub itself in every repository; never ours to delete.
HUB_MANAGED_FILES = frozenset({".gitattributes"})
HASH_CHUNK_BYTES = 8 * 1024 * 1024


class FolderNotPublishable(ValueError):
    """The folder failed its checks; `problems` lists every reason."""

    def __init__(self, folder: Path, problems: list[str]):
        self.problems = problems
        super().__init__(f"{folder} cannot be published: {len(problems)} problem(s): " + "; ".join(problems))


@dataclass(frozen=True)
class UploadFile:
    """One file of the commit: its path in the repository, size in bytes and SHA-256."""

    path: str
    size: int
    sha256: str


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_problems(folder: str | os.PathLike, repo_type: str) -> list[str]:
    """The checks of a model (`repo_type="model"`), dataset (`"dataset"`) or Space (`"space"`) folder."""
    if repo_type == "model":
        return model_folder_problems(folder)
    if repo_type == "dataset":
        return dataset_folder_problems(folder)
    if repo_type == "space":
        return space_folder_problems(folder)
    raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")


@contextmanager
def publishable_folder(folder: Path, repo_type: str = "model") -> Iterator[Path]:
    """The folder to check and upload: `folder` itself, or, for a Nes2Net model folder holding no code at all (the
    embedded default model, package data), a temporary export of it with the package's code
    (`modeling_nes2net.folder.export_model_folder`). A folder with only some of its code files stays broken. A folder
    holding symbolic links is refused first (`FolderNotPublishable`): nothing is exported through them, nor from
    weights its model class refuses (`ModelLoadError`: NaN, missing, ...)."""
    links = link_problems(folder) if folder.is_dir() else []
    if links:
        raise FolderNotPublishable(folder, links)
    if repo_type == "model" and folder.is_dir() and not any(folder.glob("*.py")):
        try:
            is_nes2net = read_config(folder).get("model_type") == "nes2net"
        except ValueError:
            is_nes2net = False  # the checks name the problem
        if is_nes2net:
            from modeling_nes2net.folder import export_model_folder
            from modeling_nes2net.weight_checks import ModelLoadError

            with tempfile.TemporaryDirectory(prefix="nes2net-push.") as temporary:
                try:
                    exported = export_model_folder(folder, Path(temporary) / folder.name)
                except ModelLoadError as error:  # damaged weights: nothing is exported
                    raise FolderNotPublishable(folder, [str(error)]) from None
                yield exported
            return
    yield folder


def _checked_plan(source: Path, repo_type: str, folder: Path) -> list[UploadFile]:
    """The upload plan of `source` (`folder` or its export), raising `FolderNotPublishable` naming `folder`."""
    problems = folder_problems(source, repo_type)
    if problems:
        raise FolderNotPublishable(folder, problems)
    return [
        UploadFile(path=path, size=(source / path).stat().st_size, sha256=sha256_of(source / path))
        for path in list_files(source)
    ]


def plan_upload(folder: str | os.PathLike, repo_type: str = "model") -> list[UploadFile]:
    """Checks `folder` and lists the files one commit would upload; raises `FolderNotPublishable` on problems."""
    folder = Path(folder)
    with publishable_folder(folder, repo_type) as source:
        return _checked_plan(source, repo_type, folder)


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Checks `folder`, creates `repo_id` if needed and uploads the folder in one commit; returns the commit URL.

    Files already in the repository but absent from the folder are deleted in the same commit.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    folder = Path(folder)
    with publishable_folder(folder, repo_type) as source:
        plan = _checked_plan(source, repo_type, folder)
        api = HfApi(endpoint=endpoint, token=token)
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True,
                        space_sdk="gradio" if repo_type == "space" else None)
        uploaded = {item.path for item in plan}
        stale = [
            path
            for path in api.list_repo_files(repo_id, repo_type=repo_type)
            if path not in uploaded and path not in HUB_MANAGED_FILES
        ]
        operations = [CommitOperationAdd(path_in_repo=item.path, path_or_fileobj=source / item.path) for item in plan]
        operations += [CommitOperationDelete(path_in_repo=path) for path in stale]
        if stale:
            logger.info("deleting %d file(s) no longer in the folder: %s", len(stale), ", ".join(stale))
        commit = api.create_commit(
            repo_id,
            operations,
            repo_type=repo_type,
            commit_message=commit_message or f"Upload {folder.name} with nes2net push",
        )
    return commit.commit_url


def format_plan(plan: list[UploadFile]) -> str:
    """The dry-run listing: one line per file, then the total."""
    width = max(len(item.path) for item in plan)
    lines = [f"{'path':<{width}}  {'bytes':>12}  sha256"]
    lines += [f"{item.path:<{width}}  {item.size:>12,}  {item.sha256}" for item in plan]
    lines.append(f"{len(plan)} file(s), {sum(item.size for item in plan):,} bytes")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path,
                        help="model folder (a dataset folder with --dataset, a Space folder with --space) to publish")
    parser.add_argument("repo_id", help="Hub repository, owner/name")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--dataset", action="store_true", help="the folder is a built dataset, not a model")
    kind.add_argument("--space", action="store_true",
                      help="the folder is a Gradio Space assembled by `nes2net space` (app, wheel, models)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--dry-run", action="store_true", help="check and list what would be uploaded, upload nothing")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    parser.add_argument("--commit-message", default=None, help="message of the upload commit")


def _transport_error() -> type[Exception]:
    """The connection-failure base class of the HTTP client huggingface_hub uses (httpx2 from 2.0, httpx before)."""
    try:
        from httpx2 import TransportError
    except ImportError:
        from httpx import TransportError
    return TransportError


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    repo_type = "dataset" if args.dataset else "space" if args.space else "model"
    try:
        plan = plan_upload(args.folder, repo_type)
    except FolderNotPublishable as error:
        logger.error("%s cannot be published as a %s:", args.folder, repo_type)
        for problem in error.problems:
            logger.error("  - %s", problem)
        return 1
    if args.dry_run:
        print(f"would upload to {repo_type} repository {args.repo_id} ({'private' if args.private else 'public'}):")
        print(format_plan(plan))
        print("files already in the repository and not listed here would be deleted in the same commit")
        return 0
    try:
        url = push_folder(
            args.folder,
            args.repo_id,
            repo_type=repo_type,
            private=args.private,
            token=args.token,
            endpoint=args.endpoint,
            commit_message=args.commit_message,
        )
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "no response"
        logger.error("the Hub refused the upload to %s (HTTP %s): %s", args.repo_id, status, str(error).splitlines()[0])
        return 2
    except _transport_error() as error:
        logger.error("could not reach the Hub to upload %s: %s", args.repo_id, error)
        return 2
    logger.info("uploaded %d file(s) to %s", len(plan), url)
    return 0

