"""The compression job's engine pieces; the user entry point is `datapruner.pipelines.compress`.

- :mod:`~datapruner.compression.units`: sentences for prose, statements in chunks for code, force-keep patterns.
- :mod:`~datapruner.compression.budget`: token counting, budget resolution, knapsack, forced units, the final cap.
- :mod:`~datapruner.compression.item`: one (query, passages) pair cut into units (what a method reads).
- :mod:`~datapruner.compression.method`: the contract every compression method follows (the extension point).
- :mod:`~datapruner.compression.selection`: what a method returns, and the greedy fill shared by methods.
- :mod:`~datapruner.compression.embedding`: untruncated unit and query embeddings (mig, dense).
- :mod:`~datapruner.compression.render`: code closure, rendering and the cap on the rendered text.
- :mod:`~datapruner.compression.result`: :class:`CompressionResult` and :class:`KeptUnit`.

The methods themselves live in ``scorers/`` (``COMPRESSION_METHODS``) and are found by name
through :mod:`datapruner.registry`.
"""
