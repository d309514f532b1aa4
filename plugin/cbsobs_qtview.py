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
3. ``QMetaObject::invokeMethod(view, "ReloadProperties", Qt::DirectConnection)`` redraws it there and then,
   right after checking that the user is not busy in it: with no event handled in between, a click cannot
   land on a button the redraw replaces (a queued redraw lost one Start engine click in a 20-cycle soak).
   OBS itself calls the slot directly when a source asks for it from the UI thread; this task runs from
   OBS's UI-task event, not inside any of the panel's own widgets' handlers.

The redraw waits while the user is busy in the panel (a list or a dialog open, typing in a text field,
a mouse button held), so a live status never takes a control from under the user's hand.

It is bound through ctypes to Qt's C++ symbols with the Itanium C++ ABI, on Linux only: Qt 5 builds (such
as Debian's OBS 29, where it runs in the real-OBS tests) and Qt 6 builds (OBS 28+ from Flatpak or the Ubuntu
PPA). The two differ in how a QList is laid out (below); everything else it touches is the same. The Qt 6
layout was checked against Qt 6's public headers and exercised against real Qt 6 libraries (PySide6's):
a QApplication with a window named like OBS's Scripts window holding an "OBSPropertiesView" with a
ReloadProperties slot, and a stand-in for libobs's obs_queue_task (tests/test_obs_panel.py). It has not
been run inside an OBS built with Qt 6, because none could be installed where it was written.
Elsewhere (Windows: another C++ ABI; macOS: not tried) or on another Qt major version ``available`` is
False, ``why_not`` says why, and the panel says "press Refresh" instead. Standard library only.
"""
from __future__ import annotations

import ctypes
import sys
import threading

DIRECT_CONNECTION = 1  # Qt::DirectConnection
OBS_TASK_UI = 0
EDITORS = {b"QLineEdit", b"QPlainTextEdit", b"QTextEdit", b"OBSPlainTextEdit", b"QSpinBox", b"QDoubleSpinBox"}

_KEEP = globals().get("_KEEP") or []  # callbacks OBS may still call: never freed, even across reloads


class _Arg(ctypes.Structure):  # QGenericArgument / QGenericReturnArgument: {const void *data; const char *name}
    _fields_ = [("data", ctypes.c_void_p), ("name", ctypes.c_char_p)]


_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_META = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


class ViewRefresher:
    """``request()`` (a redraw) and ``run_on_ui(job)`` from any OBS thread; each job is queued at most once."""

    def __init__(self, process=None):
        """``process``: where the symbols are looked up; OBS's own process (libobs and Qt are loaded) by default."""
        self.available = False
        self.why_not = ""
        self.closed = False
        self.redraws = 0
        self.busy_skips = 0
        self.qt_major = 0
        self._jobs: list = []
        self._scheduled = False
        self._lock = threading.Lock()
        try:
            self._bind(process)
            self.available = True
        except (OSError, AttributeError, ValueError) as e:
            self.why_not = f"this OBS build offers no way to redraw the Scripts window ({type(e).__name__}: {e})"

    def _bind(self, process) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError(f"the live redraw is built for Linux builds of OBS only (this is {sys.platform})")
        lib = ctypes.CDLL(None) if process is None else process
        lib.qVersion.restype = ctypes.c_char_p
        version = lib.qVersion() or b"?"
        if not version.startswith((b"5.", b"6.")):
            raise ValueError(f"Qt {version.decode()} (only Qt 5 and Qt 6 object layouts are known here)")
        self.qt_major = int(version.split(b".")[0])
        self._queue = lib.obs_queue_task
        self._queue.argtypes = [ctypes.c_int, _TASK, ctypes.c_void_p, ctypes.c_bool]
        self._queue.restype = None
        self._top = lib._ZN12QApplication15topLevelWidgetsEv  # static QWidgetList (returned through a pointer)
        self._top.argtypes, self._top.restype = [ctypes.c_void_p], ctypes.c_void_p
        if self.qt_major == 5:
            self._dispose = lib._ZN9QListData7disposeEPNS_4DataE  # QListData::dispose(Data *)
            self._dispose.argtypes, self._dispose.restype = [ctypes.c_void_p], None
        else:
            self._dispose = lib._ZN10QArrayData10deallocateEPS_xx  # QArrayData::deallocate(data, size, align)
            self._dispose.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_longlong]
            self._dispose.restype = None
        self._class_name = lib._ZNK11QMetaObject9classNameEv
        self._class_name.argtypes, self._class_name.restype = [ctypes.c_void_p], ctypes.c_char_p
        self._popup = lib._ZN12QApplication17activePopupWidgetEv
        self._modal = lib._ZN12QApplication17activeModalWidgetEv
        self._focus = lib._ZN12QApplication11focusWidgetEv
        for f in (self._popup, self._modal, self._focus):
            f.argtypes, f.restype = [], ctypes.c_void_p
        self._buttons = lib._ZN15QGuiApplication12mouseButtonsEv
        self._buttons.argtypes, self._buttons.restype = [], ctypes.c_int
        # the QGenericArgument overload: exported by Qt 5 and by every Qt 6 (6.12's libQt6Core.so.6 checked)
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
            self._invoke(view, b"ReloadProperties", DIRECT_CONNECTION, *([empty] * 11))
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

    # Object layouts from Qt's public headers (fixed within a major version: inline code in every Qt program
    # reads them). Both: QObject {vptr; QObjectData *d_ptr}; QObjectData {vptr; QObject *q_ptr; QObject *parent;
    # QObjectList children}. A QList<T*> differs:
    #   Qt 5: {QListData::Data *d}, Data {RefCount ref; int alloc, begin, end; void *array[]}
    #   Qt 6: {QArrayData *d; T **ptr; qsizetype size}, QArrayData {QBasicAtomicInt ref; flags; qsizetype alloc}
    LIST_BYTES = 24  # room for either

    @staticmethod
    def _ptr(address: int, offset: int = 0) -> int:
        return ctypes.c_void_p.from_address(address + offset).value or 0

    def _name(self, obj: int) -> bytes:
        meta = _META(self._ptr(self._ptr(obj)))(obj)  # virtual QObject::metaObject(), first in the vtable
        return self._class_name(meta) or b""

    def _list_items(self, qlist: int) -> list:
        """The pointers a QList<T*> at address ``qlist`` holds."""
        if self.qt_major == 5:
            data = self._ptr(qlist)
            begin, end = ctypes.c_int.from_address(data + 8).value, ctypes.c_int.from_address(data + 12).value
            first, count = data + 16 + 8 * begin, end - begin
        else:
            first, count = self._ptr(qlist, 8), ctypes.c_longlong.from_address(qlist + 16).value
        if not 0 <= count <= 100_000 or (count and not first):
            raise ValueError(f"a QList of {count} items at {first:#x}: not the layout expected")
        return [self._ptr(first, 8 * i) for i in range(count)]

    def _top_level(self) -> list:
        holder = (ctypes.c_char * self.LIST_BYTES)()
        self._top(ctypes.addressof(holder))
        try:
            return self._list_items(ctypes.addressof(holder))
        finally:
            data = self._ptr(ctypes.addressof(holder))  # the list's shared data, ours alone when its count is 1
            if data and ctypes.c_int.from_address(data).value == 1:  # (Qt 5's shared empty list counts -1)
                if self.qt_major == 5:
                    self._dispose(data)
                else:
                    self._dispose(data, 8, 16)  # sizeof(T*), alignof(QTypedArrayData<T*>::AlignmentDummy)

    def _children(self, obj: int) -> list:
        d = self._ptr(obj, 8)
        return self._list_items(d + 24) if d else []

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
