"""tinygrad_lite.data.loader: DataLoader epochs (every sample once, drop_last, seeded and
reproducible, a new order each epoch), transforms, dataset objects and bad arguments."""

import numpy as np
import pytest

from tinygrad_lite.data import DataLoader, augment, load_dataset

N = 23
X = np.arange(N * 2, dtype=np.float32).reshape(N, 2)
Y = np.arange(N)


def epoch(loader):
    """The labels of one epoch, batch by batch (the labels are the sample indices)."""
    batches = list(loader)
    for x, y in batches:
        np.testing.assert_array_equal(x, X[y])  # inputs and labels stay paired
    return [y.tolist() for _, y in batches]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 5, 23, 40])
def test_every_sample_once_per_epoch(shuffle, batch_size):
    loader = DataLoader((X, Y), batch_size, shuffle, generator=0)
    for _ in range(3):
        batches = epoch(loader)
        assert len(batches) == len(loader) == -(-N // batch_size)
        assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
        assert sorted(sum(batches, [])) == list(range(N))
        if not shuffle:
            assert sum(batches, []) == list(range(N))


@pytest.mark.parametrize("batch_size", [5, 23, 40])
def test_drop_last_drops_only_the_short_batch(batch_size):
    loader = DataLoader((X, Y), batch_size, shuffle=True, generator=1, drop_last=True)
    batches = epoch(loader)
    assert len(batches) == len(loader) == N // batch_size
    assert all(len(b) == batch_size for b in batches)
    assert len(set(sum(batches, []))) == batch_size * (N // batch_size)


def test_a_seed_reproduces_the_epochs_and_each_epoch_has_its_own_order():
    a, b = DataLoader((X, Y), 4, True, generator=7), DataLoader((X, Y), 4, True, generator=7)
    epochs_a = [epoch(a) for _ in range(4)]
    assert epochs_a == [epoch(b) for _ in range(4)]
    orders = {tuple(sum(e, [])) for e in epochs_a}
    assert len(orders) == 4
    assert epoch(DataLoader((X, Y), 4, True, generator=8)) != epochs_a[0]


def test_a_generator_is_used_as_given():
    g = np.random.default_rng(3)
    loader = DataLoader((X, Y), 6, True, generator=g)
    assert loader.generator is g
    first = sum(epoch(loader), [])
    assert first == np.random.default_rng(3).permutation(N).tolist()


def test_unshuffled_batches_are_views():
    x, _ = next(iter(DataLoader((X, Y), 5)))
    assert np.shares_memory(x, X)


def test_transform_applies_to_inputs_and_can_share_the_generator():
    loader = DataLoader((X, Y), 5, transform=lambda x: -x)
    for x, y in loader:
        np.testing.assert_array_equal(x, -X[y])
    images = np.random.default_rng(0).random((12, 784)).astype(np.float32)
    runs = []
    for _ in range(2):
        g = np.random.default_rng(5)
        loader = DataLoader((images, np.arange(12)), 4, True, generator=g, transform=lambda b: augment(b, g))
        runs.append(np.concatenate([x for x, _ in loader]))
    np.testing.assert_array_equal(runs[0], runs[1])
    plain = np.concatenate([x for x, _ in DataLoader((images, np.arange(12)), 4, True, generator=5)])
    assert runs[0].shape == plain.shape and not np.array_equal(runs[0], plain)  # same order, augmented


class Squares:
    """A dataset object: len() and indexing by an index array."""

    def __len__(self):
        return 10

    def __getitem__(self, idx):
        return np.asarray(idx, dtype=np.float64) ** 2, np.asarray(idx)


def test_a_dataset_object_is_indexed_by_batch():
    batches = list(DataLoader(Squares(), 4, True, generator=0))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    y = np.concatenate([y for _, y in batches])
    assert sorted(y.tolist()) == list(range(10))
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), y**2)


def test_the_bundled_dataset_through_a_loader():
    ds = load_dataset("digits")
    loader = DataLoader((ds.x_train, ds.y_train), 256, shuffle=True, generator=0)
    x, y = next(iter(loader))
    assert x.shape == (256, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(loader) == -(-len(ds.y_train) // 256)


@pytest.mark.parametrize("make, error, message", [
    (lambda: DataLoader((X, Y[:-1]), 4), ValueError, "x and y have different lengths: 23 vs 22"),
    (lambda: DataLoader((X, Y, Y), 4), ValueError, r"expected a pair \(x, y\) of arrays, got 3 items"),
    (lambda: DataLoader((X, Y), 0), ValueError, "DataLoader: batch_size must be a positive integer, got 0"),
    (lambda: DataLoader((X, Y), True), ValueError, "batch_size must be a positive integer, got True"),
    (lambda: DataLoader((X, Y), 4, transform="flip"), TypeError, "transform must be callable"),
    (lambda: DataLoader(load_dataset("digits"), 4), TypeError, r"pass \(ds.x_train, ds.y_train\)"),
    (lambda: list(DataLoader(type("Bad", (), {"__len__": lambda s: 3, "__getitem__": lambda s, i: i})(), 2)),
     TypeError, r"Bad\[indices\] must return a pair \(x, y\), got ndarray"),
])
def test_bad_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()
