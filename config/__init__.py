"""Shipped configurations; installed as harvester._config so `harvester demo` can read them."""
