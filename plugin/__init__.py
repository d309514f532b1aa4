"""The OBS script and its helpers, shipped as package data (OBS loads cbs_obs_panel.py by path)."""
