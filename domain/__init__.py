"""The improvement-case domain: events, state as their fold, and the rules of the journey.

Pure: imports nothing but the standard library and pydantic, so workflows, projections
and auditors all fold a case with the same code, and its tests run in milliseconds.
"""
