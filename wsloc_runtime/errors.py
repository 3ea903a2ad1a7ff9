"""Exceptions raised by wsloc_runtime.

Every error a user can cause derives from :class:`WslocError` and carries a
one-line message that says what was expected, so command lines and the web app
can show it as it is instead of a traceback.
"""

from __future__ import annotations


class WslocError(Exception):
    """Base class of every error that wsloc raises on purpose."""


class InvalidImageError(WslocError, ValueError):
    """The input could not be read as an image, or is outside what wsloc accepts."""


class ModelNotFoundError(WslocError, FileNotFoundError):
    """A model file was looked for in every configured place and not found."""


class ModelContractError(WslocError, ValueError):
    """A model file exists but does not honour the model contract (docs/method.md, "The model contract")."""


class UnknownNameError(WslocError, KeyError):
    """A name (segmenter, map kind, ...) is not one of the registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Stopped(BaseException):
    """SIGTERM or SIGINT asked a run to stop (see ``wsloc_runtime.batch.stop_on_signals``). A
    BaseException, like KeyboardInterrupt, so that the per-image ``except Exception`` of
    :func:`wsloc_runtime.outputs.localize_to_files` cannot mistake it for a broken image."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
