"""The syft functions a plant agrees to run: thin wrappers around the plant's request handlers.

The dashboard submits exactly these sources (decorated programmatically, so the submitted raw code is
the function's source, byte for byte); the agent approves a code request automatically only when it is exactly
the shipped `fl_step` under that name, on the plant's own assets (factory_agent.approval, DESIGN §9). Change a
body here, even its formatting, and every plant needs the new version of this package before it will approve.
"""

from __future__ import annotations


def fl_step(features, labels, index, request):
    from factory_agent.plant.handlers import handle

    return handle(features, labels, index, request)


VETTED_FUNCTIONS = {"fl_step": fl_step}


# The dataset every plant uploads and the assets fl_step reads (the contract between agent and dashboard).
DATASET_NAME = "plant_sensors"
ASSET_NAMES = ("features", "labels", "index")
