"""Run as a program by tests/test_obs_panel.py: the panel's live redraw (plugin/cbsobs_qtview.py) bound to real
Qt 6 libraries (PySide6's), in a process set up the way OBS's is where it matters to the binding.

- Qt's symbols are global in the process (OBS links Qt; here PySide6 is loaded with RTLD_GLOBAL);
- a real QApplication with a top-level window whose meta-object class is ``ScriptsTool`` holding, a few levels
  down among other widgets, an ``OBSPropertiesView`` with a ``ReloadProperties`` slot;
- libobs's ``obs_queue_task(OBS_TASK_UI, task, param, wait)`` stood in for by a C-callable function that queues
  the task, which a timer on the Qt main thread runs (OBS runs OBS_TASK_UI tasks on its Qt main thread).

This is not OBS: it checks the Qt 6 object layouts and calls, not OBS's own widgets. Prints one JSON object.
"""
from __future__ import annotations

import ctypes
import json
import os
import queue
import resource
import sys
import threading
import time

sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer, Slot  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QLineEdit, QVBoxLayout, QWidget  # noqa: E402
from shiboken6 import delete, getCppPointer  # noqa: E402

sys.path.insert(0, sys.argv[1])
import cbsobs_qtview as qtview  # noqa: E402

MAIN = threading.get_ident()
out: dict = {}


class ScriptsTool(QWidget):
    pass


class OBSPropertiesView(QWidget):
    def __init__(self, parent):
        super().__init__(parent)
        self.reloads: list[int] = []

    @Slot()
    def ReloadProperties(self):  # noqa: N802 (OBS's name)
        self.reloads.append(threading.get_ident())


tasks: queue.Queue = queue.Queue()
QUEUE_TASK = ctypes.CFUNCTYPE(None, ctypes.c_int, qtview._TASK, ctypes.c_void_p, ctypes.c_bool)


def obs_queue_task(kind, task, param, wait):
    tasks.put((kind, task, param))


class Process:
    """Symbol lookup as in OBS's process: Qt's from the process, obs_queue_task from the stand-in."""

    def __init__(self):
        self.lib = ctypes.CDLL(None)
        self.obs_queue_task = QUEUE_TASK(obs_queue_task)

    def __getattr__(self, name):
        return getattr(self.lib, name)

    def __getitem__(self, name):
        return self.lib[name]


def address(widget) -> int:
    return getCppPointer(widget)[0]


def run_tasks():
    while True:
        try:
            kind, task, param = tasks.get_nowait()
        except queue.Empty:
            return
        out.setdefault("task_kinds", []).append(kind)
        task(param)


def settle(seconds=0.3):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def from_another_thread(fn):
    """What OBS's video thread (the script's timer) does: ask from a thread that is not Qt's."""
    t = threading.Thread(target=fn)
    t.start()
    t.join()
    settle()


app = QApplication([])
pump = QTimer()
pump.timeout.connect(run_tasks)
pump.start(5)

main_window = QWidget()  # other top-level windows (OBS's main window, docks)
for i in range(8):
    QLabel(f"dock {i}", main_window)
window = ScriptsTool()
layout = QVBoxLayout(window)
for i in range(30):
    layout.addWidget(QLabel(f"script {i}"))
outside = QLineEdit()
layout.addWidget(outside)
holder = QWidget()
layout.addWidget(holder)
view = OBSPropertiesView(holder)
inner = QWidget(view)
field = QLineEdit(inner)
for w in (main_window, window):
    w.show()
settle()

refresher = qtview.ViewRefresher(Process())
qt = ctypes.CDLL(None)
qt.qVersion.restype = ctypes.c_char_p
out.update(available=refresher.available, why_not=refresher.why_not, qt_major=refresher.qt_major,
           qt_version=qt.qVersion().decode())
if refresher.available:
    tops = refresher._top_level()
    out["top_level_found"] = sorted(address(w) in tops for w in (main_window, window))
    out["names"] = sorted(refresher._name(a).decode() for a in tops if a in (address(main_window), address(window)))
    kids = refresher._children(address(window))
    out["children_of_window"] = [len(kids), len(window.children())]
    out["view_parent_is_holder"] = refresher._parent(address(view)) == address(holder)
    out["view_found_below_window"] = address(view) in refresher._descendants(address(window))

    from_another_thread(refresher.request)
    out["redraw"] = {"reloads": len(view.reloads), "on_main_thread": view.reloads == [MAIN],
                     "redraws": refresher.redraws}

    ran_on = []
    from_another_thread(lambda: refresher.run_on_ui(lambda: ran_on.append(threading.get_ident())))
    out["job_on_main_thread"] = ran_on == [MAIN]

    window.activateWindow()
    field.setFocus()
    settle()
    out["focus_is_field"] = QApplication.focusWidget() is field
    from_another_thread(refresher.request)
    out["typing_in_panel"] = {"reloads": len(view.reloads), "busy_skips": refresher.busy_skips}

    outside.setFocus()
    settle()
    from_another_thread(refresher.request)
    out["typing_elsewhere"] = {"reloads": len(view.reloads), "busy_skips": refresher.busy_skips}

    dialog = QDialog(window)
    dialog.setModal(True)
    dialog.show()
    settle()
    from_another_thread(refresher.request)
    out["modal_dialog"] = {"reloads": len(view.reloads), "busy_skips": refresher.busy_skips}
    dialog.close()
    settle()

    # each redraw lists the top-level windows: the list Qt 6 returns must be freed, or OBS grows all stream long
    extra = [QWidget() for _ in range(40)]  # more top-level widgets (never shown): a bigger list to leak
    refresher._top_level()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(50_000):
        refresher._top_level()
    out["rss_growth_kb_50k_lists"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    out["top_level_count"] = len(refresher._top_level())

    window.close()
    delete(window)  # the C++ window and its children, now
    settle()
    from_another_thread(refresher.request)  # the Scripts window is gone: nothing to redraw, nothing breaks
    out["after_window_closed"] = {"available": refresher.available, "redraws": refresher.redraws}
print(json.dumps(out), flush=True)
