"""credwatch: Elastic credential-path detection without the Elastic Stack."""

__version__ = "0.1.0"
