"""Senders: SMS (dev outbox or a vendor), later email and the in-site inbox."""
