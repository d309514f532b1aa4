"""One small exception hierarchy so the CLI and the API can tell users what to do.

Every message is written for the person at the keyboard: what was wrong, and how to fix it.
The CLI prints ``str(error)`` without a traceback unless ``--verbose`` is given.
"""
from __future__ import annotations


class CbsError(Exception):
    """Base class for every error cbs-obs reports on purpose."""


class InputError(CbsError):
    """A file, image or frame the user gave cannot be used."""


class UnknownNameError(CbsError, KeyError):
    """A class, style, model or preset name that does not exist.

    Carries the valid choices so the message can list them.
    """

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...], hint: str = ""):
        self.kind = kind
        self.name = name
        self.choices = list(choices)
        shown = ", ".join(self.choices)
        plural = kind + ("es" if kind.endswith("s") else "s")
        msg = f"unknown {kind} {name!r}; valid {plural}: {shown}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class ModelError(CbsError):
    """Weights are missing, corrupt, or not the model they claim to be."""


class ModelMissingError(ModelError):
    """Weights are not in the cache; the message carries the fetch command."""


class ChecksumError(ModelError):
    """A downloaded or user-given file does not have the expected sha256."""


class DownloadError(ModelError):
    """A model could not be downloaded."""


class SettingsError(CbsError, ValueError):
    """A setting (strength, feather, size...) is out of range or malformed."""


class DeviceError(CbsError):
    """An output device (the virtual camera) is missing; the message carries how to install it."""


class DeviceBusyError(DeviceError):
    """An output device exists but another program holds it."""


class ObsError(CbsError):
    """OBS could not be reached over obs-websocket."""


class ObsAuthError(ObsError):
    """OBS answered but refused the password."""


class ListenError(CbsError):
    """The engine's HTTP server cannot listen where it was asked to."""


class RemoteError(CbsError):
    """The inference server (``--remote``) cannot be reached, does not serve a network, or refused us."""


class RemoteAuthError(RemoteError):
    """The inference server refused the shared key."""


class RemoteUnavailable(RemoteError):
    """The inference server was lost while running; the engine keeps its last masks and styles meanwhile."""
