"""`datapruner info`: versions, models, cache, scorers, policies and compression methods."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("info", help="show versions, bundled models, cache folder, scorers, policies and compression methods")
    p.add_argument("--load", action="store_true", help="also load the bundled models to check they work offline")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.cli.compress_flags import describe_methods
    from datapruner.pipelines.info import CHECK_SENTENCE, installation_info

    info = installation_info(load=args.load)
    print("versions:")
    for pkg, version in info["versions"].items():
        print(f"  {pkg:22} {version}")
    print(f"cache folder:       {info['cache_dir']}  (set DATAPRUNER_CACHE to move it)")
    print(f"bundled embedder:   {info['bundled_embedder']}")
    print(f"bundled LM (GGUF):  {info['bundled_lm_gguf']}")
    print(f"scorers:            {', '.join(info['scorers'])}")
    print(f"policies:           {', '.join(info['policies'])}")
    print(describe_methods())
    if args.load:
        print(f"embedder dim:       {info['embedder_dim']}")
        print(f"LM perplexity({CHECK_SENTENCE!r}): {info['lm_check_perplexity']:.1f}")
    return 0
