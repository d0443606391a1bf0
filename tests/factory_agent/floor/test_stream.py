from factory_agent.floor.stream import LiveStream, simulated_batch
from tests.factory_agent.floor.conftest import install, make_bundle


def test_each_batch_continues_the_cycles_and_holds_a_window_per_machine():
    first = simulated_batch("hot_climate", 0, rows=20, machines=5, seed=3, sequence_length=10)
    second = simulated_batch("hot_climate", 1, rows=20, machines=5, seed=3, sequence_length=10)
    assert first.groupby("machine_id").size().min() >= 10
    assert second["cycle"].min() > first["cycle"].max()
    again = simulated_batch("hot_climate", 1, rows=20, machines=5, seed=3, sequence_length=10)
    assert again.equals(second)  # replayable from the plant's seed


def test_the_stream_scores_nothing_without_a_model_then_every_tick(scorer, delivery, store):
    stream = LiveStream(scorer, "default", interval=60, rows=30, machines=3, seed=1)
    assert stream.tick() == 0
    install(delivery, make_bundle())
    assert stream.tick() == 30 and stream.tick() == 30
    assert store.counts()[0] == 60
