"""Plugins for testing the host; never install them anywhere else."""
