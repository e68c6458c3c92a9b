"""Typed, documented params: type checks, normalization, introspection, round trips."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relscope.analysis import Param, Processor, register_processor
from relscope.errors import ConfigError


@register_processor("test-params-knn")
class Knn(Processor):
    k = Param(int, 10, "Number of neighbours.")
    sigma = Param(float, 1.0, "Kernel width.")
    metric = Param(str, "euclidean", "Distance.")
    sizes = Param(tuple, (2, 3), "Pool sizes.")
    seed = Param((int, type(None)), None, "Random seed or None.")

    def function(self, data):
        return data


def test_params_are_listed_with_type_default_and_doc():
    params = Knn.params()
    assert list(params) == ["is_output", "io", "k", "sigma", "metric", "sizes", "seed"]
    assert params["k"].types == (int,)
    assert params["k"].default == 10
    assert params["k"].doc == "Number of neighbours."
    assert Knn().get_params()["k"] == 10
    assert repr(params["k"]) == "Param(int, 10, 'Number of neighbours.')"


def test_wrong_type_is_a_one_line_config_error_naming_everything():
    with pytest.raises(ConfigError) as info:
        Knn(k="ten")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Knn: parameter 'k' expects int, found str")
    processor = Knn()
    with pytest.raises(ConfigError, match="'sigma' expects float, found str"):
        processor.sigma = "wide"
    with pytest.raises(ConfigError, match="'is_output' expects bool, found int"):
        Knn(is_output=1)
    with pytest.raises(ConfigError, match="'seed' expects int or None, found float"):
        Knn(seed=1.5)


def test_bool_is_refused_for_numbers_and_unknown_params_are_refused():
    with pytest.raises(ConfigError, match="'k' expects int, found bool"):
        Knn(k=True)
    with pytest.raises(ConfigError, match=r"unknown parameter 'kk' \(known: is_output, io, k,"):
        Knn(kk=3)


def test_values_are_normalized():
    processor = Knn(sigma=2, k=np.int64(4), sizes=[1, [2, 3]])
    assert processor.sigma == 2.0
    assert isinstance(processor.sigma, float)
    assert type(processor.k) is int
    assert processor.sizes == (1, (2, 3))


def test_invalid_default_is_refused_at_declaration():
    with pytest.raises(ConfigError, match="expects int, found str"):
        Param(int, "3", "bad")


def test_assignment_is_per_instance():
    a, b = Knn(), Knn()
    a.k = 3
    assert (a.k, b.k) == (3, 10)
    assert a.changed_params() == {"k": 3}
    assert b.changed_params() == {}


@given(
    k=st.integers(-(10**6), 10**6),
    sigma=st.floats(allow_nan=False, allow_infinity=False),
    metric=st.text(max_size=20),
    sizes=st.lists(st.integers(0, 100), max_size=4).map(tuple),
    seed=st.one_of(st.none(), st.integers(0, 2**31)),
    is_output=st.booleans(),
)
def test_dict_and_yaml_round_trip(k, sigma, metric, sizes, seed, is_output):
    processor = Knn(k=k, sigma=sigma, metric=metric, sizes=sizes, seed=seed, is_output=is_output)
    config = processor.to_dict()
    assert config["processor"] == "test-params-knn"
    assert config["params"]["sizes"] == list(sizes)
    rebuilt = Processor.from_dict(config)
    assert rebuilt == processor
    assert rebuilt.get_params() == processor.get_params()
    assert Processor.from_yaml(processor.to_yaml()) == processor


def test_from_dict_refuses_wrong_types_and_unknown_keys():
    with pytest.raises(ConfigError, match="'k' expects int, found str"):
        Processor.from_dict({"processor": "test-params-knn", "params": {"k": "x"}})
    with pytest.raises(ConfigError, match=r"unknown keys \['extra'\]"):
        Processor.from_dict({"processor": "test-params-knn", "extra": 1})
    with pytest.raises(ConfigError, match="unknown processor 'nope'"):
        Processor.from_dict({"processor": "nope"})
    with pytest.raises(ConfigError, match="expected a mapping with a 'processor' name"):
        Processor.from_dict(["test-params-knn"])
