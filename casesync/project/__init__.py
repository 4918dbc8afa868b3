"""The repository as written: YAML, schemas, manifests, series files."""
