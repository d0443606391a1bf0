"""PySyft 0.9.5's second run of approved code on the assets' mocks, recognised at the plant.

When an approved code's inputs are assets (twins: private data and mock), `ActionService._user_code_execute`
(syft/service/action/action_service.py) runs the code on the private data, then again on the mocks with the same
other arguments (the caller's `request` dict), and keeps the second result as the output's mock; the orchestrator
reads the private result. PySyft skips that second run only when a mock's data is `ActionDataEmpty` itself. The
plant uploads its assets with `Asset.no_mock()` (factory_agent.datasite), whose mock is an empty `ActionObject`
wrapped one level deeper: the check misses it, and `fl_step` runs a second time with, for each asset, an
`ActionObject` whose data is `ActionDataEmpty` in place of the array.

Handled as a request, that run would count in the plant's ledgers (the hourly cap, the per-key caps, a claim), be
refused as a replay of the call it shadows ("evaluate was already called") or fail on the empty inputs ("invalid
__array_struct__"), and log a refusal or an error for every real call. It is answered without any work instead.
"""

from __future__ import annotations

import sys

TWIN_RUN_ANSWER = "PySyft's second run on the assets' empty mocks: answered without work"


def is_twin_run(*assets) -> bool:
    """Whether these asset arguments are PySyft's empty mocks rather than the plant's arrays. Only PySyft can
    pass them (a caller names assets; PySyft resolves them to the private arrays, then to the stored mocks)."""
    action_object = sys.modules.get("syft.service.action.action_object")
    if action_object is None:  # PySyft not loaded: a plant run in process (tests, benches) gets arrays
        return False
    from syft.service.action.action_data_empty import ActionDataEmpty

    return any(isinstance(value, action_object.ActionObject) and isinstance(value.syft_action_data, ActionDataEmpty)
               for value in assets)
