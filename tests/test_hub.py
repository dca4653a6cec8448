"""Hub push/pull against a local stand-in of the Hugging Face Hub (tests/hub_standin.py): no network."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from deepfake_detector import bundle, hub
from deepfake_detector.errors import HubError
from hub_standin import HubStandIn, closed_port, isolate_hf
from synthetic import make_dataset, make_image

FAKE_TOKEN = "hf_FAKEtokenDONOTLEAK1234567890"
REPO = "tester/deepfake-detector"
KERAS_ROOT = {"config.json", "metadata.json", "model.weights.h5"}
SRC = Path(__file__).resolve().parents[1] / "src"


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    """One tiny trained bundle for the whole module (~25 s)."""
    from deepfake_detector import training

    root = tmp_path_factory.mktemp("hub_bundle")
    data = make_dataset(root / "data", 24)
    out = root / "bundle"
    code = training.main(["--data-dir", str(data), "--epochs", "2", "--image-size", "32", "--width", "8",
                          "--batch-size", "16", "--out", str(out), "--no-robustness"])
    assert code == 0 and (out / bundle.MANIFEST).is_file()
    return out


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """A running stand-in Hub; huggingface_hub pointed at it, its cache and home under tmp_path."""
    for name in (hub.REPO_ENV, hub.REVISION_ENV, bundle.BUNDLED_ENV, hub.TIMEOUT_ENV, "HF_TOKEN",
                 "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    with HubStandIn() as server:
        isolate_hf(monkeypatch, tmp_path / "hf_home", server.url)
        yield server


def bundle_files(folder: Path) -> dict[str, bytes]:
    manifest = json.loads((folder / bundle.MANIFEST).read_text())
    return {rel: (folder / rel).read_bytes() for rel in [*manifest["files"], bundle.MANIFEST]}


def seed(server: HubStandIn, folder: Path, repo: str = REPO):
    """Put a bundle on the stand-in the way push_bundle lays it out (without running Keras)."""
    return server.add_commit(repo, {f"bundle/{rel}": data for rel, data in bundle_files(folder).items()})


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def scores(folder: Path, images: list[Path]) -> list[float]:
    from deepfake_detector.inference import Predictor

    return [p.p_fake for p in Predictor(folder).predict_many(images)]


def sample_images(tmp_path: Path, n: int = 6) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        path = tmp_path / f"img_{i}.png"
        Image.fromarray(make_image(rng, fake=i % 2 == 0, size=48)).save(path)
        paths.append(path)
    return paths


# -- push -> pull ----------------------------------------------------------------------------------
def test_push_then_pull_round_trip(tiny_bundle, standin, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    local = bundle_files(tiny_bundle)
    url = hub.push_bundle(tiny_bundle, REPO)

    # Exactly one commit, and the URL points at it.
    commits = standin.commits(REPO)
    assert len(commits) == 1
    commit = commits[0]
    assert url == f"{standin.url}/{REPO}/commit/{commit.sha}"
    assert [m for m, p in standin.requests if p.endswith("/commit/main")] == ["POST"]
    assert f"Bearer {FAKE_TOKEN}" in standin.auth_headers  # the token from HF_TOKEN was used

    # The exact content: Keras layout + card at the root, the untouched bundle under bundle/.
    expected = KERAS_ROOT | {"README.md"} | {f"bundle/{rel}" for rel in local}
    assert set(commit.files) == expected
    assert sorted(commit.added) == sorted(expected)  # each file once, nothing else
    for rel, data in local.items():
        assert commit.files[f"bundle/{rel}"] == data
    config = json.loads(tiny_bundle.joinpath("config.json").read_text())
    metrics = json.loads(tiny_bundle.joinpath("metrics.json").read_text())
    test = metrics["test"]
    assert commit.message == (f"Upload deepfake-detector bundle {config['run_name']} "
                              f"(test acc {test['accuracy']:.3f}, AUC {test['roc_auc']:.3f})")
    assert json.loads(commit.files["config.json"])["class_name"] in ("Functional", "Sequential")
    assert "keras_version" in json.loads(commit.files["metadata.json"])

    # The model card: Hub metadata that parses, images that resolve inside the repo.
    card = commit.files["README.md"].decode()
    meta = front_matter(card)
    assert meta["library_name"] == "keras"
    assert meta["license"] == "mit"
    assert meta["pipeline_tag"] == "image-classification"
    assert "deepfake-detection" in meta["tags"] and meta["datasets"]
    result = meta["model-index"][0]["results"][0]
    assert meta["model-index"][0]["name"] == REPO
    accuracy = {m["type"]: m["value"] for m in result["metrics"]}["accuracy"]
    assert accuracy == pytest.approx(test["accuracy"], abs=5e-5)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card)
    assert images and all(i.startswith("bundle/plots/") and i in commit.files for i in images)
    assert f'load_model("hf://{REPO}")' in card
    # The bundle's own card is unchanged (its links are relative to the bundle).
    assert "](plots/" in commit.files["bundle/README.md"].decode()

    # Pull it back: same bytes, verified, and the same predictions as the local bundle.
    pulled = hub.pull_bundle(REPO)
    assert pulled.name == "bundle" and pulled.parent.name == commit.sha
    assert str(tmp_path / "hf_home" / "hub") in str(pulled)
    assert bundle_files(pulled) == local
    assert not (pulled.parent / "README.md").exists()  # only bundle/ is downloaded
    images = sample_images(tmp_path)
    local_scores, pulled_scores = scores(tiny_bundle, images), scores(pulled, images)
    assert None not in local_scores and pulled_scores == local_scores

    # The root is Keras 3's own layout: Keras loads it with no project code, from disk and from hf://.
    import keras

    root = tmp_path / "repo_root"
    for name in KERAS_ROOT | {"README.md"}:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(commit.files[name])
    batch = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32)), np.float32) for p in images])
    expected_out = np.asarray(bundle.load_keras_model(tiny_bundle)(batch, training=False))
    from_disk = keras.saving.load_model(root, compile=False)
    np.testing.assert_allclose(np.asarray(from_disk(batch, training=False)), expected_out, rtol=1e-5, atol=1e-6)
    from_hub = keras.saving.load_model(f"hf://{REPO}", compile=False)
    np.testing.assert_allclose(np.asarray(from_hub(batch, training=False)), expected_out, rtol=1e-5, atol=1e-6)


def test_push_refuses_an_unverified_bundle(tiny_bundle, standin, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "metrics.json").write_text("{}")
    with pytest.raises(Exception, match="sha256 of metrics.json"):
        hub.push_bundle(broken, REPO)
    assert standin.requests == [] and standin.commits(REPO) == []


# -- resolve_model and its fallbacks ---------------------------------------------------------------
def test_resolve_serves_the_hub_bundle(tiny_bundle, standin, monkeypatch, tmp_path):
    commit = seed(standin, tiny_bundle)
    monkeypatch.setenv(hub.REPO_ENV, REPO)
    resolved = hub.resolve_model(tmp_path / "bundled")
    assert resolved.fallback_reason is None
    assert resolved.source == f"hub {REPO}@{commit.sha} (main)"
    assert resolved.folder.parent.name == commit.sha and bundle.verify(resolved.folder)

    # A pinned commit works too; then the Hub goes away and the verified copy in the cache still serves.
    monkeypatch.setenv(hub.REVISION_ENV, commit.sha)
    assert hub.resolve_model(tmp_path / "bundled").source == f"hub {REPO}@{commit.sha}"
    monkeypatch.delenv(hub.REVISION_ENV)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    cached = hub.resolve_model(tmp_path / "bundled")
    assert cached.folder == resolved.folder and cached.fallback_reason is None
    assert "cached copy" in cached.source


def test_resolve_without_repo_serves_bundled(standin, tmp_path, monkeypatch):
    resolved = hub.resolve_model(tmp_path / "bundled")
    assert resolved == hub.ResolvedModel(tmp_path / "bundled", f"bundled {tmp_path / 'bundled'}",
                                         "DEEPFAKE_MODEL_REPO not set")
    assert standin.requests == []
    # The default bundled folder: models/default of the repo, or $DEEPFAKE_BUNDLED_MODEL.
    assert hub.resolve_model().folder == Path(hub.__file__).resolve().parents[2] / "models" / "default"
    assert hub.resolve_model().source == "bundled models/default"
    monkeypatch.setenv(bundle.BUNDLED_ENV, str(tmp_path / "elsewhere"))
    assert hub.resolve_model().folder == tmp_path / "elsewhere"


def test_resolve_closed_port_falls_back_fast(standin, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv(hub.REPO_ENV, REPO)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.hub"):
        resolved = hub.resolve_model(tmp_path / "bundled")
    elapsed = time.monotonic() - start
    assert elapsed < 6, elapsed
    assert resolved.folder == tmp_path / "bundled" and resolved.source.startswith("bundled ")
    assert "Hub unreachable" in resolved.fallback_reason and "ConnectError" in resolved.fallback_reason
    # hub.py only reports; served_model.py, which decides, logs the fallback (once).
    assert not [r for r in caplog.records if r.name == "deepfake_detector.hub" and resolved.fallback_reason
                in r.getMessage()]


def test_resolve_hung_server_falls_back_after_the_timeout(standin, monkeypatch, tmp_path):
    import socket

    with socket.socket() as hung:  # accepts connections (backlog) but never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hung.getsockname()[1]}")
        monkeypatch.setenv(hub.TIMEOUT_ENV, "1")
        monkeypatch.setenv(hub.REPO_ENV, REPO)
        start = time.monotonic()
        resolved = hub.resolve_model(tmp_path / "bundled")
        elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    assert resolved.folder == tmp_path / "bundled"
    assert "no answer within 1 s" in resolved.fallback_reason


@pytest.mark.parametrize("case", ["missing repo", "missing revision", "no bundle folder", "bad repo id"])
def test_resolve_falls_back_when_the_repo_has_no_bundle(tiny_bundle, standin, monkeypatch, tmp_path, case):
    monkeypatch.setenv(hub.REPO_ENV, REPO if case != "bad repo id" else "just-a-name")
    if case == "missing revision":
        seed(standin, tiny_bundle)
        monkeypatch.setenv(hub.REVISION_ENV, "v9")
    elif case == "no bundle folder":
        standin.add_commit(REPO, {"README.md": b"# just a card\n"})
    resolved = hub.resolve_model(tmp_path / "bundled")
    assert resolved.folder == tmp_path / "bundled"
    expected = {"missing repo": f"Hub repo {REPO} not found",
                "missing revision": f"revision 'v9' not found in Hub repo {REPO}",
                "no bundle folder": f"Hub repo {REPO}@main has no bundle/ folder",
                "bad repo id": "'just-a-name' is not a Hub repo id: expected OWNER/NAME"}[case]
    assert expected in resolved.fallback_reason
    with pytest.raises(HubError, match=re.escape(expected)):
        hub.pull_bundle(os.environ[hub.REPO_ENV], revision=os.environ.get(hub.REVISION_ENV, "main"))
    if case == "bad repo id":
        assert standin.requests == []


def test_resolve_refuses_a_tampered_file(tiny_bundle, standin, monkeypatch, tmp_path, caplog):
    seed(standin, tiny_bundle)
    tflite = bytearray((tiny_bundle / "model.tflite").read_bytes())
    tflite[len(tflite) // 2] ^= 0xFF  # same size, one byte changed after the manifest was written
    standin.tamper(REPO, "bundle/model.tflite", bytes(tflite))
    monkeypatch.setenv(hub.REPO_ENV, REPO)
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.hub"):
        resolved = hub.resolve_model(tmp_path / "bundled")
    assert resolved.folder == tmp_path / "bundled"
    assert "sha256 of model.tflite" in resolved.fallback_reason
    assert "failed verification" in resolved.fallback_reason


# -- secrets -----------------------------------------------------------------------------------------
def test_token_never_leaks(tiny_bundle, standin, monkeypatch, tmp_path, caplog, capfd):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # push's temporary files land here
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    messages = []
    # Our logger and huggingface_hub's at DEBUG, everything else at INFO: httpcore2's DEBUG trace dumps
    # raw response headers, and this stand-in misbehaves on purpose by echoing the token in one.
    caplog.set_level(logging.DEBUG, logger="deepfake_detector")
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    with caplog.at_level(logging.INFO):
        assert hub.main(["push", str(tiny_bundle), REPO]) == 0  # the CLI: succeeds, token sent
        out, err = capfd.readouterr()
        messages += [out, err]
        assert out.strip() == f"{standin.url}/{REPO}/commit/{standin.commits(REPO)[-1].sha}"
        for status, faults in [(401, [("POST", r"/api/repos/create$"), ("GET", r"/api/models/")]),
                               (403, [("POST", r"/preupload/")]),
                               (500, [("POST", r"/commit/")])]:
            standin.clear_faults()
            for method, path in faults:
                standin.fail(method, path, status, echo_auth=True)  # the error text carries the token
            with pytest.raises(HubError) as info:
                hub.push_bundle(tiny_bundle, REPO, token=FAKE_TOKEN)
            messages += [str(info.value), "".join(traceback.format_exception(info.value))]
            assert f"HTTP {status}" in str(info.value)
        standin.clear_faults()
        hub.pull_bundle(REPO)
        standin.fail("GET", r"/api/models/", 401, echo_auth=True)
        with pytest.raises(HubError) as info:
            hub.pull_bundle(REPO, revision="other")
        messages += [str(info.value), "".join(traceback.format_exception(info.value))]

    assert "401" in messages[2] and "token" in messages[2]  # a clear reason, without the token
    assert "Authorization: Bearer ***" in messages[-4]  # the 500's server message, redacted
    assert standin.auth_headers.count(f"Bearer {FAKE_TOKEN}") >= 5  # it really was sent every time
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for text in [*messages, out, err, logged]:
        assert FAKE_TOKEN not in text
    written = [p for root in (tmp_path, tiny_bundle) for p in root.rglob("*") if p.is_file()]
    assert any("hf_home" in str(p) for p in written)  # the HF cache was written, and is searched
    for path in written:
        assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_redact():
    assert hub.redact(f"Authorization: Bearer {FAKE_TOKEN} x", []) == "Authorization: Bearer *** x"
    assert hub.redact(f"token={FAKE_TOKEN}.", []) == "token=hf_***."
    assert hub.redact("abc SECRET1 def", ["SECRET1"]) == "abc *** def"


# -- CLI ---------------------------------------------------------------------------------------------
def run_cli(*args, env_extra: dict, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "DEEPFAKE_"))}
    env.update({"PYTHONPATH": str(SRC), "HF_HOME": str(home), "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                **env_extra})
    return subprocess.run([sys.executable, "-m", "deepfake_detector.hub", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_pull(tiny_bundle, standin, tmp_path):
    closed = run_cli("pull", REPO, env_extra={"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"},
                     home=tmp_path / "cli_home")
    assert closed.returncode == 2 and closed.stdout == ""
    assert "Traceback" not in closed.stderr
    lines = closed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Hub unreachable"), closed.stderr

    commit = seed(standin, tiny_bundle)
    ok = run_cli("pull", REPO, "--revision", "main", env_extra={"HF_ENDPOINT": standin.url},
                 home=tmp_path / "cli_home")
    assert ok.returncode == 0, ok.stderr
    folder = Path(ok.stdout.strip())
    assert folder.parent.name == commit.sha and bundle_files(folder) == bundle_files(tiny_bundle)

    bad = run_cli("push", str(tmp_path / "nowhere"), REPO, env_extra={"HF_ENDPOINT": standin.url},
                  home=tmp_path / "cli_home")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [f"error: model bundle not found: {tmp_path / 'nowhere'}"]


def test_served_model_logs_a_hub_fallback_once(bundle_dir, standin, monkeypatch, caplog):
    from deepfake_detector import served_model

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv(hub.REPO_ENV, REPO)
    monkeypatch.setenv(bundle.BUNDLED_ENV, str(bundle_dir))
    with caplog.at_level(logging.INFO):
        predictor = served_model.load_served_predictor()
    assert predictor.folder == bundle_dir and "Hub unreachable" in predictor.fallback_reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "Hub unreachable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].name == "deepfake_detector.served_model"
    assert predictor.info()["model_sha256"]  # verified here, so the manifest is known
