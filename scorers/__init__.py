"""Scorers and compression methods: one module per method of METHODS.md. Importable as `datapruner.scorers`.

`CATALOG` maps each scorer name (as written in a config) to the module defining its `ScoreStep`.
`COMPRESSION_METHODS` maps each compression method name (``method=`` of `datapruner.compress`)
to the module defining its `CompressionMethod` (datapruner/compression/method.py).
Adding either = a new module here + one line below.
"""

CATALOG = {
    "perplexity": "datapruner.scorers.perplexity",
    "text_stats": "datapruner.scorers.text_stats",
    "prototypicality": "datapruner.scorers.prototypicality",
    "density": "datapruner.scorers.density",
    "semdedup": "datapruner.scorers.semdedup",
    "exact_dedup": "datapruner.scorers.exact_dedup",
    "minhash": "datapruner.scorers.minhash_dedup",
    "el2n": "datapruner.scorers.el2n",
    "grand": "datapruner.scorers.grand",
    "confident_learning": "datapruner.scorers.confident_learning",
    "eu_quadrants": "datapruner.scorers.eu_quadrants",
}

COMPRESSION_METHODS = {
    "mig": "datapruner.scorers.compress_mig",
    "fused": "datapruner.scorers.compress_fused",
    "perplexity": "datapruner.scorers.compress_perplexity",
    "seqlabel": "datapruner.scorers.compress_seqlabel",
    "hybrid": "datapruner.scorers.compress_hybrid",
    "random": "datapruner.scorers.compress_random",
    "lead": "datapruner.scorers.compress_lead",
    "bm25": "datapruner.scorers.compress_bm25",
    "dense": "datapruner.scorers.compress_dense",
}
