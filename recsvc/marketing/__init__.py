"""Marketing tools that run offline, beside the service.

``recsvc backtest-rules`` (``recsvc.marketing.commands``) replays an exported event log
through the rule engine the service uses (``recsvc.core.targeting``, ``recsvc.core.banners``,
``recsvc.core.nudges``) and reports whom each banner and nudge rule would have reached:

- ``replay``: profiles rebuilt in memory, event by event, as the event writer builds them;
- ``banner_sim``: banner opportunities and what ``choose`` decided at each;
- ``nudge_sim``: abandoned-cart nudges per channel, from cart change to send or cancel;
- ``inputs``: the banners file and the catalog file;
- ``report``: the report, as JSON, Markdown and a terminal table;
- ``backtest``: the engine that ties them together (``Backtest(...).run(records)``).
"""
