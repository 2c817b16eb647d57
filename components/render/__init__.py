"""Pure renderers: plain data in, plain data (JSON/YAML/text) out. No Pulumi imports."""
