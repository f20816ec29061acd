"""The digits task: scikit-learn's real handwritten digits, padded, split once and for good."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from astrocnn.cli import main
from astrocnn.errors import OptionError
from astrocnn.tasks import get_task
from astrocnn.tasks.digits import data


def test_every_digit_sits_unchanged_in_the_middle_of_a_blank_frame():
    images, labels = data.load()
    original = load_digits()
    assert images.shape == (1797, 1, 16, 16) and images.dtype == np.float32
    np.testing.assert_array_equal(images[:, 0, 4:12, 4:12], original.images)
    frame = images.copy()
    frame[:, :, 4:12, 4:12] = 0
    assert not frame.any()  # four blank pixels on every side
    np.testing.assert_array_equal(labels, original.target)


def test_splits_are_disjoint_cover_the_data_and_do_not_depend_on_the_run_seed():
    parts = data.partition(0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 1000, "val": 250, "test": 547}
    together = np.concatenate(list(parts.values()))
    assert len(np.unique(together)) == 1797  # disjoint and complete
    task = get_task("digits")
    a = task.generate(547, np.random.default_rng(1), "test")
    b = task.generate(547, np.random.default_rng(2), "test")
    np.testing.assert_array_equal(a.x, b.x)  # the rng does not enter
    np.testing.assert_array_equal(a.meta["index"], parts["test"])
    train = task.generate(1000, np.random.default_rng(3), "train")
    assert not set(train.meta["index"]) & set(a.meta["index"])
    # another split_seed is another partition
    other = get_task("digits", {"split_seed": "1"}).generate(547, np.random.default_rng(1), "test")
    assert not np.array_equal(other.meta["index"], a.meta["index"])


def test_asking_for_more_images_than_a_part_holds_is_an_error():
    with pytest.raises(OptionError, match=r"digits has 250 val images .* n_val 300 is more"):
        get_task("digits").generate(300, np.random.default_rng(0), "val")


def test_preprocessing_in_torch_equals_numpy_and_scales_to_unit_range():
    task = get_task("digits")
    x = task.generate(20, np.random.default_rng(0), "test").x
    pre = task.preprocess(x)
    assert pre.max() == 1.0 and pre.min() == 0.0  # grey level 16 is the brightest
    np.testing.assert_allclose(task.preprocess_torch(torch.from_numpy(x)).numpy(), pre)


def test_the_svm_baseline_reads_real_digits():
    """The SVM on pixels is the classical method: on these digits it is known to exceed 0.97."""
    task = get_task("digits")
    rng = np.random.default_rng(0)
    train, test = task.generate(1000, rng, "train"), task.generate(547, rng, "test")
    probs = task.baseline(train, test)
    assert probs.shape == (547, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert task.metrics(probs, test)["accuracy"] > 0.97


def test_train_evaluate_predict_export(tmp_path, capsys):
    import astrocnn

    run = astrocnn.train(
        "digits", epochs=1, n_train=200, n_val=50, n_test=100, out=str(tmp_path / "run"),
        baseline=False, progress_bar=False,
    )  # fmt: skip
    assert set(run.metrics["results"]) == {"cnn", "mlp"}
    assert run.metrics["results"]["cnn"]["n_test"] == 100
    images = run.task.generate(5, np.random.default_rng(0), "test").x
    np.save(tmp_path / "five.npy", images)
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert (
        main(["predict", str(tmp_path / "run"), str(tmp_path / "five.npy"), "--out", str(tmp_path / "p.csv")])
        == 0
    )
    assert len((tmp_path / "p.csv").read_text().strip().splitlines()) == 6  # a header and five rows
    assert main(["export", str(tmp_path / "run"), "--format", "safetensors"]) == 0
    capsys.readouterr()
    assert main(["tasks", "digits"]) == 0
    assert "16x16 pixels" in capsys.readouterr().out
