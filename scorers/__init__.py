"""Scorers: one module per method of METHODS.md. Importable as `datapruner.scorers`.

`CATALOG` maps each scorer name (as written in a config) to the module defining its `ScoreStep`.
Adding a method = a new module here + one line below.
"""

CATALOG = {
    "perplexity": "datapruner.scorers.perplexity",
    "text_stats": "datapruner.scorers.text_stats",
    "prototypicality": "datapruner.scorers.prototypicality",
    "density": "datapruner.scorers.density",
    "semdedup": "datapruner.scorers.semdedup",
    "el2n": "datapruner.scorers.el2n",
    "grand": "datapruner.scorers.grand",
    "confident_learning": "datapruner.scorers.confident_learning",
    "eu_quadrants": "datapruner.scorers.eu_quadrants",
}
