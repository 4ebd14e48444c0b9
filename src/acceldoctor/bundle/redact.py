"""Redact secrets from text before it goes into a support bundle.

A pipeline of pure functions, each one kind of secret, each `text -> (text, replacements)`: credentials in URLs,
bearer tokens, `key=value` / `key: value` / `"key": "value"` pairs whose key names a secret, well-known token
shapes (AWS, GitHub, Hugging Face, Slack, OpenAI-style keys, JWTs). None of them reaches across a line break, so
they run on a block of whole lines as they would line by line. PEM private key blocks span lines: StreamRedactor
carries that state from one block of lines to the next, so a file of any size is redacted in bounded memory.
A replacement is `<redacted>`, keeping the key name (`password=<redacted>`) so a reader sees something was there.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping

REDACTED = "<redacted>"
Step = Callable[[str], tuple[str, int]]

_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@:'\"<>]*:[^\s/?#'\"<>]+@")
_BEARER = re.compile(r"\b((?i:bearer)[ \t]+)(?!<redacted>)[A-Za-z0-9\-._~+/]{8,}=*")
_TOKEN_SHAPES = re.compile(
    r"\b(?:"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|xox[baprs]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|sk-(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{20,}"  # OpenAI-style
    r"|eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"  # JWT
    r")"
)
# key, optional closing quote of a quoted key, separator, optional auth scheme, value (quoted or a bare word).
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.])(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<kq>[\"']?)(?P<sep>[ \t]*[:=][ \t]*)"
    r"(?P<scheme>(?i:bearer|basic|token|digest)[ \t]+)?"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s,;&'\"]+)"
)
# `--password VALUE`, as command lines show up in logs.
_OPTION = re.compile(r"(?<![\w\-])(?P<key>--?[A-Za-z][A-Za-z0-9_\-]*)(?P<sep>[ \t]+)(?P<value>[^\s\-]\S*)")
PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
PRIVATE_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")

_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "secret", "token", "auth", "authorization",
                           "credential", "credentials", "apikey", "secretkey", "accesskey", "privatekey"})
_SECRET_KEY_QUALIFIERS = frozenset({"api", "access", "secret", "private", "auth", "signing", "encryption", "client"})
# `eos_token`, `max_token`...: tokenizer and generation settings, not credentials.
_NOT_CREDENTIAL_TOKENS = frozenset({"eos", "bos", "pad", "unk", "cls", "sep", "mask", "max", "min", "num", "new",
                                    "total", "special", "start", "end", "first", "last", "next", "prompt", "input",
                                    "output", "per", "vocab", "image", "audio"})
_ENV_SECRET_PARTS = frozenset({"TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "KEY",
                               "KEYS", "CREDENTIAL", "CREDENTIALS", "AUTH", "APIKEY", "PASSPHRASE"})


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a key (`db_password`, `X-Auth-Token`, `apiKey`, `HF_TOKEN`) names a secret; `eos_token_id` does not."""
    if key in ("PWD", "OLDPWD"):  # the shell's working directory
        return False
    parts = [p for p in re.split(r"[_.\-]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()) if p]
    if not parts:
        return False
    last, before = parts[-1], parts[-2] if len(parts) > 1 else ""
    if last == "token":
        return before not in _NOT_CREDENTIAL_TOKENS
    if last in _SECRET_WORDS:
        return True
    return last == "key" and before in _SECRET_KEY_QUALIFIERS


def env_name_is_secret(name: str) -> bool:
    """An environment variable whose value is withheld entirely: any `_` part of its name names a secret."""
    return bool(_ENV_SECRET_PARTS.intersection(name.upper().split("_"))) or is_secret_key(name)


def redact_url_credentials(text: str) -> tuple[str, int]:
    """`scheme://user:pass@host` -> `scheme://<redacted>@host`."""
    return _URL_CREDENTIALS.subn(rf"\1{REDACTED}@", text)


def redact_bearer_tokens(text: str) -> tuple[str, int]:
    """`Bearer xxx` (as in `Authorization: Bearer xxx`) -> `Bearer <redacted>`."""
    return _BEARER.subn(rf"\1{REDACTED}", text)


def redact_token_shapes(text: str) -> tuple[str, int]:
    """Tokens recognizable by their shape alone, wherever they stand."""
    return _TOKEN_SHAPES.subn(REDACTED, text)


def _redact_values(pattern: re.Pattern, text: str) -> tuple[str, int]:
    """Withhold the `value` group where the `key` group names a secret. A pair whose key is harmless gives back
    its value to the search, so `url=https://h/?token=x` still has its token found."""
    out: list[str] = []
    pos = search_from = count = 0
    while (match := pattern.search(text, search_from)) is not None:
        value = match["value"]
        if not is_secret_key(match["key"].lstrip("-")) or REDACTED in value:
            search_from = match.end("sep")
            continue
        quote = value[0] if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0] else ""
        out.append(text[pos: match.start("value")] + f"{quote}{REDACTED}{quote}")
        pos = search_from = match.end()
        count += 1
    if not out:
        return text, 0
    out.append(text[pos:])
    return "".join(out), count


def redact_secret_pairs(text: str) -> tuple[str, int]:
    """`password=x`, `token: x`, `"api_key": "x"`, `--password x` -> the same with the value `<redacted>`."""
    text, pairs = _redact_values(_PAIR, text)
    text, options = _redact_values(_OPTION, text)
    return text, pairs + options


def redact_private_keys(text: str) -> tuple[str, int]:
    """Whole PEM private key blocks (the text holds them entirely); the markers stay, the key goes."""
    redactor = StreamRedactor(steps=())
    out = redactor.feed(text)
    return out, redactor.counts["private_key"]


PIPELINE: tuple[tuple[str, Step], ...] = (
    ("url_credentials", redact_url_credentials),
    ("bearer_token", redact_bearer_tokens),
    ("token", redact_token_shapes),
    ("secret_pair", redact_secret_pairs),
)


def redact_lines(text: str, counts: Counter | None = None, steps=PIPELINE) -> str:
    """Run the single-line steps over `text` (one line or many), adding the replacements by kind to `counts`."""
    for kind, step in steps:
        text, n = step(text)
        if n and counts is not None:
            counts[kind] += n
    return text


_SECRET_WORD_GATE = rb"(?:pass(?:word|wd|phrase)?|pwd|secret|token|auth(?:orization)?|credentials?|key)[_.\-]*"
# Lines any step could change hold one of these (ignoring case); a test holds the steps to that.
_GATE_ALTERNATIVES = (
    rb"://[^\s/]*@", rb"bearer[ \t]", rb"akia", rb"asia", rb"gh[pousr]_", rb"github_pat_", rb"hf_", rb"xox",
    rb"sk-", rb"eyj", _SECRET_WORD_GATE + rb"[\"']?[ \t]*[:=]", rb"-" + _SECRET_WORD_GATE + rb"[ \t]",
)


def _line_gate():
    try:
        import re2
    except ImportError:  # without RE2 every line goes through the steps: slower, same result
        return None
    options = re2.Options()
    options.case_sensitive = False
    options.encoding = re2.Options.Encoding.LATIN1  # in UTF-8 mode a line with a stray byte would go unseen
    return re2.compile(rb"(?m)^[^\n]*(?:" + b"|".join(_GATE_ALTERNATIVES) + rb")[^\n]*", options)


_LINE_GATE = _line_gate()
_PRIVATE_KEY_BEGIN = re.compile(PRIVATE_KEY_BEGIN.pattern.encode())
_PRIVATE_KEY_END = re.compile(PRIVATE_KEY_END.pattern.encode())


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


class StreamRedactor:
    """Redacts a text fed in blocks of whole lines, carrying "inside a private key" from block to block.

    Works on bytes so that a log that is not UTF-8 comes back unchanged outside the redacted spans; one pass of a
    line gate (RE2) picks the few lines that could hold a secret, so most of a log is copied without a look.
    """

    def __init__(self, *, in_private_key: bool = False, steps=PIPELINE, gate=True):
        self.in_private_key = in_private_key  # True when the text starts inside a key (a file read from its middle)
        self.steps = steps
        self.gate = _LINE_GATE if gate else None
        self.counts: Counter = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _lines(self, data: bytes) -> bytes:
        if not data or not self.steps:
            return data
        if self.gate is None:
            return _encode(redact_lines(_decode(data), self.counts, self.steps))
        out: list[bytes] = []
        pos = 0
        for found in self.gate.finditer(data):
            start, end = found.span()
            line = data[start:end]
            redacted = _encode(redact_lines(_decode(line), self.counts, self.steps))
            if redacted != line:
                out += [data[pos:start], redacted]
                pos = end
        if not out:
            return data
        out.append(data[pos:])
        return b"".join(out)

    def feed_bytes(self, data: bytes) -> bytes:
        out: list[bytes] = []
        pos = 0
        while pos < len(data):
            if self.in_private_key:
                end = _PRIVATE_KEY_END.search(data, pos)
                if end is None:
                    break  # the rest of this block is key material
                self.in_private_key = False
                out.append(end[0])
                pos = end.end()
                continue
            begin = _PRIVATE_KEY_BEGIN.search(data, pos)
            if begin is None:
                out.append(self._lines(data[pos:]))
                break
            out.append(self._lines(data[pos:begin.start()]))
            self.counts["private_key"] += 1
            end = _PRIVATE_KEY_END.search(data, begin.end())
            spans_lines = b"\n" in data[begin.end(): end.start() if end else len(data)]
            out.append(begin[0] + (f"\n{REDACTED}\n" if spans_lines else REDACTED).encode())
            self.in_private_key = True
            pos = begin.end()
        return b"".join(out)

    def feed(self, text: str) -> str:
        return _decode(self.feed_bytes(_encode(text)))


def redact_text(text: str, counts: Counter | None = None) -> str:
    """Every kind, private key blocks included, over a whole text."""
    redactor = StreamRedactor()
    out = redactor.feed(text)
    if counts is not None:
        counts.update(redactor.counts)
    return out


def redact_env_value(name: str, value: str, counts: Counter | None = None) -> str:
    """An environment variable's value: withheld when the name looks secret, else redacted like any text."""
    if env_name_is_secret(name):
        if counts is not None:
            counts["secret_env"] += 1
        return REDACTED
    return redact_text(value, counts)


def redact_json(value, counts: Counter | None = None):
    """A parsed JSON document with every string redacted and the values of secret-looking keys withheld."""
    if isinstance(value, str):
        return redact_text(value, counts)
    if isinstance(value, list):
        return [redact_json(v, counts) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and is_secret_key(key) and isinstance(item, str) and item not in ("", REDACTED):
                if counts is not None:
                    counts["secret_pair"] += 1
                out[key] = REDACTED
            else:
                out[key] = redact_json(item, counts)
        return out
    return value
