"""The store layer: everything that reads or writes Redis, through ``recsvc.keys``."""
