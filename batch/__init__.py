"""The batch layer of the CDR platform (see docs/batch.md)."""

# The chain's steps in the order they run (batch.jobs maps each to its function); here so that the
# CLI can name them without importing Spark.
STEPS = ("land", "validate", "dims", "facts", "features", "anomalies", "marts", "publish")
