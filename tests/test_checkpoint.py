"""models.checkpoint: safetensors checkpoints (round trip, atomic writes, sizes checked before reading),
earlier .npz checkpoints through the same checks (compressed bombs refused unread), loading a model."""

from __future__ import annotations

import json
import os
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest

from models import checkpoint as ck
from models.checkpoint import (
    CheckpointError,
    check_architecture,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
)
from models.config import TrainConfig
from models.files import WriteError, atomic_write, remove_stale_temporaries
from models.mlp import MLP
from tinygrad_lite.nn.state import read_safetensors_header

CONFIG = TrainConfig(hidden=(3,))  # digits: 784 inputs, 10 classes
SIZES = [784, 3, 10]


def _params(sizes=SIZES, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in ck.expected_shapes(list(sizes)).items()}


def _optim(params):
    d = {"lr": np.asarray(0.1), "step": np.full(len(params), 3, dtype=np.int64)}
    d.update({f"m.{i}": np.ones_like(v) for i, v in enumerate(params.values())})
    return d


def test_round_trip(tmp_path):
    params = _params()
    state = {"step": 7, "model_rng": np.random.default_rng(1).bit_generator.state, "history": [{"epoch": 1}]}
    best = {k: v + 1 for k, v in params.items()}
    sched = {"last_epoch": 7, "T_max": 100}
    path = save_checkpoint(tmp_path / "c.safetensors", params, _optim(params), 5, CONFIG, state, best, sched,
                           run_id="abc")
    c = load_checkpoint(path)
    assert c.epoch == 5 and c.config == CONFIG.to_dict() and c.state == json.loads(json.dumps(state))
    assert c.scheduler == sched and c.run_id == "abc" and c.kind == "checkpoint"
    for k in params:
        np.testing.assert_array_equal(c.params[k], params[k])
        np.testing.assert_array_equal(c.best[k], best[k])
        assert c.params[k].dtype == np.float32
    assert set(c.optim) == set(_optim(params)) and int(c.optim["step"][0]) == 3
    # a plain safetensors file: tensors by name, the rest in the header's metadata
    tensors, meta = read_safetensors_header(path)
    assert "layers.0.weight" in tensors and "optimizer.m.0" in tensors and "best.layers.1.bias" in tensors
    assert json.loads(meta["config"])["hidden"] == [3] and meta["format"] == ck.FORMAT
    g = np.random.default_rng(99)
    g.bit_generator.state = c.state["model_rng"]
    assert g.random() == np.random.default_rng(1).random()


def test_a_saved_model_loads_in_one_call(tmp_path):
    model = MLP([784, 3, 10], seed=4)
    path = save_model(tmp_path / "model.safetensors", model, CONFIG, 2)
    loaded = load_model(path)
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert not loaded.training
    c = load_checkpoint(path)
    assert c.kind == "model" and not c.optim and c.missing_training_state().count("optimizer state")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _params(seed=0), None, 1, CONFIG)

    def boom(f, arrays, metadata=None):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_safetensors", boom)
    with pytest.raises(WriteError, match="cannot write .*c.safetensors: the disk is full"):
        save_checkpoint(path, _params(seed=1), None, 2, CONFIG)
    monkeypatch.undo()
    c = load_checkpoint(path)
    assert c.epoch == 1
    np.testing.assert_array_equal(c.params["layers.0.weight"], _params(seed=0)["layers.0.weight"])
    assert os.listdir(tmp_path) == ["c.safetensors"]  # no temp file left behind


def test_atomic_write_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(WriteError, match="cannot write .*nowhere/x.json"):
        atomic_write(tmp_path / "nowhere" / "x.json", b"{}")


def test_stale_temporaries_are_removed_and_finished_files_kept(tmp_path):
    atomic_write(tmp_path / "metrics.json", b"{}")
    stale = tmp_path / ".checkpoint.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_architecture_mismatch_names_the_problem(tmp_path):
    c = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", _params(), None, 1, CONFIG))
    check_architecture(c, SIZES, "float32")
    with pytest.raises(CheckpointError, match=r"architecture 784-5-10 \(it holds 784-3-10\).*layers.0.weight has"):
        check_architecture(c, [784, 5, 10])
    with pytest.raises(CheckpointError, match="missing layers.2.weight"):
        check_architecture(c, [784, 3, 3, 10])
    with pytest.raises(CheckpointError, match="expected float64"):
        check_architecture(c, SIZES, "float64")


def test_the_stored_config_decides_the_expected_sizes_before_anything_is_read(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", _params([784, 5, 10]), None, 1, CONFIG)
    with pytest.raises(CheckpointError, match=r"c.safetensors: checkpoint does not match the architecture 784-3-10 "
                                              r"\(it holds 784-5-10\)"):
        load_checkpoint(path)
    p = _params()
    path = save_checkpoint(tmp_path / "d.safetensors", {**p, "extra.weight": np.ones(3, np.float32)}, None, 1,
                           CONFIG)
    with pytest.raises(CheckpointError, match="unexpected extra.weight"):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path / "e.safetensors", p, {"m.9": np.ones(3, np.float32)}, 1, CONFIG)
    with pytest.raises(CheckpointError, match=r"unexpected tensors \['optimizer.m.9'\]"):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path / "f.safetensors", p, {"step": np.ones(3, np.int64)}, 1, CONFIG)
    with pytest.raises(CheckpointError, match=r"'optimizer.step' has shape \(3,\), expected \(4,\)"):
        load_checkpoint(path)


def test_a_plain_weights_file_loads_by_its_own_shapes(tmp_path):
    from tinygrad_lite.nn.state import save_safetensors

    model = MLP([6, 4, 2], seed=0, dtype=np.float64)
    save_safetensors(tmp_path / "w.safetensors", model.state_dict())
    c = load_checkpoint(tmp_path / "w.safetensors")
    assert c.kind == "weights" and c.config == {} and c.params["layers.0.weight"].dtype == np.float64
    assert "holds no training state" in c.missing_training_state()
    save_safetensors(tmp_path / "v.safetensors", {"layers.0.weight": np.ones((6, 4))})
    with pytest.raises(CheckpointError, match="holds no MLP parameters"):
        load_checkpoint(tmp_path / "v.safetensors")
    with pytest.raises(CheckpointError, match="holds no config to build the model from"):
        load_model(tmp_path / "w.safetensors")


def test_an_oversized_header_is_refused_before_anything_is_read(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="huge.safetensors: not a valid safetensors file: declares a "
                                              "1099511627776-byte header"):
        load_checkpoint(path)
    header = json.dumps({"layers.0.weight": {"dtype": "F32", "shape": [784, 1 << 30], "data_offsets":
                                             [0, 784 * 4 << 30]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(64))
    with pytest.raises(CheckpointError, match="reach past the end of the data"):
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 1.0


# ------------------------------------------------------------------ earlier versions' .npz
def _legacy(path, params, config, **extra):
    arrays = {"format": np.asarray(1), "epoch": np.asarray(4), "config_json": np.asarray(json.dumps(config)),
              "state_json": np.asarray(json.dumps({"step": 9, "model_rng": {}, "train_rng": {}})),
              **{f"param.{k}": v for k, v in params.items()}, **extra}
    np.savez_compressed(path, **arrays)
    return path


def test_an_earlier_npz_checkpoint_still_loads(tmp_path):
    params = _params()
    path = _legacy(tmp_path / "checkpoint.npz", params, CONFIG.to_dict(),
                   **{f"optim.{k}": v for k, v in _optim(params).items()})
    c = load_checkpoint(path)
    assert c.epoch == 4 and c.state["step"] == 9 and set(c.optim) == set(_optim(params))
    for k in params:
        np.testing.assert_array_equal(c.params[k], params[k])
    with pytest.raises(CheckpointError, match=r"architecture 784-3-10 \(it holds 784-2-10\)"):
        load_checkpoint(_legacy(tmp_path / "other.npz", _params([784, 2, 10]), CONFIG.to_dict()))
    with pytest.raises(CheckpointError, match=r"'param.layers.0.weight.npy' declares 15,808 bytes, more than the "
                                              r"9,408 that float32 \(784, 3\) needs"):
        load_checkpoint(_legacy(tmp_path / "larger.npz", _params([784, 5, 10]), CONFIG.to_dict()))


def _zip_with_member(path, name, compressed, size, crc=0):
    """A zip holding one deflated member whose directory declares ``size`` bytes (written by hand)."""
    fname = name.encode()
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(compressed), size, len(fname), 0)
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(compressed), size,
                          len(fname), 0, 0, 0, 0, 0, 0)
    body = local + fname + compressed
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(fname), len(body), 0)
    path.write_bytes(body + central + fname + end)
    return path


def test_a_compressed_bomb_is_refused_without_decompressing(tmp_path, monkeypatch):
    # 2 GiB of zeros behind a junk .npy header, deflated to ~2 MB: the same flushed block 128 times
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 24)) + c.flush(zlib.Z_FULL_FLUSH)
    stream = block * 128 + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    path = tmp_path / "checkpoint.npz"
    good = tmp_path / "good.npz"
    _legacy(good, {}, CONFIG.to_dict())
    with zipfile.ZipFile(good) as z:
        meta = {i.filename: z.read(i) for i in z.infolist()}
    bomb = _zip_with_member(tmp_path / "bomb.zip", "param.layers.0.weight.npy", stream, 2 << 30)
    with zipfile.ZipFile(bomb, "a") as z:  # the metadata members beside the bomb
        for name, data in meta.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    os.replace(bomb, path)
    decompressed = []
    real = zlib.decompressobj
    monkeypatch.setattr(zlib, "decompressobj", lambda *a: decompressed.append(a) or real(*a))
    with pytest.raises(CheckpointError, match=r"member 'param.layers.0.weight.npy' declares 2,147,483,648 bytes, "
                                              r"more than the 9,408 that float32 \(784, 3\) needs.*refused without "
                                              r"decompressing"):
        load_checkpoint(path)
    assert len(decompressed) == 4  # format, epoch, config_json, state_json: never the bomb


@pytest.mark.parametrize("arrays, match", [
    ({"param.layers.0.weight": np.ones((784, 3), np.float16)}, "layers.0.weight is float16, expected float32"),
    ({"param.layers.0.weight": np.ones((784, 3), np.float64)}, "declares 18,944 bytes, more than the 9,408"),
    ({"optim.m.0": np.ones((784, 4), np.float32)}, r"'optim.m.0' has shape \(784, 4\), expected \(784, 3\)"),
    ({"optim.step": np.ones(2, np.int64)}, r"'optim.step' has shape"),
    ({"optim.lr": np.ones((2, 2))}, "'optimizer.lr' has shape"),
    ({"optim.zzz": np.ones(1)}, r"unexpected tensors \['optimizer.zzz'\]"),
])
def test_npz_members_are_checked_like_safetensors(tmp_path, arrays, match):
    params = {f"param.{k}": v for k, v in _params().items()}
    path = _legacy(tmp_path / "c.npz", {}, CONFIG.to_dict(), **{**params, **arrays})
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)
