"""passport: the account service of the Orginone platform."""

__version__ = "0.1.0"
