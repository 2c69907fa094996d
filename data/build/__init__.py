"""Build the bundled Qiannan region from ``../shared/data``, one module per job."""
