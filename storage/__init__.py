"""The workspace store: SQLAlchemy models, sessions, migrations and the queries the app needs.

Never imports Qt, torch or anything from ``core``/``gui`` (tests/test_layering.py checks).
"""
