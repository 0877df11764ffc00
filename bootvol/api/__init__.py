"""HTTP layer: Keystone v3, Glance v2 and Cinder v3 compatible routes (FastAPI).

Routes translate HTTP to service calls and records to OpenStack bodies; they hold no
logic. One exception handler (errors.py) maps bootvol.errors onto OpenStack error bodies.
"""
