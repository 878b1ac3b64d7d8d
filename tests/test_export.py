"""models.export: a trained model in PyTorch's nn.Sequential layout (checked with PyTorch when installed)."""

from __future__ import annotations

import numpy as np
import pytest

from models import export, train
from models.checkpoint import load_model
from tinygrad_lite.nn.state import load_safetensors, read_safetensors_header


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    common = ["--epochs", "1", "--threads", "1", "--quiet", "--no-plots"]
    assert train.main([*common, "--hidden", "12,8", "--activations", "relu,tanh", "--out", str(base / "plain")]) == 0
    assert train.main([*common, "--hidden", "6", "--dropout", "0.2", "--activations", "sigmoid",
                       "--out", str(base / "dropout")]) == 0
    return base


def test_keys_and_layouts_are_those_of_torch_sequential(runs, capsys):
    assert export.main(["--format", "torch", str(runs / "plain")]) == 0
    out = runs / "plain.torch.safetensors"  # beside the run's folder, not in it
    printed = capsys.readouterr().out
    code = ("torch.nn.Sequential(torch.nn.Linear(784, 12), torch.nn.ReLU(), torch.nn.Linear(12, 8), torch.nn.Tanh(), "
            "torch.nn.Linear(8, 10))")
    assert code in printed
    arrays = load_safetensors(out)
    assert {k: v.shape for k, v in arrays.items()} == {"0.weight": (12, 784), "0.bias": (12,), "2.weight": (8, 12),
                                                       "2.bias": (8,), "4.weight": (10, 8), "4.bias": (10,)}
    model = load_model(runs / "plain" / "model.safetensors")
    np.testing.assert_array_equal(arrays["0.weight"], model.state_dict()["layers.0.weight"].T)
    meta = read_safetensors_header(out)[1]
    assert meta["format"] == "pt" and meta["architecture"] == code
    # never replaced unless asked
    assert export.main(["--format", "torch", str(runs / "plain")]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert export.main(["--format", "torch", str(runs / "plain"), "--overwrite"]) == 0
    # dropout takes its place in the sequence
    assert export.main(["--format", "torch", str(runs / "dropout" / "model.safetensors"), "-o",
                        str(runs / "d.safetensors")]) == 0
    assert "torch.nn.Sigmoid(), torch.nn.Dropout(0.2), torch.nn.Linear(6, 10)" in capsys.readouterr().out
    assert set(load_safetensors(runs / "d.safetensors")) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert export.main(["--format", "torch", str(runs / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_pytorch_loads_it_and_computes_the_same_logits(runs):
    torch = pytest.importorskip("torch")
    out, code = export.export_torch(runs / "plain", runs / "t.safetensors")
    net = eval(code, {"torch": torch})
    net.load_state_dict({k: torch.from_numpy(v) for k, v in load_safetensors(out).items()}, strict=True)
    x = np.random.default_rng(0).random((32, 784), dtype=np.float32)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    ours = load_model(runs / "plain" / "model.safetensors")(x).numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)


def test_the_reference_torch_loader_reads_it(runs):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    out, code = export.export_torch(runs / "plain", runs / "r.safetensors")
    eval(code, {"torch": torch}).load_state_dict(st.load_file(str(out)))
