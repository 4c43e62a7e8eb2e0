"""hearing-pipeline: from the video statements of a citizen meeting to the agreed consultation response."""

__version__ = "0.1.0"
