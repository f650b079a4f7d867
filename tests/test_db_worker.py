import threading
from gui.common.db_worker import DatabaseWorker
def test_db_worker(qtbot):
    db = DatabaseWorker()
    got = []
    ui = threading.get_ident()
    db.submit(lambda x: (x * 2, threading.get_ident()), 21, on_done=got.append)
    db.submit(lambda: 1 / 0, on_failed=got.append)
    assert db.wait_idle(5000)
    assert got[0][0] == 42 and got[0][1] != ui
    assert isinstance(got[1], ZeroDivisionError)
    db.close()
