"""Delivery of the released model against a real HTTP server playing a hostile dashboard."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from factory_agent.floor.delivery import ModelDelivery, ReleasedModel
from shared.errors import CommunicationError, ModelError, ProtocolError
from tests.factory_agent.floor.conftest import make_bundle

CAP = 1024 * 1024


class Dashboard:
    """Serves GET /api/models/<id>/bundle with whatever `routes` says: (status, body, extra headers)."""

    def __init__(self):
        self.routes, self.requests = {}, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.requests.append((self.path, self.headers.get("Authorization")))
                status, body, headers = outer.routes.get(self.path, (404, b"{}", {}))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def dashboard():
    d = Dashboard()
    yield d
    d.close()


@pytest.fixture()
def blob():
    return make_bundle().to_bytes()


def delivery_for(tmp_path, dashboard):
    return ModelDelivery(tmp_path / "models", dashboard.url, max_bytes=CAP)


def test_the_named_model_is_downloaded_with_the_heartbeat_token_verified_and_kept(tmp_path, dashboard, blob):
    dashboard.routes["/api/models/4/bundle"] = (200, blob, {})
    delivery = delivery_for(tmp_path, dashboard)
    model = delivery.fetch(ReleasedModel(4, hashlib.sha256(blob).hexdigest()), "hb-token")
    assert dashboard.requests == [("/api/models/4/bundle", "Bearer hb-token")]
    assert model.id == 4 and delivery.current is model and model.bundle.source["round"] == 2
    assert (tmp_path / "models" / "release-4.safetensors").read_bytes() == blob
    assert oct((tmp_path / "models" / "release-4.safetensors").stat().st_mode & 0o777) == "0o600"
    restarted = ModelDelivery(tmp_path / "models", dashboard.url, max_bytes=CAP).load_last_good()
    assert restarted.id == 4 and restarted.sha256 == model.sha256  # the last good model survives a restart
    assert len(dashboard.requests) == 1


def test_attack_a_wrong_hash_is_thrown_away_and_the_last_good_model_stays(tmp_path, dashboard, blob):
    good = hashlib.sha256(blob).hexdigest()
    dashboard.routes["/api/models/1/bundle"] = (200, blob, {})
    delivery = delivery_for(tmp_path, dashboard)
    delivery.fetch(ReleasedModel(1, good), "t")
    dashboard.routes["/api/models/2/bundle"] = (200, blob + b"tampered", {})
    with pytest.raises(ModelError, match="SHA-256"):
        delivery.fetch(ReleasedModel(2, good), "t")
    assert delivery.current.id == 1 and not (tmp_path / "models" / "release-2.safetensors").exists()


def test_attack_a_huge_file_is_refused_by_its_declared_length_and_while_streaming(tmp_path, dashboard):
    huge = b"x" * (CAP + 1)
    dashboard.routes["/api/models/5/bundle"] = (200, huge, {})
    dashboard.routes["/api/models/6/bundle"] = (200, huge, {"Content-Length": "10", "Connection": "close"})
    delivery = delivery_for(tmp_path, dashboard)
    with pytest.raises(ModelError, match="cap"):
        delivery.fetch(ReleasedModel(5, "0" * 64), "t")
    with pytest.raises((ModelError, CommunicationError)):  # a lying Content-Length: never more than the cap read
        delivery.fetch(ReleasedModel(6, "0" * 64), "t")
    assert delivery.current is None and list((tmp_path / "models").glob("release-*")) == []


def test_attack_a_hashed_file_that_is_not_a_bundle_is_refused(tmp_path, dashboard):
    junk = json.dumps({"not": "a model"}).encode()
    dashboard.routes["/api/models/7/bundle"] = (200, junk, {})
    delivery = delivery_for(tmp_path, dashboard)
    with pytest.raises(ModelError):
        delivery.fetch(ReleasedModel(7, hashlib.sha256(junk).hexdigest()), "t")
    assert delivery.current is None


@pytest.mark.parametrize("named", [
    {"id": "../../etc/passwd", "sha256": "a" * 64}, {"id": "1/../../x", "sha256": "a" * 64},
    {"id": -1, "sha256": "a" * 64}, {"id": 0, "sha256": "a" * 64}, {"id": True, "sha256": "a" * 64},
    {"id": 2 ** 80, "sha256": "a" * 64}, {"id": 1.5, "sha256": "a" * 64}, {"id": 1, "sha256": "A" * 64},
    {"id": 1, "sha256": "a" * 63}, {"id": 1, "sha256": None}, {"id": 1, "sha256": "a" * 64, "size": CAP + 1},
    "release-1", ["id", 1],
])
def test_attack_hostile_heartbeat_answers_are_refused_before_any_request(tmp_path, dashboard, named):
    with pytest.raises(ProtocolError):
        ReleasedModel.from_answer({"released_model": named}, CAP)
    delivery = delivery_for(tmp_path, dashboard)
    delivery.offer({"released_model": named}, "t")
    assert delivery.worker is None and dashboard.requests == []


def test_an_answer_naming_the_model_in_use_fetches_nothing_and_a_failure_waits_before_retrying(tmp_path,
                                                                                              dashboard, blob):
    now = [100.0]
    delivery = ModelDelivery(tmp_path / "models", dashboard.url, max_bytes=CAP, clock=lambda: now[0])
    named = {"id": 9, "sha256": hashlib.sha256(blob).hexdigest()}
    delivery.offer({"released_model": named}, "t")  # 404: not there yet
    delivery.worker.join(10)
    assert delivery.current is None and len(dashboard.requests) == 1
    delivery.offer({"released_model": named}, "t")  # within the pause: no new request
    assert len(dashboard.requests) == 1
    now[0] += 16
    dashboard.routes["/api/models/9/bundle"] = (200, blob, {})
    delivery.offer({"released_model": named}, "t")
    delivery.worker.join(10)
    assert delivery.current.id == 9 and len(dashboard.requests) == 2
    delivery.offer({"released_model": named}, "t")
    assert len(dashboard.requests) == 2


def test_a_roll_back_to_a_model_kept_on_disk_needs_no_download(tmp_path, dashboard, blob):
    other = make_bundle(threshold=0.3).to_bytes()
    dashboard.routes["/api/models/1/bundle"] = (200, blob, {})
    dashboard.routes["/api/models/2/bundle"] = (200, other, {})
    delivery = delivery_for(tmp_path, dashboard)
    delivery.fetch(ReleasedModel(1, hashlib.sha256(blob).hexdigest()), "t")
    delivery.fetch(ReleasedModel(2, hashlib.sha256(other).hexdigest()), "t")
    delivery.fetch(ReleasedModel(1, hashlib.sha256(blob).hexdigest()), "t")
    assert delivery.current.id == 1 and len(dashboard.requests) == 2


def hostile(**spec_changes):
    """A bundle whose spec says one thing (as a hostile dashboard may write it), with weights of its own."""
    import dataclasses

    bundle = make_bundle("lstm")
    return dataclasses.replace(bundle, spec=dataclasses.replace(bundle.spec, **spec_changes))


@pytest.mark.parametrize("changes,words", [
    ({"hidden_size": 100_000}, "hidden_size"), ({"num_layers": 64}, "num_layers"),
    ({"sequence_length": 10 ** 9}, "sequence_length"), ({"dropout": 1.5}, "dropout"),
    ({"hidden_size": 1024, "num_layers": 4}, "max_model_parameters"),
    ({"hidden_size": 17}, "weight"),
    ({"model_type": "mlp", "hidden_size": 2048, "num_layers": 8, "cross_layers": 8}, "max_model_parameters"),
    ({"model_type": "mlp", "cross_layers": 9}, "cross_layers"), ({"model_type": "mlp"}, "weight"),
])
def test_attack_a_bundle_with_a_hostile_spec_is_refused_before_anything_is_built(tmp_path, dashboard, changes,
                                                                                 words, monkeypatch):
    import shared.networks

    def no_build(*args, **kwargs):
        raise AssertionError("a network was built for a bundle not yet checked")

    blob = hostile(**changes).to_bytes()
    monkeypatch.setattr(shared.networks, "build_model", no_build)
    dashboard.routes["/api/models/3/bundle"] = (200, blob, {})
    delivery = delivery_for(tmp_path, dashboard)
    with pytest.raises(ModelError, match=words):
        delivery.fetch(ReleasedModel(3, hashlib.sha256(blob).hexdigest()), "t")
    assert delivery.current is None and not (tmp_path / "models" / "release-3.safetensors").exists()


def test_attack_weights_that_are_not_the_specs_network_are_refused(tmp_path, dashboard):
    import dataclasses

    import numpy as np

    bundle = make_bundle()
    extra = dataclasses.replace(bundle, weights={**bundle.weights, "smuggled": np.zeros((4096, 4096), np.float32)})
    named = dict(bundle.weights)
    named["linear.weight"] = named["linear.weight"].astype(np.int64)
    wrong_type = dataclasses.replace(bundle, weights=named)
    for model_id, candidate, words in ((1, extra, "smuggled"), (2, wrong_type, "linear.weight")):
        blob = candidate.to_bytes()
        dashboard.routes[f"/api/models/{model_id}/bundle"] = (200, blob, {})
        delivery = ModelDelivery(tmp_path / "models", dashboard.url, max_bytes=128 * CAP)
        with pytest.raises(ModelError, match=words):
            delivery.fetch(ReleasedModel(model_id, hashlib.sha256(blob).hexdigest()), "t")
        assert delivery.current is None


def test_the_plants_policy_bounds_the_released_models_size(tmp_path, dashboard, blob):
    from factory_agent.config import parse_config
    from factory_agent.floor.settings import FloorSettings

    dashboard.routes["/api/models/4/bundle"] = (200, blob, {})
    settings = FloorSettings.from_agent_config(parse_config(["--state-dir", str(tmp_path / "st"),
                                                             "--max-model-parameters", "100"]))
    assert settings.max_model_parameters == 100
    delivery = ModelDelivery(tmp_path / "models", dashboard.url, max_bytes=CAP,
                             max_parameters=settings.max_model_parameters)
    with pytest.raises(ModelError, match="at most 100"):
        delivery.fetch(ReleasedModel(4, hashlib.sha256(blob).hexdigest()), "t")


def test_attack_a_plant_with_no_policy_flags_scores_no_released_model_it_did_not_derive(tmp_path, dashboard, blob):
    """The default policy verifies models: a bundle the dashboard serves is scored only when its weights are a round
    this plant derived in that experiment (tests/factory_agent/plant/test_verification.py has the derived case)."""
    from factory_agent.config import parse_config
    from factory_agent.floor.service import PlantFloor
    from factory_agent.floor.settings import FloorSettings

    dashboard.routes["/api/models/4/bundle"] = (200, blob, {})
    released = ReleasedModel(4, hashlib.sha256(blob).hexdigest())
    def settings(*flags):
        return FloorSettings.from_agent_config(parse_config(["--state-dir", *flags, "--dashboard_url", dashboard.url]))

    default = settings(str(tmp_path / "st"))
    assert default.verifies_models
    floor = PlantFloor(default)
    with pytest.raises(ModelError, match="verified no model of experiment"):
        floor.delivery.fetch(released, "t")
    assert floor.delivery.current is None and not (default.models_dir / "release-4.safetensors").exists()
    opted_out = settings(str(tmp_path / "other"), "--verify-models", "no")
    assert not opted_out.verifies_models and PlantFloor(opted_out).delivery.fetch(released, "t").id == 4


def test_the_network_is_built_once_per_installed_model_not_per_batch(scorer, delivery, readings, monkeypatch):
    import shared.predict
    from tests.factory_agent.floor.conftest import install

    builds = []
    real = shared.predict.build_model
    monkeypatch.setattr(shared.predict, "build_model", lambda spec: builds.append(spec) or real(spec))
    install(delivery, make_bundle())
    for _ in range(3):
        scorer.score(readings, "api")
    assert len(builds) == 1
    install(delivery, make_bundle(threshold=0.3), model_id=2)
    scorer.score(readings, "api")
    assert len(builds) == 2


def test_weight_shapes_told_without_torch_are_the_networks_own():
    import itertools

    from shared.model_spec import ModelSpec, parameter_count, weight_shapes
    from shared.networks import build_model

    for family, features, hidden, channels, layers, crosses in itertools.product(
            ("cnn", "mlp", "lstm", "hybrid"), (1, 7), (3, 16), (2, 5), (1, 3), (0, 2)):
        spec = ModelSpec(family, features, sequence_length=4 if family in ("lstm", "hybrid") else 1,
                         hidden_size=hidden, channels=channels, num_layers=layers, cross_layers=crosses)
        model = build_model(spec)
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == weight_shapes(spec), spec
        assert parameter_count(spec) == sum(p.numel() for p in model.parameters())
