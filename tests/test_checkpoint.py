"""models.checkpoint: round trip, atomic writes, allow_pickle=False, clear errors for bad files and architectures."""

import json
import os

import numpy as np
import pytest

from models import checkpoint as ck
from models.checkpoint import CheckpointError, check_architecture, load_checkpoint, save_checkpoint


def _params(sizes=(4, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in ck.expected_shapes(list(sizes)).items()}


def test_round_trip(tmp_path):
    params = _params()
    optim = {"lr": np.asarray(0.1), "step": np.array([3, 3, 3, 3]), "m.0": np.ones((4, 3), np.float32)}
    state = {"step": 7, "model_rng": np.random.default_rng(1).bit_generator.state, "history": [{"epoch": 1}]}
    best = {k: v + 1 for k, v in params.items()}
    path = save_checkpoint(tmp_path / "c.npz", params, optim, 5, {"hidden": [3], "lr": 0.1}, state, best)
    c = load_checkpoint(path)
    assert c.epoch == 5 and c.config == {"hidden": [3], "lr": 0.1} and c.state == json.loads(json.dumps(state))
    for k in params:
        np.testing.assert_array_equal(c.params[k], params[k])
        np.testing.assert_array_equal(c.best[k], best[k])
        assert c.params[k].dtype == np.float32
    assert set(c.optim) == set(optim) and int(c.optim["step"][0]) == 3
    # the file is plain arrays: numpy reads it with allow_pickle=False, config_json is a 0-d unicode array
    with np.load(path, allow_pickle=False) as z:
        assert z["config_json"].shape == () and z["config_json"].dtype.kind == "U"
    g = np.random.default_rng(99)
    g.bit_generator.state = c.state["model_rng"]
    assert g.random() == np.random.default_rng(1).random()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _params(seed=0), {}, 1, {})

    def boom(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _params(seed=1), {}, 2, {})
    monkeypatch.undo()
    c = load_checkpoint(path)
    assert c.epoch == 1
    np.testing.assert_array_equal(c.params["layers.0.weight"], _params(seed=0)["layers.0.weight"])
    assert os.listdir(tmp_path) == ["c.npz"]  # no temp file left behind


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        load_checkpoint(garbage)
    good = save_checkpoint(tmp_path / "good.npz", _params(), {}, 1, {})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, w=np.ones(3))
    with pytest.raises(CheckpointError, match="not a tinygrad_lite checkpoint"):
        load_checkpoint(foreign)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.asarray(1), epoch=np.asarray(1), config_json=np.asarray("{}"),
             **{"param.x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        load_checkpoint(pickled)  # object arrays need pickle, which is refused


def test_architecture_mismatch_names_the_problem(tmp_path):
    c = load_checkpoint(save_checkpoint(tmp_path / "c.npz", _params((4, 3, 2)), {}, 1, {}))
    check_architecture(c, [4, 3, 2], "float32")
    with pytest.raises(CheckpointError, match=r"architecture 4-5-2 \(it holds 4-3-2\).*layers.0.weight has shape"):
        check_architecture(c, [4, 5, 2])
    with pytest.raises(CheckpointError, match="missing layers.2.weight"):
        check_architecture(c, [4, 3, 3, 2])
    with pytest.raises(CheckpointError, match="expected float64"):
        check_architecture(c, [4, 3, 2], "float64")


def test_stale_temporaries_are_removed_and_finished_files_kept(tmp_path):
    from models.checkpoint import atomic_write_text, remove_stale_temporaries

    atomic_write_text(tmp_path / "metrics.json", "{}")
    stale = tmp_path / ".checkpoint.npz.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
