"""The import paths the README and the docs show keep working after the layout changes
(issue 14): the new homes re-export, and the two moved drawing modules stay reachable."""

from __future__ import annotations

import importlib

import pytest

# (module, names) as the README, docs/ and the docstrings of the public packages use them.
DOCUMENTED = [
    ("relscope.attribution", ["get_composite", "get_attributor", "list_attributors", "LRP"]),
    ("relscope.attribution", ["Attribution", "Composite", "Epsilon", "segments", "image"]),
    ("relscope.attribution", ["colormaps"]),
    ("relscope.attribution.config", ["method_config", "MethodConfig"]),
    ("relscope.attribution.lrp", ["LRP", "Attribution", "Diagnostics", "NumericalError"]),
    ("relscope.evaluation", ["compare", "diagnose", "perturbation_curve"]),
    ("relscope.analysis", ["SpRAy", "analyze_category", "HDF5Storage"]),
    ("relscope.data", ["AttributionWriter", "AttributionDatabase"]),
    ("relscope.data.dataset", ["open_dataset", "write_hdf5_dataset", "HDF5Dataset"]),
    ("relscope.data.analysis_db", ["AnalysisDatabase", "AnalysisWriter"]),
    ("relscope.app.links", ["view_fragment"]),
    ("relscope.render", ["heatmap", "save_heatmap", "recolor", "list_styles", "grid"]),
    ("relscope.render", ["clean_tokens", "save_token_heatmap", "token_heatmap_html"]),
    ("relscope.attribution.text", ["TokenExplainer", "TokenAttribution"]),
]


@pytest.mark.parametrize(("module", "names"), DOCUMENTED)
def test_documented_import_paths_resolve(module, names):
    loaded = importlib.import_module(module)
    for name in names:
        assert getattr(loaded, name) is not None, f"{module}.{name}"


def test_moved_drawing_modules_are_the_render_ones():
    import relscope.render
    import relscope.render.colormaps
    from relscope.attribution import colormaps, image

    assert image is relscope.render and colormaps is relscope.render.colormaps
    assert image.heatmap is relscope.render.styles.heatmap
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        importlib.import_module("relscope.attribution").nothing  # noqa: B018
