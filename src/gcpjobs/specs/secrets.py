"""Which environment variables hold secrets, so that previews and logs never show their values.

A name looks secret when one of its words (split at `_`, `-`, `.` and camelCase boundaries)
is a secret word (`API_KEY`, `dbPassword`, `HF_TOKEN`), or when it contains an unambiguous
secret word glued to others (`DBPASSWORD`, `MYSECRETVALUE`). Words that merely contain a short
secret word are not secret: `MONKEY`, `MAX_TOKENS`, `TOKENIZER_PATH`, `AUTHOR`. Redacting a
harmless value is cheap; showing a secret is not, so the list errs on the generous side.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

REDACTED = "<redacted>"

# Secret when one of the name's words is exactly one of these.
_SECRET_WORDS = frozenset(
    {
        "TOKEN", "KEY", "KEYS", "APIKEY", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS",
        "PASSWD", "PASS", "PWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "CREDS", "PRIVATE",
        "AUTH", "SESSION", "COOKIE", "COOKIES", "DSN", "JWT", "BEARER", "SIGNATURE", "SALT",
        "CONNSTR", "CERT", "PEM", "OTP",
    }
)
# Secret when the upper-cased name contains one of these anywhere.
_SECRET_FRAGMENTS = (
    "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "APIKEY", "PRIVATEKEY", "ACCESSKEY",
    "AUTHTOKEN", "ACCESSTOKEN", "REFRESHTOKEN", "CONNECTIONSTRING",
)
# Secret when these words follow each other.
_SECRET_WORD_PAIRS = frozenset({("CONNECTION", "STRING"), ("CONN", "STRING"), ("CONN", "STR")})

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    spaced = _CAMEL_BOUNDARY.sub("_", name)
    return [word.upper() for word in _SEPARATORS.split(spaced) if word]


def looks_secret(name: str) -> bool:
    """Whether an environment variable with this name probably holds a secret."""
    words = _words(name)
    if any(word in _SECRET_WORDS for word in words):
        return True
    if any(pair in _SECRET_WORD_PAIRS for pair in itertools.pairwise(words)):
        return True
    glued = "".join(words)
    return any(fragment in glued for fragment in _SECRET_FRAGMENTS)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` with the values of secret-looking names replaced by REDACTED."""
    return {name: REDACTED if looks_secret(name) else value for name, value in env.items()}
