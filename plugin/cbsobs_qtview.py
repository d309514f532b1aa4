"""Redraws this script's panel in OBS's Scripts window while it is open, so the status line is live.

OBS 29 gives scripts no call that redraws the Scripts window: its properties view is rebuilt only
when the user presses a button or changes a control whose callback returns True (UI/properties-view.cpp:
ButtonClicked, ControlChanged), and unlike a source's window it listens to no "update_properties"
signal. The view itself has a Qt slot for it, ReloadProperties (it calls script_properties() again
and draws the result). This module reaches that slot the way Qt's own meta-object system would:

1. libobs's ``obs_queue_task(OBS_TASK_UI, ...)`` runs our callback on OBS's UI thread (the timer that
   asks for a redraw runs on OBS's video thread, where Qt widgets must not be touched);
2. there, ``QApplication::topLevelWidgets()`` and each object's meta-object find the ``ScriptsTool``
   window and the ``OBSPropertiesView`` inside it;
3. ``QMetaObject::invokeMethod(view, "ReloadProperties", Qt::QueuedConnection)`` asks for the redraw.

The redraw waits while the user is busy in the panel (a list or a dialog open, typing in a text field,
a mouse button held), so a live status never takes a control from under the user's hand.

It is bound through ctypes to Qt 5's C++ symbols (Itanium ABI: Linux builds such as Debian's OBS 29).
Anywhere else (Qt 6 builds, Windows) ``available`` is False, ``why_not`` says why, and the panel
says "press Refresh" instead. Standard library only.
"""
from __future__ import annotations

import ctypes
import sys
import threading

QUEUED_CONNECTION = 2
OBS_TASK_UI = 0
EDITORS = {b"QLineEdit", b"QPlainTextEdit", b"QTextEdit"}

_KEEP = globals().get("_KEEP") or []  # callbacks OBS may still call: never freed, even across reloads


class _Arg(ctypes.Structure):  # QGenericArgument / QGenericReturnArgument: {const void *data; const char *name}
    _fields_ = [("data", ctypes.c_void_p), ("name", ctypes.c_char_p)]


_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_META = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


class ViewRefresher:
    """``request()`` (a redraw) and ``run_on_ui(job)`` from any OBS thread; each job is queued at most once."""

    def __init__(self):
        self.available = False
        self.why_not = ""
        self.closed = False
        self.redraws = 0
        self.busy_skips = 0
        self._jobs: list = []
        self._scheduled = False
        self._lock = threading.Lock()
        try:
            self._bind()
            self.available = True
        except (OSError, AttributeError, ValueError) as e:
            self.why_not = f"this OBS build offers no way to redraw the Scripts window ({type(e).__name__}: {e})"

    def _bind(self) -> None:
        if sys.platform == "win32":
            raise OSError("Windows builds of OBS use another C++ ABI")
        lib = ctypes.CDLL(None)  # OBS itself: libobs and Qt are already loaded
        lib.qVersion.restype = ctypes.c_char_p
        version = lib.qVersion() or b"?"
        if not version.startswith(b"5."):
            raise ValueError(f"Qt {version.decode()} (only Qt 5 object layouts are known here)")
        self._queue = lib.obs_queue_task
        self._queue.argtypes = [ctypes.c_int, _TASK, ctypes.c_void_p, ctypes.c_bool]
        self._queue.restype = None
        self._top = lib._ZN12QApplication15topLevelWidgetsEv  # static QWidgetList (returned through a pointer)
        self._top.argtypes, self._top.restype = [ctypes.c_void_p], ctypes.c_void_p
        self._dispose = lib._ZN9QListData7disposeEPNS_4DataE
        self._dispose.argtypes, self._dispose.restype = [ctypes.c_void_p], None
        self._class_name = lib._ZNK11QMetaObject9classNameEv
        self._class_name.argtypes, self._class_name.restype = [ctypes.c_void_p], ctypes.c_char_p
        self._popup = lib._ZN12QApplication17activePopupWidgetEv
        self._modal = lib._ZN12QApplication17activeModalWidgetEv
        self._focus = lib._ZN12QApplication11focusWidgetEv
        for f in (self._popup, self._modal, self._focus):
            f.argtypes, f.restype = [], ctypes.c_void_p
        self._buttons = lib._ZN15QGuiApplication12mouseButtonsEv
        self._buttons.argtypes, self._buttons.restype = [], ctypes.c_int
        self._invoke = lib[("_ZN11QMetaObject12invokeMethodEP7QObjectPKcN2Qt14ConnectionTypeE22QGenericReturnArgument"
                            "16QGenericArgumentS7_S7_S7_S7_S7_S7_S7_S7_S7_")]
        self._invoke.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int] + [_Arg] * 11
        self._invoke.restype = ctypes.c_bool
        self._task = _TASK(self._on_ui_thread)
        _KEEP.append(self._task)

    # -- any thread ---------------------------------------------------------------------------------
    def run_on_ui(self, job) -> bool:
        """Run ``job()`` on OBS's UI thread soon; False when it cannot (unavailable) or is already queued.

        A job must not call what registers a Python callback with OBS (hotkeys, timers, signal handlers):
        OBS files those under the script whose callback is running, and here none is (OBS crashes).

        OBS's own frontend calls and the script's settings belong to that thread: the Scripts window reads
        the settings there while it redraws, so writing them from OBS's video thread would race with it."""
        if not self.available or self.closed:
            return False
        with self._lock:
            if job in self._jobs:
                return False
            self._jobs.append(job)
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            self._queue(OBS_TASK_UI, self._task, None, False)
        return True

    def request(self) -> bool:
        """Queue one redraw of the open panel."""
        return self.run_on_ui(self._redraw_job)

    def close(self) -> None:
        self.closed = True

    # -- OBS's UI thread ------------------------------------------------------------------------------
    def _on_ui_thread(self, _param) -> None:
        with self._lock:
            jobs, self._jobs, self._scheduled = self._jobs, [], False
        for job in jobs:
            if self.closed:
                return
            try:
                job()
            except Exception:  # never let a surprise reach OBS; the job reports its own errors
                pass

    def _redraw_job(self) -> None:
        try:
            self._redraw()
        except Exception as e:  # a Qt layout this module does not know: stop trying, say why
            self.available, self.why_not = False, f"redrawing the Scripts window failed ({type(e).__name__}: {e})"

    def _redraw(self) -> None:
        views = [v for w in self._top_level() if self._name(w) == b"ScriptsTool"
                 for v in self._descendants(w) if self._name(v) == b"OBSPropertiesView"]
        if not views:
            return  # the Scripts window was never opened: nothing to redraw
        if self._user_busy(views):
            self.busy_skips += 1
            return
        empty = _Arg(None, None)
        for view in views:
            self._invoke(view, b"ReloadProperties", QUEUED_CONNECTION, *([empty] * 11))
        self.redraws += 1

    def _user_busy(self, views) -> bool:
        if self._popup() or self._modal() or self._buttons():
            return True
        focus = self._focus()
        if not focus or self._name(focus) not in EDITORS:
            return False
        parent = focus
        while parent:  # typing in one of this panel's text fields
            if parent in views:
                return True
            parent = self._parent(parent)
        return False

    # Qt 5 object layouts (public headers): QObject {vptr; QObjectData *d_ptr}; QObjectData {vptr; q_ptr;
    # parent; QList<QObject*> children}; QListData::Data {ref, alloc, begin, end; void *array[]}.
    @staticmethod
    def _ptr(address: int, offset: int = 0) -> int:
        return ctypes.c_void_p.from_address(address + offset).value or 0

    def _name(self, obj: int) -> bytes:
        meta = _META(self._ptr(self._ptr(obj)))(obj)  # virtual QObject::metaObject(), first in the vtable
        return self._class_name(meta) or b""

    def _list_items(self, data: int) -> list:
        begin, end = ctypes.c_int.from_address(data + 8).value, ctypes.c_int.from_address(data + 12).value
        return [self._ptr(data, 16 + 8 * i) for i in range(begin, end)]

    def _top_level(self) -> list:
        holder = ctypes.c_void_p()
        self._top(ctypes.addressof(holder))
        data = holder.value
        items = self._list_items(data)
        if ctypes.c_int.from_address(data).value == 1:  # ours alone (the shared empty list has -1)
            self._dispose(data)
        return items

    def _children(self, obj: int) -> list:
        d = self._ptr(obj, 8)
        return self._list_items(self._ptr(d, 24)) if d else []

    def _parent(self, obj: int) -> int:
        d = self._ptr(obj, 8)
        return self._ptr(d, 16) if d else 0

    def _descendants(self, obj: int, depth: int = 0) -> list:
        out = []
        for child in self._children(obj):
            out.append(child)
            if depth < 30:
                out += self._descendants(child, depth + 1)
        return out
