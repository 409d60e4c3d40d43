"""The taught model's head in numpy: nearest class mean, leave-one-out report, threshold,
temperature, and its .npz checked on load."""

import io

import numpy as np
import pytest

from appliance import head as heads


def _clusters(per_class=(10, 10, 10), dim=16, spread=0.2, seed=0):
    rng = np.random.default_rng(seed)
    centres = heads.unit(rng.normal(size=(len(per_class), dim)))
    vectors, targets = [], []
    for k, n in enumerate(per_class):
        vectors.append(centres[k] + spread * rng.normal(size=(n, dim)) / np.sqrt(dim))
        targets += [k] * n
    return np.concatenate(vectors), np.asarray(targets), centres


def test_well_separated_classes_are_told_apart_and_strangers_are_unknown():
    x, y, centres = _clusters()
    fitted = heads.fit(x, y, ["a", "b", "c"])
    assert fitted.report["loo_accuracy"] == 1.0
    assert fitted.report["warnings"] == []
    for k, centre in enumerate(centres):
        assert int(np.argmax(fitted.head.probabilities(centre))) == k
    stranger = heads.unit(np.random.default_rng(9).normal(size=16))
    scores = fitted.head.probabilities(stranger)
    assert int(np.argmax(scores)) == 3  # the last: "none of these"
    assert scores.sum() == pytest.approx(1.0)


def test_the_threshold_is_a_low_percentile_of_leave_one_out_similarity():
    x, y, _ = _clusters(per_class=(40, 40))
    fitted = heads.fit(x, y, ["a", "b"])
    unit = heads.unit(x)
    own = [unit[i] @ heads.unit(unit[(y == y[i]) & (np.arange(80) != i)].sum(0))
           for i in range(80)]
    assert fitted.head.threshold == pytest.approx(np.percentile(own, heads.PERCENTILE), 1e-5)
    assert "learnt" in fitted.report["threshold_from"]


def test_a_fixed_threshold_is_kept():
    x, y, _ = _clusters()
    fitted = heads.fit(x, y, ["a", "b", "c"], threshold=0.3)
    assert fitted.head.threshold == pytest.approx(0.3)
    assert fitted.report["threshold_from"] == "setting teach.threshold"


def test_one_example_per_class_answers_with_a_warning_and_no_unknown():
    x, y, centres = _clusters(per_class=(1, 1))
    fitted = heads.fit(x, y, ["a", "b"])
    assert fitted.head.threshold == heads.NO_THRESHOLD
    assert fitted.head.temperature == pytest.approx(heads.DEFAULT_TEMPERATURE)
    assert fitted.report["loo_accuracy"] is None
    assert fitted.report["warnings"][0].startswith("one example per class: the model answers")
    assert int(np.argmax(fitted.head.probabilities(centres[1]))) == 1


def test_confusions_are_reported_with_what_to_add():
    x, y, _ = _clusters(per_class=(20, 20), spread=3.0)  # two classes on top of each other
    fitted = heads.fit(x, y, ["paper", "scissors"])
    assert fitted.report["classes"]["paper"]["loo_accuracy"] < 1.0
    assert any(w.startswith("paper is often taken for scissors") and w.endswith(
        "add examples of both") for w in fitted.report["warnings"])


def test_a_class_without_examples_is_refused():
    x, y, _ = _clusters(per_class=(3, 3))
    with pytest.raises(ValueError, match="class 'c' has no examples"):
        heads.fit(x, y, ["a", "b", "c"])


def test_the_head_round_trips_through_npz():
    x, y, centres = _clusters()
    fitted = heads.fit(x, y, ["a", "b", "c"])
    loaded = heads.load(io.BytesIO(fitted.head.to_bytes()))
    assert np.array_equal(loaded.probabilities(centres[0]), fitted.head.probabilities(centres[0]))


def test_a_wrong_size_embedding_is_a_value_error():
    x, y, _ = _clusters()
    with pytest.raises(ValueError, match="class means have 16 numbers, the model gave 3"):
        heads.fit(x, y, ["a", "b", "c"]).head.probabilities(np.ones(3))


def _npz(**arrays) -> io.BytesIO:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    return buffer


GOOD = {"means": np.eye(2, 4, dtype=np.float32), "threshold": np.float32(0.5),
        "temperature": np.float32(0.05)}


@pytest.mark.parametrize("arrays, message", [
    ({**GOOD, "extra": np.zeros(1)}, "holds exactly means, temperature, threshold"),
    ({"means": GOOD["means"]}, "holds exactly"),
    ({**GOOD, "means": np.zeros(4, np.float32)}, "means must be a 2-d float array"),
    ({**GOOD, "means": np.full((2, 4), np.nan, np.float32)}, "not finite"),
    ({**GOOD, "threshold": np.float32(3)}, "is not a similarity"),
    ({**GOOD, "temperature": np.float32(0)}, "temperature 0.0 is outside"),
    ({**GOOD, "threshold": np.zeros(2, np.float32)}, "threshold must be one float"),
    ({**GOOD, "means": np.array([["a"]])}, "means must be a 2-d float array"),
])
def test_bad_heads_are_refused(arrays, message):
    with pytest.raises(ValueError, match=message):
        heads.load(_npz(**arrays))


def test_a_pickled_array_is_never_unpickled():
    with pytest.raises(ValueError, match="is not a head: .*pickle"):
        heads.load(_npz(**{**GOOD, "means": np.array([[{"a": 1}]], dtype=object)}))
    with pytest.raises(ValueError, match="is not a head"):
        heads.load(io.BytesIO(b"not a zip file at all"))
