"""Request and response bodies per OpenStack service, as their API references give them."""
