"""What guards the What-If page's one request that changes anything (promoting the candidate), as Jupyter
guards its server.

The page binds 127.0.0.1 unless told otherwise, but any web page the user
opens can send requests to 127.0.0.1, and any local user can too. So the
promote request must carry a token that only the person who started the page
has (printed in the page's URL; the page's script sends it in a header, which
a cross-origin page cannot set without the browser asking first), and it must
come from the page's own origin: a request whose `Origin` is another site, or
that the browser marks cross-site, is refused whatever it carries. With
`--read-only` every such request is refused.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

TOKEN_HEADER = "X-Tfpipe-Token"
TOKEN_QUERY = "token"


@dataclass(frozen=True)
class Guard:
    token: str  # "": every guarded request is refused

    @classmethod
    def new(cls) -> Guard:
        return cls(secrets.token_urlsafe(24))

    @classmethod
    def read_only(cls) -> Guard:
        return cls("")

    @property
    def refuses_all(self) -> bool:
        return not self.token

    @property
    def query(self) -> str:
        """What the page's URL ends with, so that its script can send the token ("" when read-only)."""
        return f"?{TOKEN_QUERY}={self.token}" if self.token else ""

    def refusal(self, request: web.Request) -> str:
        """Why the request may not change anything; "" when it may."""
        if self.refuses_all:
            return "this page is read-only: start `tfpipe whatif serve` with --compare and without --read-only " \
                   "to promote from it"
        origin = request.headers.get("Origin")
        own = f"{request.scheme}://{request.host}"
        if origin is not None and origin != own:
            return f"a request from another origin ({origin}) may not promote; open the page at {own}"
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return "a cross-site request may not promote"
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, "").encode(), self.token.encode()):
            return f"this request lacks the page's token ({TOKEN_HEADER}); open the URL `tfpipe whatif serve` " \
                   "printed, which carries it"
        return ""
