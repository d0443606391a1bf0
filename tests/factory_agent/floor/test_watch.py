import os

import pandas as pd

from factory_agent.floor.watch import WatchFolder
from shared.data.simulator import simulate
from shared.predict import score_frame
from tests.factory_agent.floor.conftest import install, make_bundle


def settle(watch: WatchFolder):
    """Two looks: a file is read once its size and time held still between them."""
    watch.scan_once()
    return watch.scan_once()


def test_a_dropped_csv_gets_its_scores_beside_it_with_the_columns_of_design_7(tmp_path, scorer, delivery):
    bundle = make_bundle()
    install(delivery, bundle)
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer, interval=0.1)
    data = simulate("precision", 120, seed=3, machines=3)
    data.to_csv(folder / "shift 1.csv", index=False)
    assert watch.scan_once() == []  # first look: maybe still being copied
    assert watch.scan_once() == [folder / "shift 1.csv"]
    scores = pd.read_csv(folder / "shift 1.scores.csv")
    assert list(scores.columns) == ["row", "machine_id", "cycle", "probability", "prediction"]
    expected = score_frame(bundle, pd.read_csv(folder / "shift 1.csv"))
    assert scores["row"].tolist() == expected["row"].tolist()
    assert (scores["probability"] - expected["probability"]).abs().max() < 1e-6
    assert sorted(p.name for p in folder.iterdir()) == ["shift 1.csv", "shift 1.scores.csv"]  # no temp file left


def test_files_already_scored_are_not_scored_again_unless_replaced(tmp_path, scorer, delivery, store):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    simulate("default", 50, seed=1).to_csv(folder / "a.csv", index=False)
    settle(watch)
    assert settle(watch) == [] and store.counts()[0] == 50
    path = folder / "a.csv"
    simulate("default", 60, seed=2).to_csv(path, index=False)
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9, path.stat().st_mtime_ns + 10**9))  # a newer file
    assert settle(watch) == [path] and store.counts()[0] == 110


def test_a_bad_file_gets_one_clear_error_line_and_no_scores(tmp_path, scorer, delivery):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    simulate("default", 30, seed=1).drop(columns=["torque_nm"]).to_csv(folder / "no_torque.csv", index=False)
    (folder / "garbage.csv").write_text("torque_nm,type\nabc,L\n")
    (folder / "empty.csv").write_text("")
    settle(watch)
    for name, words in (("no_torque", "torque_nm"), ("garbage", "missing column"), ("empty", "empty")):
        text = (folder / f"{name}.error.txt").read_text()
        assert text.startswith("error: ") and text.count("\n") == 1 and words in text, (name, text)
        assert not (folder / f"{name}.scores.csv").exists()


def test_files_wait_for_a_model_and_our_own_outputs_and_hidden_files_are_ignored(tmp_path, scorer, delivery):
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    simulate("default", 30, seed=1).to_csv(folder / "early.csv", index=False)
    (folder / "old.scores.csv").write_text("row,probability\n")
    (folder / ".partial.csv").write_text("x\n")
    assert settle(watch) == []  # no model yet: it waits, no error file
    assert not (folder / "early.error.txt").exists()
    install(delivery, make_bundle())
    assert watch.scan_once() == [folder / "early.csv"]
    assert sorted(p.name for p in folder.iterdir()) == [".partial.csv", "early.csv", "early.scores.csv",
                                                       "old.scores.csv"]


def test_a_file_still_being_written_is_not_read_half_way(tmp_path, scorer, delivery):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    path = folder / "growing.csv"
    data = simulate("default", 40, seed=1)
    data.head(10).to_csv(path, index=False)
    watch.scan_once()
    data.to_csv(path, index=False)  # the copy goes on between two looks
    assert watch.scan_once() == []
    assert watch.scan_once() == [path]
    assert len(pd.read_csv(folder / "growing.scores.csv")) == 40


def private_readings(tmp_path):
    """A file the dropper of a watched file cannot read: a plant's private training data."""
    private = tmp_path / "private" / "train.csv"
    private.parent.mkdir()
    simulate("default", 40, seed=5).to_csv(private, index=False)
    return private


def test_attack_a_link_to_a_private_file_is_never_scored(tmp_path, scorer, delivery, store):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    (folder / "x.csv").symlink_to(private_readings(tmp_path))
    assert settle(watch) == [] and settle(watch) == []
    assert sorted(p.name for p in folder.iterdir()) == ["x.csv"] and store.counts()[0] == 0


def test_attack_a_file_swapped_for_a_link_after_the_look_is_not_followed(tmp_path, scorer, delivery, store):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    path = folder / "x.csv"
    simulate("default", 40, seed=1).to_csv(path, index=False)
    watch.scan_once()
    path.unlink()
    path.symlink_to(private_readings(tmp_path))  # between the look and the read
    watch.handle(path)
    assert not (folder / "x.scores.csv").exists() and store.counts()[0] == 0
    assert "symbolic link" in (folder / "x.error.txt").read_text()


def test_attack_a_hard_link_to_a_private_file_is_refused(tmp_path, scorer, delivery, store):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    os.link(private_readings(tmp_path), folder / "x.csv")
    settle(watch)
    assert not (folder / "x.scores.csv").exists() and store.counts()[0] == 0
    assert "hard links" in (folder / "x.error.txt").read_text()


def test_attack_the_size_cap_is_checked_on_the_open_file_not_on_an_earlier_look(tmp_path, scorer, delivery,
                                                                                store):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer, max_bytes=2_000)
    path = folder / "x.csv"
    simulate("default", 20, seed=1).to_csv(path, index=False)
    watch.scan_once()
    simulate("default", 400, seed=1).to_csv(path, index=False)  # grown past the cap after the look
    watch.handle(path)
    assert "2000 bytes" in (folder / "x.error.txt").read_text() and store.counts()[0] == 0


def test_attack_an_error_file_quotes_no_more_than_a_short_sanitised_excerpt_of_a_cell(tmp_path, scorer, delivery):
    install(delivery, make_bundle())
    folder = tmp_path / "watch"
    watch = WatchFolder(folder, scorer)
    data = simulate("default", 20, seed=1).astype({"torque_nm": object})
    secret = "SECRET-" + "s3cr3t" * 40
    data.loc[3, "torque_nm"] = "\x1b[31m" + secret
    data.to_csv(folder / "bad.csv", index=False)
    settle(watch)
    text = (folder / "bad.error.txt").read_text()
    assert "torque_nm" in text and "row 3" in text and "\x1b" not in text
    assert "s3cr3t" * 4 not in text and text.count("\n") == 1
