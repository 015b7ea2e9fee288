"""Model handlers: one class per family of architectures, named by the catalog's `handler`."""
