import inspect

from shared.vetted import fl_step, source_hash, vetted_hashes


def test_the_decorated_source_as_submitted_hashes_like_the_vetted_function():
    source = inspect.getsource(fl_step)
    submitted = "@sy.syft_function(input_policy=policy)\n" + source + "\n\n"
    assert source_hash(submitted) in vetted_hashes()


def test_any_change_to_the_body_is_not_vetted():
    source = inspect.getsource(fl_step).replace("run_step(features", "__import__('os').system('id') or run_step(features")
    assert source_hash(source) not in vetted_hashes()
