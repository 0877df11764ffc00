"""Instances booted from bootvol volumes: flavors, compute hosts, scheduling, servers."""
