"""`datapruner info`: versions, models, cache, scorers and policies."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("info", help="show versions, bundled models, cache folder, scorers and policies")
    p.add_argument("--load", action="store_true", help="also load the bundled models to check they work offline")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.models.causal_lm import bundled_gguf_path
    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.paths import cache_dir
    from datapruner.registry import scorer_catalog
    from datapruner.pipelines.curate import _versions
    from datapruner.selection import CATALOG as POLICIES

    print("versions:")
    for pkg, version in _versions().items():
        print(f"  {pkg:22} {version}")
    print(f"cache folder:       {cache_dir()}  (set DATAPRUNER_CACHE to move it)")
    print(f"bundled embedder:   {bundled_embedder_path()}")
    print(f"bundled LM (GGUF):  {bundled_gguf_path()}")
    print(f"scorers:            {', '.join(sorted(scorer_catalog()))}")
    print(f"policies:           {', '.join(sorted(POLICIES))}")
    if args.load:
        from datapruner.models import CausalLM, Embedder

        print(f"embedder dim:       {Embedder().embed(['ok']).shape[1]}")
        print(f"LM perplexity('The cat sat on the mat.'): {CausalLM().token_stats(['The cat sat on the mat.'])[0].perplexity:.1f}")
    return 0
