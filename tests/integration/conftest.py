"""The integration suite's fixtures (`settings`, `plain_settings`) are in tests/conftest.py,
shared with the browser tests."""
