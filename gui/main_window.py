"""The main window: one tab per stage of the loop (annotate, train)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget

from storage.workspace import Workspace


class MainWindow(QMainWindow):
    def __init__(self, workspace: Workspace):
        super().__init__()
        self.workspace = workspace
        self.setWindowTitle(f"DPO Studio — {workspace.location}")
        self.resize(1280, 820)
        self.tabs = QTabWidget()
        self.tabs.addTab(QLabel("Annotation view"), "Annotate")
        self.tabs.addTab(QLabel("Training view"), "Train")
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage(f"Workspace: {workspace.location}")
