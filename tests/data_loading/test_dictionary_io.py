"""Tests of Dictionary_interface: hashable keys, no mutation of user data, predictions."""

from __future__ import annotations

import numpy as np
import pytest

from miseg.data_loading.interfaces.dictionary_io import Dictionary_interface
from miseg.data_loading.sample import Sample
from miseg.errors import ConfigurationError, DataError, DataNotFoundError, MissingSegmentationError


def _data():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(6, 7, 5)).astype(np.float32)
    seg = (image > 0).astype(np.uint8)
    return {
        "case_a": (image, seg),
        7: (image * 2,),
        ("site", 3): (image, None, np.ones((6, 7, 5), np.uint8)),
        frozenset({1, 2}): (image, seg, None, {"spacing": (2.0, 1.0, 1.0), "affine": np.eye(4)}),
    }


def _pred_sample(index, value):
    sample = Sample(index, np.zeros((6, 7, 5)), 1, 2, {}, three_dim=True)
    sample.add_prediction(np.full((6, 7, 5), value, dtype=np.int64))
    return sample


def test_any_hashable_keys_in_order():
    data = _data()
    interface = Dictionary_interface(data, classes=2)
    assert interface.initialize(None) == ["case_a", 7, ("site", 3), frozenset({1, 2})]
    assert interface.initialize("ignored/path") == list(data)


def test_load_image_copies_and_extended():
    data = _data()
    interface = Dictionary_interface(data)
    image, extended = interface.load_image("case_a")
    np.testing.assert_array_equal(image, data["case_a"][0])
    assert extended == {"type": "dict", "extra": {}}
    image += 100  # in-place processing must not reach the caller's array
    assert data["case_a"][0].max() < 100
    _, extended = interface.load_image(frozenset({1, 2}))
    assert extended["type"] == "dict" and extended["spacing"] == (2.0, 1.0, 1.0)
    extended["affine"][0, 0] = 5.0
    assert data[frozenset({1, 2})][3]["affine"][0, 0] == 1.0
    sample = Sample(frozenset({1, 2}), image, 1, 2, interface.load_image(frozenset({1, 2}))[1], three_dim=True)
    assert sample.spacing == (2.0, 1.0, 1.0)


def test_segmentation_and_missing_segmentation():
    data = _data()
    interface = Dictionary_interface(data)
    np.testing.assert_array_equal(interface.load_segmentation("case_a"), data["case_a"][1])
    assert interface.has_segmentation("case_a")
    for key in (7, ("site", 3)):  # 1-tuple and explicit None
        assert not interface.has_segmentation(key)
        with pytest.raises(MissingSegmentationError, match=repr(key).replace("(", r"\(").replace(")", r"\)")):
            interface.load_segmentation(key)


def test_save_prediction_does_not_mutate_user_dict_and_overwrites():
    data = _data()
    snapshot = {k: tuple(v) for k, v in data.items()}
    interface = Dictionary_interface(data)
    interface.save_prediction(_pred_sample(7, 1), "ignored")
    interface.save_prediction(_pred_sample(("site", 3), 1), None)
    assert {k: tuple(v) for k, v in data.items()} == snapshot
    assert len(data[7]) == 1
    loaded = interface.load_prediction(7, None)
    assert loaded.shape == (6, 7, 5)  # label map stored without the trailing singleton
    assert np.all(loaded == 1)
    interface.save_prediction(_pred_sample(7, 0), None)  # MIScnn kept the first prediction
    assert np.all(interface.load_prediction(7, None) == 0)
    assert np.all(interface.load_prediction(("site", 3), None) == 1)


def test_load_prediction_falls_back_to_tuple():
    data = _data()
    interface = Dictionary_interface(data)
    np.testing.assert_array_equal(interface.load_prediction(("site", 3), None), data[("site", 3)][2])
    with pytest.raises(DataNotFoundError, match="case_a"):
        interface.load_prediction("case_a", None)


def test_bad_entries():
    with pytest.raises(ConfigurationError, match="mapping"):
        Dictionary_interface([("a", np.zeros(3))])
    with pytest.raises(DataNotFoundError, match="no cases"):
        Dictionary_interface({}).initialize(None)
    with pytest.raises(DataError, match="'bad'"):
        Dictionary_interface({"bad": np.zeros((3, 3, 3))}).initialize(None)
    with pytest.raises(DataError, match="details"):
        Dictionary_interface({"bad": (np.zeros(3), None, None, [1, 2])}).initialize(None)
    interface = Dictionary_interface(_data())
    with pytest.raises(DataNotFoundError, match="'missing'"):
        interface.load_image("missing")
    with pytest.raises(DataNotFoundError):
        interface.load_image(["unhashable"])
    assert not Dictionary_interface.check_file_termination(".nii.gz")
