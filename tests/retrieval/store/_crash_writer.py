"""Child process of the crash test: writes the ``crash_ops`` stream to a store, acknowledging each write.

Usage: ``python _crash_writer.py DB_PATH START``. Prints ``ready`` once the store is open, then one line per
write, flushed, only after ``Store.write`` has returned (committed). Runs until killed.

``retrieval/__init__.py`` imports the model stack (torch), which would make each start take seconds; the
store needs none of it, so this script registers a bare ``retrieval`` package pointing at the source folder
and imports only ``retrieval.store`` (which imports ``retrieval.errors``) from it.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _bare_retrieval_package() -> None:
    package = types.ModuleType("retrieval")
    package.__path__ = [str(ROOT / "retrieval")]
    sys.modules["retrieval"] = package
    sys.path[:0] = [str(ROOT), str(HERE)]


def main(path: str, start: int) -> None:
    """Open the store at ``path`` and write ``crash_ops(start)`` forever, printing each acknowledged op."""
    from _docs import crash_ops, doc_id, make_doc

    from retrieval.store import Store

    store = Store.open(Path(path))
    print("ready", flush=True)
    for kind, items in crash_ops(start):
        if kind == "put":
            store.write("c", [make_doc(n, v) for n, v in items], skip_unchanged=False)
        else:
            store.write("c", deletes=[doc_id(n) for n, _ in items])
        print(kind, flush=True)


if __name__ == "__main__":
    _bare_retrieval_package()
    main(sys.argv[1], int(sys.argv[2]))
