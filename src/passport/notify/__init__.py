"""Notices: the outbox and its delivery, the in-site inbox, site announcements, maintenance windows and
the notice board that caches both for every page."""
