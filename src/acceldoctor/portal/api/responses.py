"""The API's JSON responses."""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse


def json_bytes(content) -> bytes:
    """JSON with `<`, `>` and `&` written as \\u escapes: text uploaded by anyone comes back exactly (it decodes to
    what was sent) but can never be read as markup, whatever a browser guesses the content to be."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


class HtmlSafeJSONResponse(JSONResponse):
    def render(self, content) -> bytes:
        return json_bytes(content)
