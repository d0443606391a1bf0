"""The plant's record of the global models it derived itself (shared.verification), one folder per experiment in
the state folder (factory_agent.plant.state.verified_models_dir):

    experiment-<id>/chain.json       what the chain is pinned to (the model part's features, scaler and spec, the
                                     public seed, the strategy) and its head round
    experiment-<id>/round-<r>.st     round r's weights (safetensors), for every round derived
    experiment-<id>/state.npz        the server state after the head round (FedDyn's h, an optimiser's moments)

Files are written to a temporary name and renamed, so a crash leaves the previous head. A plant keeps the chains of
its most recent experiments only (bounded disk).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from factory_agent.plant.state import verified_models_dir
from shared.errors import SecurityError
from shared.serialization import weights_from_bytes, weights_to_bytes
from shared.strategies import ServerState

CHAINS_KEPT = 32


@dataclass(frozen=True)
class Chain:
    pinned: dict  # features, scaler, spec, seed, strategy: fixed at round 0 for the whole experiment
    head: int  # the last round derived


class ChainStore:
    def __init__(self, state_directory: Path, experiment: int):
        if isinstance(experiment, bool) or not isinstance(experiment, int) or experiment < 0:
            raise SecurityError(f"experiment id {experiment!r} is not a non-negative integer")
        self.root = verified_models_dir(state_directory)
        self.folder = self.root / f"experiment-{experiment}"

    def load(self) -> Chain | None:
        path = self.folder / "chain.json"
        if not path.exists():
            return None
        d = json.loads(path.read_text())
        return Chain(pinned=d["pinned"], head=int(d["head"]))

    def weights(self, round_number: int) -> dict[str, np.ndarray] | None:
        path = self.folder / f"round-{int(round_number)}.st"
        return weights_from_bytes(path.read_bytes()) if path.exists() else None

    def server_state(self) -> ServerState:
        path = self.folder / "state.npz"
        if not path.exists():
            return ServerState()
        with np.load(path, allow_pickle=False) as arrays:
            return ServerState.from_arrays(dict(arrays))

    def start(self, pinned: dict, weights: dict[str, np.ndarray]) -> Chain:
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._write(self.folder / "round-0.st", weights_to_bytes(weights))
        chain = Chain(pinned=pinned, head=0)
        self._save(chain)
        self._prune()
        return chain

    def discard(self) -> None:
        """Forget a chain this very request started and then failed to verify (a refused call pins nothing)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def extend(self, chain: Chain, weights: dict[str, np.ndarray], state: ServerState) -> Chain:
        """Round head+1, then the head moves (the weights first: a crash between leaves a file, not a head)."""
        head = chain.head + 1
        self._write(self.folder / f"round-{head}.st", weights_to_bytes(weights))
        tmp = self.folder / "state.tmp.npz"
        np.savez(tmp, **state.to_arrays())
        tmp.replace(self.folder / "state.npz")
        chain = Chain(pinned=chain.pinned, head=head)
        self._save(chain)
        return chain

    def _save(self, chain: Chain) -> None:
        self._write(self.folder / "chain.json", json.dumps({"pinned": chain.pinned, "head": chain.head}).encode())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def _prune(self) -> None:
        folders = sorted((p for p in self.root.glob("experiment-*") if p.is_dir()), key=lambda p: p.stat().st_mtime,
                         reverse=True)
        for old in folders[CHAINS_KEPT:]:
            shutil.rmtree(old, ignore_errors=True)
