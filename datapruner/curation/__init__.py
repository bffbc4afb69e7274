"""The curation job's engine pieces. Compositions that users run live in `datapruner.pipelines.curate`.

- `steps`: the `ScoreStep` contract every scorer follows.
- `dataset`: column mapping, the ingest pass, `Batch`, `DatasetView` (what a step's `fit` sees).
- `embedding_cache`: the on-disk float16 embedding cache (`EmbeddingFile`).
- `kmeans`: `SphericalKMeans` on FAISS; `clustering`: its resumable passes over a run.
- `prediction_checks`: checks of `(labels, pred_probs)` arrays; `proxy`: `ProxyClassifier`;
  `step_predictions`: where a step's predicted probabilities come from (proxy or column).
- `recorded_scores`: per-example scores recorded while a user's model trained (`scores_file`).
- `report`: the run's score plots.
"""
