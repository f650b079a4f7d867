from gui.common.pyside_fixes import make_none_immortal

make_none_immortal()   # PySide6 6.12 on Python 3.11 leaks None references (see gui/common/pyside_fixes.py)
