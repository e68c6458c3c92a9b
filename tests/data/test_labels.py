"""Label maps: look-ups, ViRelAy-compatible writing, and clean errors for malformed JSON."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relscope.data.labels import Label, LabelMap, load_label_map, save_label_map
from relscope.errors import FormatError


def test_round_trip_always_writes_word_net_id(tmp_path):
    labels = LabelMap([Label(2, "horse", "n02374451"), Label(0, "cat"), Label(1, "dog")])
    path = save_label_map(labels, tmp_path / "labels.json")
    document = json.loads(path.read_text())
    assert document == [
        {"index": 0, "name": "cat", "word_net_id": ""},
        {"index": 1, "name": "dog", "word_net_id": ""},
        {"index": 2, "name": "horse", "word_net_id": "n02374451"},
    ]
    assert load_label_map(path) == labels


def test_lookups_and_category_names():
    labels = LabelMap([Label(0, "cat"), Label(7, "horse", "n02374451")])
    assert labels.indices == [0, 7]
    assert labels.name(7) == "horse"
    assert labels.name(3) == "3"
    assert labels.resolve("n02374451").index == 7
    assert labels.resolve("00000000").name == "cat"
    assert labels.resolve("cat").index == 0
    assert labels.resolve(7).name == "horse"
    assert labels.category_name(0) == "00000000"  # ViRelAy's key without a WordNet id
    assert labels.category_name(7) == "n02374451"
    assert 7 in labels
    assert 3 not in labels
    with pytest.raises(KeyError, match="no label matches 'zebra'"):
        labels.resolve("zebra")
    with pytest.raises(KeyError, match="no label with index 5"):
        labels.by_index(5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"line 1 column 2: expected valid JSON"),
        ('{"index": 0}', "/: expected a JSON array of labels, found dict"),
        ("[]", "at least one label"),
        ("[3]", r"\[0\]: expected an object with index and name"),
        ('[{"name": "a"}]', r"\[0\]\.index: expected an integer >= 0, found nothing"),
        ('[{"index": -1, "name": "a"}]', r"\[0\]\.index: expected an integer >= 0, found -1"),
        ('[{"index": true, "name": "a"}]', r"\[0\]\.index: expected an integer >= 0"),
        ('[{"index": 0, "name": 5}]', r"\[0\]\.name: expected a string"),
        ('[{"index": 0, "name": "a", "colour": 1}]', "only index, name, word_net_id"),
        ('[{"index": 0, "name": "a"}, {"index": 0, "name": "b"}]', "unique indices"),
        (
            '[{"index": 0, "name": "a", "word_net_id": "n1"}, '
            '{"index": 1, "name": "b", "word_net_id": "n1"}]',
            "unique word_net_id",
        ),
    ],
)
def test_malformed_label_maps(tmp_path, text, message):
    path = tmp_path / "labels.json"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        load_label_map(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["index", "name", "word_net_id", "x"]), children, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_json)
def test_any_json_loads_or_fails_cleanly(tmp_path, document):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(document))
    try:
        labels = load_label_map(path)
    except FormatError as error:
        assert "\n" not in str(error)
        assert str(error).startswith(str(path))
        return
    assert len(labels) == len(document)
    assert all(isinstance(label.index, int) for label in labels)
