"""The syft functions a plant agrees to run: thin wrappers around shared.training.

The dashboard submits exactly these sources (decorated programmatically, so the submitted raw code is
the function's source); the agent approves a code request automatically only when the hash of its
normalised source matches one of these (factory_agent.approval). Change a body here and every plant
needs the new version of this package before it will approve.
"""

from __future__ import annotations

import hashlib
import inspect


def fl_step(features, labels, index, request):
    from shared.training import run_step

    return run_step(features, labels, index, request)


VETTED_FUNCTIONS = {"fl_step": fl_step}


def normalise_source(source: str) -> str:
    """Drop decorator lines, blank lines and trailing spaces, and dedent, so formatting cannot matter."""
    lines = inspect.cleandoc("\n" + source).splitlines()
    return "\n".join(line.rstrip() for line in lines if line.strip() and not line.lstrip().startswith("@"))


def source_hash(source: str) -> str:
    return hashlib.sha256(normalise_source(source).encode()).hexdigest()


def vetted_hashes() -> dict[str, str]:
    """{sha256 of normalised source: function name} of this version's vetted functions."""
    return {source_hash(inspect.getsource(fn)): name for name, fn in VETTED_FUNCTIONS.items()}


# The dataset every plant uploads and the assets fl_step reads (the contract between agent and dashboard).
DATASET_NAME = "plant_sensors"
ASSET_NAMES = ("features", "labels", "index")
