"""A synthetic storefront and a log replayer.

``recsvc generate`` simulates a small, believable store (``world`` holds who and what
exists, ``generator`` lets the visitors live through the days and writes the files) so that
the whole pipeline can run, and be measured, without real data. Its logs carry planted
structure: visitors buy what they like, so a learned model must beat popularity on them.

``recsvc replay`` (``replay``) posts a log folder to a running service, as a storefront would.
"""
