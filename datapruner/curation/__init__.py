"""The curation job's engine pieces: the dataset view, proxies, clustering, the embedding cache,
the score-step contract and the report. Compositions that users run live in `datapruner.pipelines.curate`."""
