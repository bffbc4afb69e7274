"""What this installation has: versions, cache folder, bundled models, scorers, policies and
compression methods (``datapruner info``)."""

from __future__ import annotations

from typing import Any

from datapruner.models.causal_lm import bundled_gguf_path
from datapruner.models.embedder import bundled_embedder_path
from datapruner.paths import cache_dir
from datapruner.pipelines.curate import package_versions
from datapruner.registry import compression_method_names, scorer_catalog
from datapruner.selection import CATALOG as POLICIES

CHECK_SENTENCE = "The cat sat on the mat."


def installation_info(*, load: bool = False) -> dict[str, Any]:
    """Versions, the cache folder, the bundled models' paths and the registered methods.

    Parameters
    ----------
    load : also load the bundled embedder and LM and run them once (checks they work offline);
        adds ``embedder_dim`` and ``lm_check_perplexity``.
    """
    info: dict[str, Any] = {
        "versions": package_versions(),
        "cache_dir": str(cache_dir()),
        "bundled_embedder": str(bundled_embedder_path()),
        "bundled_lm_gguf": str(bundled_gguf_path()),
        "scorers": sorted(scorer_catalog()),
        "policies": sorted(POLICIES),
        "compression_methods": compression_method_names(),
    }
    if load:
        from datapruner.models import CausalLM, Embedder

        info["embedder_dim"] = int(Embedder().embed(["ok"]).shape[1])
        info["lm_check_perplexity"] = float(CausalLM().token_stats([CHECK_SENTENCE])[0].perplexity)
    return info
