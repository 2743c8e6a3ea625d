"""The index's gauges on ``/metrics``."""

from __future__ import annotations

from lynkr.http.app import GaugeFamily
from lynkr.http.metrics import Sample
from lynkr.index.symbols import IndexReader


def index_gauges(reader: IndexReader) -> list[GaugeFamily]:
    store = reader.store
    last_run = store.meta("last_run") or {}
    values = [
        ("lynkr_index_generation", "gauge Write transactions the index has committed.", float(store.generation())),
        ("lynkr_index_size_bytes", "gauge Bytes the index occupies on disk.", float(store.size_on_disk())),
        ("lynkr_index_runs_finished_total", "counter Full index runs (start-up, rebuild) finished, ever.",
         float(store.meta("runs_finished") or 0)),
        ("lynkr_index_last_run_parsed_files", "gauge Files the last full index run parsed.",
         float(last_run.get("parsed", 0))),
    ]
    return [(name, help_text, [Sample(name=name, value=value)]) for name, help_text, value in values]
