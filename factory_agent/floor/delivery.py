"""The released model, delivered (DESIGN §10): a heartbeat answer names it (`released_model: {id, sha256, size}`);
the plant downloads `GET /api/models/<id>/bundle` with its own heartbeat token, checks the size and the SHA-256,
reads the bundle, and keeps it in its state folder (`models/release-<id>.safetensors`, `models/current.json`).

The answer comes from the network, so everything in it is hostile until checked (STYLE 17): the id must be a
positive integer before it is part of a URL or a file name, the digest 64 lowercase hex characters, the size
within the cap; the download stops at the cap, and a file whose hash or contents do not match is thrown away.
The last good model stays in use meanwhile, and across restarts. A failed download is retried with growing
pauses, never more than once per heartbeat.

A bundle's spec is hostile too: it is bounded as a training request's is (shared.protocol.check_spec), its size
by this plant's policy (max_model_parameters, counted without building anything), and its weights must be
exactly the names and shapes of the network it describes. The network is built once per installed model, when
it first scores (`InstalledModel.network`; a plant at rest never loads torch).

A personalized model (a plant may keep its own model, chosen on its own validation split: --model-choice,
factory_agent.floor.personal) plugs in at `ModelDelivery.choose`; it reports itself with kind "personalized".
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import requests

from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import write_private
from shared.bundle import ModelBundle
from shared.errors import CommunicationError, FederatedLearningError, ModelError, ProtocolError
from shared.model_spec import parameter_count, weight_shapes
from shared.protocol.parts import check_spec

log = logging.getLogger(__name__)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_ID = 2 ** 63 - 1
KEEP_FILES = 5  # released models kept on disk (a roll back to one of them needs no download)
RETRY_FIRST, RETRY_MAX = 15.0, 600.0
MAX_PARAMETERS = PlantPolicy.max_model_parameters  # the policy's default; the agent passes its own


@dataclass(frozen=True)
class ReleasedModel:
    """What a heartbeat answer names."""

    id: int
    sha256: str
    size: int | None = None

    @classmethod
    def from_answer(cls, answer: dict, max_bytes: int) -> "ReleasedModel | None":
        """The answer's `released_model`, checked; None when it names none; ProtocolError when it is malformed."""
        value = answer.get("released_model") if isinstance(answer, dict) else None
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ProtocolError(f"released_model must be an object, got {type(value).__name__}")
        model_id, digest, size = value.get("id"), value.get("sha256"), value.get("size")
        if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 < model_id <= MAX_ID:
            raise ProtocolError(f"released_model.id must be a positive integer, got {str(model_id)[:40]!r}")
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise ProtocolError("released_model.sha256 must be 64 lowercase hex characters")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= max_bytes):
            raise ProtocolError(f"released_model.size must be between 1 and {max_bytes} bytes, got {str(size)[:40]}")
        return cls(model_id, digest, size)


@dataclass(frozen=True)
class InstalledModel:
    id: int
    sha256: str
    bundle: ModelBundle
    kind: str = "global"  # or "personalized" (see ModelDelivery.choose)

    def report(self) -> dict:
        return {"id": self.id, "sha256": self.sha256, "kind": self.kind}

    @cached_property
    def network(self):
        """The bundle's network with its weights, built at its first batch and kept for the next ones."""
        from shared.predict import load_network

        return load_network(self.bundle)


def check_bundle(bundle: ModelBundle, max_parameters: int = MAX_PARAMETERS) -> None:
    """A bundle this plant can score with: a bounded spec within the policy's model size, weights of exactly its
    network's names and shapes, sizes that agree and a threshold that is a probability."""
    try:
        check_spec(bundle.spec)
    except ProtocolError as exc:
        raise ModelError(f"the bundle's model is out of bounds: {exc}") from exc
    features = len(bundle.schema.feature_names)
    if not 0.0 <= bundle.threshold <= 1.0:
        raise ModelError(f"the bundle's threshold {bundle.threshold!r} is not a probability")
    if bundle.spec.num_features != features or bundle.scaler.mean.shape != (features,) or \
            bundle.scaler.scale.shape != (features,):
        raise ModelError("the bundle's model, scaler and feature schema disagree on the number of features")
    parameters = parameter_count(bundle.spec)
    if parameters > max_parameters:
        raise ModelError(f"the bundle's model has {parameters} parameters; this plant's policy allows at most "
                         f"{max_parameters} (max_model_parameters)")
    expected = weight_shapes(bundle.spec)
    if set(bundle.weights) != set(expected):
        odd = sorted(set(bundle.weights) ^ set(expected))
        raise ModelError(f"the bundle's weights are not its model's: {len(odd)} name(s) differ, e.g. "
                         f"{', '.join(repr(name[:40]) for name in odd[:3])}")
    for name, shape in expected.items():
        weight = bundle.weights[name]
        if tuple(weight.shape) != shape or not np.issubdtype(weight.dtype, np.floating):
            raise ModelError(f"the bundle's weight {name!r} is {weight.dtype} {tuple(weight.shape)}; its model "
                             f"needs floats {shape}")


class ModelDelivery:
    def __init__(self, models_dir: Path, dashboard_url: str, max_bytes: int,
                 session: requests.Session | None = None, clock=time.monotonic,
                 max_parameters: int = MAX_PARAMETERS, chooser=None, verify=None):
        self.chooser = chooser
        self.verify = verify  # bundle -> bundle, ModelError when the plant did not derive it (verify_models)  # the plant's own choice (factory_agent.floor.personal.ModelChooser)
        self.models_dir = Path(models_dir)
        self.models_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dashboard_url = dashboard_url.rstrip("/")
        self.max_bytes = max_bytes
        self.max_parameters = max_parameters
        self.session = session or requests.Session()
        self.clock = clock
        self.current: InstalledModel | None = None
        self.lock = threading.Lock()
        self.worker: threading.Thread | None = None
        self.retry: dict[tuple[int, str], tuple[float, float]] = {}  # (id, sha) -> (next try, pause)
        self.refused_answer = False

    def path_of(self, model_id: int) -> Path:
        if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 < model_id <= MAX_ID:
            raise ProtocolError(f"model id {model_id!r} is not a positive integer")
        return self.models_dir / f"release-{model_id}.safetensors"

    # --- the last good model, across restarts -----------------------------------------------------------
    def load_last_good(self) -> InstalledModel | None:
        pointer = self.models_dir / "current.json"
        if not pointer.exists():
            return None
        try:
            saved = json.loads(pointer.read_text())
            model = self._install_from_disk(ReleasedModel(int(saved["id"]), str(saved["sha256"])))
        except (ValueError, KeyError, TypeError, OSError, FederatedLearningError) as exc:
            log.warning("the saved released model cannot be used (%s): waiting for the dashboard's", exc)
            return None
        if model is not None:
            log.info("scoring with released model #%d (sha256 %s…), kept from the last run", model.id,
                     model.sha256[:12])
        return model

    def _install_from_disk(self, released: ReleasedModel) -> InstalledModel | None:
        path = self.path_of(released.id)
        if not path.exists():
            return None
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != released.sha256:
            return None
        return self._install(released, blob)

    def _install(self, released: ReleasedModel, blob: bytes) -> InstalledModel:
        try:
            bundle = ModelBundle.from_bytes(blob)
        except (KeyError, TypeError, ValueError) as exc:  # a bundle of the right format with broken metadata
            raise ModelError(f"model #{released.id} is not a readable bundle ({type(exc).__name__}: {exc})") from exc
        check_bundle(bundle, self.max_parameters)
        if self.verify is not None:
            bundle = self.verify(bundle)
        path = self.path_of(released.id)
        if not path.exists():
            write_private(path, blob)
        write_private(self.models_dir / "current.json",
                       json.dumps({"id": released.id, "sha256": released.sha256}).encode())
        model = self.choose(InstalledModel(released.id, released.sha256, bundle))
        with self.lock:
            self.current = model
        self._prune()
        return model

    def choose(self, released: InstalledModel) -> InstalledModel:
        """The plant's own personalized model, kind="personalized", when its --model-choice says so
        (factory_agent.floor.personal); else the released model."""
        return self.chooser(released) if self.chooser is not None else released

    def _prune(self) -> None:
        files = sorted(self.models_dir.glob("release-*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[KEEP_FILES:]:
            if self.current is None or old != self.path_of(self.current.id):
                old.unlink(missing_ok=True)

    # --- a heartbeat answer ------------------------------------------------------------------------------
    def offer(self, answer: dict, token: str) -> None:
        """Called with every heartbeat answer: start fetching a newly named model in the background."""
        try:
            released = ReleasedModel.from_answer(answer, self.max_bytes)
        except ProtocolError as exc:
            if not self.refused_answer:
                log.warning("refused the dashboard's released_model (%s): keeping the current model", exc)
                self.refused_answer = True
            return
        self.refused_answer = False
        current = self.current
        if released is None or (current and (current.id, current.sha256) == (released.id, released.sha256)):
            return
        key = (released.id, released.sha256)
        next_try, _ = self.retry.get(key, (0.0, 0.0))
        if self.clock() < next_try or (self.worker and self.worker.is_alive()):
            return
        self.worker = threading.Thread(target=self._fetch_logged, args=(released, token), name="model-delivery",
                                       daemon=True)
        self.worker.start()

    def _fetch_logged(self, released: ReleasedModel, token: str) -> None:
        key = (released.id, released.sha256)
        try:
            model = self.fetch(released, token)
        except (FederatedLearningError, OSError) as exc:
            _, pause = self.retry.get(key, (0.0, 0.0))
            pause = min(max(pause * 2, RETRY_FIRST), RETRY_MAX)
            self.retry[key] = (self.clock() + pause, pause)
            log.warning("released model #%d not installed: %s; keeping %s, next try in %.0f s", released.id, exc,
                        f"model #{self.current.id}" if self.current else "no model", pause)
            return
        self.retry.pop(key, None)
        log.info("now scoring with released model #%d (sha256 %s…, experiment %s round %s)", model.id,
                 model.sha256[:12], model.bundle.source.get("experiment_id"), model.bundle.source.get("round"))

    def fetch(self, released: ReleasedModel, token: str) -> InstalledModel:
        """Install the named model: from disk when it is already there (a roll back), else downloaded."""
        model = self._install_from_disk(released)
        if model is not None:
            return model
        blob = self.download(released, token)
        return self._install(released, blob)

    def download(self, released: ReleasedModel, token: str) -> bytes:
        url = f"{self.dashboard_url}/api/models/{int(released.id)}/bundle"
        try:
            with self.session.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=(10, 60),
                                  allow_redirects=False) as resp:
                if resp.status_code != 200:
                    raise CommunicationError(f"the dashboard answered HTTP {resp.status_code} for model #{released.id}")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise ModelError(f"model #{released.id} is {declared} bytes, over this plant's cap of "
                                     f"{self.max_bytes}")
                blob = bytearray()
                for chunk in resp.iter_content(chunk_size=1 << 16):
                    blob.extend(chunk)
                    if len(blob) > self.max_bytes:
                        raise ModelError(f"model #{released.id} is larger than this plant's cap of {self.max_bytes} "
                                         "bytes: download stopped")
        except requests.RequestException as exc:
            raise CommunicationError(f"model #{released.id} could not be downloaded ({type(exc).__name__})") from exc
        digest = hashlib.sha256(blob).hexdigest()
        if digest != released.sha256:
            raise ModelError(f"model #{released.id} has SHA-256 {digest[:12]}…, not the {released.sha256[:12]}… "
                             "the heartbeat named: thrown away")
        return bytes(blob)
