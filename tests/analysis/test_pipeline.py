"""Processors, tasks, flow control, outputs, repr and configuration round trips."""

import numpy as np
import pytest

from relscope.analysis import (
    FunctionProcessor,
    Parallel,
    Param,
    Pipeline,
    Processor,
    Sequential,
    Shaper,
    Task,
    as_processor,
    get_processor,
    register_processor,
)
from relscope.errors import ConfigError


@register_processor("test-pipeline-scale")
class Scale(Processor):
    factor = Param(float, 2.0, "Multiplier.")

    def function(self, data):
        return data * self.factor


@register_processor("test-pipeline-shift")
class Shift(Processor):
    offset = Param(float, 1.0, "Added value.")

    def function(self, data):
        return data + self.offset


@register_processor("test-pipeline-negate")
def negate(data):
    return -data


@register_processor("test-pipeline-demo")
class Demo(Pipeline):
    prepare = Task(Scale(), allowed=Scale, doc="Scale the input.")
    branch = Task(Parallel([Shift(), negate]), doc="Two views of the scaled input.")
    pick = Task(None, doc="Optional final pick.")


def test_processor_and_plain_callable_compute():
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(Scale(factor=3)(x), [3.0, -6.0])
    wrapped = as_processor(negate)
    assert isinstance(wrapped, FunctionProcessor)
    assert wrapped.identity() == f"{__name__}.negate"
    assert list(wrapped.params()) == ["is_output", "io"]
    np.testing.assert_array_equal(wrapped(x), [-1.0, 2.0])
    assert as_processor(wrapped) is wrapped
    with pytest.raises(ConfigError, match="expected a processor instance, found the class Scale"):
        as_processor(Scale)
    with pytest.raises(ConfigError, match="expected a processor or a callable, found int"):
        as_processor(3)


def test_default_pipeline_returns_the_last_result_without_flags():
    result = Demo()(np.array([1.0, 2.0]))
    assert isinstance(result, tuple)
    np.testing.assert_array_equal(result[0], [3.0, 5.0])
    np.testing.assert_array_equal(result[1], [-2.0, -4.0])


def test_task_replacement_by_keyword_and_refusal():
    pipeline = Demo(prepare=Scale(factor=10.0), pick=Shaper(1))
    np.testing.assert_array_equal(pipeline(np.array([1.0])), [-10.0])
    assert pipeline.prepare == Scale(factor=10.0)
    assert list(pipeline.tasks()) == ["prepare", "branch", "pick"]
    assert Demo.declared_tasks()["prepare"].doc == "Scale the input."
    with pytest.raises(ConfigError, match="Demo: task 'prepare' expects Scale, found Shift"):
        Demo(prepare=Shift())
    with pytest.raises(ConfigError, match="expects Scale, found FunctionProcessor"):
        Demo(prepare=negate)
    with pytest.raises(ConfigError, match=r"unknown tasks or params \['embedding'\]"):
        Demo(embedding=Scale())
    with pytest.raises(ConfigError, match="task 'prepare' expects Scale"):
        Demo().prepare = Shift()


def test_defaults_are_not_shared_between_pipelines():
    first, second = Demo(), Demo()
    first.prepare.factor = 5.0
    assert second.prepare.factor == 2.0
    assert Demo.declared_tasks()["prepare"].default.factor == 2.0


def test_sequential_chains_and_parallel_broadcasts_or_zips():
    x = np.arange(3.0)
    np.testing.assert_array_equal(Sequential([Scale(), Shift(), negate])(x), -(2 * x + 1))
    np.testing.assert_array_equal(Sequential([])(x), x)
    a, b = Parallel([Scale(), Shift()])(x)
    np.testing.assert_array_equal(a, 2 * x)
    np.testing.assert_array_equal(b, x + 1)
    a, b = Parallel([Scale(), Shift()], broadcast=False)([x, 10 * x])
    np.testing.assert_array_equal(a, 2 * x)
    np.testing.assert_array_equal(b, 10 * x + 1)
    with pytest.raises(ConfigError, match="expected a tuple or list of 2 inputs, found"):
        Parallel([Scale(), Shift()], broadcast=False)(x)
    with pytest.raises(ConfigError, match="Sequential: parameter 'io' expects None"):
        Sequential([Scale()], io=object())


def test_shaper_picks_and_rearranges():
    data = (np.zeros(1), {"labels": np.ones(2), 3: "three"}, "c")
    assert Shaper(2)(data) == "c"
    assert Shaper(-1)(data) == "c"
    np.testing.assert_array_equal(Shaper("1/labels")(data), np.ones(2))
    assert Shaper("1/3")(data) == "three"
    picked = Shaper((2, (0, "1/labels")))(data)
    assert picked[0] == "c"
    np.testing.assert_array_equal(picked[1][1], np.ones(2))
    assert Shaper([2, 2]).spec == (2, 2)
    with pytest.raises(ConfigError, match="Shaper: cannot pick 5 from tuple of length 3"):
        Shaper(5)(data)
    with pytest.raises(ConfigError, match="cannot pick 'missing' from dict"):
        Shaper("1/missing")(data)
    with pytest.raises(ConfigError, match="spec items must be int, str or tuples"):
        Shaper((1.5,))


def test_flagged_outputs_form_a_nested_structure():
    pipeline = Demo(
        prepare=Scale(is_output=True),
        branch=Parallel([Shift(), Sequential([negate, FunctionProcessor(abs, is_output=True)])]),
    )
    output = pipeline(np.array([1.0, -2.0]))
    assert set(output) == {"prepare", "branch"}
    np.testing.assert_array_equal(output["prepare"], [2.0, -4.0])
    assert set(output["branch"]) == {1}
    assert set(output["branch"][1]) == {1}
    np.testing.assert_array_equal(output["branch"][1][1], [2.0, 4.0])
    # A flagged container contributes its own whole result.
    flagged = Demo(branch=Parallel([Shift(), negate], is_output=True))(np.array([1.0]))
    assert list(flagged) == ["branch"]
    assert len(flagged["branch"]) == 2


def test_pipeline_nests_as_a_processor():
    outer = Sequential([Demo(pick=Shaper(0)), Scale(factor=0.5)])
    np.testing.assert_array_equal(outer(np.array([1.0])), [1.5])


def test_repr_is_nested_and_shows_non_default_params():
    pipeline = Demo(prepare=Scale(factor=3), pick=Shaper((1, 0), is_output=True))
    assert repr(Scale()) == "Scale()"
    assert repr(pipeline) == (
        "Demo(\n"
        "    prepare=Scale(factor=3.0),\n"
        "    branch=Parallel([\n"
        "        Shift(),\n"
        "        FunctionProcessor(negate),\n"
        "    ]),\n"
        "    pick=Shaper(spec=(1, 0), is_output=True),\n"
        ")"
    )
    assert repr(Parallel([], broadcast=False)) == "Parallel([], broadcast=False)"


def test_dict_and_yaml_round_trip_rebuild_an_equal_pipeline():
    import yaml

    pipeline = Demo(
        prepare=Scale(factor=0.5, is_output=True),
        branch=Parallel([Sequential([Shift(offset=-1.0), negate]), Shift()], broadcast=True),
        pick=Shaper((1, "0")),
    )
    config = pipeline.to_dict()
    assert config["processor"] == "test-pipeline-demo"
    assert config["tasks"]["branch"]["children"][0]["children"][1] == {
        "processor": "test-pipeline-negate",
        "params": {"is_output": False},
    }
    rebuilt = Processor.from_dict(config)
    assert rebuilt == pipeline
    assert rebuilt != Demo()
    text = pipeline.to_yaml()
    assert yaml.safe_load(text) == config
    from_yaml = Processor.from_yaml(text)
    assert from_yaml == pipeline
    x = np.array([1.0, 2.0])
    for left, right in zip(from_yaml(x).values(), pipeline(x).values(), strict=True):
        np.testing.assert_array_equal(np.asarray(left, dtype=object), np.asarray(right, object))
    skipped = Processor.from_dict(Demo(pick=None).to_dict())
    assert skipped.pick is None


def test_serialization_errors_are_clear():
    with pytest.raises(ConfigError, match="is not registered; add @register_processor"):
        Sequential([lambda x: x]).to_dict()
    with pytest.raises(ConfigError, match=r"unknown tasks \['nope'\]"):
        Processor.from_dict({"processor": "test-pipeline-demo", "tasks": {"nope": None}})
    with pytest.raises(ConfigError, match="pipeline YAML is not valid"):
        Processor.from_yaml("processor: [unclosed")
    with pytest.raises(ConfigError, match="already registered"):
        register_processor("test-pipeline-scale")(Shift)
    assert get_processor("sequential") is Sequential
