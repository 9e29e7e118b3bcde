"""The event log: JSONL files partitioned by day, written by the exporter and read back by
the training job and the rule backtest.

Layout under a log folder ``DIR``::

    DIR/date=YYYY-MM-DD/part-<name>.jsonl        (or .jsonl.gz)

Each line is one event record (``recsvc.core.events``). A reader must drop repeated event
ids: an exporter killed between writing and acknowledging may write an event twice, always
with the same id.
"""
