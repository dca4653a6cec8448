"""Publish a model bundle to the Hugging Face Hub and fetch it back, verified.

Layout of a pushed repo (one commit per push):

    config.json, metadata.json, model.weights.h5   Keras 3's own Hub layout, written by Keras itself
                                                   (`model.save(dir, zipped=False)`), so that
                                                   `keras.saving.load_model("hf://OWNER/NAME")` works
                                                   with no code from this project
    README.md                                      the model card (Hub metadata in its YAML front matter)
    bundle/...                                     the complete bundle, byte for byte; its manifest.json
                                                   (sha256 of every file) still verifies

Serving pulls only `bundle/` (`pull_bundle`), checks every sha256 against the manifest and falls
back to the bundled model when anything goes wrong (`resolve_model`).

The token comes from the `token` argument, else `HF_TOKEN`, else the stored login (huggingface_hub's
own lookup). It is never logged, written or put in an exception message: errors from
huggingface_hub are re-raised as `HubError` with any token redacted.

    python -m deepfake_detector.hub push BUNDLE_DIR OWNER/NAME [--private]
    python -m deepfake_detector.hub pull OWNER/NAME [--revision R]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import bundle
from .errors import DetectorError, HubError

log = logging.getLogger(__name__)

REPO_ENV = "DEEPFAKE_MODEL_REPO"
REVISION_ENV = "DEEPFAKE_MODEL_REVISION"
TIMEOUT_ENV = "DEEPFAKE_HUB_TIMEOUT"
DEFAULT_REVISION = "main"
DEFAULT_TIMEOUT = 4.0  # seconds for the first request of a pull: a closed network fails fast
BUNDLE_PREFIX = "bundle"
PULL_PATTERNS = [f"{BUNDLE_PREFIX}/*", f"{BUNDLE_PREFIX}/**"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9_]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")


@dataclass
class ResolvedModel:
    folder: Path
    source: str  # "hub OWNER/NAME@<commit>" or "bundled <folder>"
    fallback_reason: str | None = None  # why the Hub model is not served; None when it is
    verified: bool = False  # True when every file was already checked against the manifest here


# -- helpers -------------------------------------------------------------------------------------
def _endpoint() -> str:
    """HF_ENDPOINT read at call time (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _timeout() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _check_repo_id(repo_id: str | None) -> str:
    repo_id = (repo_id or "").strip()
    if not repo_id:
        raise HubError("no Hub repo configured (expected OWNER/NAME)")
    if not _REPO_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id: expected OWNER/NAME")
    return repo_id


def _secrets(token: str | None) -> list[str]:
    """Every token this process could send, so that messages can be scrubbed of them."""
    found = [token, os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")]
    try:
        from huggingface_hub import get_token

        found.append(get_token())
    except Exception:  # noqa: BLE001 - no stored login is fine
        pass
    return sorted({s for s in found if isinstance(s, str) and len(s) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else _secrets(None):
        text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _TOKEN_LIKE.sub("hf_***", text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _describe(exc: BaseException, repo_id: str, revision: str | None, endpoint: str, action: str) -> str:
    """One sentence for a huggingface_hub / network failure (not yet redacted)."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}" if revision else repo_id
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403) and action.startswith("push"):
        return (f"Hub refused to {action} {where}: HTTP {status} (not authorised) - check the token "
                "(HF_TOKEN or `hf auth login`) and that it may write to this repo")
    if isinstance(exc, OfflineModeIsEnabled):
        return f"Hub unreachable: offline mode is on (HF_HUB_OFFLINE); cannot {action} {where}"
    if isinstance(exc, httpx2.TimeoutException):
        return (f"Hub unreachable at {endpoint}: no answer within {_timeout():g} s ({type(exc).__name__}); "
                f"cannot {action} {where}")
    if isinstance(exc, httpx2.TransportError):
        return f"Hub unreachable at {endpoint}: {type(exc).__name__}: {_first_line(exc)}; cannot {action} {where}"
    if isinstance(exc, RevisionNotFoundError):
        return f"revision {revision!r} not found in Hub repo {repo_id}"
    if isinstance(exc, GatedRepoError):
        return f"Hub repo {repo_id} is gated: the token has no access to it"
    if isinstance(exc, RepositoryNotFoundError):
        return (f"Hub repo {repo_id} not found at {endpoint} (or it is private and the token has no "
                "access to it)")
    if isinstance(exc, HfHubHTTPError):
        detail = " ".join((exc.server_message or _first_line(exc)).split())
        hint = ""
        if status in (401, 403):
            hint = " - check the token (HF_TOKEN or `hf auth login`) and its access to this repo"
        elif isinstance(status, int) and status >= 500:
            hint = " - the Hub is having trouble; try again later"
        return f"Hub refused to {action} {where}: HTTP {status or '?'}: {detail}{hint}"
    return f"could not {action} {where} at {endpoint}: {type(exc).__name__}: {_first_line(exc)}"


# -- push ----------------------------------------------------------------------------------------
def commit_message(folder: Path) -> str:
    config = bundle.read_json(folder, "config.json")
    test = bundle.read_json(folder, "metrics.json").get("test", {})

    def fmt(x):
        return "n/a" if x is None else f"{float(x):.3f}"

    return (f"Upload deepfake-detector bundle {config.get('run_name') or folder.name} "
            f"(test acc {fmt(test.get('accuracy'))}, AUC {fmt(test.get('roc_auc'))})")


def _keras_layout(folder: Path, out: Path) -> list[Path]:
    """Keras 3's Hub layout (config.json, metadata.json, model.weights.h5), written by Keras."""
    model = bundle.load_keras_model(folder)
    model.save(str(out), zipped=False)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.relative_to(out).as_posix() for p in files}
    missing = {"config.json", "metadata.json", "model.weights.h5"} - names
    if missing:
        raise HubError(f"Keras wrote no {', '.join(sorted(missing))} for {folder / 'model.keras'}")
    return files


def push_bundle(bundle_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Verify the bundle, then publish it as ONE commit to the model repo; return the commit URL."""
    from . import card

    folder = Path(bundle_dir)
    repo_id = _check_repo_id(repo_id)
    manifest = bundle.verify(folder)  # BundleError (a DetectorError) as is: nothing half-checked is pushed
    endpoint = _endpoint()
    secrets = _secrets(token)
    message = commit_message(folder)
    bundle_files = sorted(set(manifest["files"]) | {bundle.MANIFEST})
    try:
        from huggingface_hub import CommitOperationAdd, HfApi

        with tempfile.TemporaryDirectory(prefix="deepfake-hub-") as tmp:
            keras_dir = Path(tmp) / "keras_model"
            operations = [CommitOperationAdd(path_in_repo=p.relative_to(keras_dir).as_posix(),
                                             path_or_fileobj=str(p)) for p in _keras_layout(folder, keras_dir)]
            readme = card.card_text(folder, repo_id, asset_prefix=f"{BUNDLE_PREFIX}/")
            operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=readme.encode()))
            operations += [CommitOperationAdd(path_in_repo=f"{BUNDLE_PREFIX}/{rel}",
                                              path_or_fileobj=str(folder / rel)) for rel in bundle_files]
            log.info("pushing %s to %s/%s (%d files, %s)", folder, endpoint, repo_id, len(operations),
                     "private" if private else "public")
            api = HfApi(endpoint=endpoint, token=token)
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            info = api.create_commit(
                repo_id, operations=operations, commit_message=message, repo_type="model",
                commit_description=(f"Bundle format {manifest.get('format')}; model.keras sha256 "
                                    f"{manifest['files']['model.keras']['sha256']}. The complete bundle is "
                                    f"under {BUNDLE_PREFIX}/ (verify it against {BUNDLE_PREFIX}/{bundle.MANIFEST})."),
            )
    except DetectorError as exc:
        raise type(exc)(redact(str(exc), secrets)) from None
    except Exception as exc:  # noqa: BLE001 - every huggingface_hub / network failure becomes a HubError
        raise HubError(redact(_describe(exc, repo_id, None, endpoint, "push to"), secrets)) from None
    url = str(info.commit_url)
    log.info("pushed %s: %s", message, url)
    return url


# -- pull ----------------------------------------------------------------------------------------
def _pull(repo_id: str, revision: str, cache_dir: str | Path | None) -> tuple[Path, str, str | None]:
    """(verified bundle folder, commit sha, note) - note says when a cached copy stood in for the Hub."""
    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    repo_id = _check_repo_id(repo_id)
    revision = (revision or DEFAULT_REVISION).strip()
    endpoint, timeout, secrets = _endpoint(), _timeout(), _secrets(None)
    where = f"{repo_id}@{revision}"
    note = None
    try:
        try:
            # A short probe first: huggingface_hub's own repo_info call inside snapshot_download has no
            # timeout, and per-file HEAD failures are retried with backoff for ~25 s.
            HfApi(endpoint=endpoint).repo_info(repo_id, revision=revision, repo_type="model", timeout=timeout)
            unreachable = None
        except (httpx2.TransportError, OfflineModeIsEnabled) as exc:
            unreachable = exc
        except HfHubHTTPError as exc:
            if exc.response is None or exc.response.status_code < 500:
                raise
            unreachable = exc
        if unreachable is None:
            path = snapshot_download(repo_id, revision=revision, repo_type="model", cache_dir=cache_dir,
                                     allow_patterns=PULL_PATTERNS, endpoint=endpoint, etag_timeout=timeout)
        else:
            # The Hub cannot be reached: a snapshot of this revision pulled earlier is still good (it is
            # verified below); without one the pull fails with the network error.
            reason = _describe(unreachable, repo_id, revision, endpoint, "pull")
            try:
                path = snapshot_download(repo_id, revision=revision, repo_type="model", cache_dir=cache_dir,
                                         allow_patterns=PULL_PATTERNS, local_files_only=True)
            except Exception:  # noqa: BLE001 - nothing cached
                raise HubError(reason) from None
            note = f"{reason}; using the copy cached earlier"
            log.warning("%s", redact(note, secrets))
    except DetectorError as exc:
        raise HubError(redact(str(exc), secrets)) from None
    except Exception as exc:  # noqa: BLE001
        raise HubError(redact(_describe(exc, repo_id, revision, endpoint, "pull"), secrets)) from None

    snapshot = Path(path)
    commit = snapshot.name
    folder = snapshot / BUNDLE_PREFIX
    if not folder.is_dir():
        raise HubError(f"Hub repo {where} has no {BUNDLE_PREFIX}/ folder: it was not pushed with "
                       "`python -m deepfake_detector.hub push`")
    try:
        bundle.verify(folder)
    except DetectorError as exc:
        raise HubError(f"bundle pulled from {repo_id}@{commit[:12]} failed verification: {exc}") from None
    return folder, commit, note


def pull_bundle(repo_id: str, revision: str = DEFAULT_REVISION, cache_dir: str | Path | None = None) -> Path:
    """Download `bundle/` of a Hub model repo into the HF cache, verify every sha256, return its folder."""
    folder, commit, _ = _pull(repo_id, revision, cache_dir)
    log.info("pulled %s@%s (%s): verified", repo_id, revision, commit[:12])
    return folder


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path(__file__).resolve().parents[2]).as_posix()
    except ValueError:
        return str(path)


def resolve_model(default_dir: str | Path | None = None) -> ResolvedModel:
    """The model to serve: the Hub repo in $DEEPFAKE_MODEL_REPO ($DEEPFAKE_MODEL_REVISION, default
    main) when it pulls and verifies, else the bundled one, with the reason."""
    default = Path(default_dir) if default_dir is not None else bundle.bundled_model_dir()
    bundled = ResolvedModel(default, f"bundled {_display(default)}")
    repo_id = os.environ.get(REPO_ENV, "").strip()
    if not repo_id:
        bundled.fallback_reason = f"{REPO_ENV} not set"
        return bundled
    revision = os.environ.get(REVISION_ENV, "").strip() or DEFAULT_REVISION
    try:
        folder, commit, note = _pull(repo_id, revision, None)
    except HubError as exc:
        bundled.fallback_reason = str(exc)
        return bundled
    source = f"hub {repo_id}@{commit}" + ("" if revision == commit else f" ({revision})")
    if note:
        source += " (cached copy; Hub unreachable)"
    return ResolvedModel(folder, source, None, verified=True)


# -- CLI -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepfake_detector.hub",
                                     description="Publish a model bundle to the Hugging Face Hub or fetch one.")
    sub = parser.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="push a bundle as one commit; prints the commit URL")
    push.add_argument("bundle_dir")
    push.add_argument("repo_id", metavar="OWNER/NAME")
    push.add_argument("--private", action="store_true", help="create the repo private")
    pull = sub.add_parser("pull", help="download and verify a pushed bundle; prints its local folder")
    pull.add_argument("repo_id", metavar="OWNER/NAME")
    pull.add_argument("--revision", default=DEFAULT_REVISION, help="branch, tag or commit (default: main)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if args.command == "push":
            print(push_bundle(args.bundle_dir, args.repo_id, private=args.private))
        else:
            print(pull_bundle(args.repo_id, revision=args.revision))
    except DetectorError as exc:
        print("error: " + " ".join(redact(str(exc)).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
