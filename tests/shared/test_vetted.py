import inspect

from shared.vetted import ASSET_NAMES, VETTED_FUNCTIONS, fl_step


def test_fl_step_takes_the_three_assets_then_the_request():
    assert tuple(inspect.signature(fl_step).parameters) == (*ASSET_NAMES, "request")


def test_the_dashboard_submits_the_source_of_fl_step_byte_for_byte():
    """The plant approves only this exact text (factory_agent.approval): PySyft's decorator, as the dashboard
    applies it (dashboard.orchestration.syft_clients), must not reformat it."""
    import syft as sy

    submitted = sy.syft_function(output_policy=sy.SingleExecutionExactOutput())(VETTED_FUNCTIONS["fl_step"])
    assert submitted.code == inspect.getsource(fl_step)
    assert submitted.func_name == "fl_step"
