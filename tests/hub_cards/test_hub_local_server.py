"""Published folders served by a real local Hub-compatible server (olah, offline, serving git repositories),
loaded back with HF_ENDPOINT set, and `nes2net push` pointed at it.

olah serves repositories read-only: the upload half of `nes2net push` (create_repo, then create_commit) can
only be checked up to the server's refusal of create_repo.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from scipy.special import expit
from transformers import AutoModelForAudioClassification

from hub_cards.dataset_card import DatasetCardSpec, write_dataset_card
from hub_cards.model_card import write_model_card
from hub_cards.push import plan_upload
from nes2net.cli import main
from tests.hub_cards.hub_helpers import build_dataset_folder, flac_bytes, make_spec, save_tiny_model, write_evaluation

pytest.importorskip("olah", reason="olah (the local Hub server) is not installed")
pytestmark = pytest.mark.slow

MODEL_REPO = "nes2net-test/nes2net-x-tiny"
DATASET_REPO = "nes2net-test/tiny-corpus"
GIT = ["git", "-c", "user.name=nes2net tests", "-c", "user.email=tests@nes2net.invalid",
       "-c", "init.defaultBranch=main"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with code {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/api/whoami-v2", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"olah did not answer at {url} within {timeout} s")


def publish_to_mirror(folder: Path, mirror_root: Path, repo_type: str, repo_id: str) -> list:
    """Commit exactly the files `nes2net push` would upload into a git repository that olah serves."""
    plan = plan_upload(folder, repo_type)
    repository = mirror_root / f"{repo_type}s" / repo_id
    repository.mkdir(parents=True)
    for item in plan:
        (repository / item.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / item.path, repository / item.path)
    subprocess.run([*GIT, "init", "-q"], cwd=repository, check=True)
    subprocess.run([*GIT, "add", "--all"], cwd=repository, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "nes2net push layout"], cwd=repository, check=True)
    return plan


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory):
    """An olah server in offline mode serving the git repositories under `mirrors/`; yields (url, mirrors)."""
    root = tmp_path_factory.mktemp("olah")
    mirrors, port = root / "mirrors", _free_port()
    mirrors.mkdir()
    (root / "olah.toml").write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{root / "cache"}"\nmirrors-path = ["{mirrors}"]\n'
        f'mirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
        "[accessibility]\noffline = true\n"
    )
    env = {**os.environ, "HOME": str(root)}  # olah keeps its database in ~/.olah
    log = (root / "olah.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from olah.server import cli; cli()", "--config", str(root / "olah.toml")],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        yield url, mirrors
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def published(local_hub, tmp_path_factory):
    """A tiny model with its card and a built dataset with its card, published to the local Hub and loaded
    back by a fresh interpreter through HF_ENDPOINT."""
    url, mirrors = local_hub
    work = tmp_path_factory.mktemp("published")
    results = [work / "results" / "df.json"]
    write_evaluation(results[0], name="ASVspoof 2021 DF", dataset_id="nes2net/asvspoof2021-df", split="eval",
                     protocol="full", seed=3)
    model_dir = save_tiny_model(work / "model")
    write_model_card(model_dir, make_spec("trained", results, repo_id=MODEL_REPO))
    dataset_dir = build_dataset_folder(work / "dataset")
    write_dataset_card(dataset_dir, DatasetCardSpec(repo_id=DATASET_REPO))
    model_plan = publish_to_mirror(model_dir, mirrors, "model", MODEL_REPO)
    publish_to_mirror(dataset_dir, mirrors, "dataset", DATASET_REPO)
    audio = work / "speech.flac"
    audio.write_bytes(flac_bytes(1.5, 220.0, seed=4))

    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(HF_ENDPOINT=url, HF_HOME=str(work / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1",
               TRANSFORMERS_VERBOSITY="error", PYTHONPATH="")
    client = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("hub_client.py")), MODEL_REPO, DATASET_REPO, str(audio)],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert client.returncode == 0, client.stderr[-3000:]
    return {"loaded": json.loads(client.stdout.strip().splitlines()[-1]), "model_dir": model_dir,
            "model_plan": model_plan, "audio": audio, "results": results, "url": url, "mirrors": mirrors}


def test_model_loads_through_the_hub_api_with_its_remote_code(published):
    loaded = published["loaded"]
    assert loaded["model_module"].startswith("transformers_modules.")
    assert loaded["model_module"].endswith(".modeling_nes2net")
    assert loaded["pipeline_model_module"] == loaded["model_module"]
    assert loaded["snapshot_sha256"] == {item.path: item.sha256 for item in published["model_plan"]}


def test_served_model_scores_exactly_like_the_local_folder(published):
    import soundfile

    from modeling_nes2net import Nes2NetForAudioClassification, feature_extractor_for

    model = Nes2NetForAudioClassification.from_pretrained(published["model_dir"]).eval()
    waveform, rate = soundfile.read(published["audio"], dtype="float32")
    with torch.no_grad():
        expected = model(**feature_extractor_for(model)(waveform, sampling_rate=rate, return_tensors="pt")).logits[0]
    loaded = published["loaded"]
    assert torch.allclose(torch.tensor(loaded["logits"]), expected, atol=1e-5)

    probability = expit((expected[1] - expected[0]).item())
    by_label = {entry["label"]: entry["score"] for entry in loaded["pipeline"]}
    assert set(by_label) == {"spoof", "bonafide"}
    assert by_label["bonafide"] == pytest.approx(probability, abs=1e-5)


def test_served_card_metadata_is_what_the_evaluation_file_says(published):
    loaded = published["loaded"]
    result = json.loads(published["results"][0].read_text())
    assert loaded["card_pipeline_tag"] == "audio-classification"
    assert loaded["served_card_data_license"] == "mit"
    eer = next(r for r in loaded["card_eval_results"] if r[1] == "eer")
    assert eer == ["nes2net/asvspoof2021-df", "eer", "full", pytest.approx(100 * result["metrics"]["eer"], abs=1e-4)]


def test_dataset_loads_through_the_hub_api_following_its_card(published):
    loaded = published["loaded"]
    assert loaded["dataset_rows"] == {"train": 6, "test": 4}
    assert loaded["dataset_labels"] == {"train": [0, 1, 0, 1, 0, 1], "test": [0, 1, 0, 1]}
    assert loaded["dataset_label_names"] == ["spoof", "bonafide"]
    assert loaded["dataset_sampling_rate"] == 16_000


def test_push_reaches_the_server_and_reports_its_refusal(published, caplog):
    from huggingface_hub import HfApi

    url, mirrors = published["url"], published["mirrors"]
    # The listing push uses to find stale files works against the server.
    listed = HfApi(endpoint=url).list_repo_files(MODEL_REPO)
    assert sorted(listed) == [item.path for item in published["model_plan"]]
    # olah has no write API: create_repo is refused, push says so, exits 2 and nothing appears on the server.
    code = main(["push", str(published["model_dir"]), "nes2net-test/new-model",
                 "--endpoint", url, "--token", "hf_test"])
    assert code == 2
    assert "the Hub refused the upload to nes2net-test/new-model (HTTP 405)" in caplog.text
    assert "/api/repos/create" in caplog.text
    assert not (mirrors / "models" / "nes2net-test" / "new-model").exists()


def test_convert_downloads_a_checkpoint_from_a_hub_repository_of_raw_pt_files(local_hub, tmp_path):
    """A repository laid out as the authors' `nielsr/nes2net-checkpoints` (`.pt` files in sub-folders): `nes2net
    convert hf://...` downloads one with `hf_hub_download` and converts it; a missing file is one clear line."""
    from tests.modeling.original_checkpoints import TINY_OVERRIDES, OriginalModel, waveforms

    url, mirrors = local_hub
    original = OriginalModel("nes2net-x-xlsr", n_logits=1)
    repository = mirrors / "models" / "nielsr" / "nes2net-checkpoints"
    for folder in ("In-the-Wild", "CtrSVDD"):
        (repository / folder).mkdir(parents=True)
    torch.save(original.state_dict(), repository / "In-the-Wild" / "Nes2Net_X_XLSR_ITW.pt")
    torch.save(OriginalModel("nes2net-wavlm-sea").state_dict(), repository / "CtrSVDD" / "Nes2Net_SEA.pt")
    subprocess.run([*GIT, "init", "-q"], cwd=repository, check=True)
    subprocess.run([*GIT, "add", "--all"], cwd=repository, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "checkpoints"], cwd=repository, check=True)

    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(HF_ENDPOINT=url, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1")
    heads = [f"--frontend-set=num_attention_heads={TINY_OVERRIDES['wav2vec2']['frontend_config']['num_attention_heads']}"]
    sizes = [f"--set={key}={value}" for key, value in TINY_OVERRIDES["wav2vec2"].items() if key != "frontend_config"]

    def convert(reference: str, output: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nes2net", "convert", reference, str(output),
                               *heads, *sizes], cwd=Path(__file__).resolve().parents[2], env=env,
                              capture_output=True, text=True, timeout=300)

    done = convert("hf://nielsr/nes2net-checkpoints/In-the-Wild/Nes2Net_X_XLSR_ITW.pt", tmp_path / "itw")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(preset nes2net-x-xlsr)" in done.stdout and "1 logit(s)" in done.stdout
    model = AutoModelForAudioClassification.from_pretrained(tmp_path / "itw").eval()
    audio = waveforms()
    with torch.no_grad():
        torch.testing.assert_close(model(audio).logits, original.logits(audio), rtol=0, atol=1e-5)
    missing = convert("hf://nielsr/nes2net-checkpoints/In-the-Wild/absent.pt", tmp_path / "absent")
    assert missing.returncode == 1 and not (tmp_path / "absent").exists()
    assert "hf://nielsr/nes2net-checkpoints/In-the-Wild/absent.pt: cannot download it from the Hub" in missing.stderr
