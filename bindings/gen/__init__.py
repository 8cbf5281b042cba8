"""The binding generators: one module per language, each turning the API
description (``bindings/api.json``) into that language's files."""
