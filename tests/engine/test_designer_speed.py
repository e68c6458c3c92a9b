"""Designer speed machinery: work for one input is cached, a newer request on a channel
supersedes an older one (which stops at its next layer), and concurrent sessions or
threads do not corrupt each other's results."""

from __future__ import annotations

import contextlib
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution.config import method_config
from relscope.data.builtin import mnist_cnn
from relscope.engine.designer import DesignSession, Explainer, SupersededError
from relscope.engine.designer.cache import LRUCache, config_key, input_key
from relscope.engine.designer.supersede import Requests

EPSILON = {"name": "eps", "segments": [{"start": 0, "stop": None, "rule": "epsilon"}]}
GAMMA = {
    "name": "gamma",
    "segments": [
        {"start": 0, "stop": 4, "rule": "gamma", "params": {"gamma": 0.5}},
        {"start": 4, "stop": None, "rule": "epsilon"},
    ],
}


@contextlib.contextmanager
def counting_module_calls():
    """Counts every module call made on any thread inside the block."""
    calls = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, _: calls.append(type(module).__name__)
    )
    try:
        yield calls
    finally:
        handle.remove()


def fresh_session(seed: int = 0) -> DesignSession:
    torch.manual_seed(seed)
    return DesignSession(mnist_cnn().double(), input_shape=(1, 28, 28))


def inputs(seed: int) -> torch.Tensor:
    return torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(seed)).double()


# ----------------------------------------------------------------------------- caches
def test_lru_cache_keeps_the_recent_entries_within_its_byte_budget():
    cache = LRUCache(max_bytes=3 * 800, max_entries=10)
    for i in range(4):
        cache.put(i, torch.zeros(100))  # 800 bytes each (float64 is 8, float32 is 4)
    assert cache.get(0) is not None and cache.bytes == 1600  # 400 bytes each: all kept
    big = torch.zeros(200, dtype=torch.float64)  # 1600 bytes: evicts the oldest two
    cache.put("big", big)
    assert cache.bytes <= 2400
    assert cache.get("big") is big and cache.get(0) is not None  # 0 was used: kept
    assert cache.get(1) is None and cache.get(2) is None
    cache.put("huge", torch.zeros(10_000))  # larger than the budget: not kept
    assert cache.get("huge") is None and cache.get("big") is big
    few = LRUCache(max_bytes=10**9, max_entries=2)
    for i in range(3):
        few.put(i, torch.zeros(1))
    assert len(few) == 2 and few.get(0) is None


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20))
@settings(max_examples=30, deadline=None)
def test_input_keys_follow_the_values(values):
    a = torch.tensor(values)
    assert input_key(a) == input_key(a.clone())
    changed = a.clone()
    changed[0] += 1.0 if abs(values[0]) < 1e5 else -1e5
    assert input_key(changed) != input_key(a)
    assert input_key(a.double()) != input_key(a)  # same values, another dtype
    assert input_key(a[None]) != input_key(a)


def test_config_keys_ignore_the_name_only():
    renamed = dict(EPSILON, name="another")
    assert config_key(method_config(EPSILON)) == config_key(method_config(renamed))
    assert config_key(method_config(EPSILON)) != config_key(method_config(GAMMA))


def test_a_repeated_explanation_runs_no_layer(x):
    session = fresh_session()
    first = session.explain(x, GAMMA, target="class", index=2)
    png = first.heatmap_png()
    with counting_module_calls() as calls:
        again = session.explain(x.clone(), dict(GAMMA, name="renamed"), target="class", index=2)
        assert again.heatmap_png() is png  # drawn once
    assert again is first and calls == []
    with counting_module_calls() as calls:
        other = session.explain(x, GAMMA, target="class", index=5)
    assert other is not first and other.target == 5 and calls  # another target: computed
    torch.testing.assert_close(
        other.relevance,
        Explainer(session.model).explain(x, GAMMA, target="class", index=5).relevance,
    )


def test_predictions_of_one_input_run_the_model_once(x):
    session = fresh_session()
    with counting_module_calls() as calls:
        first = session.predict(x)
        count = len(calls)
        assert session.predict(x[0]) == first  # C x H x W and a batch of one: one input
    assert count > 0 and len(calls) == count
    explained = session.explain(x, EPSILON)  # the explanation reuses the cached output
    assert explained.target == first[0].index


# ------------------------------------------------------------------------ supersession
def test_a_newer_request_supersedes_the_older_on_its_channel_only():
    requests = Requests()
    first = requests.begin("client-1:explain")
    other = requests.begin("client-2:explain")
    assert not first.superseded
    second = requests.begin("client-1:explain")
    assert first.superseded and not second.superseded and not other.superseded
    with pytest.raises(SupersededError, match="superseded"):
        first.check()
    second.check()
    free = requests.begin(None)
    requests.begin("client-1:explain")
    assert not free.superseded  # no channel: nothing supersedes it


def test_a_superseded_pass_stops_at_its_next_layer(x):
    session = fresh_session()
    with counting_module_calls() as calls:
        session.explain(x, GAMMA, target="class", index=1)
    full = len(calls)
    session.explainer.results.clear()
    ticket = session.requests.begin("me")
    calls = []

    def newer_request_arrives(module, _):
        calls.append(type(module).__name__)
        if len(calls) == 3:  # the older request is in its third layer
            session.requests.begin("me")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(newer_request_arrives)
    try:
        with pytest.raises(SupersededError):
            session.explain(x, GAMMA, target="class", index=1, ticket=ticket)
    finally:
        handle.remove()
    assert len(calls) == 3 < full  # stopped at once, not at the end
    assert not torch.nn.modules.module._global_forward_pre_hooks  # nothing left behind
    # The engine is intact: the next request computes what a fresh explainer does.
    result = session.explain(x, GAMMA, target="class", index=1, ticket=session.requests.begin("me"))
    reference = Explainer(session.model).explain(x, GAMMA, target="class", index=1)
    torch.testing.assert_close(result.relevance, reference.relevance)


def test_a_waiting_request_gives_way_to_a_newer_one(x):
    """Request 1 holds the model; request 2 waits behind it; request 3 arrives: request 2
    never runs a layer, request 3 gets its answer."""
    session = fresh_session()
    inside, release = threading.Event(), threading.Event()

    class Gate(nn.Module):
        def forward(self, value):
            inside.set()
            assert release.wait(10)
            return value

    gated = DesignSession(nn.Sequential(Gate(), session.model), input_shape=(1, 28, 28))
    results: dict[str, object] = {}

    def run(name, ticket, config):
        try:
            results[name] = gated.explain(x, config, target="class", index=0, ticket=ticket)
        except SupersededError as error:
            results[name] = error

    gradient = {"name": "gradient", "method": "gradient"}  # a plain model call: Gate runs
    first = threading.Thread(target=run, args=("1", gated.requests.begin("a"), gradient))
    first.start()
    assert inside.wait(10)
    second_ticket = gated.requests.begin("b")
    second = threading.Thread(target=run, args=("2", second_ticket, EPSILON))
    second.start()
    third_ticket = gated.requests.begin("b")  # supersedes request 2 while it waits
    release.set()
    first.join(10)
    second.join(10)
    third = gated.explain(x, EPSILON, target="class", index=0, ticket=third_ticket)
    assert isinstance(results["2"], SupersededError)
    assert not isinstance(results["1"], Exception)
    reference = Explainer(gated.model).explain(x, EPSILON, target="class", index=0)
    torch.testing.assert_close(third.relevance, reference.relevance)


# ------------------------------------------------------------------------- concurrency
def test_concurrent_sessions_and_threads_do_not_mix_results():
    """Two sessions on two models, and several threads on one session with configurations
    whose canonizers change the model while entered, give what one thread alone gives."""
    sessions = [fresh_session(0), fresh_session(1)]
    configs = [EPSILON, GAMMA, {"name": "composite", "method": "epsilon_gamma_box"}]
    jobs = [(s, c, seed) for s in range(2) for c in range(3) for seed in range(3)]
    expected = {}
    for s, c, seed in jobs:
        alone = Explainer(sessions[s].model).explain(inputs(seed), configs[c])
        expected[s, c, seed] = (alone.relevance, alone.output)
    got, errors = {}, []

    def work(chunk):
        try:
            for s, c, seed in chunk:
                result = sessions[s].explain(inputs(seed), configs[c])
                top = sessions[s].predict(inputs(seed))[0]
                got[s, c, seed] = (result.relevance, result.output, top)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(jobs[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for key, (relevance, output) in expected.items():
        torch.testing.assert_close(got[key][0], relevance)
        torch.testing.assert_close(got[key][1], output)
        assert got[key][2].index == int(output.argmax())


def test_a_new_input_is_explained_in_one_pass_and_its_output_kept(x):
    """No separate forward pass chooses the predicted class of a new input: explaining it
    costs what explaining an input with a known prediction costs, and then its prediction
    is known."""
    session = fresh_session()
    with counting_module_calls() as calls:
        new = session.explain(x, GAMMA)
    with counting_module_calls() as again:
        top = session.predict(x)
    assert again == [] and new.target == top[0].index  # the pass's output was kept
    other = inputs(7)
    session.predict(other)
    with counting_module_calls() as known:
        session.explain(other, GAMMA)
    assert len(calls) == len(known) > 0
    contrastive = fresh_session().explain(x, GAMMA, target="contrastive")
    reference = Explainer(session.model)
    reference.scores(x)  # the class chosen beforehand, the other way
    expected = reference.explain(x, GAMMA, target="contrastive")
    assert contrastive.target == expected.target
    torch.testing.assert_close(contrastive.relevance, expected.relevance)
