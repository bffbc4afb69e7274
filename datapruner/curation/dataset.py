"""The data model of a curation run: column mapping, the ingest pass, batches and the dataset view.

The ingest pass streams the input once and keeps only small per-row arrays in memory (ids,
validity, class indices, a content fingerprint); text is re-streamed whenever a step needs it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, MutableMapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datapruner.errors import InputDataError
from datapruner.io.readers import FORMATS, SourceBatch, read_batches
from datapruner.validation import check_choice, check_positive_int

if TYPE_CHECKING:
    from datapruner.curation.embedding_cache import EmbeddingFile, EmbeddingRows
    from datapruner.models import CausalLM, Embedder

log = logging.getLogger(__name__)

ID_COLUMN = "id"
INVALID_REASONS = ("null_text", "empty_text")


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold what. Only `text` is required (or `prompt` + `response`)."""

    text: str | None = "text"
    label: str | None = None
    id: str | None = None
    prompt: str | None = None
    response: str | None = None

    def used(self) -> dict[str, str]:
        """The mapped roles and their column names, {role: column}."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(kw_only=True)
class Batch:
    """One slice of the dataset as a step sees it.

    start : global index of the first row.
    ids : (n,) stable row ids.
    texts : the text of each row ("" for invalid rows); prompts/responses when mapped.
    valid : (n,) bool, False for rows skipped with a reason (null or empty text).
    labels : (n,) int64 class indices, -1 where the label is missing; None without a label column.
    embeddings : (n, d) float32 when a step needs them, else None.
    record_batch : the raw input columns, for steps that read extra columns (e.g. logits).
    """

    start: int
    ids: list[str]
    texts: list[str]
    valid: np.ndarray
    labels: np.ndarray | None
    record_batch: pa.RecordBatch
    prompts: list[str] | None = None
    responses: list[str] | None = None
    embeddings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(kw_only=True)
class IngestResult:
    """What the ingest pass keeps in memory: small per-row arrays and the input's fingerprints."""

    n_rows: int
    ids: pa.Array
    valid: np.ndarray
    invalid_code: np.ndarray  # (N,) int8: 0 = valid, else 1 + the index of the reason in INVALID_REASONS
    labels: np.ndarray | None
    label_names: list[Any] | None
    schema: pa.Schema
    text_fingerprint: str
    input_fingerprint: str
    sources: list[str]

    @property
    def invalid_reason(self) -> np.ndarray:
        """(N,) object: "" or one of INVALID_REASONS, made from `invalid_code` on each call (not kept)."""
        return np.array(("", *INVALID_REASONS), dtype=object)[self.invalid_code]


class Dataset:
    """An input dataset: path, format, column mapping and batch size. Re-readable any number of times."""

    def __init__(self, path: str | Path, *, format: str = "auto", columns: ColumnMap | None = None, batch_size: int = 1024):
        self.path = str(path)
        self.format = check_choice("input.format", format, ("auto", *FORMATS))
        self.columns = columns or ColumnMap()
        self.batch_size = check_positive_int("input.batch_size", batch_size)
        self._ingest: IngestResult | None = None

    # ---- reading -------------------------------------------------------------------------
    def source_batches(self) -> Iterator[SourceBatch]:
        """Stream the raw input as `SourceBatch`es of at most `batch_size` rows."""
        return read_batches(self.path, format=self.format, batch_size=self.batch_size)

    def _texts(self, rb: pa.RecordBatch) -> tuple[list[str | None], list[str] | None, list[str] | None]:
        cols = self.columns
        if cols.prompt and cols.response and not (cols.text and cols.text in rb.schema.names):
            prompts = _string_column(rb, cols.prompt, "prompt")
            responses = _string_column(rb, cols.response, "response")
            texts = [None if p is None or r is None else f"{p}\n{r}" for p, r in zip(prompts, responses)]
            return texts, [p or "" for p in prompts], [r or "" for r in responses]
        if not cols.text:
            raise InputDataError("no text column is mapped; set input.columns.text (--text-column)")
        texts = _string_column(rb, cols.text, "text")
        if cols.prompt and cols.response:
            prompts = [p or "" for p in _string_column(rb, cols.prompt, "prompt")]
            responses = [r or "" for r in _string_column(rb, cols.response, "response")]
            return texts, prompts, responses
        return texts, None, None

    def ingest(self) -> IngestResult:
        """One streaming pass: validate columns, assign ids, find invalid rows, map labels, fingerprint."""
        if self._ingest is not None:
            return self._ingest
        from datapruner.progress import progress_bar

        ids: list[pa.Array] = []
        codes: list[np.ndarray] = []  # per batch: 0 = valid, else 1 + index into INVALID_REASONS
        raw_labels = []
        text_hash, input_hash = hashlib.sha256(), hashlib.sha256()
        schema, sources, n = None, [], 0
        with progress_bar("reading input") as bar:
            for sb in self.source_batches():
                rb = sb.batch
                if schema is None:
                    schema = rb.schema
                    self._check_columns(schema)
                elif not rb.schema.equals(schema):
                    rb = _conform(rb, schema, sb.source)
                if sb.source not in sources:
                    sources.append(sb.source)
                texts, _, _ = self._texts(rb)
                batch_ids = self._ids(rb, sb)
                ids.append(batch_ids)
                code = np.zeros(len(texts), dtype=np.int8)
                for j, t in enumerate(texts):
                    if t is None or not t.strip():
                        code[j] = 1 if t is None else 2
                    data = (t or "").encode("utf-8", "surrogatepass")
                    text_hash.update(len(data).to_bytes(8, "little"))
                    text_hash.update(data)
                codes.append(code)
                for i in batch_ids.to_pylist():
                    input_hash.update(i.encode("utf-8", "surrogatepass") + b"\0")
                if self.columns.label:
                    raw_labels.append(rb.column(self.columns.label))
                n += rb.num_rows
                bar.advance(rb.num_rows)
        if schema is None or n == 0:
            raise InputDataError(f"input {self.path!r} has no rows; check input.path (--input)")
        labels, names = (None, None)
        if self.columns.label:
            labels, names = encode_labels(pa.chunked_array(raw_labels), self.columns.label)
            input_hash.update(labels.tobytes())
        input_hash.update(text_hash.digest())
        id_array = pa.concat_arrays([a.cast(pa.string()) for a in ids])
        del ids
        dup = first_duplicate(id_array)
        if dup is not None:
            raise InputDataError(
                f"id column {self.columns.id!r} has duplicate values (e.g. {dup!r}); ids must be unique, "
                f"or unset input.columns.id to use file:row ids"
            )
        code = np.concatenate(codes)
        self._ingest = IngestResult(
            n_rows=n,
            ids=id_array,
            valid=code == 0,
            invalid_code=code,
            labels=labels,
            label_names=names,
            schema=schema,
            text_fingerprint=text_hash.hexdigest(),
            input_fingerprint=input_hash.hexdigest(),
            sources=sources,
        )
        return self._ingest

    def _check_columns(self, schema: pa.Schema) -> None:
        names = schema.names
        for role, col in self.columns.used().items():
            if role == "text" and self.columns.prompt and self.columns.response and col not in names:
                continue
            if col not in names:
                raise InputDataError(
                    f"input has no {role} column {col!r}; columns are {names}. "
                    f"Map it with input.columns.{role} (--{role}-column)"
                )

    def _ids(self, rb: pa.RecordBatch, sb: SourceBatch) -> pa.Array:
        if self.columns.id:
            col = rb.column(self.columns.id)
            if col.null_count:
                raise InputDataError(f"id column {self.columns.id!r} has null values in {sb.source}; fill them or unset input.columns.id")
            return col.cast(pa.string())
        name = Path(sb.source).name
        return pa.array([f"{name}:{sb.first_row + i}" for i in range(rb.num_rows)], pa.string())

    def conformed_batches(self) -> Iterator[pa.RecordBatch]:
        """Re-stream the raw input as record batches, each cast to the schema of the first one."""
        schema = self.ingest().schema
        for sb in self.source_batches():
            yield sb.batch if sb.batch.schema.equals(schema) else _conform(sb.batch, schema, sb.source)

    def batches(self, *, embeddings: np.ndarray | None = None) -> Iterator[Batch]:
        """Re-stream the input as `Batch`es aligned with the ingest arrays (and `embeddings` rows)."""
        info = self.ingest()
        start = 0
        for rb in self.conformed_batches():
            n = rb.num_rows
            texts, prompts, responses = self._texts(rb)
            yield Batch(
                start=start,
                ids=info.ids.slice(start, n).to_pylist(),
                texts=[t or "" for t in texts],
                valid=info.valid[start : start + n],
                labels=None if info.labels is None else info.labels[start : start + n],
                record_batch=rb,
                prompts=prompts,
                responses=responses,
                embeddings=None if embeddings is None else np.asarray(embeddings[start : start + n], dtype=np.float32),
            )
            start += n


def first_duplicate(values: pa.Array) -> str | None:
    """A value of the string array `values` that occurs more than once, or None.

    Sort-based (the sorted order's indices and the sorted copy, about 20 bytes per row, for a
    moment), which is faster and smaller than a hash table of every distinct id.
    """
    if len(values) < 2:
        return None
    ordered = values.take(pc.sort_indices(values))
    same = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    if not pc.any(same).as_py():
        return None
    return ordered[int(np.flatnonzero(same.to_numpy(zero_copy_only=False))[0])].as_py()


def _string_column(rb: pa.RecordBatch, name: str, role: str) -> list[str | None]:
    col = rb.column(name)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_null(col.type)):
        raise InputDataError(
            f"{role} column {name!r} has type {col.type}, expected strings; map input.columns.{role} to a text column"
        )
    return col.to_pylist()


def _conform(rb: pa.RecordBatch, schema: pa.Schema, source: str) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_arrays([rb.column(n).cast(schema.field(n).type) for n in schema.names], schema=schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputDataError(
            f"{source} has schema {rb.schema} which differs from the first file's {schema}; "
            f"all input files must share one schema ({exc})"
        ) from None


def encode_labels(column: pa.ChunkedArray, name: str) -> tuple[np.ndarray, list[Any]]:
    """Map a label column to class indices 0..K-1 (sorted distinct values); nulls become -1.

    Integer labels that are exactly 0..K-1 keep their values. Other integers (e.g. {0, 3}) are
    mapped to 0..K-1 in sorted order with a warning, so no class is empty; `label_names` (and the
    manifest's ``labels.classes``) give the original value of each class.
    """
    t = column.type
    if pa.types.is_floating(t):
        values = column.drop_null().to_numpy()
        if values.size and not np.all(np.isfinite(values) & (values == np.round(values))):
            raise InputDataError(
                f"label column {name!r} has type {t} with non-integer values (e.g. {values[values != np.round(values)][:1].tolist()}); "
                f"labels must be integers or strings"
            )
        column = column.cast(pa.int64())
        t = column.type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t) or pa.types.is_dictionary(t)):
        raise InputDataError(
            f"label column {name!r} has type {t}; labels must be integers or strings (one class per row)"
        )
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
    values = column.to_pylist()
    distinct = sorted({v for v in values if v is not None})
    if distinct and all(isinstance(v, int) and not isinstance(v, bool) for v in distinct) and distinct != list(range(len(distinct))):
        shown = ", ".join(f"{v}->{i}" for i, v in enumerate(distinct[:10])) + (", ..." if len(distinct) > 10 else "")
        log.warning(
            "label column %r has the integer values %s, not 0..%d; they are mapped to classes 0..%d in sorted "
            "order (%s); the manifest's labels.classes records the mapping", name,
            distinct[:10], len(distinct) - 1, len(distinct) - 1, shown,
        )
    index = {v: i for i, v in enumerate(distinct)}
    return np.array([-1 if v is None else index[v] for v in values], dtype=np.int64), distinct


@dataclass(kw_only=True)
class DatasetView:
    """What a step's `fit` may look at: the ingest arrays, earlier scores, embeddings, models.

    Parameters
    ----------
    dataset : the input, re-streamable.
    info : the ingest pass's per-row arrays.
    random_state : the run's seed.
    work_dir : the run's work folder (resumable shards, centroids).
    embedder_name, lm_name, lm_max_length : which models the run uses (``models`` section); they
        come from the process-wide model cache and load only when a step uses them.

    Attributes
    ----------
    scores : mapping of str to (N,) array
        The columns of the steps that already ran (a dict, or in a pipeline run a
        `datapruner.curation.score_columns.ScoreColumns` that keeps them on disk; read a column
        with `scores[name]`, store one with `scores[name] = values`).
    fitted : dict
        State fitted once per run and shared by its steps (e.g. one proxy classifier used by el2n,
        confident_learning and eu_quadrants). It lives and dies with the view, so two runs never
        share a fit: a second run recomputes.
    """

    dataset: Dataset
    info: IngestResult
    random_state: int
    work_dir: Path
    embedder_name: str
    lm_name: str
    lm_max_length: int = 512
    scores: MutableMapping[str, np.ndarray] = field(default_factory=dict)
    fitted: dict[Any, Any] = field(default_factory=dict)
    _embeddings: "EmbeddingRows | None" = None

    @property
    def n_rows(self) -> int:
        """Rows in the input."""
        return self.info.n_rows

    @property
    def labels(self) -> np.ndarray | None:
        """(N,) int64 class indices (-1 = missing), or None without a label column."""
        return self.info.labels

    @property
    def n_classes(self) -> int | None:
        """Number of classes K, or None without a label column."""
        return None if self.info.label_names is None else len(self.info.label_names)

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool, False for rows skipped at ingest (null or empty text)."""
        return self.info.valid

    @property
    def embedder(self) -> "Embedder":
        """The run's sentence embedder (shared process-wide; loads on first use)."""
        from datapruner.models import shared_embedder

        return shared_embedder(self.embedder_name)

    @property
    def lm(self) -> "CausalLM":
        """The run's reference causal LM (shared process-wide; loads on first use)."""
        from datapruner.models import shared_causal_lm

        return shared_causal_lm(self.lm_name, self.lm_max_length)

    def embedding_file(self) -> "EmbeddingFile":
        """Where the embeddings are cached on disk (computing what is missing); other processes open it."""
        from datapruner.curation.embedding_cache import cached_embedding_file

        return cached_embedding_file(self.dataset, self.embedder)

    def embeddings(self) -> "EmbeddingRows":
        """(N, d) float16 L2-normalised embeddings, read from the cache file on demand (zero rows where text is invalid)."""
        if self._embeddings is None:
            self._embeddings = self.embedding_file().open()
        return self._embeddings

    def batches(self, *, with_embeddings: bool = False) -> Iterator[Batch]:
        """Re-stream the input as `Batch`es, with each row's embedding when `with_embeddings`."""
        return self.dataset.batches(embeddings=self.embeddings() if with_embeddings else None)
