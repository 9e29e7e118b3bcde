"""Request-independent logic: no Flask and no Redis in here (see STYLE.md, "core logic outside
Flask"). Views, the store layer, the exporter, the generator and the training job import it."""
