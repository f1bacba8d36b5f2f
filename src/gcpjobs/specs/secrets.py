"""Which environment variables hold secrets, so that previews and logs never show their values.

A name looks secret when one of its words (split at `_`, `-`, `.` and camelCase boundaries)
is a secret word (`API_KEY`, `dbPassword`, `HF_TOKEN`), or when it contains an unambiguous
secret word glued to others (`DBPASSWORD`, `MYSECRETVALUE`). Words that merely contain a short
secret word are not secret: `MONKEY`, `MAX_TOKENS`, `TOKENIZER_PATH`, `AUTHOR`. Redacting a
harmless value is cheap; showing a secret is not, so the list errs on the generous side.

Names are not enough (`DATABASE_URL=postgres://admin:pw@db/app`, `GITHUB_PAT=ghp_...`):
`redact_value` also takes out the credentials a value carries, whatever its name. Every place
that shows env values goes through `shown_value` / `redact_env` here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

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
    """A copy of `env` fit to show: the values of secret-looking names replaced by REDACTED,
    and the credentials other values carry (see `redact_value`) too."""
    return {name: shown_value(name, value) for name, value in env.items()}


# ---------------------------------------------------------------------- credentials in values

# What gives a value away as a credential whatever its variable is called. Each alternative is
# a run of one character class after a fixed prefix (no nested quantifiers), and the patterns
# run on RE2, so redaction is linear in the value's length however it is crafted.
_TOKEN_PATTERNS = (
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens (personal, OAuth, user, server, refresh)
    r"github_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained personal access tokens
    r"xox[abeoprs]-[A-Za-z0-9-]{10,}",  # Slack bot, user, app ... tokens
    r"sk-[A-Za-z0-9_-]{16,}",  # OpenAI, Anthropic (sk-ant-...) API keys
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}",  # Stripe secret and restricted keys
    r"(?:AKIA|ASIA)[A-Z0-9]{16}",  # AWS access key ids
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab personal access tokens
    r"AIza[A-Za-z0-9_-]{35}",  # Google API keys
    r"ya29\.[A-Za-z0-9_-]{20,}",  # Google OAuth access tokens
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face tokens
    r"npm_[A-Za-z0-9]{36}",  # npm tokens
    r"pypi-[A-Za-z0-9_-]{50,}",  # PyPI API tokens
    r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*",  # JWTs (a JSON header, "{")
)
# Each prefix starts at a word boundary, so `mask-1234...` is not an `sk-` key.
_TOKENS = r"\b(?:" + "|".join(_TOKEN_PATTERNS) + ")"
# A URL's user information: `scheme://user:password@` or `scheme://user@` (Sentry DSNs carry
# their key as the user). Group 1 the scheme, 2 the user, 3 the password (with its colon).
_URL_USERINFO = r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s:]*)(:[^/?#@\s]*)?@"
_PRIVATE_KEY = "-----BEGIN"  # ... PRIVATE KEY----- (PEM, OpenSSH): the whole value goes


class _Patterns:
    """Compiled on first use: RE2 is imported only by what shows values."""

    tokens: Any = None
    userinfo: Any = None

    @classmethod
    def compiled(cls) -> tuple[Any, Any]:
        if cls.tokens is None:
            import re2

            cls.tokens = re2.compile(_TOKENS)
            cls.userinfo = re2.compile(_URL_USERINFO)
        return cls.tokens, cls.userinfo


def _without_userinfo(match: Any) -> str:
    scheme, user, password = match.group(1), match.group(2), match.group(3)
    if password:  # the user name stays: it tells which account, the password is the secret
        return f"{scheme}{user}:{REDACTED}@"
    return f"{scheme}{REDACTED}@" if user else match.group(0)


def redact_value(value: str) -> str:
    """`value` with the credentials it carries replaced by REDACTED: a URL's password (or its
    user alone, as in Sentry DSNs), well-known token formats (GitHub, GitLab, Slack, OpenAI,
    Stripe, AWS access key ids, Google API keys and OAuth tokens, Hugging Face, npm, PyPI,
    JWTs), and the whole value if it holds a private key. Everything else is left as it is."""
    if _PRIVATE_KEY in value and "PRIVATE KEY" in value:
        return REDACTED
    if "://" not in value and not any(prefix in value for prefix in _TOKEN_HINTS):
        return value  # the common case, without RE2
    tokens, userinfo = _Patterns.compiled()
    redacted: str = userinfo.sub(_without_userinfo, value) if "://" in value else value
    redacted = tokens.sub(lambda match: REDACTED, redacted)
    return redacted


# Substrings at least one of which every token pattern contains.
_TOKEN_HINTS = ("gh", "github_pat_", "xox", "sk-", "k_live_", "k_test_", "AKIA", "ASIA",
                "glpat-", "AIza", "ya29.", "hf_", "npm_", "pypi-", "eyJ")


def shown_value(name: str, value: str) -> str:
    """How the value of variable `name` may be shown: REDACTED if the name looks secret,
    else the value with the credentials it carries redacted."""
    return REDACTED if looks_secret(name) else redact_value(value)


def holds_secret(name: str, value: str) -> bool:
    """Whether showing `value` (of variable `name`) as it is would show a secret."""
    return shown_value(name, value) != value
