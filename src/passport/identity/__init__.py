"""Validators, normalisers and masks for identifiers people type in."""
