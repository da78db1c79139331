"""Simulated submissions for tests/test_grade.py, one module per assignment tested case by case."""
