"""tools/plans.py: which default graphs skip the INT8 search, and where a plan applies."""

from tools import plans
from tools.default_models import search_plan
from tools.quantization import METHODS


def test_a_plan_applies_only_to_its_target_and_onnxruntime_release():
    found = plans.unsearched("text", "x86-vnni", "1.32.0")
    assert set(found) == {"rec"} and "0.9706" in found["rec"]
    assert plans.unsearched("text", "x86-vnni", "1.32.7") == found  # a patch release: same
    assert plans.unsearched("text", "x86-vnni", "1.33.0") == {}
    assert plans.unsearched("text", "arm64", "1.32.0") == {}  # a Raspberry Pi searches
    assert plans.unsearched("objects", "x86-vnni", "1.32.0") == {}


def test_every_plan_names_a_default_bundle_and_says_why():
    from tools.default_models import BUILDERS

    for (bundle, graph), entries in plans.UNSEARCHED.items():
        assert bundle in BUILDERS and graph
        assert all(entry.reason and entry.onnxruntime.count(".") == 1 for entry in entries)


def test_the_default_build_tries_minmax_and_percentile_and_a_full_search_everything():
    assert plans.DEFAULT_METHODS == ("MinMax", "Percentile")
    assert set(plans.DEFAULT_METHODS) < set(METHODS)
    assert search_plan("text", full=True) == (METHODS, {})
    methods, _ = search_plan("text", full=False)
    assert methods == plans.DEFAULT_METHODS
