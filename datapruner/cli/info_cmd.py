"""`datapruner info`: versions, models, cache, scorers, policies and compression methods."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("info", help="show versions, bundled models, cache folder, scorers, policies and compression methods")
    p.add_argument("--load", action="store_true", help="also load the bundled models to check they work offline")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.models.causal_lm import bundled_gguf_path
    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.paths import cache_dir
    from datapruner.registry import scorer_catalog
    from datapruner.cli.compress_flags import describe_methods
    from datapruner.pipelines.curate import package_versions
    from datapruner.selection import CATALOG as POLICIES

    print("versions:")
    for pkg, version in package_versions().items():
        print(f"  {pkg:22} {version}")
    print(f"cache folder:       {cache_dir()}  (set DATAPRUNER_CACHE to move it)")
    print(f"bundled embedder:   {bundled_embedder_path()}")
    print(f"bundled LM (GGUF):  {bundled_gguf_path()}")
    print(f"scorers:            {', '.join(sorted(scorer_catalog()))}")
    print(f"policies:           {', '.join(sorted(POLICIES))}")
    print(describe_methods())
    if args.load:
        from datapruner.models import CausalLM, Embedder

        print(f"embedder dim:       {Embedder().embed(['ok']).shape[1]}")
        print(f"LM perplexity('The cat sat on the mat.'): {CausalLM().token_stats(['The cat sat on the mat.'])[0].perplexity:.1f}")
    return 0
