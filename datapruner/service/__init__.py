"""The HTTP service (top floor): it calls `datapruner.pipelines` only."""
