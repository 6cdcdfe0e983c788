"""Built-in method plug-ins, registered through the ``harness.methods`` entry-point group."""
