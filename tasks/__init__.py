"""Task plugins. Every module in this package is imported by the task registry and
registers one task (``restoration.registry.TASKS``). A new task is one new file here
plus its configs under ``configs/<task>/``."""
