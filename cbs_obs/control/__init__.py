"""The control plane: token, presets, HTTP API and web panel (all on 127.0.0.1 by default)."""
