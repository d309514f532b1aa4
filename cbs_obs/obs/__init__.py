"""OBS integration through obs-websocket 5 (obsws-python): scene -> preset, and source setup."""
