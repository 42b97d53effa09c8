"""Notices that reach people: the relay that drains the outbox and emails each notice to
the people who hold its recipient's role (issue 19)."""
