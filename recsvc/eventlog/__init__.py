"""The event log: JSONL files partitioned by day, written by the exporter and read back by
the training job and the rule backtest.

Layout under a log folder ``DIR``::

    DIR/date=YYYY-MM-DD/part-<name>.jsonl        (or .jsonl.gz)

Each line is one event record (``recsvc.core.events``). The exporter writes each event
once, even when killed and restarted (see ``recsvc.eventlog.exporter``); it can write one
twice, always with the same id, only if ``--gzip`` is switched across a crash or two
exporters share a consumer name. Readers drop repeated ids all the same.
"""
