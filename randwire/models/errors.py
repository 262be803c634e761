"""Bad values as one line (``error: ...``, exit code 2), and the checks that raise them. No dependencies:
every layer raises them (the training framework's own errors: :mod:`randwire.training.errors`).

Each component checks the values it owns and raises :class:`BadValue` naming its own parameter (``k``);
the config layer re-keys it to the config path the user typed (``graph.k``) with :meth:`BadValue.under`.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value is out of range or inconsistent; the message is the one line the user sees."""


class BadValue(ConfigError):
    """One parameter value its owner rejects: ``{key}={value!r} {verdict} {allowed}``."""

    def __init__(self, key: str, value: Any, allowed: str, verdict: str = "is out of range: allowed") -> None:
        self.key, self.value, self.allowed, self.verdict = key, value, allowed, verdict
        super().__init__(f"{key}={value!r} {verdict} {allowed}")

    def under(self, prefix: str) -> BadValue:
        """The same error, keyed by its config path (``under("graph.")``: ``k`` → ``graph.k``); a key that
        is a path already (``trainer.max_epochs``, named by a component that reads another group) stays."""
        if "." in self.key:
            return self
        return BadValue(prefix + self.key, self.value, self.allowed, self.verdict)


def is_int(x: Any) -> bool:
    """An integer that is not a bool (numpy integers count)."""
    import numbers

    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    import numbers

    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def kind_of(value: Any) -> str:
    """A value's type in a user's words (``a list``, ``text``, ``null``): for a value of the wrong type."""
    from collections.abc import Mapping, Sequence

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence) or type(value).__name__ == "ListConfig":
        return "a list"
    return f"a {type(value).__name__}"


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise :class:`BadValue` unless ``ok``: out of range for a number, else the wrong type, named."""
    if not ok:
        if is_number(value):
            raise BadValue(key, value, allowed)
        raise BadValue(key, value, f"{allowed} (got {kind_of(value)})", verdict="is not allowed:")


def require_choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise BadValue(key, value, f"one of {list(allowed)}", verdict="is not allowed:")


def one_line(message: BaseException | str, limit: int | None = None) -> str:
    """A message on one line, its whitespace collapsed (Hydra, Lightning, sbatch and torch spread one thought
    over several lines); an exception without text is its type's name; cut at ``limit`` characters with "...".
    The one definition of "one error as one line" for every entry point, record and analysis."""
    text = message if isinstance(message, str) else (str(message).strip() or type(message).__name__)
    text = " ".join(text.split())
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
