"""The running app, called the way users call it: gradio_client against 127.0.0.1."""

from __future__ import annotations

import csv
import json
import statistics
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file

from app_server import predict_until_answered, running_app
from deepfake_detector import ui


@pytest.fixture(scope="module")
def app(bundle_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(bundle_dir, log) as url:
        yield url, log


@pytest.fixture(scope="module")
def client(app):
    return Client(app[0], verbose=False)


def test_predict_endpoint_matches_local_predictor(client, predictor, dataset):
    fake = sorted((dataset / "Test" / "Fake").glob("*.jpg"))[0]
    result, probabilities, verdict, annotated, faces, heatmap = client.predict(
        handle_file(str(fake)), True, True, api_name="/predict")
    local = predictor.predict(fake)
    assert result["label"] == local.label
    assert result["p_fake"] == pytest.approx(local.p_fake, abs=1e-6)
    assert result["error"] is None and result["file"] == fake.name
    assert {c["label"] for c in probabilities["confidences"]} == {"fake", "real"}
    assert f"{local.confidence:.0%} confident" in verdict
    assert annotated and heatmap  # images come back as files
    assert len(faces["data"]) == len(local.faces)
    plain = client.predict(handle_file(str(fake)), api_name="/predict")  # defaults: crop, no explanation
    assert plain[0]["p_fake"] == pytest.approx(local.p_fake, abs=1e-6) and plain[5] is None


def test_predict_bad_upload_gives_readable_error(client, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not an image\n" * 10)
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(bad)), api_name="/predict")
    assert "text file, not an image" in str(info.value)


def test_predict_batch_endpoint_and_csv(client, predictor, dataset, tmp_path):
    files = sorted((dataset / "Test").rglob("*.jpg"))[:4]
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    table, csv_path = client.predict([handle_file(str(f)) for f in [*files, bad]], True,
                                     api_name="/predict_batch")
    rows = table["data"]
    assert table["headers"] == ui.BATCH_COLUMNS
    assert len(rows) == 5
    by_file = {r[0]: dict(zip(ui.BATCH_COLUMNS, r)) for r in rows}
    for f in files:
        assert by_file[f.name]["p_fake"] == pytest.approx(predictor.predict(f).p_fake, abs=1e-6)
    assert "empty (0 bytes)" in by_file["empty.jpg"]["error"]
    with open(csv_path) as fh:
        assert len(list(csv.DictReader(fh))) == 5


def test_model_info_endpoint(client, predictor):
    info = client.predict(api_name="/model_info")
    assert info["source"].startswith("bundled")
    assert info["model_sha256"] == predictor.info()["model_sha256"]
    assert info["input_size"] == predictor.image_size
    assert info["test"]["accuracy"] == pytest.approx(predictor.metrics["test"]["accuracy"])


def test_fifty_concurrent_predictions(app, predictor, dataset):
    """50 concurrent clients: no failures, and every answer equals the single-call answer.

    A caller told 'busy' (on a slow or crowded machine the gate's measured estimate can pass
    `DEEPFAKE_MAX_WAIT_S`) tries again, as the message asks; any other error fails the test."""
    files = sorted((dataset / "Test").rglob("*.jpg"))[:10]
    expected = {f.name: predictor.predict(f).p_fake for f in files}
    url = app[0]

    def one(i: int):
        f = files[i % len(files)]
        start = time.perf_counter()
        answer, refusals = predict_until_answered(Client(url, verbose=False), handle_file(str(f)), True, False)
        return f.name, answer[0]["p_fake"], time.perf_counter() - start, refusals

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50), timeout=300))
    assert len(results) == 50
    for name, p_fake, _, _ in results:
        assert p_fake == pytest.approx(expected[name], abs=1e-6)
    latencies = sorted(r[2] for r in results)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"\n50 concurrent /predict calls: p50 {statistics.median(latencies):.2f}s, p95 {p95:.2f}s, "
          f"told 'busy' {sum(r[3] for r in results)} times")


def _raw_call(url: str, endpoint: str, data: list) -> str:
    """One call through Gradio's plain HTTP API, as curl would make it: the event stream's text."""
    request = urllib.request.Request(f"{url}gradio_api/call/{endpoint}", json.dumps({"data": data}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event_id}", timeout=60) as response:
        return response.read().decode()


def test_predict_reads_only_files_the_server_received(app, dataset, tmp_path):
    """A raw call naming a path on the server (no FileData marker, so Gradio does not check it) is
    refused: the file is neither read nor sent back."""
    secret = tmp_path / "private.jpg"  # outside Gradio's upload folder
    secret.write_bytes(sorted((dataset / "Test" / "Real").glob("*.jpg"))[0].read_bytes())
    for endpoint in ("predict", "detect_work"):  # detect_work: the examples' event, callable too
        for path in (str(secret), "/etc/passwd", "x\u0000.jpg"):
            events = _raw_call(app[0], endpoint, [{"path": path}, True, False])
            assert "event: error" in events and "a path on the server is not read" in events, (endpoint, events)
    assert "Traceback" not in app[1].read_text()


def test_malformed_raw_requests_get_a_message_and_no_traceback(app):
    cases = [("predict", ["http://example.com/face.jpg", True, False], "valid dictionary or instance of ImageData (got str)"),
             ("predict", [123, True, False], "(got int)"),
             ("predict", [], "didn't receive enough input values (needed: 3, got: 0)"),
             ("predict", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, True, False],
              "a path on the server is not read"),
             ("predict_batch", ["photos.zip", True], "valid list (got str)"),
             ("predict", [{"path": "a.jpg", "meta": None}, True, False], "a file value is malformed"),
             ("predict", [{"path": "/tmp/gradio/" + "a" * 300, "meta": {"_type": "gradio.FileData"}}, True, False],
              "invalid request data"),
             ("detect_work", [{"path": "https://example.com/face.jpg", "meta": {"_type": "gradio.FileData"}}, True,
                              False], "URLs are not fetched"),
             ("predict_video", [{"video": {"path": "/etc/hosts", "meta": {"_type": "gradio.FileData"}}}, True, -1, 4],
              '"files must be uploaded with the request')]
    for endpoint, data, message in cases:
        events = _raw_call(app[0], endpoint, data)
        assert "event: error" in events and message in events, (endpoint, data, events)
    # Our own messages are passed on as they are, not wrapped as "invalid request data".
    events = _raw_call(app[0], "predict_video", [None, True, -1, 4])
    assert '"error": "Frames per second sampled: value -1' in events, events
    assert "Traceback" not in app[1].read_text()


def test_model_files_are_not_served(app, bundle_dir):
    for name in ("model.tflite", "manifest.json"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{app[0]}gradio_api/file={bundle_dir / name}", timeout=10)
        assert refused.value.code in (403, 404)


def test_server_log_has_no_traceback_after_bad_input(app, client, tmp_path):
    bad = tmp_path / "bomb.png"
    import corpus

    bad.write_bytes(corpus.build()["bomb.png"][0])
    with pytest.raises(Exception, match="megapixels"):
        client.predict(handle_file(str(bad)), api_name="/predict")
    assert client.predict(api_name="/model_info")["source"]  # still serving
    assert "Traceback" not in app[1].read_text()
