"""The compression job's engine pieces: units, the token budget, items and rendering, and the
compression method contract. The user entry point is `datapruner.pipelines.compress`."""
