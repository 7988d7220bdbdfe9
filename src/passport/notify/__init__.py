"""Notices: SMS and email senders, the outbox and its worker, the in-site inbox, announcements and
maintenance windows."""
