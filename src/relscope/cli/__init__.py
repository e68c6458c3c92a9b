"""The ``relscope`` command line."""
