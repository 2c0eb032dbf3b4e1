"""lcq engine: resumable, exactly-once LimaCharlie searches as chains of RQ jobs."""

__version__ = "0.1.0"
