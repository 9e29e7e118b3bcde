"""What an answer about a visitor may reveal to the caller who asked.

The public key ships in every browser and visitor ids sit in cookies, so anyone may ask
about any visitor id they know or guess. The rule (issue 13): with a public key, a
visitor's own data is returned only for the visitor id the request proves with its
identity token (``recsvc.web.identity.disclosure_for`` builds a :class:`Disclosure`), and
only what that visitor's own browser may see, as the profile's browser view
(``recsvc.core.profile.browser_profile``):

- the visitor's items (viewed, carted, bought) when the request proves the visitor and
  they are its own: an anonymous visitor's, or a customer's when the token proves that
  customer (a device a customer logged out of shows nothing of theirs);
- the store's labels (journey stage, segments, sources, the targeting rules a banner
  matched) never: they are the store's view of the visitor, for server, analyst, sender
  and admin keys.

Per endpoint (the views document each): recommendations and banners are served without
proof (storefronts ask on every page) but then name nothing of the visitor's;
nudges (the cart's lines) and cart add-ons for a ``visitor_id`` (which leave out what
the visitor bought) need the proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Disclosure:
    """``labels``: the caller may see the store's labels and everything of any visitor
    (a key that reads full profiles, or an open service). ``proven``: the request proves
    the visitor it asks about. ``user_id``: the customer the request's token proves."""

    labels: bool
    proven: bool = False
    user_id: str | None = None

    def owns(self, visitor: dict[str, Any] | None) -> bool:
        """Whether the answer may name ``visitor``'s items (the visitor document; None for
        one never seen, who has none): any visitor's with ``labels``; else only a proven
        visitor's, and a stitched one's only when the token proves its customer."""
        if self.labels:
            return True
        if not self.proven:
            return False
        user_id = (visitor or {}).get("user_id")
        return not user_id or user_id == self.user_id


# A server, analyst, sender or admin key, or an open service: everything.
FULL = Disclosure(labels=True, proven=True)
# A public key without proof: nothing of the visitor's.
UNPROVEN = Disclosure(labels=False)
